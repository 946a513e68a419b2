/**
 * Log render: one keyed join of row elements (keyed by event seq) into the HTML container it is
 * given. HTML rather than SVG: the rows are text to read, select and copy, and ARIA listbox
 * options. Rows are absolutely positioned inside a container as tall as the whole log.
 */
import * as d3 from "d3";
import type { LogLayout, RowMark } from "./layout.ts";

export function renderLog(container: HTMLElement, l: LogLayout): void {
  const root = d3.select(container).style("height", `${l.height}px`);
  const rows = root
    .selectChildren<HTMLDivElement, RowMark>("div.row")
    .data(l.rows, (d) => d.key)
    .join((enter) => {
      const row = enter.append("div").attr("role", "option");
      row.append("span").attr("class", "gutter").attr("aria-hidden", "true");
      row.append("span").attr("class", "badge");
      row.append("span").attr("class", "text");
      return row;
    })
    .attr("class", (d) =>
      ["row", d.severity ? `sev-${d.severity}` : "", d.selected ? "selected" : "", d.current ? "current" : "", d.future ? "future" : "", d.active ? "active" : ""].filter(Boolean).join(" "),
    )
    .attr("id", (d) => d.id)
    .attr("aria-selected", (d) => String(d.selected))
    .attr("data-seq", (d) => d.seq)
    .attr("data-line", (d) => d.line ?? null)
    .attr("data-row", (d) => d.row)
    .style("transform", (d) => `translateY(${d.y}px)`);
  // the cursor's row is marked by a glyph, not only by its background
  rows.select(".gutter").text((d) => (d.current ? "▶" : ""));
  rows.select(".badge").text((d) => (d.icon ? `${d.icon} ${d.badge}` : ""));
  rows.select(".text").text((d) => d.text);
}
