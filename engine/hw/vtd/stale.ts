/**
 * The stale-translation detector: a teaching instrument, not a hardware unit. Real hardware keeps
 * using what its caches hold until software invalidates it (that is the point of iotlb.ts); this
 * unit watches for exactly that moment and says so: a DMA served from a cached translation (an
 * IOTLB entry, a second-stage paging-structure-cache entry, or a first-stage/nested PWC entry)
 * whose page-table entries have changed in memory since the cache was filled, with no invalidation
 * in between, raises `vtd.stale.hit` with what was cached and what memory says now. The classic
 * bug — a guest edits its page table, forgets IOMMU_HWPT_INVALIDATE, the device still reaches the
 * old page — becomes one event. It never changes what the hardware does.
 *
 * How it stays cheap
 *  - Every walk records the entries it read (physical address, value, stage, level) in a scratch
 *    list (`walk`); a PWC hit appends the entries that PWC entry was built from. A cache fill saves
 *    the list so far into that slot's dependency record (`DepStore`), together with each entry's
 *    frame *write generation* (PhysMem.watch: frames holding page tables are watched, and every
 *    write to a watched frame bumps its generation and the global `watchedWrites` counter).
 *  - A hit first compares the slot's stamp with `watchedWrites`: equal means no watched frame was
 *    written since the slot was last validated, one number for the whole check. Otherwise only
 *    entries whose frame generation moved are re-read and compared.
 *  - Differences in the accessed/dirty bits are not staleness (hardware sets them itself: SS A/D
 *    bits 8/9, FS A/D bits 5/6); the entry's generation is refreshed and nothing is reported.
 *  - A slot found stale stays stale until it is refilled; every later hit through it is reported.
 *  - With the knob `staleDetector: false` the unit does not exist (the walker's and the IOTLB's
 *    hooks test a null), and nothing is watched.
 *
 * Cost: hits, one comparison; walks, one frame-generation lookup and a few typed-array stores per
 * entry read (about a third more simulation time on a walk that misses every cache — the
 * dma.translate.walk-miss bench row measures it with the detector on, as the default is).
 *
 * Limits: context and PASID entries are not tracked (their caches have their own invalidations);
 * a device's own TLB (ATS, engine/hw/ats.ts) is not watched: a stale device-TLB entry is the
 * device's, reached through its own invalidations; a dependency list holds at most DEPS_MAX
 * entries (a 5×4 nested walk with every A/D update re-walked could need more; the excess is not
 * tracked).
 */
import type { PhysMem } from "../memory.ts";
import type { Trace } from "../../trace/events.ts";
import { u64hl } from "./tables.ts";

/** Which stage's format a dependency entry has. */
export const DEP_SS = 0;
export const DEP_FS = 1;
const AD_MASK = [(1 << 8) | (1 << 9), (1 << 5) | (1 << 6)];
export const DEPS_MAX = 48;

/** An ordered list of page-table entries one walk read. */
export class DepList {
  n = 0;
  readonly pa = new Float64Array(DEPS_MAX);
  readonly lo = new Uint32Array(DEPS_MAX);
  readonly hi = new Uint32Array(DEPS_MAX);
  readonly gen = new Float64Array(DEPS_MAX);
  readonly kind = new Uint8Array(DEPS_MAX);
  readonly level = new Uint8Array(DEPS_MAX);

  reset(): void {
    this.n = 0;
  }

  push(mem: PhysMem, pa: number, lo: number, hi: number, kind: number, level: number): void {
    const i = this.n;
    if (i >= DEPS_MAX) return;
    this.pa[i] = pa;
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.gen[i] = mem.watch(pa);
    this.kind[i] = kind;
    this.level[i] = level;
    this.n = i + 1;
  }
}

/** Dependency records of one cache, by slot. */
export class DepStore {
  readonly count: Uint8Array;
  readonly pa: Float64Array;
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly gen: Float64Array;
  readonly kind: Uint8Array;
  readonly level: Uint8Array;
  /** PhysMem.watchedWrites when the slot was last validated */
  readonly stamp: Float64Array;
  /** index of the first stale dependency, or -1 */
  readonly stale: Int16Array;
  private readonly w = { lo: 0, hi: 0 };

  constructor(readonly slots: number) {
    const n = slots * DEPS_MAX;
    this.count = new Uint8Array(slots);
    this.pa = new Float64Array(n);
    this.lo = new Uint32Array(n);
    this.hi = new Uint32Array(n);
    this.gen = new Float64Array(n);
    this.kind = new Uint8Array(n);
    this.level = new Uint8Array(n);
    this.stamp = new Float64Array(slots).fill(-1);
    this.stale = new Int16Array(slots).fill(-1);
  }

  /** A fill: the slot now depends on the entries [from, list.n) of `list`. */
  save(slot: number, list: DepList, mem: PhysMem, from = 0): void {
    const base = slot * DEPS_MAX;
    const n = list.n - from;
    for (let i = 0; i < n; i++) {
      this.pa[base + i] = list.pa[from + i];
      this.lo[base + i] = list.lo[from + i];
      this.hi[base + i] = list.hi[from + i];
      this.gen[base + i] = list.gen[from + i];
      this.kind[base + i] = list.kind[from + i];
      this.level[base + i] = list.level[from + i];
    }
    this.count[slot] = n;
    this.stamp[slot] = mem.watchedWrites;
    this.stale[slot] = -1;
  }

  /** A PWC hit: the walk continues from this slot, so what it builds depends on the slot's entries too. */
  appendTo(slot: number, list: DepList): void {
    const base = slot * DEPS_MAX;
    for (let i = 0; i < this.count[slot] && list.n < DEPS_MAX; i++) {
      const j = list.n++;
      list.pa[j] = this.pa[base + i];
      list.lo[j] = this.lo[base + i];
      list.hi[j] = this.hi[base + i];
      list.gen[j] = this.gen[base + i];
      list.kind[j] = this.kind[base + i];
      list.level[j] = this.level[base + i];
    }
  }

  /** Compare the slot's entries with memory; returns the index of a stale one, or -1. */
  check(slot: number, mem: PhysMem): number {
    const ww = mem.watchedWrites;
    if (this.stamp[slot] === ww) return this.stale[slot];
    this.stamp[slot] = ww;
    if (this.stale[slot] >= 0) return this.stale[slot];
    const base = slot * DEPS_MAX;
    const w = this.w;
    for (let i = 0; i < this.count[slot]; i++) {
      const k = base + i;
      const pa = this.pa[k];
      const g = mem.generation(pa);
      if (g === this.gen[k]) continue;
      mem.read64(pa, w);
      if (((w.lo ^ this.lo[k]) & ~AD_MASK[this.kind[k]]) !== 0 || w.hi !== this.hi[k]) {
        this.stale[slot] = i;
        return i;
      }
      this.gen[k] = g; // only A/D bits moved: the hardware's own updates
    }
    return -1;
  }
}

/** Counters for views, tests and benchmarks. */
export interface StaleStats {
  staleHits: number;
}

/** The detector: dependency stores for the IOTLB and each PWC level, and the walk's scratch list. */
export class VtdStaleDetector {
  /** the entries read by the translation in progress */
  readonly walk = new DepList();
  readonly iotlb: DepStore;
  /** second-stage PWC, by level (2..4) */
  readonly pwc: (DepStore | null)[];
  /** first-stage / nested PWC, by level (2..5) */
  readonly fspwc: (DepStore | null)[];
  staleHits = 0;
  private readonly w = { lo: 0, hi: 0 };

  constructor(
    private readonly mem: PhysMem,
    private readonly trace: Trace,
    iotlbSlots: number,
    pwcSlots: number,
    fspwcSlots: number,
  ) {
    this.iotlb = new DepStore(iotlbSlots);
    this.pwc = [null, null];
    this.fspwc = [null, null];
    for (let l = 2; l <= 5; l++) {
      if (l <= 4) this.pwc.push(pwcSlots > 0 ? new DepStore(pwcSlots) : null);
      this.fspwc.push(fspwcSlots > 0 ? new DepStore(fspwcSlots) : null);
    }
  }

  /** Record an entry the current walk read from memory. */
  read(pa: number, lo: number, hi: number, kind: number, level: number): void {
    this.walk.push(this.mem, pa, lo, hi, kind, level);
  }

  /** An IOTLB hit on `slot` serves a translation of `iova`: report it if it is stale. */
  iotlbHit(slot: number, did: number, pasid: number, iova: number): void {
    const st = this.iotlb;
    if (st.stamp[slot] === this.mem.watchedWrites && st.stale[slot] < 0) return;
    const i = st.check(slot, this.mem);
    if (i >= 0) this.report("iotlb", st, slot, i, did, pasid, iova);
  }

  /** A PWC hit (second stage when `fs` is false) at `level`: report it if stale, and carry its entries into the walk. */
  pwcHit(fs: boolean, level: number, slot: number, did: number, pasid: number, iova: number): void {
    const st = (fs ? this.fspwc : this.pwc)[level];
    if (!st) return;
    if (st.stamp[slot] !== this.mem.watchedWrites || st.stale[slot] >= 0) {
      const i = st.check(slot, this.mem);
      if (i >= 0) this.report(fs ? "fspwc" : "pwc", st, slot, i, did, pasid, iova);
    }
    st.appendTo(slot, this.walk);
  }

  /**
   * A PWC fill at `level`: the entry depends on what the walk read since `from` (a second-stage
   * walk inside a nested walk starts its own list there: its PWC entries depend on its own
   * entries only, not on the first-stage entries read before it).
   */
  pwcFill(fs: boolean, level: number, slot: number, from = 0): void {
    const st = (fs ? this.fspwc : this.pwc)[level];
    if (st && slot >= 0) st.save(slot, this.walk, this.mem, from);
  }

  /** An IOTLB fill: the entry depends on everything the walk read. */
  iotlbFill(slot: number): void {
    this.iotlb.save(slot, this.walk, this.mem);
  }

  private report(cache: string, st: DepStore, slot: number, i: number, did: number, pasid: number, iova: number): void {
    this.staleHits++;
    if (!this.trace.on) return;
    const k = slot * DEPS_MAX + i;
    this.mem.read64(st.pa[k], this.w);
    this.trace.emit("vtd.stale.hit", {
      cache, did, pasid, iova, slot,
      stage: st.kind[k] === DEP_FS ? "s1" : "s2",
      level: st.level[k],
      entryPa: st.pa[k],
      cached: u64hl(st.hi[k], st.lo[k]),
      memory: u64hl(this.w.hi, this.w.lo),
    });
  }
}
