/** Faults render: one keyed join per mark; records are keyed by register index. */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { FaultsLayout, RecordMark } from "./layout.ts";

export function renderFaults(svg: SVGSVGElement, l: FaultsLayout): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "faults-svg");
  textLines(layer(root, "labels"), () => l.text);
  const rows = layer(root, "records")
    .selectChildren<SVGGElement, RecordMark>("g.record")
    .data(l.records, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 3);
      g.append("title");
      return g;
    })
    .attr("class", (d) => `record status-${d.status}${d.latest ? " latest" : ""}${d.current ? " current" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-index", (d) => d.index)
    .attr("data-status", (d) => d.status);
  rows.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  rows.select("title").text((d) => d.title);
  textLines(rows, (d) => d.lines);
}
