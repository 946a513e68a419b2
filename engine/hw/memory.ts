/**
 * Simulated physical memory: sparse 4 KiB frames, allocated on first write. Reads of a frame that
 * was never written return zeros without allocating it, so a 16 GiB mapping costs nothing until
 * someone touches it.
 *
 * Physical address layout (all below 2^46, the host address width the VT-d model reports):
 *   [1 MiB, 512 GiB)   kernel pages, bump-allocated upwards: page tables, root/context/PASID
 *                      tables, invalidation and fault queues;
 *   below 1 TiB        user 4 KiB pages, allocated *downwards*, so consecutive user pages are
 *                      never physically contiguous (like a fragmented buddy allocator, and so that
 *                      only transparent huge pages can become 2 MiB IOPTEs);
 *   [1 TiB, …)         user 2 MiB folios (transparent huge pages), 2 MiB aligned, upwards.
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const HPAGE_SIZE = 2 * 1024 * 1024;

const KERNEL_BASE = 0x10_0000;
const SMALL_TOP = 0x100_0000_0000; // 1 TiB
const FOLIO_BASE = 0x100_0000_0000;

export class PhysMem {
  /** pfn → frame bytes; a missing frame reads as zeros */
  private readonly frames = new Map<number, Uint8Array>();
  private nextKernelPfn = KERNEL_BASE / PAGE_SIZE;
  private nextSmallPfn = SMALL_TOP / PAGE_SIZE - 1;
  private nextFolioPfn = FOLIO_BASE / PAGE_SIZE;
  /** frames handed out by allocKernelPage and not freed, for accounting (page-table bytes) */
  kernelPages = 0;

  /** Number of frames that hold bytes. */
  get residentFrames(): number {
    return this.frames.size;
  }

  /**
   * The frame's bytes, allocated (zeroed) if it was never written. Every write to physical memory
   * goes through here (write64, write, and callers that fill a frame directly), so this is where a
   * watched frame's write generation moves.
   */
  frame(pfn: number): Uint8Array {
    if (this.watched.size) this.touch(pfn);
    let f = this.frames.get(pfn);
    if (!f) {
      f = new Uint8Array(PAGE_SIZE);
      this.frames.set(pfn, f);
    }
    return f;
  }

  // ---- write generations (the stale-translation detector, engine/hw/vtd/stale.ts) ----------------
  // A cache fill that depends on page-table entries asks for their frames to be watched and
  // remembers each frame's generation; a later hit compares one number per entry instead of
  // re-reading memory. Frames nobody watches cost one Map.size check per write.
  /** pfn → write generation, for watched frames only */
  private readonly watched = new Map<number, number>();
  /** Bumped on every write to any watched frame: a hit whose stamp equals it needs no check at all. */
  watchedWrites = 0;

  /** Start watching the frame of `pa` (idempotent); returns its current write generation. */
  watch(pa: number): number {
    const pfn = Math.floor(pa / PAGE_SIZE);
    const g = this.watched.get(pfn);
    if (g !== undefined) return g;
    this.watched.set(pfn, 0);
    return 0;
  }

  /** The write generation of the frame of `pa` (-1 when it is not watched). */
  generation(pa: number): number {
    return this.watched.get(Math.floor(pa / PAGE_SIZE)) ?? -1;
  }

  private touch(pfn: number): void {
    const g = this.watched.get(pfn);
    if (g === undefined) return;
    this.watched.set(pfn, g + 1);
    this.watchedWrites++;
  }

  /** The frame's bytes if it was ever written, else undefined (reads as zeros). */
  peekFrame(pfn: number): Uint8Array | undefined {
    return this.frames.get(pfn);
  }

  /** Read a little-endian 64-bit word as two 32-bit halves; `pa` must be 8-byte aligned. */
  read64(pa: number, out: { lo: number; hi: number }): void {
    const f = this.frames.get(Math.floor(pa / PAGE_SIZE));
    if (!f) {
      out.lo = 0;
      out.hi = 0;
      return;
    }
    const o = pa % PAGE_SIZE;
    out.lo = (f[o] | (f[o + 1] << 8) | (f[o + 2] << 16) | (f[o + 3] << 24)) >>> 0;
    out.hi = (f[o + 4] | (f[o + 5] << 8) | (f[o + 6] << 16) | (f[o + 7] << 24)) >>> 0;
  }

  /** Write a little-endian 64-bit word given as two 32-bit halves. */
  write64(pa: number, lo: number, hi: number): void {
    const f = this.frame(Math.floor(pa / PAGE_SIZE));
    const o = pa % PAGE_SIZE;
    f[o] = lo & 0xff;
    f[o + 1] = (lo >>> 8) & 0xff;
    f[o + 2] = (lo >>> 16) & 0xff;
    f[o + 3] = lo >>> 24;
    f[o + 4] = hi & 0xff;
    f[o + 5] = (hi >>> 8) & 0xff;
    f[o + 6] = (hi >>> 16) & 0xff;
    f[o + 7] = hi >>> 24;
  }

  /** Read a 64-bit word as a bigint (not for hot paths). */
  read64n(pa: number): bigint {
    const w = { lo: 0, hi: 0 };
    this.read64(pa, w);
    return (BigInt(w.hi) << 32n) | BigInt(w.lo);
  }

  write64n(pa: number, v: bigint): void {
    this.write64(pa, Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn));
  }

  /** Copy bytes out of physical memory (may cross frames). */
  read(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const addr = pa + done;
      const o = addr % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, length - done);
      const f = this.frames.get(Math.floor(addr / PAGE_SIZE));
      if (f) out.set(f.subarray(o, o + n), done);
      done += n;
    }
    return out;
  }

  /** Copy bytes into physical memory (may cross frames). */
  write(pa: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const addr = pa + done;
      const o = addr % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, bytes.length - done);
      this.frame(Math.floor(addr / PAGE_SIZE)).set(bytes.subarray(done, done + n), o);
      done += n;
    }
  }

  /** alloc_page(GFP_KERNEL | __GFP_ZERO) for the kernel and drivers: returns a physical address. */
  allocKernelPage(): number {
    const pfn = this.nextKernelPfn++;
    this.kernelPages++;
    this.frames.delete(pfn); // zeroed
    if (this.watched.size) this.touch(pfn);
    return pfn * PAGE_SIZE;
  }

  /** Give a kernel page back (page-table pages freed on unmap or domain free). */
  freeKernelPage(pa: number): void {
    this.frames.delete(Math.floor(pa / PAGE_SIZE));
    if (this.watched.size) this.touch(Math.floor(pa / PAGE_SIZE));
    this.kernelPages--;
  }

  /** A user 4 KiB page (anonymous memory faulted in). Returns its pfn. */
  allocUserPage(): number {
    return this.nextSmallPfn--;
  }

  /** A user 2 MiB folio (a transparent huge page). Returns its first pfn (512-aligned). */
  allocUserFolio(): number {
    const pfn = this.nextFolioPfn;
    this.nextFolioPfn += HPAGE_SIZE / PAGE_SIZE;
    return pfn;
  }
}
