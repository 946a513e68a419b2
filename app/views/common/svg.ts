/**
 * d3 helpers shared by the render steps. Every render is idempotent: it finds or creates its
 * layers under the element it is given and runs one keyed join per mark inside them, so calling
 * it again with a new layout updates the same nodes (object constancy keyed by engine identity).
 */
import * as d3 from "d3";

export type AnySelection<E extends d3.BaseType, D = unknown> = d3.Selection<E, D, d3.BaseType, unknown>;

/** The `<g class="name">` child of `parent`, created on first use. */
export function layer<E extends d3.BaseType, D>(parent: AnySelection<E, D>, name: string): AnySelection<SVGGElement, null> {
  return parent
    .selectChildren<SVGGElement, null>(`g.${name}`)
    .data([null])
    .join((enter) => enter.append("g").attr("class", name)) as unknown as AnySelection<SVGGElement, null>;
}

/** One line of text inside a mark, positioned by the layout relative to the mark's group. */
export interface TextLine {
  key: string;
  x: number;
  y: number;
  text: string;
  /** extra CSS class (e.g. "dim", "err") */
  cls?: string;
  anchor?: "start" | "middle" | "end";
}

/** The mark's text lines, one keyed `<text>` each. */
export function textLines<D>(g: AnySelection<SVGGElement, D>, lines: (d: D) => TextLine[]): void {
  g.selectChildren<SVGTextElement, TextLine>("text.line")
    .data(lines, (l) => l.key)
    .join("text")
    .attr("class", (l) => (l.cls ? `line ${l.cls}` : "line"))
    .attr("x", (l) => l.x)
    .attr("y", (l) => l.y)
    .attr("text-anchor", (l) => l.anchor ?? null)
    .text((l) => l.text);
}

/** Size the root `<svg>` (and its viewBox); with a label, make it an image with that accessible name. */
export function sizeSvg(svg: SVGSVGElement, width: number, height: number, label: string | null): AnySelection<SVGSVGElement, unknown> {
  const root = d3
    .select<SVGSVGElement, unknown>(svg)
    .attr("width", width)
    .attr("height", height)
    .attr("viewBox", `0 0 ${width} ${height}`) as unknown as AnySelection<SVGSVGElement, unknown>;
  if (label !== null) root.attr("role", "img").attr("aria-label", label);
  return root;
}

/** Round to a tenth of a pixel: positions in snapshots stay stable across platforms. */
export function px(v: number): number {
  return Math.round(v * 10) / 10;
}
