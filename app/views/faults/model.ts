/**
 * The VT-d fault recording registers at the cursor (engine/hw/vtd/fault.ts, VT-d spec 7.2): the
 * unit has CAP.NFR + 1 fault recording registers (8 by default, knob `faultRecords`) used as a
 * ring. A `vtd.fault.record` fills one (F = 1: pending) with the reason, the source, the PASID and
 * the page address; the driver's fault interrupt handler (Linux dmar_fault) logs and clears each
 * pending record (`vtd.fault.clear`, W1C of F) and then FSTS.PFO. A fault that finds PFO set, a
 * pending record of the same source (collapsing) or the next record still pending (which sets
 * PFO) is dropped (`vtd.fault.drop`). These are the *unrecoverable* faults: a page request a
 * device answers itself never reaches them.
 *
 * A Replay with checkpoints: the state is a handful of records and counters.
 */
import { indexAtOrBefore, type TraceEvent, type U64 } from "../common/events.ts";
import { Replay, type Reducer } from "../common/replay.ts";

export interface FaultRecord {
  index: number;
  reason: number;
  name: string;
  rid: number;
  /** -1: request without PASID */
  pasid: number;
  addr: U64;
  write: boolean;
  /** seq of the event that recorded it */
  seq: number;
  /** F = 1: recorded and not yet cleared by software */
  pending: boolean;
  /** when cleared: the seq, and the driver's log line for it */
  clearedSeq: number | null;
  text: string | null;
}

export interface FaultDrop {
  seq: number;
  reason: number;
  rid: number;
  why: string;
}

export interface FaultsState {
  /** fault recording registers (the ring's size; grows if the trace shows more) */
  size: number;
  /** index → the register's last content (pending, or cleared) */
  records: Map<number, FaultRecord>;
  recorded: number;
  dropped: number;
  /** the latest drops (at most KEEP_DROPS) */
  drops: FaultDrop[];
  /** FSTS.PFO: primary fault overflow (faults are dropped until software clears it) */
  pfo: boolean;
  /** FSTS.FRI at the last fault interrupt */
  fri: number | null;
  irqs: number;
  /** the latest fault event */
  last: { kind: "record" | "drop" | "clear" | "irq"; seq: number; index: number | null } | null;
  /** reason → name, learnt from records (drops carry only the code) */
  names: Map<number, string>;
}

export const DEFAULT_RECORDS = 8;
const KEEP_DROPS = 6;
const FSTS = 0x34;
const FSTS_PFO = 1;

function reducer(size: number): Reducer<FaultsState> {
  return {
    init: () => ({ size, records: new Map(), recorded: 0, dropped: 0, drops: [], pfo: false, fri: null, irqs: 0, last: null, names: new Map() }),
    clone: (s) => ({ ...s, records: new Map(s.records), drops: [...s.drops], names: new Map(s.names) }),
    step(s, e) {
      switch (e.k) {
        case "vtd.fault.record":
          s.records.set(e.index, {
            index: e.index, reason: e.reason, name: e.name, rid: e.rid, pasid: e.pasid, addr: e.addr, write: e.write,
            seq: e.seq, pending: true, clearedSeq: null, text: null,
          });
          s.names.set(e.reason, e.name);
          s.recorded++;
          s.size = Math.max(s.size, e.index + 1);
          s.last = { kind: "record", seq: e.seq, index: e.index };
          break;
        case "vtd.fault.drop":
          s.dropped++;
          s.drops = [...s.drops, { seq: e.seq, reason: e.reason, rid: e.rid, why: e.why }].slice(-KEEP_DROPS);
          if (/PFO set/.test(e.why)) s.pfo = true;
          s.last = { kind: "drop", seq: e.seq, index: null };
          break;
        case "vtd.fault.clear": {
          const r = s.records.get(e.index);
          if (r) s.records.set(e.index, { ...r, pending: false, clearedSeq: e.seq, text: e.text ?? null });
          s.last = { kind: "clear", seq: e.seq, index: e.index };
          break;
        }
        case "vtd.fault.irq":
          s.irqs++;
          s.fri = (e.fsts >>> 8) & 0xff;
          if (e.fsts & FSTS_PFO) s.pfo = true;
          s.last = { kind: "irq", seq: e.seq, index: null };
          break;
        case "vtd.reg.write":
          if (e.off === FSTS && Number(e.value) & FSTS_PFO) s.pfo = false; // write 1 to clear
          break;
      }
    },
  };
}

/** Records with F set. */
export function pendingCount(s: FaultsState): number {
  let n = 0;
  for (const r of s.records.values()) if (r.pending) n++;
  return n;
}

/** The faults view's model over one trace, for a unit with `records` fault recording registers. */
export function createFaultsModel(records = DEFAULT_RECORDS) {
  const replay = new Replay(reducer(records));
  return {
    records,
    /** The registers after the last event with seq ≤ `seq`. Owned by the model: read, don't keep. */
    at(events: readonly TraceEvent[], seq: number): { state: FaultsState; seq: number } {
      const idx = indexAtOrBefore(events, seq);
      return { state: replay.atIndex(events, idx), seq: idx >= 0 ? events[idx].seq : 0 };
    },
  };
}
