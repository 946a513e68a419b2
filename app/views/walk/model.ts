/**
 * The DMA translation at the cursor, as the VT-d hardware did it (engine/hw/vtd/hw.ts translate):
 * the last `dma.request` at or before the cursor, split into its per-page translations (a request
 * never crosses 4 KiB, engine/hw/dma.ts), and of those the one the cursor is in or just after:
 *
 *   ctxcache/pasidcache hit|miss, vtd.ctx.read × n      root → context → PASID dir → PASID entry
 *   vtd.iotlb.hit | vtd.iotlb.miss                        hit: no walk
 *   vtd.pwc.miss/hit (levels 2, 3, 4)                     the walk starts below the deepest hit
 *   vtd.walk.level × n, vtd.iotlb.fill, vtd.walk.done     one event per table read
 *   dma.complete | (vtd.fault.* , dma.fault)              the page's outcome
 *
 * Every event a DMA causes carries the request's seq as its cmd_seq, so a request's events are
 * found through an index by cmd_seq even when they interleave with other DMAs and system calls
 * (a DMA that waits for a page request resumes inside the script's write() to the fault fd). No
 * replay is needed: a sorted index of requests finds the one at the cursor by binary search, and
 * only that request's events are read.
 *
 * With ATS (vfio0) each page goes through the device first: a device-TLB hit needs no IOMMU at
 * all; a miss sends an ATS Translation Request (`ats.request`), the IOMMU translates as above and
 * answers (`ats.completion`); "no access" (R = W = 0) makes the device send a page request and,
 * after a Success response, ask again: a new translation of the same page.
 *
 * A nested walk (PGTT 011: `vtd.walk.level` events tagged with a stage) is also drawn as the 2D
 * grid of nested.ts.
 */
import { EventIndex, Incremental } from "../common/incremental.ts";
import { big, indexAtOrBefore, lowerBound, type TraceEvent, type U64 } from "../common/events.ts";
import { nestedWalk, type NestedWalk } from "./nested.ts";

export interface DmaRequestInfo {
  seq: number;
  rid: number;
  /** -1: a request without PASID */
  pasid: number;
  iova: bigint;
  len: number;
  write: boolean;
}

export interface CtxStep {
  seq: number;
  /** "root", "context", "pasid-dir", "pasid" */
  what: string;
  index: number;
  addr: U64;
}

export interface LevelStep {
  seq: number;
  level: number;
  table: U64;
  index: number;
  entry: U64;
  bits: string;
  leaf: boolean;
  ad?: string;
  /** nested walks: which stage's entry */
  stage?: "s1" | "s2";
  /** s2 steps: the GPA translated, and the first-stage level it is for (0: the final page) */
  gpa?: U64;
  fsLevel?: number;
  /** s1 steps: the GPA of the first-stage table read */
  tableGpa?: U64;
}

/** A paging-structure-cache probe (second stage "pwc", first stage "fspwc"). */
export interface PwcProbe {
  seq: number;
  level: number;
  hit: boolean;
  table?: U64;
  tableGpa?: U64;
}

/** What a nested walk did, in order: cache probes and table reads. */
export type TrailItem = { kind: "pwc" | "fspwc"; probe: PwcProbe } | { kind: "step"; step: LevelStep };

export type IotlbProbe =
  | { seq: number; hit: true; set: number; way: number; page: U64; size: number; perm: number }
  | { seq: number; hit: false; set: number };

/** One page of a request: everything the hardware did to translate it. */
export interface Translation {
  /** seq of its first event: the identity views key this walk on */
  seq: number;
  iova: bigint;
  ctxCache: "hit" | "miss" | null;
  pasidCache: "hit" | "miss" | null;
  ctx: CtxStep[];
  iotlb: IotlbProbe | null;
  /** PWC lookups, in probe order (level 2 first); a hit ends the probing */
  pwc: PwcProbe[];
  /** first-stage (nested) PWC lookups */
  fspwc: PwcProbe[];
  levels: LevelStep[];
  /** probes and reads in the order they happened (for the nested grid) */
  trail: TrailItem[];
  done: { seq: number; pa: U64; size: number; perm: number; reads: number; gpa?: U64; fsSize?: number; ssSize?: number } | null;
  fault: { seq: number; reason: number; name: string } | null;
  complete: { seq: number; pa: U64; len: number } | null;
  /** a request to the interrupt window (0xFEEx_xxxx): an MSI, never translated */
  interrupt: boolean;
  /** the device's own TLB (ATS devices): hit, or miss and why */
  devtlb: { seq: number; hit: boolean; size?: number; perm?: number } | null;
  /** the ATS Translation Request sent on a device-TLB miss, and its completion */
  ats: { seq: number } | null;
  atsDone: { seq: number; pa: U64; size: number; perm: number; status: string; reason?: number } | null;
  /** a page request the device sent after a "no access" completion, and the response it got */
  pri: { seq: number; group: number } | null;
  priResponse: { seq: number; code: number; name: string } | null;
  /** the translation is a nested one (PGTT 011): walk steps tagged by stage, or an IOTLB hit on a nested domain */
  nested: boolean;
}

export const LEVEL_NAMES: Record<number, string> = { 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT" };

/**
 * How a level of the walk went:
 *  read     its entry was read and pointed to the next table
 *  leaf     its entry was read and ended the walk (a 4 KiB PTE, or PS = 1: a 2 MiB / 1 GiB page)
 *  fault    its entry was read and the walk faulted on it
 *  pwc      not read: the paging-structure cache had this level's entry
 *  iotlb    not read: the IOTLB had the whole translation
 *  devtlb   not read: the device's own TLB had the translation (ATS): the IOMMU was not asked
 *  large    not needed: a large page above ended the walk
 *  pending  not read yet: the cursor is inside the walk
 *  unreached  not read: the translation ended (faulted) before this level
 */
export type LevelStatus = "read" | "leaf" | "fault" | "pwc" | "iotlb" | "devtlb" | "large" | "pending" | "unreached";

export interface LevelRow {
  level: number;
  name: string;
  /** the entry index this level uses: its 9-bit field of the IOVA */
  index: number;
  status: LevelStatus;
  step: LevelStep | null;
  /** for the deepest PWC hit: the next table's address it held */
  cachedNext?: U64;
}

export type WalkOutcome =
  | { kind: "page"; pa: U64; size: number; perm: number; from: "walk" | "iotlb" | "devtlb" }
  | { kind: "fault"; reason: number; name: string; level: number | null }
  /** ATS "no access" (R = W = 0, nothing recorded): the device asks for the page with PRI */
  | { kind: "page-request"; level: number | null; group: number | null; response: { code: number; name: string } | null }
  | { kind: "interrupt" }
  | { kind: "pending" };

export interface IovaField {
  name: string;
  /** bit range, inclusive */
  hi: number;
  lo: number;
  value: number;
  /** the level that uses it as an index (0: the page offset) */
  level: number;
}

export interface WalkState {
  request: DmaRequestInfo | null;
  translation: Translation | null;
  /** 1-based page of the request the translation is for */
  page: number;
  /** the IOVA shown: the translation's, or the request's before its first page */
  iova: bigint | null;
  fields: IovaField[];
  levels: LevelRow[];
  outcome: WalkOutcome | null;
  /** the cursor is inside this translation: more of it is still to come */
  inProgress: boolean;
  /** the 2D grid of a nested translation (null for a second-stage-only one) */
  nested: NestedWalk | null;
}

/** The 48-bit IOVA sliced as the 4-level second-stage walk uses it: 9|9|9|9|12. */
export function iovaFields(iova: bigint): IovaField[] {
  const field = (name: string, hi: number, lo: number, level: number): IovaField => ({
    name, hi, lo, level, value: Number((iova >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n)),
  });
  return [field("PML4", 47, 39, 4), field("PDPT", 38, 30, 3), field("PD", 29, 21, 2), field("PT", 20, 12, 1), field("offset", 11, 0, 0)];
}

function newTranslation(seq: number, iova: bigint): Translation {
  return {
    seq, iova, ctxCache: null, pasidCache: null, ctx: [], iotlb: null, pwc: [], fspwc: [], levels: [], trail: [],
    done: null, fault: null, complete: null, interrupt: false,
    devtlb: null, ats: null, atsDone: null, pri: null, priResponse: null, nested: false,
  };
}

/** Fold one event of a request into its current translation. Returns false for events that are not part of a translation. */
function foldInto(t: Translation, e: TraceEvent): boolean {
  // after the ATS completion the IOMMU is done with this page: its later lookups (the page
  // request's context check) belong to no translation
  if (t.atsDone && e.k.startsWith("vtd.")) return false;
  switch (e.k) {
    case "vtd.ctxcache.hit":
    case "vtd.ctxcache.miss":
      t.ctxCache = e.k === "vtd.ctxcache.hit" ? "hit" : "miss";
      return true;
    case "vtd.pasidcache.hit":
    case "vtd.pasidcache.miss":
      t.pasidCache = e.k === "vtd.pasidcache.hit" ? "hit" : "miss";
      return true;
    case "vtd.ctx.read":
      t.ctx.push({ seq: e.seq, what: e.what, index: e.index, addr: e.addr });
      return true;
    case "vtd.iotlb.hit":
      t.iotlb = { seq: e.seq, hit: true, set: e.set, way: e.way, page: e.page, size: e.size, perm: e.perm };
      return true;
    case "vtd.iotlb.miss":
      t.iotlb = { seq: e.seq, hit: false, set: e.set };
      return true;
    case "vtd.pwc.hit":
    case "vtd.pwc.miss": {
      const probe: PwcProbe = e.k === "vtd.pwc.hit" ? { seq: e.seq, level: e.level, hit: true, table: e.table } : { seq: e.seq, level: e.level, hit: false };
      t.pwc.push(probe);
      t.trail.push({ kind: "pwc", probe });
      return true;
    }
    case "vtd.fspwc.hit":
    case "vtd.fspwc.miss": {
      const probe: PwcProbe = e.k === "vtd.fspwc.hit"
        ? { seq: e.seq, level: e.level, hit: true, table: e.table, tableGpa: e.tableGpa }
        : { seq: e.seq, level: e.level, hit: false };
      t.fspwc.push(probe);
      t.trail.push({ kind: "fspwc", probe });
      t.nested = true;
      return true;
    }
    case "vtd.walk.level": {
      t.iova = big(e.iova);
      const step: LevelStep = { seq: e.seq, level: e.level, table: e.table, index: e.index, entry: e.entry, bits: e.bits, leaf: e.leaf };
      if (e.ad !== undefined) step.ad = e.ad;
      if (e.stage) {
        step.stage = e.stage;
        if (e.gpa !== undefined) step.gpa = e.gpa;
        if (e.fsLevel !== undefined) step.fsLevel = e.fsLevel;
        if (e.tableGpa !== undefined) step.tableGpa = e.tableGpa;
        t.nested = true;
      }
      t.levels.push(step);
      t.trail.push({ kind: "step", step });
      return true;
    }
    case "vtd.walk.done":
      t.done = { seq: e.seq, pa: e.pa, size: e.size, perm: e.perm, reads: e.reads };
      if (e.gpa !== undefined) Object.assign(t.done, { gpa: e.gpa, fsSize: e.fsSize, ssSize: e.ssSize });
      return true;
    case "devtlb.hit":
      t.devtlb = { seq: e.seq, hit: true, size: e.size, perm: e.perm };
      return true;
    case "devtlb.miss":
      t.devtlb = { seq: e.seq, hit: false };
      return true;
    case "ats.request":
      t.ats = { seq: e.seq };
      return true;
    case "ats.completion":
      t.atsDone = { seq: e.seq, pa: e.pa, size: e.size, perm: e.perm, status: e.status, reason: e.reason };
      return true;
    case "pri.request":
      t.pri = { seq: e.seq, group: e.group };
      return true;
    case "pri.response":
      t.priResponse = { seq: e.seq, code: e.code, name: e.name };
      return true;
    case "vtd.intr.msi":
    case "vtd.intr.read":
      t.interrupt = true;
      return true;
    case "dma.fault":
      t.iova = big(e.iova);
      t.fault = { seq: e.seq, reason: e.reason, name: e.name };
      return true;
    case "dma.complete":
      t.iova = big(e.iova);
      t.complete = { seq: e.seq, pa: e.pa, len: e.len };
      return true;
    default:
      // fills, PWC fills, fault recording: part of the translation, nothing the walk view shows
      return e.k.startsWith("vtd.");
  }
}

/** Does `e` start the next translation of the request rather than continue `t`? */
function startsNew(t: Translation | null, e: TraceEvent): boolean {
  if (!t || t.complete || t.fault) return true;
  // a device-TLB lookup or an ATS request begins a page's (re)translation
  if (e.k === "devtlb.hit" || e.k === "devtlb.miss") return t.devtlb !== null || t.ats !== null;
  if (e.k === "ats.request") return t.ats !== null;
  return false;
}

/** The level whose entry maps a page of `size` bytes: 4 KiB → 1, 2 MiB → 2, 1 GiB → 3. */
function levelOfSize(size: number): number {
  return 1 + Math.round(Math.log2(size / 4096) / 9);
}

/** The per-level story of a translation, PML4 first. */
export function levelRows(t: Translation | null, iova: bigint, inProgress: boolean): LevelRow[] {
  const fields = iovaFields(iova);
  // a nested walk's levels are the guest's (first-stage) ones; its second-stage reads are in the grid
  const steps = t ? (t.nested ? t.levels.filter((l) => l.stage === "s1") : t.levels) : [];
  const pwcHit = (t?.nested ? t.fspwc : t?.pwc)?.find((p) => p.hit);
  const leaf = steps.find((l) => l.leaf);
  const last = steps[steps.length - 1];
  const failed = !!t && (!!t.fault || (!!t.atsDone && t.atsDone.perm === 0 && t.atsDone.status === "success"));
  return [4, 3, 2, 1].map((level) => {
    const step = steps.find((l) => l.level === level) ?? null;
    const row: LevelRow = { level, name: LEVEL_NAMES[level], index: fields[4 - level].value, status: "unreached", step };
    if (step) row.status = failed && step === last && !(t!.nested && t!.levels[t!.levels.length - 1] !== step) ? "fault" : step.leaf ? "leaf" : "read";
    else if (t?.devtlb?.hit) row.status = level >= levelOfSize(t.devtlb.size ?? 4096) ? "devtlb" : "large";
    else if (t?.iotlb?.hit) row.status = level >= levelOfSize(t.iotlb.size) ? "iotlb" : "large";
    else if (pwcHit && level >= pwcHit.level) {
      row.status = "pwc";
      if (level === pwcHit.level) row.cachedNext = pwcHit.table;
    } else if (leaf && level < leaf.level) row.status = "large";
    else if (inProgress) row.status = "pending";
    return row;
  });
}

function outcomeOf(t: Translation): WalkOutcome {
  if (t.interrupt) return { kind: "interrupt" };
  const last = t.levels[t.levels.length - 1];
  if (t.fault) {
    // the level whose entry failed; null for a fault before the walk (context, PASID, cached permissions)
    return { kind: "fault", reason: t.fault.reason, name: t.fault.name, level: last?.level ?? null };
  }
  if (t.atsDone && t.atsDone.status === "success" && t.atsDone.perm === 0) {
    return { kind: "page-request", level: last?.level ?? null, group: t.pri?.group ?? null, response: t.priResponse ? { code: t.priResponse.code, name: t.priResponse.name } : null };
  }
  if (t.done) return { kind: "page", pa: t.done.pa, size: t.done.size, perm: t.done.perm, from: "walk" };
  if (t.iotlb?.hit && t.complete) return { kind: "page", pa: t.complete.pa, size: t.iotlb.size, perm: t.iotlb.perm, from: "iotlb" };
  if (t.devtlb?.hit && t.complete) return { kind: "page", pa: t.complete.pa, size: t.devtlb.size ?? 4096, perm: t.devtlb.perm ?? 0, from: "devtlb" };
  if (t.iotlb?.hit && t.atsDone) return { kind: "page", pa: t.atsDone.pa, size: t.iotlb.size, perm: t.iotlb.perm, from: "iotlb" };
  return { kind: "pending" };
}

const EMPTY: WalkState = { request: null, translation: null, page: 0, iova: null, fields: [], levels: [], outcome: null, inProgress: false, nested: null };

/**
 * The walk at cursor index `idx`. `requestIdx` is the index of the request shown (-1: none);
 * `positions` the ascending indices of the events it caused (cmd_seq = its seq), or null to take
 * every event after it in order; `nestedDid` tells whether a domain id was nested at the time (for
 * an IOTLB hit, which reads no table to say so).
 */
export function walkAt(
  events: readonly TraceEvent[], requestIdx: number, idx: number,
  positions: readonly number[] | null = null, nestedDid: (did: number) => boolean = () => false,
): WalkState {
  if (requestIdx < 0) return EMPTY;
  const r = events[requestIdx] as TraceEvent<"dma.request">;
  const request: DmaRequestInfo = { seq: r.seq, rid: r.rid, pasid: r.pasid, iova: big(r.iova), len: r.len, write: r.write };
  let current: Translation | null = null;
  let page = 0;
  let moved = 0; // bytes completed so far
  let ended = request.len === 0;
  const count = positions ? lowerBound(positions, idx + 1) : Math.min(idx, events.length - 1) - requestIdx;
  for (let k = 0; k < count && !ended; k++) {
    const e = positions ? events[positions[k]] : events[requestIdx + 1 + k];
    if (!positions && (e.k === "dma.request" || e.k === "sys.enter" || e.k.startsWith("script."))) {
      ended = true; // defensive: a request always ends before anything else starts
      break;
    }
    if (e.k === "dma.request") continue;
    // a page's translation starts with the first event after the previous page's outcome
    const t: Translation = startsNew(current, e) ? newTranslation(e.seq, request.iova + BigInt(moved)) : current!;
    if (!foldInto(t, e)) continue;
    if (e.k === "vtd.iotlb.hit" && nestedDid(e.did)) t.nested = true;
    if (t !== current) {
      current = t;
      page++;
    }
    if (e.k === "dma.complete") {
      moved += e.len;
      ended = moved >= request.len;
    } else if (e.k === "dma.fault") ended = true;
  }
  const inProgress = !ended && (!current || (!current.complete && !current.fault && !current.atsDone));
  const iova = current?.iova ?? request.iova;
  return {
    request,
    translation: current,
    page,
    iova,
    fields: iovaFields(iova),
    levels: levelRows(current, iova, inProgress),
    outcome: current ? outcomeOf(current) : inProgress ? { kind: "pending" } : null,
    inProgress,
    nested: current?.nested ? nestedWalk(current, inProgress) : null,
  };
}

/** Statuses of a level the translation went through: its entry was read, or cached (PWC, IOTLB). */
const PASSED: ReadonlySet<LevelStatus> = new Set(["read", "leaf", "fault", "pwc", "iotlb", "devtlb"]);

/**
 * `data-level-index`: "level:index" of every level the translation went through, PML4 first:
 * the entry index it used there, whether the entry was read from memory or came from a cache
 * (for a 4 KiB page hit in the IOTLB, all four levels, as its walk indexed them).
 */
export function levelIndexAttr(s: WalkState): string {
  return s.levels.filter((r) => PASSED.has(r.status)).map((r) => `${r.level}:${r.step?.index ?? r.index}`).join(",");
}

/**
 * The DMA requests of a trace and the events each caused (by cmd_seq), plus the domains the
 * driver attached with PGTT 011 (nested), by DID.
 */
export class DmaIndex extends Incremental {
  readonly requests = new EventIndex((e) => e.k === "dma.request");
  /** request seq → ascending indices of the events it caused */
  byRequest = new Map<number, number[]>();
  /** did → [index, pgtt] of each iommu.attach of it, ascending */
  private attaches = new Map<number, [number, number][]>();

  protected reset(): void {
    this.byRequest = new Map();
    this.attaches = new Map();
  }

  protected add(e: TraceEvent, index: number): void {
    if (e.k === "dma.request") this.byRequest.set(e.seq, []);
    else if (e.cmd_seq) this.byRequest.get(e.cmd_seq)?.push(index);
    if (e.k === "iommu.attach") {
      const list = this.attaches.get(e.did) ?? [];
      list.push([index, e.pgtt]);
      this.attaches.set(e.did, list);
    }
  }

  override update(events: readonly TraceEvent[]): this {
    this.requests.update(events);
    return super.update(events);
  }

  /** Was `did` last attached as a nested domain (PGTT 011) at or before trace index `idx`? */
  nestedAt(did: number, idx: number): boolean {
    const list = this.attaches.get(did);
    if (!list) return false;
    for (let k = list.length - 1; k >= 0; k--) if (list[k][0] <= idx) return list[k][1] === 3;
    return false;
  }

  /** The request shown at trace index `idx`: the one the event there belongs to, else the last one begun. */
  requestAt(events: readonly TraceEvent[], idx: number): number {
    const e = events[idx];
    if (e && e.cmd_seq && e.k !== "dma.request" && this.byRequest.has(e.cmd_seq)) {
      const i = indexAtOrBefore(events, e.cmd_seq);
      if (i >= 0 && events[i].seq === e.cmd_seq) return i;
    }
    return this.requests.lastAtOrBefore(idx);
  }
}

/** A walk model bound to one trace: an incremental index of requests plus the last answer. */
export function createWalkModel() {
  const index = new DmaIndex();
  let memo: { events: readonly TraceEvent[]; idx: number; state: WalkState } | null = null;
  return {
    /** The walk at the last event with seq ≤ `seq`. */
    at(events: readonly TraceEvent[], seq: number): WalkState {
      const idx = indexAtOrBefore(events, seq);
      if (memo && memo.events === events && memo.idx === idx) return memo.state;
      index.update(events);
      const req = index.requestAt(events, idx);
      const positions = req >= 0 ? index.byRequest.get(events[req].seq) ?? null : null;
      const state = walkAt(events, req, idx, positions, (did) => index.nestedAt(did, idx));
      memo = { events, idx, state };
      return state;
    },
  };
}
