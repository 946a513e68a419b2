/**
 * Timeline render, in two layers (tldraw's static/interactive split): `renderTimeline` draws the
 * lanes, bars and axis when the trace or the size changes; `renderPlayhead` moves the cursor and
 * selection lines, every frame of playback if need be. One keyed join per mark: lanes by family,
 * bars as one path per family, ticks by value.
 */
import * as d3 from "d3";
import { layer, sizeSvg, type AnySelection } from "../common/svg.ts";
import type { BarMark, LaneMark, PlayheadLayout, TickMark, TimelineLayout } from "./layout.ts";

export function renderTimeline(svg: SVGSVGElement, l: TimelineLayout): void {
  // the svg is the scrubber (a slider, named by the component): no image role here
  const root = sizeSvg(svg, l.width, l.height, null).attr("class", "timeline-svg");

  const lanes = layer(root, "lanes")
    .selectChildren<SVGGElement, LaneMark>("g.lane")
    .data(l.lanes, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "lane");
      g.append("rect").attr("class", "band");
      g.append("text").attr("class", "label");
      g.append("title");
      return g;
    })
    .attr("data-lane", (d) => d.label)
    .attr("transform", (d) => `translate(0,${d.y})`);
  lanes
    .select("rect")
    .attr("x", l.x0)
    .attr("width", l.x1 - l.x0)
    .attr("height", (d) => d.h - 1);
  lanes
    .select("text")
    .attr("x", l.x0 - 6)
    .attr("y", (d) => d.h / 2)
    .attr("dominant-baseline", "central")
    .attr("font-size", l.labelPx)
    .attr("text-anchor", "end")
    .text((d) => d.label);
  lanes.select("title").text((d) => `${d.label}: ${d.count} events — ${d.title}`);

  // One <path> per lane holding all of its bars: a frame sets one attribute per lane instead of
  // four per bar (thousands of setAttribute calls per frame were the cost while streaming).
  const byLane = d3.rollups(l.bars, (bs) => bs.map((b) => `M${b.x},${b.y}h${b.w}v${b.h}h${-b.w}z`).join(""), (b) => b.lane);
  layer(root, "bars")
    .selectChildren<SVGPathElement, [string, string]>("path")
    .data(byLane, (d) => d[0])
    .join("path")
    .attr("class", (d) => `bar lane-${d[0].replace(/\./g, "-").replace(/-$/, "")}`)
    .attr("d", (d) => d[1]);

  const ticks = layer(root, "axis")
    .selectChildren<SVGGElement, TickMark>("g.tick")
    .data(l.ticks, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "tick");
      g.append("line");
      g.append("text").attr("text-anchor", "middle");
      return g;
    })
    .attr("transform", (d) => `translate(${d.x},0)`);
  ticks.select("line").attr("y1", l.y0).attr("y2", l.y1 + 3);
  ticks
    .select("text")
    .attr("y", l.y1 + 14)
    .text((d) => d.label);
}

export function renderPlayhead(svg: SVGSVGElement, l: TimelineLayout, p: PlayheadLayout): void {
  const overlay: AnySelection<SVGGElement, null> = layer(d3.select<SVGSVGElement, unknown>(svg), "overlay");
  overlay
    .selectChildren<SVGLineElement, { key: string; x: number }>("line")
    .data([...(p.selected ? [{ key: "selected", x: p.selected.x }] : []), ...(p.cursor ? [{ key: "cursor", x: p.cursor.x }] : [])], (d) => d.key)
    .join("line")
    .attr("class", (d) => d.key)
    .attr("x1", (d) => d.x)
    .attr("x2", (d) => d.x)
    .attr("y1", l.y0 - 4)
    .attr("y2", l.y1 + 3);
}
