/**
 * Each IOAS's address space at the cursor. Root attributes for tests and tools:
 *   data-ioas       "1,2": the IOAS IDs shown
 *   data-areas      "1:[0x100000,0x103fff];…": every area, inclusive, per IOAS
 *   data-reserved   "1:[0xfee00000,0xfeefffff] device 2 MSI region;…": every reservation and its owner
 *   data-locked-vm  pinned pages (locked_vm)
 */
import { useRef } from "react";
import { effectiveCursor } from "../../store/index.ts";
import { hex } from "../common/events.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutAddrSpace } from "./layout.ts";
import { createAddrSpaceModel } from "./model.ts";
import { renderAddrSpace } from "./render.ts";
import "../common/common.css";
import "./addrspace.css";

const model = createAddrSpaceModel();

export function AddrSpaceView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  useViewFrame(rootRef, (s, size) => {
    const state = model.at(s.events, effectiveCursor(s));
    renderAddrSpace(svgRef.current!, layoutAddrSpace(state, size));
    const spaces = [...state.spaces.values()];
    const d = rootRef.current!.dataset;
    d.ioas = spaces.map((sp) => sp.id).join(",");
    d.areas = spaces.flatMap((sp) => sp.areas.map((a) => `${sp.id}:[${hex(a.start)},${hex(a.last)}]`)).join(";");
    d.reserved = spaces.flatMap((sp) => sp.reserved.map((r) => `${sp.id}:[${hex(r.start)},${hex(r.last)}] ${r.owner}`)).join(";");
    d.lockedVm = String(state.lockedVm);
  });
  return (
    <div ref={rootRef} className="view addrspace-view" role="region" aria-label="IOAS address spaces" data-view="addrspace">
      <svg ref={svgRef} />
    </div>
  );
}
