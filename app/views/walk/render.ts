/**
 * Walk render: one keyed join per mark (header lines, IOVA fields, field → level links, level
 * boxes) into the `<svg>` it is given. Boxes are keyed by the translation's seq and level, so a
 * new walk's boxes enter afresh; with `animate` (following the live end) they fade in one level
 * after another, in the order the hardware reads them (a CSS animation: no d3-transition needed).
 * A nested walk's grid cells are keyed the same way and appear in read order (1…24); cells no
 * read reached appear with the last read.
 */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { BoxMark, CellMark, FieldMark, LinkMark, WalkLayout } from "./layout.ts";

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

  renderGrid(root, l, opts);
}

/** The nested grid (empty layers for a second-stage-only walk). */
function renderGrid(root: ReturnType<typeof sizeSvg>, l: WalkLayout, opts: RenderOptions): void {
  const grid = l.grid;
  if (!grid) {
    // a second-stage-only walk draws exactly what it always did
    root.selectChildren("g.grid, g.grid-labels, g.grid-outcome").remove();
    return;
  }
  textLines(layer(root, "grid-labels"), () => grid?.labels ?? []);
  textLines(layer(root, "grid-outcome"), () => grid?.outcome ?? []);
  const last = grid ? Math.max(0, ...grid.cells.map((c) => c.order)) : 0;
  const cells = layer(root, "grid")
    .selectChildren<SVGGElement, CellMark>("g.cell")
    .data(grid?.cells ?? [], (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 3);
      g.append("title");
      if (opts.animate) g.style("animation", (d) => `walk-appear ${STEP_MS}ms ease-out ${(d.order || last + 1) * CELL_STEP_MS}ms both`);
      return g;
    })
    .attr("class", (d) => `cell stage-${d.stage} status-${d.status}${d.end ? " end" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-row", (d) => d.row)
    .attr("data-col", (d) => d.col)
    .attr("data-status", (d) => d.status)
    .attr("data-order", (d) => d.order);
  cells.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  cells.select("title").text((d) => d.title);
  textLines(cells, (d) => d.lines);
}

/** Between two reads of a nested walk: 24 of them take about two seconds. */
const CELL_STEP_MS = 80;
