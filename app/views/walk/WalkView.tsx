/**
 * The page-table walk of the DMA at the cursor. Root attributes for tests and tools:
 *   data-level-index   "4:0,3:1,2:1,1:1": level:index of every level the translation went through,
 *                      PML4 first (read from memory, or cached in the PWC or the IOTLB)
 *   data-levels-read   "3,2": the levels whose entry was read from memory this time
 *   data-level-status  "4:read,3:read,2:leaf,1:large": each level's LevelStatus
 *   data-iotlb         "hit" | "miss" | "" (no lookup yet)
 *   data-outcome       "page" | "fault" | "interrupt" | "pending" | "" (no DMA)
 *   data-fault-reason  "0x79" when the outcome is a fault
 *   data-iova          the IOVA being translated (hex)
 *   data-request-seq   seq of the dma.request shown
 */
import { useRef } from "react";
import { effectiveCursor } from "../../store/index.ts";
import { hex } from "../common/events.ts";
import { motionAllowed } from "../common/motion.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutWalk } from "./layout.ts";
import { createWalkModel, levelIndexAttr } from "./model.ts";
import { renderWalk } from "./render.ts";
import "../common/common.css";
import "./walk.css";

// module level: the index survives the view being unmounted by a tab switch
const model = createWalkModel();

export function WalkView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const shown = useRef("");
  useViewFrame(rootRef, (s, size) => {
    const state = model.at(s.events, effectiveCursor(s));
    const layout = layoutWalk(state, size);
    // levels appear one by one only for a new walk at the live end, not when scrubbing
    const animate = s.cursor === null && layout.key !== shown.current && motionAllowed();
    shown.current = layout.key;
    renderWalk(svgRef.current!, layout, { animate });
    const d = rootRef.current!.dataset;
    d.levelIndex = levelIndexAttr(state);
    d.levelsRead = (state.translation?.levels ?? []).map((l) => l.level).join(",");
    d.levelStatus = state.levels.map((r) => `${r.level}:${r.status}`).join(",");
    d.iotlb = state.translation?.iotlb ? (state.translation.iotlb.hit ? "hit" : "miss") : "";
    d.outcome = state.outcome?.kind ?? "";
    d.faultReason = state.outcome?.kind === "fault" ? `0x${state.outcome.reason.toString(16)}` : "";
    d.iova = state.iova === null ? "" : hex(state.iova);
    d.requestSeq = state.request ? String(state.request.seq) : "";
  });
  return (
    <div ref={rootRef} className="view walk-view" role="region" aria-label="Page-table walk" data-view="walk">
      <svg ref={svgRef} />
    </div>
  );
}
