/**
 * Each IOAS's address space at the cursor (engine/kernel/io-pagetable.ts): the areas its maps
 * made (`iommufd.ioas.map/unmap`), the ranges reserved in it and by whom (`iommufd.ioas.reserve/
 * unreserve`: a device's MSI window, a domain's aperture, …), and the process's pinned pages
 * (`iommufd.pages.pin/unpin` report locked_vm after each change).
 *
 * Addresses are bigints: an IOVA reaches 2^64 - 1 (the aperture reservation ends there). Ranges
 * are inclusive [start, last], the kernel's interval-tree convention. An unmap is applied as a
 * range subtraction, so an area cut by the VFIO type1 compatibility path stays exact.
 */
import { CallContext, objKey } from "../common/calls.ts";
import { big, type TraceEvent } from "../common/events.ts";
import { Replay } from "../common/replay.ts";

export interface Range {
  start: bigint;
  /** inclusive */
  last: bigint;
}

export interface Area extends Range {
  /** IOMMU_READ = 1, IOMMU_WRITE = 2 (the driver's prot bits) */
  prot: number;
  /** seq of the map that made it */
  seq: number;
}

export interface Reservation extends Range {
  owner: string;
  seq: number;
}

export interface IoasSpace {
  /** "ictx:id" */
  key: string;
  ictx: number;
  id: number;
  /** sorted by start, disjoint */
  areas: Area[];
  /** sorted by start */
  reserved: Reservation[];
}

export interface AddrSpaceState {
  spaces: Map<string, IoasSpace>;
  /** pages the process has pinned (locked_vm), after the latest pin or unpin */
  lockedVm: number;
  calls: CallContext;
}

function initState(): AddrSpaceState {
  return { spaces: new Map(), lockedVm: 0, calls: new CallContext() };
}

function cloneState(s: AddrSpaceState): AddrSpaceState {
  // areas and reservations are never mutated in place: copying the arrays is enough
  const spaces = new Map([...s.spaces].map(([k, v]) => [k, { ...v, areas: [...v.areas], reserved: [...v.reserved] }]));
  return { spaces, lockedVm: s.lockedVm, calls: s.calls.clone() };
}

function insertSorted<T extends Range>(list: T[], r: T): void {
  let i = list.length;
  while (i > 0 && list[i - 1].start > r.start) i--;
  list.splice(i, 0, r);
}

/** `areas` minus [start, last]: overlapped areas are removed or cut. */
export function subtract(areas: readonly Area[], start: bigint, last: bigint): Area[] {
  const out: Area[] = [];
  for (const a of areas) {
    if (a.last < start || a.start > last) {
      out.push(a);
      continue;
    }
    if (a.start < start) out.push({ ...a, last: start - 1n });
    if (a.last > last) out.push({ ...a, start: last + 1n });
  }
  return out;
}

function step(s: AddrSpaceState, e: TraceEvent): void {
  s.calls.observe(e);
  const space = (id: number) => s.spaces.get(objKey(s.calls.ctxOf(e), id));
  switch (e.k) {
    case "iommufd.obj.alloc":
      if (e.type === "IOAS") s.spaces.set(objKey(e.ictx, e.id), { key: objKey(e.ictx, e.id), ictx: e.ictx, id: e.id, areas: [], reserved: [] });
      break;
    case "iommufd.obj.destroy":
      s.spaces.delete(objKey(e.ictx, e.id));
      break;
    case "iommufd.ioas.map": {
      const sp = space(e.ioas_id);
      const start = big(e.iova);
      if (sp) insertSorted(sp.areas, { start, last: start + big(e.length) - 1n, prot: e.prot, seq: e.seq });
      break;
    }
    case "iommufd.ioas.unmap": {
      const sp = space(e.ioas_id);
      const start = big(e.iova);
      if (sp) sp.areas = subtract(sp.areas, start, start + big(e.length) - 1n);
      break;
    }
    case "iommufd.ioas.reserve": {
      const sp = space(e.ioas_id);
      if (sp) insertSorted(sp.reserved, { start: big(e.start), last: big(e.last), owner: e.owner, seq: e.seq });
      break;
    }
    case "iommufd.ioas.unreserve": {
      const sp = space(e.ioas_id);
      if (!sp) break;
      const start = big(e.start);
      const last = big(e.last);
      const i = sp.reserved.findIndex((r) => r.start === start && r.last === last && r.owner === e.owner);
      if (i >= 0) sp.reserved = sp.reserved.filter((_, k) => k !== i);
      break;
    }
    case "iommufd.pages.pin":
    case "iommufd.pages.unpin":
      s.lockedVm = e.locked_vm;
      break;
  }
}

/** The address-space view's model over one trace. */
export function createAddrSpaceModel() {
  const replay = new Replay<AddrSpaceState>({ init: initState, clone: cloneState, step });
  return {
    /** The address spaces after the last event with seq ≤ `seq`. Owned by the model: read, don't keep. */
    at: (events: readonly TraceEvent[], seq: number): AddrSpaceState => replay.at(events, seq),
  };
}
