/**
 * VT-d translation caches: the IOTLB, the second-stage paging-structure caches (PWC), and the
 * context and PASID caches (VT-d spec ch. 6.2; reference §1.8). Mirrors the "IOTLB" parts of
 * qemu/qemu hw/i386/intel_iommu.c, but with bounded, set-associative hardware-like arrays instead
 * of QEMU's unbounded hash table, so that capacity, eviction and a missing invalidation are visible.
 *
 * What lives where
 *  - IOTLB (`VtdIotlb`): final translations. Tag = DID, PASID, page number at the entry's size,
 *    the size itself (level 1/2/3 = 4 KiB/2 MiB/1 GiB), plus the PGTT of the PASID entry it was
 *    created under (kept for the invalidation scope rules of §1.9, not compared on lookup).
 *    Requests without PASID are tagged with the context entry's RID_PASID (0), like QEMU.
 *    Payload: page frame, effective R/W, and flags: whether A/D updating was on (SSADE) when the
 *    entry was made and whether the leaf's D bit is known to be set. A write that hits an entry
 *    made with SSADE = 1 but D not yet set is re-walked so the D bit lands in memory (x86 TLBs do
 *    the same).
 *  - PWC (`VtdPwc`): one small fully-associative cache per non-leaf level (PML4E, PDPTE, PDE),
 *    tagged by DID + the IOVA bits above what that entry maps; payload = the next table's address
 *    and the permissions accumulated down to it. The walker starts below the deepest hit.
 *  - Context cache (`VtdContextCache`): decoded present context entries, tagged by source-id.
 *  - PASID cache (`VtdPasidCache`): decoded present PASID-table entries (the PASID-directory entry
 *    folded in), tagged by (source-id, PASID). The DID read from the entry is kept beside it,
 *    because PASID-cache invalidation (type 7) selects by DID or DID + PASID, never by source-id
 *    [decision: QEMU keeps its PASID cache per VTDAddressSpace = (bus, devfn, pasid) and matches
 *    type-7 descriptors against the cached entry's DID (vtd_pasid_cache_sync); reference §1.8].
 *
 * Invariants
 *  - CAP.CM = 0: nothing not-present is ever cached, so software needs no invalidation after a
 *    not-present → present change, and needs one after every present → other change.
 *  - Only invalidation descriptors (invq.ts) and eviction remove entries; nothing here reads
 *    memory. A stale entry keeps translating until software invalidates it: that is the point.
 *  - Lookups and fills do not allocate; event payloads are only built when `trace.on`.
 *  - Slot numbers are `set * ways + way`, the identity the views key on.
 */
import { SetAssocCache } from "../common/cache.ts";
import type { Trace } from "../../trace/events.ts";
import { PGTT_FS, PGTT_NESTED, levelSize } from "./tables.ts";

const TWO16 = 65536;
const TWO36 = 2 ** 36;

/** IOTLB entry flags */
export const IOTLB_AD = 1; // created with PASID-entry SSADE = 1
export const IOTLB_DIRTY = 2; // the leaf's D bit was set by (or before) this entry's walk

const LEVEL_SIZE = [0, levelSize(1), levelSize(2), levelSize(3), levelSize(4)];

export class VtdIotlb {
  readonly c: SetAssocCache;
  readonly did: Uint16Array;
  readonly pasid: Int32Array;
  readonly level: Uint8Array;
  readonly pgtt: Uint8Array;
  /** physical address of the page (aligned to the entry's size) */
  readonly pa: Float64Array;
  /** effective permissions: 1 = R, 2 = W */
  readonly perm: Uint8Array;
  readonly flags: Uint8Array;
  hits = 0;
  misses = 0;
  fills = 0;
  evictions = 0;
  invalidations = 0;

  constructor(
    sets: number,
    ways: number,
    private readonly trace: Trace,
  ) {
    this.c = new SetAssocCache(sets, ways);
    const n = this.c.size;
    this.did = new Uint16Array(n);
    this.pasid = new Int32Array(n);
    this.level = new Uint8Array(n);
    this.pgtt = new Uint8Array(n);
    this.pa = new Float64Array(n);
    this.perm = new Uint8Array(n);
    this.flags = new Uint8Array(n);
  }

  private static key1(did: number, pasid: number, level: number): number {
    return did + pasid * TWO16 + level * TWO36;
  }

  /** IOVA of the page an entry maps. */
  pageOf(slot: number): number {
    return this.c.k0[slot] * LEVEL_SIZE[this.level[slot]];
  }

  sizeOf(slot: number): number {
    return LEVEL_SIZE[this.level[slot]];
  }

  /** vtd_lookup_iotlb: probe 4 KiB, then 2 MiB, then 1 GiB entries. Returns the slot or -1. */
  lookup(did: number, pasid: number, iova: number): number {
    const c = this.c;
    for (let level = 1; level <= 3; level++) {
      const vpn = Math.floor(iova / LEVEL_SIZE[level]);
      // set = vpn mod sets, written without % (a double % is an fmod call on the hot path)
      const slot = c.lookup(vpn - Math.floor(vpn / c.sets) * c.sets, vpn, VtdIotlb.key1(did, pasid, level));
      if (slot >= 0) {
        this.hits++;
        if (this.trace.on) {
          this.trace.emit("vtd.iotlb.hit", {
            did, pasid, page: this.pageOf(slot), size: LEVEL_SIZE[level], perm: this.perm[slot],
            set: c.setOfSlot(slot), way: c.wayOfSlot(slot),
          });
        }
        return slot;
      }
    }
    this.misses++;
    if (this.trace.on) {
      const vpn = Math.floor(iova / LEVEL_SIZE[1]);
      this.trace.emit("vtd.iotlb.miss", { did, pasid, page: vpn * LEVEL_SIZE[1], set: vpn % c.sets });
    }
    return -1;
  }

  /** vtd_update_iotlb: cache a translation of the page containing `iova` at `level`. */
  fill(did: number, pasid: number, iova: number, level: number, pgtt: number, pa: number, perm: number, flags: number): number {
    const c = this.c;
    const vpn = Math.floor(iova / LEVEL_SIZE[level]);
    const set = vpn % c.sets;
    const k1 = VtdIotlb.key1(did, pasid, level);
    // an entry for the same tag (a dirty re-walk) is replaced in place
    let slot = c.peek(set, vpn, k1);
    if (slot < 0) {
      slot = c.victim(set);
      if (c.valid[slot]) {
        this.evictions++;
        if (this.trace.on) {
          this.trace.emit("vtd.iotlb.evict", {
            did: this.did[slot], pasid: this.pasid[slot], page: this.pageOf(slot), size: this.sizeOf(slot),
            set, way: c.wayOfSlot(slot),
          });
        }
      }
    }
    c.insert(slot, vpn, k1);
    this.did[slot] = did;
    this.pasid[slot] = pasid;
    this.level[slot] = level;
    this.pgtt[slot] = pgtt;
    this.pa[slot] = pa;
    this.perm[slot] = perm;
    this.flags[slot] = flags;
    this.fills++;
    if (this.trace.on) {
      this.trace.emit("vtd.iotlb.fill", {
        did, pasid, page: vpn * LEVEL_SIZE[level], size: LEVEL_SIZE[level], perm, set, way: c.wayOfSlot(slot),
      });
    }
    return slot;
  }

  private drop(slot: number, by: string): void {
    this.c.invalidate(slot);
    this.invalidations++;
    if (this.trace.on) {
      this.trace.emit("vtd.iotlb.inv", {
        did: this.did[slot], pasid: this.pasid[slot], page: this.pageOf(slot), size: this.sizeOf(slot),
        set: this.c.setOfSlot(slot), way: this.c.wayOfSlot(slot), by,
      });
    }
  }

  private overlaps(slot: number, start: number, end: number): boolean {
    const base = this.pageOf(slot);
    return base < end && start < base + this.sizeOf(slot);
  }

  /** Global invalidation (type 2 G = 01). Returns the number of entries removed. */
  invAll(by: string): number {
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s]) continue;
      this.drop(s, by);
      n++;
    }
    return n;
  }

  /** Domain-selective (type 2 G = 10): every entry of `did`, whatever its PASID or PGTT. */
  invDomain(did: number, by: string): number {
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s] || this.did[s] !== did) continue;
      this.drop(s, by);
      n++;
    }
    return n;
  }

  /**
   * Page-selective-within-domain (type 2 G = 11): entries of `did` overlapping the 2^am pages at
   * `addr`, plus every first-stage and nested entry of `did` whatever its address (§1.9; QEMU
   * vtd_hash_remove_by_page: "IOTLB entries caching first-stage (PGTT=001b) or nested (PGTT=011b)
   * mapping associated with specified domain-id are invalidated").
   */
  invPage(did: number, addr: number, am: number, by: string): number {
    const start = addr - (addr % (4096 * 2 ** am));
    const end = start + 4096 * 2 ** am;
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s] || this.did[s] !== did) continue;
      const pg = this.pgtt[s];
      if (pg !== PGTT_FS && pg !== PGTT_NESTED && !this.overlaps(s, start, end)) continue;
      this.drop(s, by);
      n++;
    }
    return n;
  }

  /** PASID-selective (type 6 G = 10): every entry of (did, pasid), any PGTT (QEMU vtd_hash_remove_by_pasid). */
  invPasid(did: number, pasid: number, by: string): number {
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s] || this.did[s] !== did || this.pasid[s] !== pasid) continue;
      this.drop(s, by);
      n++;
    }
    return n;
  }

  /**
   * Page-selective-within-PASID (type 6 G = 11): only first-stage (and nested) entries of (did,
   * pasid) in range. Second-stage-only and pass-through entries are untouched (§1.9; QEMU
   * vtd_hash_remove_by_page_piotlb "doesn't invalidate IOTLB entries caching second-stage
   * (PGTT=010b) or pass-through (PGTT=100b) mappings").
   */
  invPasidPage(did: number, pasid: number, addr: number, am: number, by: string): number {
    const start = addr - (addr % (4096 * 2 ** am));
    const end = start + 4096 * 2 ** am;
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s] || this.did[s] !== did || this.pasid[s] !== pasid) continue;
      const pg = this.pgtt[s];
      if ((pg !== PGTT_FS && pg !== PGTT_NESTED) || !this.overlaps(s, start, end)) continue;
      this.drop(s, by);
      n++;
    }
    return n;
  }

  /** Valid entries, for views and tests. */
  entries(): { slot: number; set: number; way: number; did: number; pasid: number; page: number; size: number; pgtt: number; pa: number; perm: number; flags: number }[] {
    const out = [];
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s]) continue;
      out.push({
        slot: s, set: this.c.setOfSlot(s), way: this.c.wayOfSlot(s), did: this.did[s], pasid: this.pasid[s],
        page: this.pageOf(s), size: this.sizeOf(s), pgtt: this.pgtt[s], pa: this.pa[s], perm: this.perm[s], flags: this.flags[s],
      });
    }
    return out;
  }
}

/**
 * Second-stage paging-structure caches: PML4E (level 4), PDPTE (level 3) and PDE (level 2)
 * entries that point to a next table. `pwcEntries` entries per level, fully associative, LRU.
 */
export class VtdPwc {
  /** index by level (2, 3, 4); [0] and [1] unused */
  readonly c: (SetAssocCache | null)[];
  readonly table: Float64Array[];
  readonly perm: Uint8Array[];
  readonly did: Uint16Array[];
  hits = 0;
  misses = 0;
  fills = 0;
  evictions = 0;
  invalidations = 0;

  constructor(
    readonly entriesPerLevel: number,
    private readonly trace: Trace,
  ) {
    this.c = [null, null];
    this.table = [new Float64Array(0), new Float64Array(0)];
    this.perm = [new Uint8Array(0), new Uint8Array(0)];
    this.did = [new Uint16Array(0), new Uint16Array(0)];
    for (let level = 2; level <= 4; level++) {
      const n = Math.max(entriesPerLevel, 1);
      this.c.push(entriesPerLevel > 0 ? new SetAssocCache(1, entriesPerLevel) : null);
      this.table.push(new Float64Array(n));
      this.perm.push(new Uint8Array(n));
      this.did.push(new Uint16Array(n));
    }
  }

  get enabled(): boolean {
    return this.entriesPerLevel > 0;
  }

  /** Tag of `iova` for an entry of `level`: the IOVA bits above what that entry maps. */
  static tag(iova: number, level: number): number {
    return Math.floor(iova / LEVEL_SIZE[level]);
  }

  /** The slot caching the level-`level` entry for (did, iova), or -1. */
  lookup(did: number, iova: number, level: number): number {
    const c = this.c[level];
    if (!c) return -1;
    const tag = VtdPwc.tag(iova, level);
    const slot = c.lookup(0, tag, did);
    if (slot >= 0) {
      this.hits++;
      if (this.trace.on) this.trace.emit("vtd.pwc.hit", { did, level, tag, table: this.table[level][slot], way: slot });
    } else {
      this.misses++;
      if (this.trace.on) this.trace.emit("vtd.pwc.miss", { did, level, tag });
    }
    return slot;
  }

  /** Cache the level-`level` entry for (did, iova): it points to `table`, with permissions `perm` so far. Returns the slot (-1: no cache). */
  fill(did: number, iova: number, level: number, table: number, perm: number): number {
    const c = this.c[level];
    if (!c) return -1;
    const tag = VtdPwc.tag(iova, level);
    let slot = c.peek(0, tag, did);
    if (slot < 0) {
      slot = c.victim(0);
      if (c.valid[slot]) {
        this.evictions++;
        if (this.trace.on) this.trace.emit("vtd.pwc.evict", { did: this.did[level][slot], level, tag: c.k0[slot], way: slot });
      }
    }
    c.insert(slot, tag, did);
    this.table[level][slot] = table;
    this.perm[level][slot] = perm;
    this.did[level][slot] = did;
    this.fills++;
    if (this.trace.on) this.trace.emit("vtd.pwc.fill", { did, level, tag, table, way: slot });
    return slot;
  }

  private drop(level: number, slot: number, by: string): void {
    const c = this.c[level]!;
    c.invalidate(slot);
    this.invalidations++;
    if (this.trace.on) this.trace.emit("vtd.pwc.inv", { did: this.did[level][slot], level, tag: c.k0[slot], by, way: slot });
  }

  invAll(by: string): number {
    let n = 0;
    for (let level = 2; level <= 4; level++) {
      const c = this.c[level];
      if (!c) continue;
      for (let s = 0; s < c.size; s++) {
        if (!c.valid[s]) continue;
        this.drop(level, s, by);
        n++;
      }
    }
    return n;
  }

  invDomain(did: number, by: string): number {
    let n = 0;
    for (let level = 2; level <= 4; level++) {
      const c = this.c[level];
      if (!c) continue;
      for (let s = 0; s < c.size; s++) {
        if (!c.valid[s] || this.did[level][s] !== did) continue;
        this.drop(level, s, by);
        n++;
      }
    }
    return n;
  }

  /** Entries of `did` whose mapped region overlaps [start, end). */
  invRange(did: number, start: number, end: number, by: string): number {
    let n = 0;
    for (let level = 2; level <= 4; level++) {
      const c = this.c[level];
      if (!c) continue;
      const size = LEVEL_SIZE[level];
      for (let s = 0; s < c.size; s++) {
        if (!c.valid[s] || this.did[level][s] !== did) continue;
        const base = c.k0[s] * size;
        if (base >= end || start >= base + size) continue;
        this.drop(level, s, by);
        n++;
      }
    }
    return n;
  }
}

/** Context-cache entry flags */
export const CC_FPD = 1;
export const CC_PASIDE = 2;
export const CC_DTE = 4;
export const CC_PRE = 8;

/** Decoded present scalable-mode context entries, tagged by source-id. */
export class VtdContextCache {
  readonly c: SetAssocCache;
  readonly pasidDirPtr: Float64Array;
  readonly pdts: Uint8Array;
  readonly flags: Uint8Array;
  readonly ridPasid: Int32Array;
  hits = 0;
  misses = 0;

  constructor(
    entries: number,
    private readonly trace: Trace,
  ) {
    this.c = new SetAssocCache(1, entries);
    this.pasidDirPtr = new Float64Array(entries);
    this.pdts = new Uint8Array(entries);
    this.flags = new Uint8Array(entries);
    this.ridPasid = new Int32Array(entries);
  }

  lookup(rid: number): number {
    const slot = this.c.lookup(0, rid, 0);
    if (slot >= 0) {
      this.hits++;
      if (this.trace.on) this.trace.emit("vtd.ctxcache.hit", { rid, way: slot });
    } else {
      this.misses++;
      if (this.trace.on) this.trace.emit("vtd.ctxcache.miss", { rid });
    }
    return slot;
  }

  fill(rid: number, pasidDirPtr: number, pdts: number, flags: number, ridPasid: number): number {
    let slot = this.c.peek(0, rid, 0);
    if (slot < 0) {
      slot = this.c.victim(0);
      if (this.c.valid[slot] && this.trace.on) this.trace.emit("vtd.ctxcache.evict", { rid: this.c.k0[slot], way: slot });
    }
    this.c.insert(slot, rid, 0);
    this.pasidDirPtr[slot] = pasidDirPtr;
    this.pdts[slot] = pdts;
    this.flags[slot] = flags;
    this.ridPasid[slot] = ridPasid;
    if (this.trace.on) this.trace.emit("vtd.ctxcache.fill", { rid, way: slot });
    return slot;
  }

  /** Remove entries whose source-id matches `sid` on the bits of `mask` (all when mask = 0). */
  invMatching(sid: number, mask: number, by: string): number {
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s] || (this.c.k0[s] & mask) !== (sid & mask)) continue;
      this.c.invalidate(s);
      n++;
      if (this.trace.on) this.trace.emit("vtd.ctxcache.inv", { rid: this.c.k0[s], way: s, by });
    }
    return n;
  }
}

/** PASID-cache entry flags */
export const PC_FPD = 1; // FPD of the PASID-directory entry or of the PASID entry
export const PC_SSADE = 2;
export const PC_PGSNP = 4;
// first-stage fields of nested (PGTT = 011) entries, from qw2 (nested.ts)
export const PC_FL5 = 8; // FLPM = 01: 5-level first stage
export const PC_SRE = 16;
export const PC_WPE = 32;
export const PC_EAFE = 64;
/** fsptptr value of a pointer at or above 2^48 (kept out of range so the walker faults 0x74) */
export const PC_FSPTPTR_BEYOND = 2 ** 52;

/** Decoded present PASID-table entries, tagged by (source-id, PASID). */
export class VtdPasidCache {
  readonly c: SetAssocCache;
  readonly did: Uint16Array;
  readonly pgtt: Uint8Array;
  readonly aw: Uint8Array;
  readonly flags: Uint8Array;
  readonly ssptptr: Float64Array;
  /** FSPTPTR of nested entries (a GPA; PC_FSPTPTR_BEYOND when ≥ 2^48) */
  readonly fsptptr: Float64Array;
  hits = 0;
  misses = 0;

  constructor(
    entries: number,
    private readonly trace: Trace,
  ) {
    this.c = new SetAssocCache(1, entries);
    this.did = new Uint16Array(entries);
    this.pgtt = new Uint8Array(entries);
    this.aw = new Uint8Array(entries);
    this.flags = new Uint8Array(entries);
    this.ssptptr = new Float64Array(entries);
    this.fsptptr = new Float64Array(entries);
  }

  lookup(rid: number, pasid: number): number {
    const slot = this.c.lookup(0, rid, pasid);
    if (slot >= 0) {
      this.hits++;
      if (this.trace.on) this.trace.emit("vtd.pasidcache.hit", { rid, pasid, did: this.did[slot], way: slot });
    } else {
      this.misses++;
      if (this.trace.on) this.trace.emit("vtd.pasidcache.miss", { rid, pasid });
    }
    return slot;
  }

  fill(rid: number, pasid: number, did: number, pgtt: number, aw: number, flags: number, ssptptr: number, fsptptr = 0): number {
    let slot = this.c.peek(0, rid, pasid);
    if (slot < 0) {
      slot = this.c.victim(0);
      if (this.c.valid[slot] && this.trace.on) {
        this.trace.emit("vtd.pasidcache.evict", { rid: this.c.k0[slot], pasid: this.c.k1[slot], did: this.did[slot], way: slot });
      }
    }
    this.c.insert(slot, rid, pasid);
    this.did[slot] = did;
    this.pgtt[slot] = pgtt;
    this.aw[slot] = aw;
    this.flags[slot] = flags;
    this.ssptptr[slot] = ssptptr;
    this.fsptptr[slot] = fsptptr;
    if (this.trace.on) this.trace.emit("vtd.pasidcache.fill", { rid, pasid, did, way: slot });
    return slot;
  }

  /** Remove entries of `did` (and `pasid` when ≥ 0); did < 0 removes everything. */
  inv(did: number, pasid: number, by: string): number {
    let n = 0;
    for (let s = 0; s < this.c.size; s++) {
      if (!this.c.valid[s]) continue;
      if (did >= 0 && this.did[s] !== did) continue;
      if (pasid >= 0 && this.c.k1[s] !== pasid) continue;
      this.c.invalidate(s);
      n++;
      if (this.trace.on) this.trace.emit("vtd.pasidcache.inv", { rid: this.c.k0[s], pasid: this.c.k1[s], did: this.did[s], way: s, by });
    }
    return n;
  }
}
