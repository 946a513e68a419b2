/**
 * The iommufd object graph at the cursor. Root attributes for tests and tools:
 *   data-objects   "IOAS 1,DEVICE 2,HWPT_PAGING 3": every object, by ID
 *   data-edges     "DEVICE 2>HWPT_PAGING 3:attach,HWPT_PAGING 3>IOAS 1:ioas": every reference
 *   data-busy      objects that IOMMU_DESTROY would refuse (EBUSY), "type id" comma-separated
 *   data-destroy-target, data-destroy-holders
 *                  when the event at the cursor is an IOMMU_DESTROY refused with EBUSY: the
 *                  object and what holds it ("type id" each); empty otherwise
 * Each object node carries data-type, data-id, data-busy, data-holders (the holders in words)
 * and data-role ("target" | "holder" | "").
 */
import { useRef } from "react";
import { effectiveCursor } from "../../store/index.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutObjects } from "./layout.ts";
import { createObjectsModel, edgesOf, failedDestroy, touchedBy } from "./model.ts";
import { renderObjects } from "./render.ts";
import "../common/common.css";
import "./objects.css";

const model = createObjectsModel();

export function ObjectsView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  useViewFrame(rootRef, (s, size) => {
    const { state, event } = model.at(s.events, effectiveCursor(s));
    const busy = failedDestroy(event, state);
    const layout = layoutObjects(state, busy, touchedBy(event, state), size);
    renderObjects(svgRef.current!, layout);
    const name = (key: string) => {
      const n = state.nodes.get(key);
      return n ? `${n.type} ${n.id}` : key;
    };
    const d = rootRef.current!.dataset;
    d.objects = layout.nodes.map((n) => `${n.type} ${n.id}`).join(",");
    d.edges = edgesOf(state).map((e) => `${name(e.from)}>${name(e.to)}:${e.kind}`).join(",");
    d.busy = layout.nodes.filter((n) => n.busy).map((n) => `${n.type} ${n.id}`).join(",");
    d.destroyTarget = busy ? name(busy.target) : "";
    d.destroyHolders = busy ? busy.holders.map(name).join(",") : "";
  });
  return (
    <div ref={rootRef} className="view objects-view" role="region" aria-label="iommufd objects" data-view="objects">
      <svg ref={svgRef} />
    </div>
  );
}
