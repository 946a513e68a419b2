/**
 * Walk render: one keyed join per mark (header lines, IOVA fields, field → level links, level
 * boxes) into the `<svg>` it is given. Boxes are keyed by the translation's seq and level, so a
 * new walk's boxes enter afresh; with `animate` (following the live end) they fade in one level
 * after another, in the order the hardware reads them (a CSS animation: no d3-transition needed).
 */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { BoxMark, FieldMark, LinkMark, WalkLayout } from "./layout.ts";

export interface RenderOptions {
  animate: boolean;
}

const STEP_MS = 160;

export function renderWalk(svg: SVGSVGElement, l: WalkLayout, opts: RenderOptions = { animate: false }): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "walk-svg");

  textLines(layer(root, "header"), () => l.header);

  const fields = layer(root, "fields")
    .selectChildren<SVGGElement, FieldMark>("g.field")
    .data(l.fields, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "field");
      g.append("rect");
      return g;
    })
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-level", (d) => d.level);
  fields.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  textLines(fields, (d) => d.lines);

  layer(root, "links")
    .selectChildren<SVGPathElement, LinkMark>("path")
    .data(l.links, (d) => d.key)
    .join("path")
    .attr("class", (d) => `link ${d.used ? "used" : "unused"}`)
    .attr("data-level", (d) => d.level)
    .attr("d", (d) => d.d);

  const boxes = layer(root, "boxes")
    .selectChildren<SVGGElement, BoxMark>("g.box")
    .data(l.boxes, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 4);
      // a CSS animation (walk.css), delayed per level; inline so the class updates below keep it
      if (opts.animate) g.style("animation", (d) => `walk-appear ${STEP_MS}ms ease-out ${d.order * STEP_MS}ms both`);
      return g;
    })
    .attr("class", (d) => `box status-${d.status}${d.end ? " end" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-level", (d) => d.level)
    .attr("data-status", (d) => d.status);
  boxes.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  textLines(boxes, (d) => d.lines);
}
