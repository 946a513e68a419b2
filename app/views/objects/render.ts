/**
 * Object-graph render: one keyed join per mark (header, edges, objects). Objects are keyed by
 * "ictx:id", edges by their two ends and kind, so an object keeps its node while it lives.
 */
import { layer, sizeSvg, textLines } from "../common/svg.ts";
import type { EdgeMark, NodeMark, ObjectsLayout } from "./layout.ts";

export function renderObjects(svg: SVGSVGElement, l: ObjectsLayout): void {
  const root = sizeSvg(svg, l.width, l.height, l.summary).attr("class", "objects-svg");

  textLines(layer(root, "header"), () => l.header);

  const edges = layer(root, "edges")
    .selectChildren<SVGGElement, EdgeMark>("g.edge")
    .data(l.edges, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("path");
      g.append("text");
      return g;
    })
    .attr("class", (d) => `edge kind-${d.kind}${d.blocking ? " blocking" : ""}`);
  edges.select("path").attr("d", (d) => d.d);
  edges
    .select("text")
    .attr("x", (d) => d.label.x)
    .attr("y", (d) => d.label.y)
    .attr("text-anchor", "middle")
    .text((d) => d.label.text);

  const nodes = layer(root, "nodes")
    .selectChildren<SVGGElement, NodeMark>("g.node")
    .data(l.nodes, (d) => d.key)
    .join((enter) => {
      const g = enter.append("g");
      g.append("rect").attr("rx", 5);
      return g;
    })
    .attr("class", (d) => `node type-${d.type}${d.busy ? " busy" : ""}${d.role ? ` role-${d.role}` : ""}${d.recent ? " recent" : ""}`)
    .attr("transform", (d) => `translate(${d.x},${d.y})`)
    .attr("data-key", (d) => d.key)
    .attr("data-type", (d) => d.type)
    .attr("data-id", (d) => d.id)
    .attr("data-busy", (d) => String(d.busy))
    .attr("data-holders", (d) => d.holders)
    .attr("data-role", (d) => d.role ?? "");
  nodes.select("rect").attr("width", (d) => d.w).attr("height", (d) => d.h);
  textLines(nodes, (d) => d.lines);
}
