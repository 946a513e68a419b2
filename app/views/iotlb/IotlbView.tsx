/**
 * The IOTLB and paging-structure caches at the cursor. Root attributes for tests and tools:
 *   data-hits, data-misses, data-fills, data-evictions, data-invalidations
 *                    IOTLB event counts up to the cursor
 *   data-entries     valid IOTLB entries at the cursor
 *   data-last        latest IOTLB event at or before the cursor: "hit" | "miss" | "fill" | "evict" | "inv" | ""
 *   data-last-set, data-last-way   where it happened (way "" for a miss)
 *   data-last-seq    its seq; data-current="true" when it is the event at the cursor
 *   data-pwc-last    latest paging-structure-cache event, same words
 *   data-fspwc-last  latest first-stage (nested) PWC event, same words
 *   data-fspwc-entries  valid first-stage PWC entries at the cursor
 *   data-nested-entries IOTLB entries of nested (PGTT 011) domains at the cursor
 *   data-stale       vtd.stale.hit events up to the cursor (the stale-translation detector)
 *   data-stale-entry "cache:set/way" of the entry marked stale at the cursor ("" when none is left)
 * Entries carry data-set / data-way (for a PWC entry, data-set is its level), data-cache
 * ("iotlb" | "pwc" | "fspwc"), data-nested="true" for nested IOTLB entries and data-stale="true"
 * on an entry that served a stale translation.
 */
import { useRef } from "react";
import { effectiveCursor, type AppState } from "../../store/index.ts";
import { indexAtOrBefore } from "../common/events.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutIotlb } from "./layout.ts";
import { createIotlbModel, geometryOf, staleKey } from "./model.ts";
import { renderIotlb } from "./render.ts";
import "../common/common.css";
import "./iotlb.css";

const SPARK_WINDOWS = 40;

// module level: the replay's checkpoints survive tab switches; a new geometry starts afresh
let model = createIotlbModel();
function modelFor(machine: AppState["machine"]) {
  const g = geometryOf(machine.knobs);
  const m = model.geometry;
  if (g.sets !== m.sets || g.ways !== m.ways || g.pwcEntries !== m.pwcEntries || g.fsPwcEntries !== m.fsPwcEntries) model = createIotlbModel(g);
  return model;
}

export function IotlbView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  useViewFrame(rootRef, (s, size) => {
    const m = modelFor(s.machine);
    const seq = effectiveCursor(s);
    const idx = indexAtOrBefore(s.events, seq);
    const state = m.atIndex(s.events, idx);
    const layout = layoutIotlb(state, m.rates(s.events, idx, SPARK_WINDOWS), seq, size);
    renderIotlb(svgRef.current!, layout);
    const d = rootRef.current!.dataset;
    const c = state.counts;
    Object.assign(d, {
      hits: String(c.hit), misses: String(c.miss), fills: String(c.fill), evictions: String(c.evict), invalidations: String(c.inv),
      entries: String(state.iotlb.size),
      last: state.last?.kind ?? "", lastSet: state.last ? String(state.last.set) : "", lastWay: state.last?.way?.toString() ?? "",
      lastSeq: state.last ? String(state.last.seq) : "", current: String(!!state.last && state.last.seq === seq),
      pwcLast: state.lastPwc?.kind ?? "",
      fspwcLast: state.lastFspwc?.kind ?? "",
      fspwcEntries: String(state.fspwc.size),
      nestedEntries: String([...state.iotlb.values()].filter((e) => e.nested).length),
      stale: String(state.staleCount),
      staleEntry: state.lastStale && state.stale.get(staleKey(state.lastStale.cache, state.lastStale.set, state.lastStale.way)) === state.lastStale
        ? staleKey(state.lastStale.cache, state.lastStale.set, state.lastStale.way) : "",
    });
  });
  return (
    <div ref={rootRef} className="view iotlb-view" role="region" aria-label="IOTLB and paging-structure caches" data-view="iotlb">
      <svg ref={svgRef} />
    </div>
  );
}
