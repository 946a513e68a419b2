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
 * DMA events are emitted outside any system call (cmd_seq 0), so they are linked by seq order: a
 * request's events run from its `dma.request` to its `dma.fault` or to the `dma.complete` that
 * covers its last byte. No replay is needed: a sorted index of requests finds the one at the
 * cursor by binary search, and only that request's events are read.
 */
import { EventIndex } from "../common/incremental.ts";
import { big, indexAtOrBefore, type TraceEvent, type U64 } from "../common/events.ts";

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
}

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
  pwc: { seq: number; level: number; hit: boolean; table?: U64 }[];
  levels: LevelStep[];
  done: { seq: number; pa: U64; size: number; perm: number; reads: number } | null;
  fault: { seq: number; reason: number; name: string } | null;
  complete: { seq: number; pa: U64; len: number } | null;
  /** a request to the interrupt window (0xFEEx_xxxx): an MSI, never translated */
  interrupt: boolean;
}

export const LEVEL_NAMES: Record<number, string> = { 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT" };

/**
 * How a level of the walk went:
 *  read     its entry was read and pointed to the next table
 *  leaf     its entry was read and ended the walk (a 4 KiB PTE, or PS = 1: a 2 MiB / 1 GiB page)
 *  fault    its entry was read and the walk faulted on it
 *  pwc      not read: the paging-structure cache had this level's entry
 *  iotlb    not read: the IOTLB had the whole translation
 *  large    not needed: a large page above ended the walk
 *  pending  not read yet: the cursor is inside the walk
 *  unreached  not read: the translation ended (faulted) before this level
 */
export type LevelStatus = "read" | "leaf" | "fault" | "pwc" | "iotlb" | "large" | "pending" | "unreached";

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
  | { kind: "page"; pa: U64; size: number; perm: number; from: "walk" | "iotlb" }
  | { kind: "fault"; reason: number; name: string; level: number | null }
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
    seq, iova, ctxCache: null, pasidCache: null, ctx: [], iotlb: null, pwc: [], levels: [],
    done: null, fault: null, complete: null, interrupt: false,
  };
}

/** Fold one event of a request into its current translation. Returns false for events that are not part of a translation. */
function foldInto(t: Translation, e: TraceEvent): boolean {
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
      t.pwc.push({ seq: e.seq, level: e.level, hit: true, table: e.table });
      return true;
    case "vtd.pwc.miss":
      t.pwc.push({ seq: e.seq, level: e.level, hit: false });
      return true;
    case "vtd.walk.level":
      t.iova = big(e.iova);
      t.levels.push({ seq: e.seq, level: e.level, table: e.table, index: e.index, entry: e.entry, bits: e.bits, leaf: e.leaf, ad: e.ad });
      return true;
    case "vtd.walk.done":
      t.done = { seq: e.seq, pa: e.pa, size: e.size, perm: e.perm, reads: e.reads };
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

/** The level whose entry maps a page of `size` bytes: 4 KiB → 1, 2 MiB → 2, 1 GiB → 3. */
function levelOfSize(size: number): number {
  return 1 + Math.round(Math.log2(size / 4096) / 9);
}

/** The per-level story of a translation, PML4 first. */
export function levelRows(t: Translation | null, iova: bigint, inProgress: boolean): LevelRow[] {
  const fields = iovaFields(iova);
  const pwcHit = t?.pwc.find((p) => p.hit);
  const leaf = t?.levels.find((l) => l.leaf);
  const last = t?.levels[t.levels.length - 1];
  return [4, 3, 2, 1].map((level) => {
    const step = t?.levels.find((l) => l.level === level) ?? null;
    const row: LevelRow = { level, name: LEVEL_NAMES[level], index: fields[4 - level].value, status: "unreached", step };
    if (step) row.status = t!.fault && step === last ? "fault" : step.leaf ? "leaf" : "read";
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
  if (t.fault) {
    // the level whose entry failed; null for a fault before the walk (context, PASID, cached permissions)
    const last = t.levels[t.levels.length - 1];
    return { kind: "fault", reason: t.fault.reason, name: t.fault.name, level: last?.level ?? null };
  }
  if (t.done) return { kind: "page", pa: t.done.pa, size: t.done.size, perm: t.done.perm, from: "walk" };
  if (t.iotlb?.hit && t.complete) return { kind: "page", pa: t.complete.pa, size: t.iotlb.size, perm: t.iotlb.perm, from: "iotlb" };
  return { kind: "pending" };
}

const EMPTY: WalkState = { request: null, translation: null, page: 0, iova: null, fields: [], levels: [], outcome: null, inProgress: false };

/**
 * The walk at cursor index `idx`. `requestIdx` is the index of the last dma.request at or before
 * it (-1: none).
 */
export function walkAt(events: readonly TraceEvent[], requestIdx: number, idx: number): WalkState {
  if (requestIdx < 0) return EMPTY;
  const r = events[requestIdx] as TraceEvent<"dma.request">;
  const request: DmaRequestInfo = { seq: r.seq, rid: r.rid, pasid: r.pasid, iova: big(r.iova), len: r.len, write: r.write };
  let current: Translation | null = null;
  let page = 0;
  let moved = 0; // bytes completed so far
  let ended = request.len === 0;
  for (let i = requestIdx + 1; i <= idx && i < events.length && !ended; i++) {
    const e = events[i];
    if (e.k === "dma.request" || e.k === "sys.enter" || e.k.startsWith("script.")) {
      ended = true; // defensive: a request always ends before anything else starts
      break;
    }
    // a page's translation starts with the first event after the previous page's outcome
    const t: Translation = !current || current.complete || current.fault ? newTranslation(e.seq, request.iova + BigInt(moved)) : current;
    if (!foldInto(t, e)) continue;
    if (t !== current) {
      current = t;
      page++;
    }
    if (e.k === "dma.complete") {
      moved += e.len;
      ended = moved >= request.len;
    } else if (e.k === "dma.fault") ended = true;
  }
  const inProgress = !ended && (!current || (!current.complete && !current.fault));
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
  };
}

/** Statuses of a level the translation went through: its entry was read, or cached (PWC, IOTLB). */
const PASSED: ReadonlySet<LevelStatus> = new Set(["read", "leaf", "fault", "pwc", "iotlb"]);

/**
 * `data-level-index`: "level:index" of every level the translation went through, PML4 first:
 * the entry index it used there, whether the entry was read from memory or came from a cache
 * (for a 4 KiB page hit in the IOTLB, all four levels, as its walk indexed them).
 */
export function levelIndexAttr(s: WalkState): string {
  return s.levels.filter((r) => PASSED.has(r.status)).map((r) => `${r.level}:${r.step?.index ?? r.index}`).join(",");
}

/** A walk model bound to one trace: an incremental index of requests plus the last answer. */
export function createWalkModel() {
  const requests = new EventIndex((e) => e.k === "dma.request");
  let memo: { events: readonly TraceEvent[]; idx: number; state: WalkState } | null = null;
  return {
    /** The walk at the last event with seq ≤ `seq`. */
    at(events: readonly TraceEvent[], seq: number): WalkState {
      const idx = indexAtOrBefore(events, seq);
      if (memo && memo.events === events && memo.idx === idx) return memo.state;
      requests.update(events);
      const state = walkAt(events, requests.lastAtOrBefore(idx), idx);
      memo = { events, idx, state };
      return state;
    },
  };
}
