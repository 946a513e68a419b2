/**
 * Page requests, end to end: the messages between a device, the IOMMU, the kernel's fault path,
 * the iommufd fault queue and the script, as a sequence chart, plus the state at the cursor of the
 * VT-d page request queue (a ring in memory) and of each device's own TLB (ATC).
 *
 * Sources, in the order a recoverable fault runs (engine/hw/ats.ts, engine/hw/vtd/prq.ts and
 * driver-prq.ts, engine/kernel/io-pgfault.ts, engine/kernel/eventq.ts):
 *
 *   device → IOMMU    ats.request          ATS Translation Request (device-TLB miss)
 *   IOMMU → device    ats.completion       granted, "no access" (R = W = 0: ask with PRI), or UR
 *   device → IOMMU    pri.request          PRI Page Request (PRGI, address, R/W, last)
 *   IOMMU             prq.request          descriptor written at the ring's tail (or prq.overflow)
 *   IOMMU → kernel    prq.irq              page request interrupt
 *   IOMMU → kernel    prq.handle           prq_event_thread reads a slot (report, stop marker, …)
 *   kernel            iopf.partial         a request held until its group's last one
 *   kernel → fault fd iopf.group           a whole group queued on the FAULT object
 *   fault fd → script fault.read           read() returns the group under a cookie
 *   script → fault fd fault.response       write() answers the cookie (auto: the kernel did)
 *   fault fd → kernel iopf.response        the core's page_response
 *   kernel → IOMMU    prq.response         QI page group response descriptor (type 9)
 *   IOMMU → device    pri.response         PRG Response
 *   device → IOMMU    ats.request          the retry, after Success
 *
 * Every message of one page request group is linked to a *group instance*: a PRGI is reused once
 * its group is answered, so an instance runs from the first pri.request of (device, PRGI) to the
 * pri.response that closes it; the kernel and iommufd events name (RID, PRGI) while the group is
 * open, the fault fd names its cookie (fault.read binds the cookie, fault.response frees it). The
 * ATS messages of the DMA that asked are linked too (the translation that found no access, and
 * the retry).
 *
 * The message list and the groups only grow, so they are an Incremental index (time travel is a
 * binary search over message seqs); the ring and the device-TLBs are a Replay with checkpoints.
 */
import type { EventKind } from "../../../engine/trace/events.ts";
import { bdf, hex, indexAtOrBefore, lowerBound, permText, sizeText, type TraceEvent, type U64 } from "../common/events.ts";
import { Incremental } from "../common/incremental.ts";
import { Replay, type Reducer } from "../common/replay.ts";

export type Lane = "device" | "iommu" | "kernel" | "faultfd" | "script";

export const LANES: readonly { id: Lane; name: string; sub: string }[] = [
  { id: "device", name: "Device", sub: "ATC · ATS · PRI" },
  { id: "iommu", name: "IOMMU", sub: "VT-d · PRQ ring" },
  { id: "kernel", name: "Kernel", sub: "prq thread · iopf" },
  { id: "faultfd", name: "Fault fd", sub: "FAULT queue" },
  { id: "script", name: "Script", sub: "read / write" },
];

export interface Message {
  seq: number;
  /** simulated time, ns */
  t: number;
  k: EventKind;
  from: Lane;
  to: Lane;
  /** a few words on the arrow */
  label: string;
  /** the message in full (tooltip, screen readers) */
  detail: string;
  /** the group instance (index into `groups`), or -1 */
  group: number;
  /** the device's requester id, when the message concerns one */
  rid: number;
  /** something went wrong: dropped, refused, Unsupported Request, a failed DMA */
  bad: boolean;
}

/** One page request group, from its first request to the response that closes it. */
export interface PageGroup {
  /** 0-based instance number (shown as G1, G2, …) */
  id: number;
  rid: number;
  pasid: number;
  /** Page Request Group Index */
  prgi: number;
  /** address of its first request */
  addr: U64;
  read: boolean;
  write: boolean;
  /** seq of its first message */
  seq: number;
  /** the FAULT object and the cookie user space saw it under, once read */
  faultId: number | null;
  cookie: number | null;
  /** indices (into the message list) of its messages */
  messages: number[];
}

/** The group's story at a cursor: how far it got. */
export interface GroupStatus {
  /** "requested", "queued", "dropped", "reported", "delivered", "read", "answered", "responded", "retried", "done", "failed" */
  stage: string;
  /** the response code name, once answered */
  response: string | null;
}

export class PrqMessages extends Incremental {
  messages: Message[] = [];
  /** seq of each message, ascending (binary search by cursor) */
  seqs: number[] = [];
  groups: PageGroup[] = [];
  /** first-message seq of each group, ascending */
  groupSeqs: number[] = [];
  // ---- linking state (only grows with the trace) ----
  private open = new Map<string, number>();
  private byCookie = new Map<string, number>();
  private devRid = new Map<number, number>();
  /** DMA seq → the group it asked for (until its retry completes) */
  private dmaGroup = new Map<number, number>();
  /** DMA seq → ATS messages not yet linked to a group (a page request may follow) */
  private pendingAts = new Map<number, number[]>();
  /** DMAs whose group was answered: their next ATS request is the retry */
  private retrying = new Set<number>();
  /** DMAs that asked for a page: their completion or failure is drawn */
  private asked = new Set<number>();

  protected reset(): void {
    this.messages = [];
    this.seqs = [];
    this.groups = [];
    this.groupSeqs = [];
    this.open = new Map();
    this.byCookie = new Map();
    this.devRid = new Map();
    this.dmaGroup = new Map();
    this.pendingAts = new Map();
    this.retrying = new Set();
    this.asked = new Set();
  }

  private push(e: TraceEvent, from: Lane, to: Lane, label: string, detail: string, group: number, rid: number, bad = false): number {
    const i = this.messages.length;
    this.messages.push({ seq: e.seq, t: e.t, k: e.k, from, to, label, detail, group, rid, bad });
    this.seqs.push(e.seq);
    if (group >= 0) this.groups[group].messages.push(i);
    return i;
  }

  private groupOf(rid: number, prgi: number): number {
    return this.open.get(`${rid}:${prgi}`) ?? -1;
  }

  protected add(e: TraceEvent): void {
    switch (e.k) {
      case "ats.request": {
        const g = this.dmaGroup.get(e.cmd_seq) ?? -1;
        const retry = this.retrying.has(e.cmd_seq);
        const i = this.push(e, "device", "iommu", `${retry ? "retry: " : ""}ATS translation request ${hex(e.iova)}${e.write ? " W" : ""}`,
          `${bdf(e.rid)} ${retry ? "asks again after the Success response" : "missed in its device-TLB"}: ATS Translation Request for ${hex(e.iova)} (${e.write ? "write" : "read"})${e.pasid >= 0 ? ` PASID ${e.pasid}` : ""}`,
          retry ? g : -1, e.rid);
        if (!retry) this.pendingAts.set(e.cmd_seq, [i]);
        break;
      }
      case "ats.completion": {
        const retry = this.retrying.has(e.cmd_seq);
        const g = retry ? this.dmaGroup.get(e.cmd_seq) ?? -1 : -1;
        const what = e.status === "UR" ? `Unsupported Request (fault 0x${(e.reason ?? 0).toString(16)} recorded)`
          : e.perm ? `granted ${permText(e.perm)} ${sizeText(e.size)}` : "no access (R=W=0)";
        const i = this.push(e, "iommu", "device", `completion: ${what}`,
          `Translation Completion for ${hex(e.iova)}: ${what}${e.perm ? ` → PA ${hex(e.pa)}` : e.status === "success" ? ": nothing recorded, the device may ask with a page request" : ""}`,
          g, e.rid, e.status === "UR");
        if (retry) {
          this.retrying.delete(e.cmd_seq);
          if (!e.perm) this.dmaGroup.delete(e.cmd_seq);
        } else this.pendingAts.get(e.cmd_seq)?.push(i);
        break;
      }
      case "pri.request": {
        const key = `${e.rid}:${e.group}`;
        let g = this.open.get(key);
        if (g === undefined) {
          g = this.groups.length;
          this.groups.push({ id: g, rid: e.rid, pasid: e.pasid, prgi: e.group, addr: e.addr, read: e.read, write: e.write, seq: e.seq, faultId: null, cookie: null, messages: [] });
          this.groupSeqs.push(e.seq);
          this.open.set(key, g);
        }
        // the translation that found no access belongs to this group
        for (const m of this.pendingAts.get(e.cmd_seq) ?? []) {
          this.messages[m].group = g;
          this.groups[g].messages.push(m);
        }
        this.pendingAts.delete(e.cmd_seq);
        if (e.cmd_seq) {
          this.dmaGroup.set(e.cmd_seq, g);
          this.asked.add(e.cmd_seq);
        }
        const rw = e.stop ? "stop marker" : `${e.read ? "R" : ""}${e.write ? "W" : ""}`;
        this.push(e, "device", "iommu", `page request PRGI ${e.group} ${hex(e.addr)} ${rw}${e.last ? " L" : ""}`,
          `${bdf(e.rid)} sends a PRI Page Request: group ${e.group}, page ${hex(e.addr)}, ${e.stop ? "a Stop Marker" : `${e.read ? "read" : ""}${e.read && e.write ? "+" : ""}${e.write ? "write" : ""}`}${e.last ? ", last of its group" : ""}${e.pasid >= 0 ? `, PASID ${e.pasid}` : ""}`,
          g, e.rid);
        break;
      }
      case "prq.request":
        this.push(e, "iommu", "iommu", `→ PRQ slot ${e.slot} (tail ${e.tail})`,
          `The IOMMU writes a page request descriptor at ring slot ${e.slot}: PRGI ${e.group}, ${hex(e.addr)}; head ${e.head}, tail now ${e.tail} (qw0 ${hex(e.qw0)}, qw1 ${hex(e.qw1)})`,
          this.groupOf(e.rid, e.group), e.rid);
        break;
      case "prq.overflow":
        this.push(e, "iommu", "iommu", `✖ dropped: ${e.why.split(":")[0]}`, `Page request PRGI ${e.group} ${hex(e.addr)} dropped: ${e.why}`, this.groupOf(e.rid, e.group), e.rid, true);
        break;
      case "prq.irq":
        this.push(e, "iommu", "kernel", "page request interrupt", `The page request event fires (PRS 0x${e.prs.toString(16)}): the driver's prq thread will run`, -1, -1);
        break;
      case "prq.handle":
        this.push(e, "iommu", "kernel", `prq thread reads slot ${e.slot}: ${e.action}`,
          `prq_event_thread reads slot ${e.slot} (PRGI ${e.group}${e.last ? ", last" : ""}): ${e.action}${e.why ? ` — ${e.why}` : ""}`,
          this.groupOf(e.rid, e.group), e.rid, e.action !== "report" && e.action !== "stop-marker");
        break;
      case "prq.recover":
        this.push(e, "kernel", "kernel", `ring emptied after overflow (head ${e.head})`, `After an overflow the driver emptied the ring, discarded partial groups and cleared PRS.PRO (head ${e.head})`, -1, -1, true);
        break;
      case "iopf.partial":
        this.push(e, "kernel", "kernel", `partial: held for PRGI ${e.group}`, `A request that is not the last of group ${e.group} (${hex(e.addr)}) waits on the device's partial list`, this.groupOf(e.rid, e.group), e.rid);
        break;
      case "iopf.group": {
        this.devRid.set(e.dev_id, e.rid);
        this.push(e, "kernel", "faultfd", `group of ${e.faults} → FAULT ${e.fault_id}`,
          `The iommu core hands group ${e.group} (${e.faults} fault${e.faults > 1 ? "s" : ""}) of device ${e.dev_id} on HWPT ${e.hwpt_id} to FAULT ${e.fault_id}`,
          this.groupOf(e.rid, e.group), e.rid);
        break;
      }
      case "iopf.discard":
        this.push(e, "kernel", "kernel", `✖ ${e.count} partial discarded`, `${e.count} partial request${e.count > 1 ? "s" : ""} of ${bdf(e.rid)} thrown away: ${e.why}`, -1, e.rid, true);
        break;
      case "fault.read": {
        const rid = this.devRid.get(e.dev_id) ?? -1;
        const g = this.groupOf(rid, e.group);
        if (g >= 0) {
          this.groups[g].faultId = e.fault_id;
          this.groups[g].cookie = e.cookie;
        }
        this.byCookie.set(`${e.fault_id}:${e.cookie}`, g);
        this.push(e, "faultfd", "script", `read(): PRGI ${e.group}, cookie ${e.cookie}`,
          `read() on FAULT ${e.fault_id}'s fd returns group ${e.group} of device ${e.dev_id} (${e.faults} fault${e.faults > 1 ? "s" : ""}) under cookie ${e.cookie}`, g, rid);
        break;
      }
      case "fault.response": {
        const key = `${e.fault_id}:${e.cookie}`;
        const g = this.byCookie.get(key) ?? -1;
        this.byCookie.delete(key);
        const code = e.code === 0 ? "SUCCESS" : e.code === 1 ? "INVALID" : `code ${e.code}`;
        if (e.auto) {
          this.push(e, "faultfd", "kernel", `auto-response ${code}, cookie ${e.cookie}`, `The kernel answers cookie ${e.cookie} itself (${code})${e.why ? `: ${e.why}` : ""}`, g, g >= 0 ? this.groups[g].rid : -1, true);
        } else {
          this.push(e, "script", "faultfd", `write(): cookie ${e.cookie} ${code}`, `write() on FAULT ${e.fault_id}'s fd answers cookie ${e.cookie}: ${code}`, g, g >= 0 ? this.groups[g].rid : -1, e.code !== 0);
        }
        break;
      }
      case "iopf.response": {
        const user = /user space|cookie/.test(e.why);
        this.push(e, user ? "faultfd" : "kernel", "kernel", `page_response ${e.name}`, `The iommu core answers group ${e.group}: ${e.name} (${e.why})`, this.groupOf(e.rid, e.group), e.rid, e.code !== 0);
        break;
      }
      case "prq.response":
        this.push(e, "kernel", "iommu", `QI page group response: ${e.name}`,
          `The driver queues a page group response descriptor (QI type 9) for group ${e.group}: ${e.name} (code ${e.code})`, this.groupOf(e.rid, e.group), e.rid, e.code !== 0);
        break;
      case "pri.response": {
        const key = `${e.rid}:${e.group}`;
        const g = this.open.get(key) ?? -1;
        this.push(e, "iommu", "device", `PRG response ${e.name}${e.matched ? "" : " (unexpected)"}`,
          `${bdf(e.rid)} receives the PRG Response for group ${e.group}: ${e.name}${e.matched ? "" : " — no request of that group was waiting (UPRGI)"}`, g, e.rid, e.code !== 0 || !e.matched);
        if (e.matched) this.open.delete(key);
        // after Success the DMA that asked translates again: its next ATS request is the retry
        if (g >= 0 && e.code === 0) for (const [dma, dg] of this.dmaGroup) if (dg === g) this.retrying.add(dma);
        break;
      }
      case "devtlb.inv":
        this.push(e, "iommu", "device", `ATS invalidate ${hex(e.page)}`, `An ATS Invalidate Request (${e.by}) removes ${bdf(e.rid)}'s device-TLB entry for ${hex(e.page)} (${sizeText(e.size)})`, -1, e.rid);
        break;
      case "dma.fault":
      case "dma.complete": {
        this.pendingAts.delete(e.cmd_seq);
        if (!this.asked.has(e.cmd_seq)) break;
        const g = this.dmaGroup.get(e.cmd_seq) ?? -1;
        if (e.k === "dma.fault") this.push(e, "device", "device", `✖ DMA fails`, `The DMA at ${hex(e.iova)} fails: ${e.name}`, g, e.rid, true);
        else this.push(e, "device", "device", `✔ DMA completes`, `The DMA at ${hex(e.iova)} completes (${e.len} bytes, PA ${hex(e.pa)})`, g, e.rid);
        this.asked.delete(e.cmd_seq);
        this.dmaGroup.delete(e.cmd_seq);
        this.retrying.delete(e.cmd_seq);
        break;
      }
    }
  }

  /** Messages with seq ≤ `seq`. */
  countAt(seq: number): number {
    return lowerBound(this.seqs, seq + 1);
  }

  /** Groups begun at or before `seq`. */
  groupsAt(seq: number): number {
    return lowerBound(this.groupSeqs, seq + 1);
  }

  /** How far group `g` got by `seq`. */
  statusAt(g: number, seq: number): GroupStatus {
    let stage = "requested";
    let response: string | null = null;
    for (const i of this.groups[g].messages) {
      const m = this.messages[i];
      if (m.seq > seq) break;
      switch (m.k) {
        case "prq.request": stage = "queued"; break;
        case "prq.overflow": stage = "dropped"; break;
        case "prq.handle": stage = m.bad ? "refused" : "reported"; break;
        case "iopf.group": stage = "delivered"; break;
        case "fault.read": stage = "read"; break;
        case "fault.response": stage = "answered"; break;
        case "prq.response": stage = "responded"; break;
        case "pri.response": stage = m.bad ? "failed" : "responded"; response = m.label.replace(/^PRG response /, ""); break;
        case "ats.request": if (stage === "responded") stage = "retried"; break;
        case "dma.complete": stage = "done"; break;
        case "dma.fault": stage = "failed"; break;
      }
    }
    return { stage, response };
  }
}

// ==== the ring and the device-TLBs at the cursor ========================================================

export interface RingSlot {
  slot: number;
  seq: number;
  rid: number;
  pasid: number;
  group: number;
  addr: U64;
  last: boolean;
  read: boolean;
  write: boolean;
}

export interface DevtlbEntry {
  rid: number;
  way: number;
  pasid: number;
  page: U64;
  size: number;
  pa: U64;
  perm: number;
  seq: number;
}

export interface PrqState {
  /** descriptors the ring holds (128 × 2^PQS) */
  ringSize: number;
  /** slot indexes: software's PQH and the hardware's PQT */
  head: number;
  tail: number;
  /** PRS.PRO: requests are dropped until software clears it */
  overflow: boolean;
  /** the last descriptor written in each slot */
  slots: Map<number, RingSlot>;
  /** "rid/way" → device-TLB entry */
  devtlb: Map<string, DevtlbEntry>;
  devtlbCounts: { hit: number; miss: number; fill: number; evict: number; inv: number };
  /** the latest device-TLB event */
  lastDevtlb: { kind: "hit" | "miss" | "fill" | "evict" | "inv"; seq: number; rid: number; way: number | null; page: U64 } | null;
  requests: number;
  dropped: number;
}

/** PQH/PQT/PQA/PRS register offsets (engine/hw/vtd/regs.ts). */
const PQH = 0xc0;
const PQT = 0xc8;
const PQA = 0xd0;
const PRS = 0xdc;
const PRS_PRO = 2;
/** Linux's PRQ_ORDER 4: 2048 descriptors, until the trace says otherwise. */
export const DEFAULT_RING = 2048;

const num = (v: U64) => Number(BigInt(v) & 0xfffffffffffffn);

const prqReducer: Reducer<PrqState> = {
  init: () => ({
    ringSize: DEFAULT_RING, head: 0, tail: 0, overflow: false, slots: new Map(), devtlb: new Map(),
    devtlbCounts: { hit: 0, miss: 0, fill: 0, evict: 0, inv: 0 }, lastDevtlb: null, requests: 0, dropped: 0,
  }),
  clone: (s) => ({ ...s, slots: new Map(s.slots), devtlb: new Map(s.devtlb), devtlbCounts: { ...s.devtlbCounts } }),
  step(s, e) {
    switch (e.k) {
      case "vtd.reg.write":
        if (e.off === PQH) s.head = Math.floor(num(e.value) / 32);
        else if (e.off === PQT) s.tail = Math.floor(num(e.value) / 32);
        else if (e.off === PQA) s.ringSize = 128 * 2 ** (num(e.value) & 7);
        else if (e.off === PRS && num(e.value) & PRS_PRO) s.overflow = false; // write 1 to clear
        break;
      case "prq.request":
        s.slots.set(e.slot, { slot: e.slot, seq: e.seq, rid: e.rid, pasid: e.pasid, group: e.group, addr: e.addr, last: e.last, read: e.read, write: e.write });
        s.head = e.head;
        s.tail = e.tail;
        s.requests++;
        break;
      case "prq.overflow":
        s.dropped++;
        if (!e.why.startsWith("no page request queue")) s.overflow = true;
        break;
      case "prq.recover":
        s.head = e.head;
        break;
      case "devtlb.fill":
        s.devtlb.set(`${e.rid}/${e.way}`, { rid: e.rid, way: e.way, pasid: e.pasid, page: e.page, size: e.size, pa: e.pa, perm: e.perm, seq: e.seq });
        s.devtlbCounts.fill++;
        s.lastDevtlb = { kind: "fill", seq: e.seq, rid: e.rid, way: e.way, page: e.page };
        break;
      case "devtlb.evict":
      case "devtlb.inv": {
        s.devtlb.delete(`${e.rid}/${e.way}`);
        const kind = e.k === "devtlb.evict" ? "evict" : "inv";
        s.devtlbCounts[kind]++;
        s.lastDevtlb = { kind, seq: e.seq, rid: e.rid, way: e.way, page: e.page };
        break;
      }
      case "devtlb.hit":
        s.devtlbCounts.hit++;
        s.lastDevtlb = { kind: "hit", seq: e.seq, rid: e.rid, way: e.way, page: e.page };
        break;
      case "devtlb.miss":
        s.devtlbCounts.miss++;
        s.lastDevtlb = { kind: "miss", seq: e.seq, rid: e.rid, way: null, page: e.page };
        break;
    }
  },
};

/** Slots between head and tail: the descriptors software has not consumed. */
export function pendingSlots(s: PrqState): number {
  return (s.tail - s.head + s.ringSize) % s.ringSize;
}

export interface PrqAt {
  state: PrqState;
  messages: PrqMessages;
  /** messages up to the cursor */
  count: number;
  /** groups begun up to the cursor */
  groups: number;
  /** the cursor's seq */
  seq: number;
}

/** The page-request view's model over one trace. */
export function createPrqModel() {
  const replay = new Replay(prqReducer);
  const messages = new PrqMessages();
  return {
    messages,
    /** Everything at the last event with seq ≤ `seq`. The objects belong to the model: read, don't keep. */
    at(events: readonly TraceEvent[], seq: number): PrqAt {
      messages.update(events);
      const idx = indexAtOrBefore(events, seq);
      const at = idx >= 0 ? events[idx].seq : 0;
      return { state: replay.atIndex(events, idx), messages, count: messages.countAt(at), groups: messages.groupsAt(at), seq: at };
    },
  };
}
