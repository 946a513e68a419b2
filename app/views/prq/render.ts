/**
 * Page-request render: one keyed join per mark. Ring slots are keyed by slot index, device-TLB
 * entries by their tag, groups by instance, messages by event seq (so a message keeps its node,
 * and focus, while the chart scrolls with the cursor). Groups and messages are focusable buttons:
 * click, Enter or Space selects the group (again: clears it); the component owns the selection.
 */
import * as d3 from "d3";
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { DevtlbMark, GroupMark, LaneMark, MessageMark, PrqLayout, SlotMark } from "./layout.ts";

export interface PrqHandlers {
  /** a group (or the group of a message) was picked; -1: a message without a group */
  onSelect(group: number): void;
}

function activate<D>(sel: d3.Selection<SVGGElement, D, d3.BaseType, unknown>, group: (d: D) => number, h: PrqHandlers | null): void {
  if (!h) return;
  sel
    .on("click", (_: MouseEvent, d: D) => h.onSelect(group(d)))
    .on("keydown", (ev: KeyboardEvent, d: D) => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault();
      h.onSelect(group(d));
    });
}

export function renderPrq(svg: SVGSVGElement, l: PrqLayout, handlers: PrqHandlers | null = null): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "prq-svg");
  textLines(layer(root, "labels"), () => l.text);

  const strip = layer(root, "strip");
  strip.selectChildren<SVGPathElement, string>("path.outline").data([l.ringStrip.outline]).join("path").attr("class", "outline").attr("d", (d) => d);
  strip.selectChildren<SVGPathElement, string>("path.pending").data([l.ringStrip.pending]).join("path").attr("class", "pending").attr("d", (d) => d);

  const slots = layer(root, "slots")
    .selectChildren<SVGGElement, SlotMark>("g.slot")
    .data(l.slots, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 2);
      g.append("text").attr("text-anchor", "middle");
      g.append("title");
      return g;
    })
    .attr("class", (d) => `slot${d.pending ? " pending" : ""}${d.head ? " head" : ""}${d.tail ? " tail" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-slot", (d) => d.slot);
  slots.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  slots.select("text").attr("x", (d) => d.w / 2).attr("y", (d) => d.h / 2 + 4).text((d) => d.text);
  slots.select("title").text((d) => d.title);

  const dev = layer(root, "devtlb")
    .selectChildren<SVGGElement, DevtlbMark>("g.devtlb")
    .data(l.devtlb, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 3);
      g.append("title");
      return g;
    })
    .attr("class", (d) => `devtlb${d.latest ? " latest" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-rid", (d) => d.rid)
    .attr("data-way", (d) => d.way);
  dev.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  dev.select("title").text((d) => d.title);
  textLines(dev, (d) => d.lines);

  const groups = layer(root, "groups")
    .selectChildren<SVGGElement, GroupMark>("g.group")
    .data(l.groups, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("tabindex", 0).attr("role", "button");
      g.append("rect").attr("rx", 3);
      g.append("text").attr("x", 6).attr("y", 14);
      g.append("title");
      return g;
    })
    .attr("class", (d) => `group stage-${d.stage}${d.selected ? " selected" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-group", (d) => d.id)
    .attr("aria-pressed", (d) => String(d.selected))
    .attr("aria-label", (d) => d.title);
  groups.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  groups.select("text").text((d) => d.text);
  groups.select("title").text((d) => d.title);
  activate(groups, (d) => d.id, handlers);

  const lanes = layer(root, "lanes")
    .selectChildren<SVGGElement, LaneMark>("g.lane")
    .data(l.lanes, (d) => d.key)
    .join("g")
    .attr("class", "lane")
    .attr("transform", (d) => `translate(${d.x},0)`)
    .attr("data-lane", (d) => d.key);
  textLines(lanes, (d) => d.lines);
  layer(root, "lifelines").selectChildren<SVGPathElement, string>("path").data([l.lifelines]).join("path").attr("d", (d) => d);

  const msgs = layer(root, "messages")
    .selectChildren<SVGGElement, MessageMark>("g.msg")
    .data(l.messages, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g").attr("tabindex", 0).attr("role", "button");
      g.append("path");
      g.append("title");
      return g;
    })
    .attr("class", (d) => `msg${d.self ? " self" : ""}${d.bad ? " bad" : ""}${d.selected ? " selected" : ""}${d.current ? " current" : ""}${d.group >= 0 ? " grouped" : ""}`)
    .attr("data-seq", (d) => d.seq)
    .attr("data-group", (d) => d.group)
    .attr("aria-label", (d) => d.title);
  msgs.select("path").attr("d", (d) => d.d);
  msgs.select("title").text((d) => d.title);
  textLines(msgs, (d) => (d.time ? [d.label, d.time] : [d.label]));
  activate(msgs, (d) => d.group, handlers);
}
