/**
 * The VT-d fault recording registers at the cursor: unrecoverable DMA faults with their reasons.
 * Root attributes for tests and tools:
 *   data-records   faults recorded up to the cursor (vtd.fault.record)
 *   data-pending   records with F = 1 at the cursor (recorded, not yet cleared by the driver)
 *   data-dropped   faults dropped up to the cursor (PFO, collapsing, ring full)
 *   data-pfo       "true" while FSTS.PFO is set
 *   data-reasons   reason codes of the records holding a fault at the cursor, by index ("0:0x85,1:0x71")
 * Each record row carries data-index and data-status ("pending" | "cleared" | "empty").
 */
import { useRef } from "react";
import { effectiveCursor, type AppState } from "../../store/index.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutFaults } from "./layout.ts";
import { createFaultsModel, DEFAULT_RECORDS, pendingCount } from "./model.ts";
import { renderFaults } from "./render.ts";
import "../common/common.css";
import "./faults.css";

// module level: checkpoints survive tab switches; a machine with another record count starts afresh
let model = createFaultsModel();
function modelFor(machine: AppState["machine"]) {
  const n = machine.knobs.faultRecords ?? DEFAULT_RECORDS;
  if (n !== model.records) model = createFaultsModel(n);
  return model;
}

export function FaultsView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  useViewFrame(rootRef, (s, size) => {
    const { state, seq } = modelFor(s.machine).at(s.events, effectiveCursor(s));
    renderFaults(svgRef.current!, layoutFaults(state, seq, size));
    Object.assign(rootRef.current!.dataset, {
      records: String(state.recorded), pending: String(pendingCount(state)), dropped: String(state.dropped), pfo: String(state.pfo),
      reasons: [...state.records.values()].sort((a, b) => a.index - b.index).map((r) => `${r.index}:0x${r.reason.toString(16)}`).join(","),
    });
  });
  return (
    <div ref={rootRef} className="view faults-view" role="region" aria-label="Fault recording registers" data-view="faults">
      <svg ref={svgRef} />
    </div>
  );
}
