/**
 * A generic set-associative cache with true-LRU replacement, for the translation caches of every
 * IOMMU model (VT-d IOTLB, paging-structure caches, context and PASID caches; later the SMMUv3 TLB
 * and config cache, the AMD IOTLB). It holds only tags and replacement state; a model keeps its
 * payload (physical address, permissions, …) in its own typed arrays indexed by the same slot.
 *
 * Layout: `slot = set * ways + way`. A tag is two numbers, `k0` and `k1`, both exact doubles:
 * models pack their tag fields into them (e.g. VT-d: k0 = page number, k1 = DID | PASID | level).
 * Nothing here allocates after construction, so a hit costs a few typed-array loads: the hot path
 * of the walker and the IOTLB stays allocation-free.
 *
 * LRU: every touch stores a strictly increasing stamp; the victim of a full set is the way with
 * the smallest stamp. An invalid way is always chosen before a valid one (lowest way first), so
 * fill order is deterministic.
 */
export class SetAssocCache {
  readonly sets: number;
  readonly ways: number;
  /** 1 when the slot holds an entry */
  readonly valid: Uint8Array;
  readonly k0: Float64Array;
  readonly k1: Float64Array;
  /** LRU stamp of the last touch; larger = more recent */
  readonly stamp: Float64Array;
  private tick = 0;

  constructor(sets: number, ways: number) {
    if (!Number.isInteger(sets) || sets < 1 || !Number.isInteger(ways) || ways < 1) {
      throw new Error(`SetAssocCache: sets and ways must be positive integers (got ${sets} × ${ways})`);
    }
    this.sets = sets;
    this.ways = ways;
    const n = sets * ways;
    this.valid = new Uint8Array(n);
    this.k0 = new Float64Array(n);
    this.k1 = new Float64Array(n);
    this.stamp = new Float64Array(n);
  }

  /** Total number of entries (sets × ways). */
  get size(): number {
    return this.valid.length;
  }

  /** The set a non-negative integer key falls into (modulo indexing, as hardware uses low bits). */
  setOf(key: number): number {
    return key % this.sets;
  }

  /** The slot holding (k0, k1) in `set`, or -1. A hit becomes the most recently used way. */
  lookup(set: number, k0: number, k1: number): number {
    const base = set * this.ways;
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (this.valid[s] === 1 && this.k0[s] === k0 && this.k1[s] === k1) {
        this.stamp[s] = ++this.tick;
        return s;
      }
    }
    return -1;
  }

  /** Like lookup, without touching the LRU state (for views and invariant checks). */
  peek(set: number, k0: number, k1: number): number {
    const base = set * this.ways;
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (this.valid[s] === 1 && this.k0[s] === k0 && this.k1[s] === k1) return s;
    }
    return -1;
  }

  /**
   * The slot a new entry of `set` goes to: the first invalid way, else the least recently used.
   * The caller reads `valid[slot]` first to learn whether something is being evicted.
   */
  victim(set: number): number {
    const base = set * this.ways;
    const end = base + this.ways;
    let best = base;
    for (let s = base; s < end; s++) {
      if (this.valid[s] === 0) return s;
      if (this.stamp[s] < this.stamp[best]) best = s;
    }
    return best;
  }

  /** Store a tag in `slot` (from victim()) and make it the most recently used way. */
  insert(slot: number, k0: number, k1: number): void {
    this.valid[slot] = 1;
    this.k0[slot] = k0;
    this.k1[slot] = k1;
    this.stamp[slot] = ++this.tick;
  }

  invalidate(slot: number): void {
    this.valid[slot] = 0;
  }

  /** Invalidate every slot. */
  clear(): void {
    this.valid.fill(0);
  }

  setOfSlot(slot: number): number {
    return Math.floor(slot / this.ways);
  }

  wayOfSlot(slot: number): number {
    return slot % this.ways;
  }

  /** Number of valid entries. */
  get occupancy(): number {
    let n = 0;
    for (let s = 0; s < this.valid.length; s++) n += this.valid[s];
    return n;
  }
}
