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
 *   data-nested        "true" when the translation is nested (PGTT 011: the 2D grid is drawn), else "false"
 *   data-reads         memory reads (table entries) of the walk: 24 for a cold 4 × 4 nested walk
 *   data-grid          nested walks: every read in order, "s2:fsLevel:level" or "s1:level"
 *                      ("s2:4:4,s2:4:3,s2:4:2,s2:4:1,s1:4,s2:3:4,…,s2:0:1")
 *   data-skipped       nested walks: cells skipped because a cache had the answer, "row:col:cache"
 * For a nested walk, data-level-index, data-levels-read and data-level-status describe the guest's
 * (first-stage) levels. Grid cells carry data-row (guest level, 0 = final GPA), data-col (host
 * level, 0 = the guest entry), data-status and data-order (read number, 0 = not read).
 */
import { useRef } from "react";
import { effectiveCursor } from "../../store/index.ts";
import { hex } from "../common/events.ts";
import { motionAllowed } from "../common/motion.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutWalk } from "./layout.ts";
import { createWalkModel, levelIndexAttr } from "./model.ts";
import { CACHE_SKIPS, gridAttr } from "./nested.ts";
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
    const n = state.nested;
    d.levelsRead = (state.translation?.levels ?? []).filter((l) => !n || l.stage === "s1").map((l) => l.level).join(",");
    d.levelStatus = state.levels.map((r) => `${r.level}:${r.status}`).join(",");
    d.iotlb = state.translation?.iotlb ? (state.translation.iotlb.hit ? "hit" : "miss") : "";
    d.outcome = state.outcome?.kind ?? "";
    d.faultReason = state.outcome?.kind === "fault" ? `0x${state.outcome.reason.toString(16)}` : "";
    d.iova = state.iova === null ? "" : hex(state.iova);
    d.requestSeq = state.request ? String(state.request.seq) : "";
    d.nested = String(!!n);
    d.reads = state.translation ? String(state.translation.levels.length) : "";
    d.grid = gridAttr(n);
    d.skipped = n ? n.rows.flatMap((r) => r.cells.filter((c) => CACHE_SKIPS.has(c.status)).map((c) => `${c.row}:${c.col}:${c.status}`)).join(",") : "";
  });
  return (
    <div ref={rootRef} className="view walk-view" role="region" aria-label="Page-table walk" data-view="walk">
      <svg ref={svgRef} />
    </div>
  );
}
