/**
 * The iommufd object graph at the cursor (engine/kernel/private.ts): which objects exist, and who
 * holds a reference on whom. IOMMU_DESTROY succeeds only when nothing but the ID table holds an
 * object (iommufd_object_remove), so the holders computed here are exactly what an EBUSY names:
 *   IOAS         each HWPT_PAGING made from it
 *   HWPT_*       each attached device (RID or PASID)
 *   DEVICE       the VFIO device file, until it is closed (which unbinds and destroys it)
 *   FAULT        its open fd, and each HWPT allocated with it
 *
 * Sources: `iommufd.obj.alloc/destroy`, `iommufd.device.attach/detach`, and the `sys.call` of
 * VFIO_DEVICE_BIND_IOMMUFD (the device's path), IOMMU_HWPT_ALLOC (IOAS, flags, fault queue) and
 * IOMMU_FAULT_QUEUE_ALLOC (the fault fd). An automatic HWPT (attach to an IOAS) has no call of its
 * own that names its IOAS: it is the IOAS the attach call touched first (the device's MSI
 * reservation, or the new domain's aperture, both `iommufd.ioas.reserve` before the HWPT is
 * published).
 */
import { formatConst } from "../../../engine/uapi/consts.ts";
import { iommufd_hwpt_alloc_flags, iommu_hwpt_data_type } from "../../../engine/uapi/iommufd.ts";
import { FdNames } from "../../../engine/trace/format.ts";
import { CallContext, objKey } from "../common/calls.ts";
import { indexAtOrBefore, type TraceEvent } from "../common/events.ts";
import { Replay } from "../common/replay.ts";

export interface ObjNode {
  /** "ictx:id" */
  key: string;
  ictx: number;
  id: number;
  /** the kernel's object type name: IOAS, HWPT_PAGING, DEVICE, FAULT, … */
  type: string;
  /** seq of its alloc event */
  seq: number;
  /** HWPT_PAGING: the IOAS it mirrors */
  ioas?: number;
  /** HWPT_PAGING: made by attaching a device to an IOAS (dies with its last attachment) */
  auto?: boolean;
  /** HWPT_NESTED: its parent HWPT */
  parent?: number;
  /** HWPT: the FAULT object receiving its I/O page faults */
  fault?: number;
  /** HWPT: IOMMU_HWPT_ALLOC flags, as the uAPI names them */
  flags?: string;
  /** HWPT_PAGING allocated with IOMMU_HWPT_ALLOC_NEST_PARENT: the second stage of nested HWPTs */
  nestParent?: boolean;
  /** HWPT_NESTED: the driver data type it was allocated with (IOMMU_HWPT_DATA_VTD_S1) */
  dataType?: string;
  /** DEVICE: the VFIO cdev it was bound through */
  path?: string;
  /** FAULT: its fd while open, null once closed */
  faultFd?: number | null;
}

export interface Attachment {
  ictx: number;
  dev: number;
  pasid: number;
  hwpt: number;
}

export interface ObjectsState {
  /** "ictx:id" → object */
  nodes: Map<string, ObjNode>;
  /** "ictx:dev/pasid" → attachment */
  attachments: Map<string, Attachment>;
  calls: CallContext;
  fds: FdNames;
  /** the first IOAS the call in progress touched (the IOAS of an automatic HWPT) */
  callIoas: { cmd: number; ioas: number } | null;
}

export interface Holder {
  text: string;
  /** the holding object, when it is one */
  key: string | null;
}

export interface ObjEdge {
  key: string;
  from: string;
  to: string;
  /** attach: device → HWPT; ioas: HWPT → IOAS; fault: HWPT → FAULT; parent: nested → parent */
  kind: "attach" | "ioas" | "fault" | "parent";
  label: string;
}

const FAULT_ID_VALID = iommufd_hwpt_alloc_flags.values.find((c) => c.name === "IOMMU_HWPT_FAULT_ID_VALID")!.value;
const NEST_PARENT = iommufd_hwpt_alloc_flags.values.find((c) => c.name === "IOMMU_HWPT_ALLOC_NEST_PARENT")!.value;

function initState(): ObjectsState {
  return { nodes: new Map(), attachments: new Map(), calls: new CallContext(), fds: new FdNames(), callIoas: null };
}

function cloneState(s: ObjectsState): ObjectsState {
  const fds = new FdNames();
  for (const [fd, p] of s.fds.paths) fds.paths.set(fd, p);
  return {
    nodes: new Map([...s.nodes].map(([k, n]) => [k, { ...n }])),
    attachments: new Map(s.attachments),
    calls: s.calls.clone(),
    fds,
    callIoas: s.callIoas,
  };
}

/** The outputs of a successful call that name objects. */
function onCall(s: ObjectsState, e: TraceEvent<"sys.call">): void {
  if (e.errno) return;
  const a = e.arg ?? {};
  const node = (id: unknown) => (typeof id === "number" ? s.nodes.get(objKey(s.calls.ctxOfFd(e.fd), id)) : undefined);
  switch (e.req ?? e.call) {
    case "VFIO_DEVICE_BIND_IOMMUFD": {
      const dev = node(a.out_devid);
      if (dev) dev.path = s.fds.paths.get(e.fd);
      break;
    }
    case "IOMMU_HWPT_ALLOC": {
      const hwpt = node(a.out_hwpt_id);
      if (!hwpt) break;
      const flags = typeof a.flags === "number" ? a.flags : 0;
      const pt = node(a.pt_id);
      hwpt.auto = false;
      if (pt?.type === "IOAS") hwpt.ioas = pt.id;
      else if (pt) hwpt.parent = pt.id;
      if (flags) hwpt.flags = formatConst(iommufd_hwpt_alloc_flags, flags);
      if (flags & NEST_PARENT) hwpt.nestParent = true;
      if (typeof a.data_type === "number" && a.data_type) hwpt.dataType = formatConst(iommu_hwpt_data_type, a.data_type);
      if (flags & FAULT_ID_VALID && typeof a.fault_id === "number") hwpt.fault = a.fault_id;
      break;
    }
    case "IOMMU_FAULT_QUEUE_ALLOC": {
      const f = node(a.out_fault_id);
      if (f && typeof a.out_fault_fd === "number") f.faultFd = a.out_fault_fd;
      break;
    }
    case "close":
      for (const n of s.nodes.values()) if (n.faultFd === e.fd) n.faultFd = null;
      break;
  }
}

function step(s: ObjectsState, e: TraceEvent): void {
  s.calls.observe(e);
  s.fds.observe(e);
  switch (e.k) {
    case "iommufd.obj.alloc": {
      const n: ObjNode = { key: objKey(e.ictx, e.id), ictx: e.ictx, id: e.id, type: e.type, seq: e.seq };
      if (e.ioas_id !== undefined) {
        // the engine names the links; traces recorded before it did are inferred below
        n.ioas = e.ioas_id;
        n.auto = !!e.auto;
      } else if (e.type === "HWPT_PAGING" && s.calls.request !== "IOMMU_HWPT_ALLOC") {
        n.auto = true;
        if (s.callIoas?.cmd === e.cmd_seq) n.ioas = s.callIoas.ioas;
      }
      if (e.parent_id !== undefined) n.parent = e.parent_id;
      s.nodes.set(n.key, n);
      break;
    }
    case "iommufd.obj.destroy":
      s.nodes.delete(objKey(e.ictx, e.id));
      break;
    case "iommufd.ioas.map":
    case "iommufd.ioas.unmap":
    case "iommufd.ioas.reserve":
    case "iommufd.ioas.unreserve":
      if (s.calls.inCall(e) && s.callIoas?.cmd !== e.cmd_seq) s.callIoas = { cmd: e.cmd_seq, ioas: e.ioas_id };
      break;
    case "iommufd.device.attach": {
      const ictx = s.calls.ctxOf(e);
      s.attachments.set(`${ictx}:${e.dev_id}/${e.pasid}`, { ictx, dev: e.dev_id, pasid: e.pasid, hwpt: e.hwpt_id });
      break;
    }
    case "iommufd.device.detach":
      s.attachments.delete(`${s.calls.ctxOf(e)}:${e.dev_id}/${e.pasid}`);
      break;
    case "sys.call":
      onCall(s, e);
      break;
  }
}

/** What holds `n` beyond the ID table: IOMMU_DESTROY of it gives EBUSY while this is not empty. */
export function holdersOf(s: ObjectsState, n: ObjNode): Holder[] {
  const sameCtx = [...s.nodes.values()].filter((o) => o.ictx === n.ictx);
  const hwpts = (pred: (o: ObjNode) => boolean) => sameCtx.filter((o) => o.type.startsWith("HWPT_") && pred(o)).map((o) => ({ text: `${o.type} ${o.id}`, key: o.key }));
  switch (n.type) {
    case "IOAS":
      return hwpts((o) => o.ioas === n.id);
    case "DEVICE":
      return [{ text: `the VFIO device file of ${n.path ?? "the device"}`, key: null }];
    case "FAULT":
      return [...(n.faultFd != null ? [{ text: `its open fault fd ${n.faultFd}`, key: null }] : []), ...hwpts((o) => o.fault === n.id)];
    default:
      if (!n.type.startsWith("HWPT_")) return [];
      return [
        ...[...s.attachments.values()]
          .filter((a) => a.ictx === n.ictx && a.hwpt === n.id)
          .map((a) => ({ text: `device ${a.dev}${a.pasid ? ` PASID ${a.pasid}` : ""}`, key: objKey(a.ictx, a.dev) })),
        ...hwpts((o) => o.parent === n.id),
      ];
  }
}

/** The reference edges between the objects that exist. */
export function edgesOf(s: ObjectsState): ObjEdge[] {
  const out: ObjEdge[] = [];
  const add = (from: string, to: string, kind: ObjEdge["kind"], label: string) => {
    if (s.nodes.has(from) && s.nodes.has(to)) out.push({ key: `${from}>${to}:${kind}:${label}`, from, to, kind, label });
  };
  for (const a of s.attachments.values()) add(objKey(a.ictx, a.dev), objKey(a.ictx, a.hwpt), "attach", a.pasid ? `PASID ${a.pasid}` : "RID");
  for (const n of s.nodes.values()) {
    if (n.ioas !== undefined) add(n.key, objKey(n.ictx, n.ioas), "ioas", n.auto ? "auto" : "pt_id");
    if (n.parent !== undefined) add(n.key, objKey(n.ictx, n.parent), "parent", "parent");
    if (n.fault !== undefined) add(n.key, objKey(n.ictx, n.fault), "fault", "fault_id");
  }
  return out;
}

/** An IOMMU_DESTROY refused with EBUSY, at the cursor: the object and what holds it. */
export interface BusyDestroy {
  seq: number;
  target: string;
  holders: string[];
  reason: string;
}

export function failedDestroy(e: TraceEvent | undefined, s: ObjectsState): BusyDestroy | null {
  if (!e || e.k !== "sys.call" || e.req !== "IOMMU_DESTROY" || e.errno !== "EBUSY" || typeof e.arg?.id !== "number") return null;
  const target = objKey(s.calls.ctxOfFd(e.fd), e.arg.id);
  const n = s.nodes.get(target);
  return { seq: e.seq, target, holders: n ? holdersOf(s, n).flatMap((h) => (h.key ? [h.key] : [])) : [], reason: e.reason ?? "" };
}

/** Objects the event at the cursor created or connected, for a highlight. */
export function touchedBy(e: TraceEvent | undefined, s: ObjectsState): string[] {
  if (!e) return [];
  if (e.k === "iommufd.obj.alloc") return [objKey(e.ictx, e.id)];
  if (e.k === "iommufd.device.attach") {
    const ictx = s.calls.ctxOf(e);
    return [objKey(ictx, e.dev_id), objKey(ictx, e.hwpt_id)];
  }
  return [];
}

export interface ObjectsAt {
  state: ObjectsState;
  /** the event at the cursor */
  event: TraceEvent | undefined;
}

/** The objects view's model over one trace. */
export function createObjectsModel() {
  const replay = new Replay<ObjectsState>({ init: initState, clone: cloneState, step });
  return {
    /** The graph after the last event with seq ≤ `seq`. The state is owned by the model: read, don't keep. */
    at(events: readonly TraceEvent[], seq: number): ObjectsAt {
      const idx = indexAtOrBefore(events, seq);
      return { state: replay.atIndex(events, idx), event: events[idx] };
    },
  };
}
