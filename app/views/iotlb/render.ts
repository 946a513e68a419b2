/**
 * IOTLB render: one keyed join per mark. Slots are keyed by their hardware position; entries by
 * their tag (an entry refilled elsewhere is a new node); badges by action and event seq, so each
 * cache event flashes once as its badge enters (the flash is a CSS animation, off under
 * prefers-reduced-motion).
 */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { BadgeMark, EntryMark, IotlbLayout, SlotMark } from "./layout.ts";

export function renderIotlb(svg: SVGSVGElement, l: IotlbLayout): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "iotlb-svg");

  textLines(layer(root, "labels"), () => l.text);

  const spark = layer(root, "spark");
  spark
    .selectChildren<SVGRectElement, typeof l.spark>("rect")
    .data([l.spark])
    .join("rect")
    .attr("x", (d) => d.x)
    .attr("y", (d) => d.y)
    .attr("width", (d) => d.w)
    .attr("height", (d) => d.h);
  spark
    .selectChildren<SVGPathElement, typeof l.spark>("path")
    .data([l.spark])
    .join("path")
    .attr("d", (d) => d.d)
    .attr("aria-label", (d) => d.label);

  layer(root, "slots")
    .selectChildren<SVGRectElement, SlotMark>("rect")
    .data(l.slots, (d) => d.key)
    .join("rect")
    .attr("class", "slot")
    .attr("x", (d) => d.x)
    .attr("y", (d) => d.y)
    .attr("width", (d) => d.w)
    .attr("height", (d) => d.h)
    .attr("rx", 3);

  const entries = layer(root, "entries")
    .selectChildren<SVGGElement, EntryMark>("g.entry")
    .data(l.entries, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 3);
      g.append("title");
      return g;
    })
    .attr("class", (d) => `entry ${d.cache}${d.latest ? " latest" : ""}${d.ghost ? " ghost" : ""}${d.nested ? " nested" : ""}${d.stale ? " stale" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-set", (d) => d.set)
    .attr("data-way", (d) => d.way)
    .attr("data-cache", (d) => d.cache)
    .attr("data-nested", (d) => (d.nested ? "true" : null))
    .attr("data-stale", (d) => (d.stale ? "true" : null));
  entries.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  entries.select("title").text((d) => d.title);
  textLines(entries, (d) => d.lines);

  const badges = layer(root, "badges")
    .selectChildren<SVGGElement, BadgeMark>("g.badge")
    .data(l.badges, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("class", "outline").attr("rx", 4);
      g.append("text").attr("text-anchor", "end");
      return g;
    })
    .attr("class", (d) => `badge act-${d.kind}${d.current ? " current" : ""}`)
    .attr("data-kind", (d) => d.kind);
  badges
    .select("rect")
    .attr("x", (d) => d.outline.x - 2)
    .attr("y", (d) => d.outline.y - 2)
    .attr("width", (d) => d.outline.w + 4)
    .attr("height", (d) => d.outline.h + 4);
  badges
    .select("text")
    .attr("x", (d) => d.x)
    .attr("y", (d) => d.y)
    .text((d) => d.text);
}
