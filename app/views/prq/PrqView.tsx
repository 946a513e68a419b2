/**
 * Page requests: the sequence chart of ATS / PRI / page request queue / iopf / fault-fd messages,
 * the page request queue ring and the device-TLBs at the cursor. Root attributes for tests and tools:
 *   data-messages        messages up to the cursor (every arrow of the chart, also those scrolled off)
 *   data-groups          page request groups begun up to the cursor
 *   data-ring-head       PQH as a slot index
 *   data-ring-tail       PQT as a slot index
 *   data-ring-size       descriptors in the ring
 *   data-ring-pending    descriptors between head and tail
 *   data-overflow        "true" while PRS.PRO is set (requests are dropped), else "false"
 *   data-devtlb-entries  valid device-TLB entries, all devices
 *   data-selected-group  the selected group ("G1" …) or ""
 *   data-kinds           the kinds of the latest (at most 500) messages up to the cursor in order,
 *                        comma-separated ("ats.request,ats.completion,pri.request,prq.request,…")
 * Messages carry data-seq and data-group (0-based instance, -1: none); groups data-group; ring
 * slots data-slot; device-TLB entries data-rid and data-way. Messages and groups are focusable:
 * Enter, Space or a click selects their group (again: clears it); Escape clears.
 */
import { useRef } from "react";
import { effectiveCursor } from "../../store/index.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutPrq } from "./layout.ts";
import { createPrqModel, pendingSlots } from "./model.ts";
import { renderPrq } from "./render.ts";
import "../common/common.css";
import "./prq.css";

// module level: the index and checkpoints survive tab switches
const model = createPrqModel();
/** data-kinds lists at most this many messages: an attribute is rebuilt every frame */
const KINDS_MAX = 500;

export function PrqView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const selected = useRef<number | null>(null);
  const events = useRef<unknown>(null);
  const redraw = useViewFrame(rootRef, (s, size) => {
    // a new run forgets the selection
    if (events.current !== s.events) selected.current = null;
    events.current = s.events;
    const at = model.at(s.events, effectiveCursor(s));
    if (selected.current !== null && selected.current >= at.groups) selected.current = null;
    const layout = layoutPrq(at, selected.current, size);
    renderPrq(svgRef.current!, layout, {
      onSelect: (g) => {
        selected.current = g < 0 || g === selected.current ? null : g;
        redraw();
      },
    });
    const d = rootRef.current!.dataset;
    const st = at.state;
    Object.assign(d, {
      messages: String(at.count), groups: String(at.groups),
      ringHead: String(st.head), ringTail: String(st.tail), ringSize: String(st.ringSize), ringPending: String(pendingSlots(st)),
      overflow: String(st.overflow), devtlbEntries: String(st.devtlb.size),
      selectedGroup: selected.current === null ? "" : `G${selected.current + 1}`,
      kinds: at.messages.messages.slice(Math.max(0, at.count - KINDS_MAX), at.count).map((m) => m.k).join(","),
    });
  });
  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === "Escape" && selected.current !== null) {
      selected.current = null;
      redraw();
    }
  };
  return (
    <div ref={rootRef} className="view prq-view" role="region" aria-label="Page requests" data-view="prq" onKeyDown={onKey}>
      <svg ref={svgRef} />
    </div>
  );
}
