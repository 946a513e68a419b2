/**
 * Address-space render: one keyed join per mark (header, ticks, lanes, ranges). Ticks are keyed
 * by address, lanes by IOAS, ranges by IOAS + kind + start + the seq of the event that made them.
 * Reservations are filled with a hatch pattern (shape, not only colour) whose id is unique per svg.
 * Layers keep their first-render order, so the ranges always paint over their lanes.
 */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { AddrSpaceLayout, LaneMark, RangeMark, TickMark } from "./layout.ts";

let nextId = 0;
const hatchIds = new WeakMap<SVGSVGElement, string>();

export function renderAddrSpace(svg: SVGSVGElement, l: AddrSpaceLayout): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "addrspace-svg");
  if (!hatchIds.has(svg)) hatchIds.set(svg, `addrspace-hatch-${++nextId}`);
  const hatch = hatchIds.get(svg)!;
  layer(root, "defs")
    .selectChildren<SVGPatternElement, string>("pattern")
    .data([hatch], (d) => d)
    .join((enter) => {
      const p = enter.append("pattern").attr("class", "hatch").attr("patternUnits", "userSpaceOnUse").attr("width", 6).attr("height", 6).attr("patternTransform", "rotate(45)");
      p.append("rect").attr("width", 6).attr("height", 6);
      p.append("path").attr("d", "M0,0V6");
      return p;
    })
    .attr("id", (d) => d);

  textLines(layer(root, "header"), () => l.header);

  const lanes = layer(root, "lanes")
    .selectChildren<SVGGElement, LaneMark>("g.lane")
    .data(l.lanes, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "lane");
      g.append("rect").attr("class", "band");
      return g;
    })
    .attr("transform", (d) => `translate(0,${d.y})`)
    .attr("data-ioas", (d) => d.key);
  lanes
    .select("rect")
    .attr("x", l.x0)
    .attr("y", 4)
    .attr("width", l.x1 - l.x0)
    .attr("height", 20);
  textLines(lanes, (d) => d.lines);

  const axis = layer(root, "axis");
  axis
    .selectChildren<SVGLineElement, null>("line.base")
    .data([null])
    .join("line")
    .attr("class", "base")
    .attr("x1", l.x0)
    .attr("x2", l.x1)
    .attr("y1", l.axisY)
    .attr("y2", l.axisY);
  const bottom = l.lanes.length ? l.lanes[l.lanes.length - 1].y + 24 : l.axisY;
  const ticks = axis
    .selectChildren<SVGGElement, TickMark>("g.tick")
    .data(l.ticks, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "tick");
      g.append("line");
      g.append("text");
      return g;
    })
    .classed("landmark", (d) => d.landmark)
    .attr("transform", (d) => `translate(${d.x},0)`);
  ticks.select("line").attr("y1", l.axisY - 4).attr("y2", bottom);
  ticks
    .select("text")
    .attr("y", (d) => l.axisY + 16 + d.row * 14)
    .attr("text-anchor", (d) => d.anchor)
    .text((d) => d.label);

  const ranges = layer(root, "ranges")
    .selectChildren<SVGGElement, RangeMark>("g.range")
    .data(l.ranges, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect");
      g.append("text").attr("x", 4).attr("y", 14);
      g.append("title");
      return g;
    })
    .attr("class", (d) => `range ${d.kind}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`);
  ranges
    .select<SVGRectElement>("rect")
    .attr("width", (d) => d.w)
    .attr("height", (d) => d.h)
    .attr("fill", (d) => (d.kind === "reserved" ? `url(#${hatch})` : null));
  ranges.select("text").text((d) => d.label);
  ranges.select("title").text((d) => d.title);
}
