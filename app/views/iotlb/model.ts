/**
 * The IOTLB and the paging-structure caches at the cursor, rebuilt from their events
 * (engine/hw/vtd/iotlb.ts, nested.ts): `vtd.iotlb.fill/evict/inv`, `vtd.pwc.fill/evict/inv` and
 * `vtd.fspwc.fill/evict/inv` change the contents, `hit`/`miss` only count. Slots are the
 * hardware's identity (set, way); an entry's tag is (DID, PASID, page, size) for the IOTLB,
 * (DID, level, tag) for a second-stage PWC and (DID, PASID, level, tag) for the first-stage one.
 *
 * Nested IOTLB entries (the domain was attached with PGTT 011, `iommu.attach`) are marked as
 * such; the `vtd.walk.done` that follows a nested fill gives its GPA and the first- and
 * second-stage leaf sizes (the entry caches the smaller). A `vtd.stale.hit` marks the entry that
 * served it (the hit just before it in the same cache) as stale until that slot is refilled or
 * invalidated, as the detector does (engine/hw/vtd/stale.ts).
 *
 * Time travel replays the events up to the cursor with checkpoints (common/replay.ts); the
 * hit-rate history is a prefix sum over lookups, so any window at any cursor is two binary searches.
 */
import { Incremental } from "../common/incremental.ts";
import { lowerBound, type TraceEvent, type U64 } from "../common/events.ts";
import { Replay, type Reducer } from "../common/replay.ts";

export interface IotlbEntry {
  set: number;
  way: number;
  did: number;
  pasid: number;
  /** IOVA of the page, aligned to its size */
  page: U64;
  size: number;
  perm: number;
  /** seq of the fill that made it */
  seq: number;
  /** a nested (PGTT 011) translation: its GPA and leaf sizes once the walk reported them */
  nested?: { gpa: U64 | null; fsSize: number | null; ssSize: number | null };
}

/** A first-stage (nested) PWC entry: a guest non-leaf entry with its next table already translated. */
export interface FsPwcEntry {
  /** 5 = PML5E, 4 = PML4E, 3 = PDPTE, 2 = PDE */
  level: number;
  way: number;
  did: number;
  pasid: number;
  tag: U64;
  /** the next table: host-physical and guest-physical */
  table: U64;
  tableGpa: U64;
  seq: number;
}

/** A DMA served from a cached translation whose page-table entry changed without an invalidation. */
export interface StaleMark {
  seq: number;
  /** "iotlb", "pwc" or "fspwc" */
  cache: string;
  /** the slot: IOTLB set/way, or PWC level/way (null when the hit that served it is unknown) */
  set: number | null;
  way: number | null;
  did: number;
  pasid: number;
  iova: U64;
  /** the changed entry: its stage, level and physical address, cached and current values */
  stage: string;
  level: number;
  entryPa: U64;
  cached: U64;
  memory: U64;
}

export interface PwcEntry {
  /** 4 = PML4E, 3 = PDPTE, 2 = PDE */
  level: number;
  way: number;
  did: number;
  /** the IOVA bits above what the entry maps */
  tag: U64;
  /** the next table's address */
  table: U64;
  seq: number;
}

export type CacheAction = "hit" | "miss" | "fill" | "evict" | "inv";

/** The latest IOTLB event at or before the cursor, with the tag it concerned. */
export interface IotlbLast {
  kind: CacheAction;
  seq: number;
  set: number;
  /** null for a miss: it concerns the whole set */
  way: number | null;
  did: number;
  pasid: number;
  page: U64;
  size: number | null;
  /** the invalidation descriptor that removed the entry */
  by?: string;
}

export interface PwcLast {
  kind: CacheAction;
  seq: number;
  level: number;
  way: number | null;
  did: number;
  tag: U64;
  by?: string;
  /** first-stage PWC events only */
  pasid?: number;
}

export type Counts = Record<CacheAction, number>;

export interface Geometry {
  sets: number;
  ways: number;
  /** entries per PWC level (0: no PWC) */
  pwcEntries: number;
  /** entries per first-stage (nested) PWC level (0: none) */
  fsPwcEntries: number;
}

/**
 * The VT-d model's default geometry (VTD_HW_DEFAULTS in engine/hw/vtd/hw.ts, 16 sets × 4 ways,
 * 16 PWC entries per level). Not imported: hw.ts would pull the whole hardware model into the page.
 */
export const DEFAULT_GEOMETRY: Geometry = { sets: 16, ways: 4, pwcEntries: 16, fsPwcEntries: 16 };

/** The geometry of a machine's knobs (MachineSlice.machine.knobs), defaults elsewhere. */
export function geometryOf(knobs: Record<string, number>): Geometry {
  return {
    sets: knobs.iotlbSets ?? DEFAULT_GEOMETRY.sets,
    ways: knobs.iotlbWays ?? DEFAULT_GEOMETRY.ways,
    pwcEntries: knobs.pwcEntries ?? DEFAULT_GEOMETRY.pwcEntries,
    fsPwcEntries: knobs.fsPwcEntries ?? DEFAULT_GEOMETRY.fsPwcEntries,
  };
}

export interface IotlbState {
  geometry: Geometry;
  /** "set/way" → entry */
  iotlb: Map<string, IotlbEntry>;
  /** "level/way" → entry */
  pwc: Map<string, PwcEntry>;
  /** "level/way" → first-stage PWC entry */
  fspwc: Map<string, FsPwcEntry>;
  counts: Counts;
  pwcCounts: Counts;
  fspwcCounts: Counts;
  last: IotlbLast | null;
  lastPwc: PwcLast | null;
  lastFspwc: PwcLast | null;
  /** DIDs the driver attached as nested (PGTT 011), with the latest PGTT of each DID */
  pgtt: Map<number, number>;
  /** the latest IOTLB fill and the DMA that made it (a nested walk's done event follows it) */
  lastFill: { key: string; cmd: number } | null;
  /** stale entries still in their slot, by "cache:set/way" (PWC: "cache:level/way") */
  stale: Map<string, StaleMark>;
  /** stale hits up to the cursor */
  staleCount: number;
  lastStale: StaleMark | null;
}

/** The key of a stale mark's slot. */
export function staleKey(cache: string, set: number | null, way: number | null): string {
  return `${cache}:${set}/${way}`;
}

const zero = (): Counts => ({ hit: 0, miss: 0, fill: 0, evict: 0, inv: 0 });

function iotlbReducer(geometry: Geometry): Reducer<IotlbState> {
  return {
    init: () => ({
      geometry: { ...geometry }, iotlb: new Map(), pwc: new Map(), fspwc: new Map(), counts: zero(), pwcCounts: zero(), fspwcCounts: zero(),
      last: null, lastPwc: null, lastFspwc: null, pgtt: new Map(), lastFill: null, stale: new Map(), staleCount: 0, lastStale: null,
    }),
    clone: (s) => ({
      geometry: { ...s.geometry }, iotlb: new Map(s.iotlb), pwc: new Map(s.pwc), fspwc: new Map(s.fspwc),
      counts: { ...s.counts }, pwcCounts: { ...s.pwcCounts }, fspwcCounts: { ...s.fspwcCounts },
      last: s.last, lastPwc: s.lastPwc, lastFspwc: s.lastFspwc, pgtt: new Map(s.pgtt), lastFill: s.lastFill,
      stale: new Map(s.stale), staleCount: s.staleCount, lastStale: s.lastStale,
    }),
    step(s, e) {
      if (e.k.startsWith("vtd.iotlb.")) stepIotlb(s, e);
      else if (e.k.startsWith("vtd.pwc.")) stepPwc(s, e);
      else if (e.k.startsWith("vtd.fspwc.")) stepFsPwc(s, e);
      else if (e.k === "vtd.stale.hit") stepStale(s, e);
      else if (e.k === "iommu.attach") s.pgtt.set(e.did, e.pgtt);
      else if (e.k === "vtd.walk.done" && e.gpa !== undefined && s.lastFill && s.lastFill.cmd === e.cmd_seq) {
        // entries are shared with checkpoints: replace, never mutate
        const entry = s.iotlb.get(s.lastFill.key);
        if (entry) s.iotlb.set(s.lastFill.key, { ...entry, nested: { gpa: e.gpa, fsSize: e.fsSize ?? null, ssSize: e.ssSize ?? null } });
        s.lastFill = null;
      }
    },
  };
}

function stepStale(s: IotlbState, e: TraceEvent<"vtd.stale.hit">): void {
  // the hit that served it is the latest hit of that cache, just before this event
  const hit = e.cache === "iotlb" ? (s.last?.kind === "hit" ? { set: s.last.set, way: s.last.way } : null)
    : e.cache === "pwc" ? (s.lastPwc?.kind === "hit" ? { set: s.lastPwc.level, way: s.lastPwc.way } : null)
    : s.lastFspwc?.kind === "hit" ? { set: s.lastFspwc.level, way: s.lastFspwc.way } : null;
  const mark: StaleMark = {
    seq: e.seq, cache: e.cache, set: hit?.set ?? null, way: hit?.way ?? null, did: e.did, pasid: e.pasid, iova: e.iova,
    stage: e.stage, level: e.level, entryPa: e.entryPa, cached: e.cached, memory: e.memory,
  };
  s.staleCount++;
  s.lastStale = mark;
  s.stale.set(staleKey(mark.cache, mark.set, mark.way), mark);
}

function stepFsPwc(s: IotlbState, e: TraceEvent): void {
  let last: PwcLast;
  switch (e.k) {
    case "vtd.fspwc.hit":
      last = { kind: "hit", seq: e.seq, level: e.level, way: e.way, did: e.did, pasid: e.pasid, tag: e.tag };
      break;
    case "vtd.fspwc.miss":
      last = { kind: "miss", seq: e.seq, level: e.level, way: null, did: e.did, pasid: e.pasid, tag: e.tag };
      break;
    case "vtd.fspwc.fill":
      s.fspwc.set(`${e.level}/${e.way}`, { level: e.level, way: e.way, did: e.did, pasid: e.pasid, tag: e.tag, table: e.table, tableGpa: e.tableGpa, seq: e.seq });
      s.stale.delete(staleKey("fspwc", e.level, e.way));
      last = { kind: "fill", seq: e.seq, level: e.level, way: e.way, did: e.did, pasid: e.pasid, tag: e.tag };
      break;
    case "vtd.fspwc.evict":
    case "vtd.fspwc.inv":
      s.fspwc.delete(`${e.level}/${e.way}`);
      s.stale.delete(staleKey("fspwc", e.level, e.way));
      last = {
        kind: e.k === "vtd.fspwc.evict" ? "evict" : "inv", seq: e.seq, level: e.level, way: e.way, did: e.did, pasid: e.pasid, tag: e.tag,
        by: e.k === "vtd.fspwc.inv" ? e.by : undefined,
      };
      break;
    default:
      return;
  }
  s.fspwcCounts[last.kind]++;
  s.lastFspwc = last;
  if (last.way !== null) s.geometry.fsPwcEntries = Math.max(s.geometry.fsPwcEntries, last.way + 1);
}

function stepIotlb(s: IotlbState, e: TraceEvent): void {
  let last: IotlbLast;
  switch (e.k) {
    case "vtd.iotlb.hit":
      last = { kind: "hit", seq: e.seq, set: e.set, way: e.way, did: e.did, pasid: e.pasid, page: e.page, size: e.size };
      break;
    case "vtd.iotlb.miss":
      last = { kind: "miss", seq: e.seq, set: e.set, way: null, did: e.did, pasid: e.pasid, page: e.page, size: null };
      break;
    case "vtd.iotlb.fill": {
      const entry: IotlbEntry = { set: e.set, way: e.way, did: e.did, pasid: e.pasid, page: e.page, size: e.size, perm: e.perm, seq: e.seq };
      if (s.pgtt.get(e.did) === 3) entry.nested = { gpa: null, fsSize: null, ssSize: null };
      s.iotlb.set(`${e.set}/${e.way}`, entry);
      s.lastFill = { key: `${e.set}/${e.way}`, cmd: e.cmd_seq };
      s.stale.delete(staleKey("iotlb", e.set, e.way));
      last = { kind: "fill", seq: e.seq, set: e.set, way: e.way, did: e.did, pasid: e.pasid, page: e.page, size: e.size };
      break;
    }
    case "vtd.iotlb.evict":
    case "vtd.iotlb.inv":
      s.iotlb.delete(`${e.set}/${e.way}`);
      s.stale.delete(staleKey("iotlb", e.set, e.way));
      last = {
        kind: e.k === "vtd.iotlb.evict" ? "evict" : "inv", seq: e.seq, set: e.set, way: e.way, did: e.did, pasid: e.pasid,
        page: e.page, size: e.size, by: e.k === "vtd.iotlb.inv" ? e.by : undefined,
      };
      break;
    default:
      return;
  }
  s.counts[last.kind]++;
  s.last = last;
  // a machine configured beyond the geometry we were told: grow rather than hide entries
  s.geometry.sets = Math.max(s.geometry.sets, last.set + 1);
  if (last.way !== null) s.geometry.ways = Math.max(s.geometry.ways, last.way + 1);
}

function stepPwc(s: IotlbState, e: TraceEvent): void {
  let last: PwcLast;
  switch (e.k) {
    case "vtd.pwc.hit":
      last = { kind: "hit", seq: e.seq, level: e.level, way: e.way, did: e.did, tag: e.tag };
      break;
    case "vtd.pwc.miss":
      last = { kind: "miss", seq: e.seq, level: e.level, way: null, did: e.did, tag: e.tag };
      break;
    case "vtd.pwc.fill":
      s.pwc.set(`${e.level}/${e.way}`, { level: e.level, way: e.way, did: e.did, tag: e.tag, table: e.table, seq: e.seq });
      s.stale.delete(staleKey("pwc", e.level, e.way));
      last = { kind: "fill", seq: e.seq, level: e.level, way: e.way, did: e.did, tag: e.tag };
      break;
    case "vtd.pwc.evict":
    case "vtd.pwc.inv":
      s.pwc.delete(`${e.level}/${e.way}`);
      s.stale.delete(staleKey("pwc", e.level, e.way));
      last = { kind: e.k === "vtd.pwc.evict" ? "evict" : "inv", seq: e.seq, level: e.level, way: e.way, did: e.did, tag: e.tag, by: e.k === "vtd.pwc.inv" ? e.by : undefined };
      break;
    default:
      return;
  }
  s.pwcCounts[last.kind]++;
  s.lastPwc = last;
  if (last.way !== null) s.geometry.pwcEntries = Math.max(s.geometry.pwcEntries, last.way + 1);
}

/** One window of the hit-rate history. */
export interface RateWindow {
  /** simulated time, ns: [t0, t1) */
  t0: number;
  t1: number;
  hits: number;
  lookups: number;
}

/** Every IOTLB lookup in the trace: when, and how many hits so far (a prefix sum). */
export class LookupHistory extends Incremental {
  /** trace index of each lookup */
  private index: number[] = [];
  private time: number[] = [];
  /** hits among lookups [0, k] */
  private hitsUpTo: number[] = [];

  protected reset(): void {
    this.index = [];
    this.time = [];
    this.hitsUpTo = [];
  }

  protected add(e: TraceEvent, i: number): void {
    if (e.k !== "vtd.iotlb.hit" && e.k !== "vtd.iotlb.miss") return;
    const before = this.hitsUpTo.length ? this.hitsUpTo[this.hitsUpTo.length - 1] : 0;
    this.index.push(i);
    this.time.push(e.t);
    this.hitsUpTo.push(before + (e.k === "vtd.iotlb.hit" ? 1 : 0));
  }

  /** Hit rate over `n` equal windows of simulated time, from the first lookup to the last at or before trace index `idx`. */
  windows(idx: number, n: number): RateWindow[] {
    const count = lowerBound(this.index, idx + 1);
    if (!count) return [];
    const start = this.time[0];
    const end = this.time[count - 1] + 1; // half-open: the last lookup falls inside
    const width = (end - start) / n;
    const hitsBefore = (k: number) => (k > 0 ? this.hitsUpTo[k - 1] : 0);
    const out: RateWindow[] = [];
    let lo = 0;
    for (let w = 0; w < n; w++) {
      const t1 = w === n - 1 ? end : start + (w + 1) * width;
      const hi = w === n - 1 ? count : lowerBound(this.time, t1, lo, count);
      out.push({ t0: start + w * width, t1, hits: hitsBefore(hi) - hitsBefore(lo), lookups: hi - lo });
      lo = hi;
    }
    return out;
  }
}

/** The IOTLB view's model over one trace: cache contents by replay, lookup history by prefix sums. */
export function createIotlbModel(geometry: Geometry = DEFAULT_GEOMETRY) {
  const replay = new Replay(iotlbReducer(geometry));
  const history = new LookupHistory();
  return {
    geometry,
    /** The caches after the event at trace index `idx`. Owned by the model: read, don't keep. */
    atIndex: (events: readonly TraceEvent[], idx: number): IotlbState => replay.atIndex(events, idx),
    /** Hit-rate windows up to trace index `idx`. */
    rates: (events: readonly TraceEvent[], idx: number, n: number): RateWindow[] => history.update(events).windows(idx, n),
  };
}
