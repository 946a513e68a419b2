/**
 * The script's process as the kernel sees it: its address space (mm), memory files (memfd) and
 * the user-copy primitives the ioctl paths use (copy_from_user / copy_to_user / pin_user_pages).
 *
 * User memory is real: every user page is backed by a simulated physical frame, allocated on
 * first touch (page fault) or first pin. Anonymous mappings asked for with a 2 MiB alignment are
 * backed by transparent huge pages: each fully covered, 2 MiB-aligned chunk is one physically
 * contiguous 2 MiB folio, so the IOMMU driver can map it with a 2 MiB IOPTE, as on Linux with THP.
 * Other anonymous pages come from a fragmented pool (never physically contiguous).
 *
 * Addresses: mmap hands out addresses top-down from 0x7f00_0000_0000, like Linux's mmap_base.
 */
import { err, type Err, type Rc } from "../uapi/errno.ts";
import { HPAGE_SIZE, PAGE_SIZE, type PhysMem } from "../hw/memory.ts";

export const MMAP_BASE = 0x7f00_0000_0000;
/** Lowest address mmap will hand out. */
const MMAP_MIN = 0x1000_0000;
/** TASK_SIZE of x86-64 with 4-level paging: user addresses are below 2^47. */
export const TASK_SIZE = 2 ** 47;

/** A memfd: a shmem file whose pages are allocated on first touch. */
export class MemFile {
  size = 0;
  /** page index → pfn */
  readonly pages = new Map<number, number>();
  constructor(readonly name: string) {}
  pfn(mem: PhysMem, index: number): number {
    let p = this.pages.get(index);
    if (p === undefined) {
      p = mem.allocUserPage();
      this.pages.set(index, p);
    }
    return p;
  }
}

/**
 * The pfn of each page of a VMA, 0 until it is faulted in, stored in 2 MiB chunks made on first
 * touch: a 1 TiB mmap costs nothing until pages are used (as with real anonymous memory).
 */
export class PfnStore {
  private readonly chunks = new Map<number, Uint32Array>();
  private static readonly CHUNK = HPAGE_SIZE / PAGE_SIZE;
  constructor(readonly npages: number) {}
  get(i: number): number {
    return this.chunks.get(Math.floor(i / PfnStore.CHUNK))?.[i % PfnStore.CHUNK] ?? 0;
  }
  set(i: number, pfn: number): void {
    const c = Math.floor(i / PfnStore.CHUNK);
    let chunk = this.chunks.get(c);
    if (!chunk) this.chunks.set(c, (chunk = new Uint32Array(PfnStore.CHUNK)));
    chunk[i % PfnStore.CHUNK] = pfn;
  }
  /** The pages [first, first + n) as a new store (for munmap of part of a VMA). */
  slice(first: number, n: number): PfnStore {
    const out = new PfnStore(n);
    for (const [c, chunk] of this.chunks) {
      for (let j = 0; j < chunk.length; j++) {
        const i = c * PfnStore.CHUNK + j;
        if (chunk[j] && i >= first && i < first + n) out.set(i - first, chunk[j]);
      }
    }
    return out;
  }
}

/** A virtual memory area: one mmap. */
export interface Vma {
  start: number;
  length: number;
  /** backing file, for a file mapping */
  file: MemFile | null;
  fileOffset: number;
  /** 2 MiB-aligned chunks are backed by 2 MiB folios */
  thp: boolean;
  /** page index → pfn, 0 when not faulted in yet (anonymous only) */
  pfns: PfnStore | null;
}

export class Mm {
  /** sorted by start, non-overlapping */
  readonly vmas: Vma[] = [];
  private top = MMAP_BASE;
  /** pages pinned by the kernel for DMA (mm->pinned_vm, informational) */
  pinnedVm = 0;
  /** pages charged to this process (mm->locked_vm) */
  lockedVm = 0;

  constructor(readonly mem: PhysMem) {}

  /**
   * mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS (or MAP_SHARED of a memfd), …)
   * Returns the address, or an Err. `align` rounds the address up (the caller asked for an
   * aligned mapping, as madvise(MADV_HUGEPAGE) users do).
   */
  mmap(length: number, opts: { align?: number; file?: MemFile; offset?: number } = {}): number | Err {
    if (!Number.isSafeInteger(length) || length <= 0) return err("EINVAL", "do_mmap", "length must be a positive number of bytes");
    const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const align = Math.max(PAGE_SIZE, opts.align ?? PAGE_SIZE);
    if (align & (align - 1) && align !== 2 ** Math.round(Math.log2(align))) return err("EINVAL", "mmap", "align must be a power of two");
    const offset = opts.offset ?? 0;
    if (offset % PAGE_SIZE) return err("EINVAL", "do_mmap", "offset is not page aligned");
    let start = Math.floor((this.top - len) / align) * align;
    // top-down: below every existing mapping
    if (start < MMAP_MIN) return err("ENOMEM", "get_unmapped_area", "no room left in the address space");
    this.top = start;
    const vma: Vma = {
      start, length: len, file: opts.file ?? null, fileOffset: offset,
      thp: !opts.file && align >= HPAGE_SIZE,
      pfns: opts.file ? null : new PfnStore(len / PAGE_SIZE),
    };
    this.insert(vma);
    return start;
  }

  private insert(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }

  /** munmap: whole VMAs or parts of them. */
  munmap(addr: number, length: number): Rc {
    if (addr % PAGE_SIZE || length <= 0) return err("EINVAL", "do_vmi_munmap", "address not page aligned or length 0");
    const end = addr + Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const next: Vma[] = [];
    for (const v of this.vmas) {
      const vEnd = v.start + v.length;
      if (vEnd <= addr || v.start >= end) {
        next.push(v);
        continue;
      }
      if (v.start < addr) next.push(this.slice(v, v.start, addr));
      if (vEnd > end) next.push(this.slice(v, end, vEnd));
    }
    this.vmas.splice(0, this.vmas.length, ...next);
    return 0;
  }

  private slice(v: Vma, from: number, to: number): Vma {
    const first = (from - v.start) / PAGE_SIZE;
    const n = (to - from) / PAGE_SIZE;
    return {
      start: from, length: to - from, file: v.file, fileOffset: v.fileOffset + (from - v.start), thp: v.thp,
      pfns: v.pfns ? v.pfns.slice(first, first + n) : null,
    };
  }

  findVma(addr: number): Vma | undefined {
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.vmas[mid];
      if (addr < v.start) hi = mid - 1;
      else if (addr >= v.start + v.length) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  /**
   * The pfn behind a user address, faulting the page in (handle_mm_fault). -1: not mapped.
   */
  pfnAt(addr: number): number {
    const v = this.findVma(addr);
    if (!v) return -1;
    const index = Math.floor((addr - v.start) / PAGE_SIZE);
    if (v.file) return v.file.pfn(this.mem, (v.fileOffset / PAGE_SIZE) + index);
    const pfns = v.pfns!;
    const have = pfns.get(index);
    if (have) return have;
    // A 2 MiB-aligned chunk fully inside a THP VMA is faulted in as one folio.
    const chunk = Math.floor(addr / HPAGE_SIZE) * HPAGE_SIZE;
    if (v.thp && chunk >= v.start && chunk + HPAGE_SIZE <= v.start + v.length) {
      const base = this.mem.allocUserFolio();
      const first = (chunk - v.start) / PAGE_SIZE;
      for (let i = 0; i < HPAGE_SIZE / PAGE_SIZE; i++) pfns.set(first + i, base + i);
      return pfns.get(index);
    }
    const pfn = this.mem.allocUserPage();
    pfns.set(index, pfn);
    return pfn;
  }

  /** Is [addr, addr + length) entirely mapped? */
  mapped(addr: number, length: number): boolean {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr < 0 || length < 0) return false;
    let a = addr;
    const end = addr + length;
    while (a < end) {
      const v = this.findVma(a);
      if (!v) return false;
      a = v.start + v.length;
    }
    return true;
  }

  /** copy_from_user: EFAULT if any byte is not mapped. */
  copyFromUser(addr: number | bigint, length: number): Uint8Array | Err {
    const a = typeof addr === "bigint" ? (addr <= BigInt(TASK_SIZE) ? Number(addr) : -1) : addr;
    if (a < 0 || !this.mapped(a, length)) return err("EFAULT", "copy_from_user", `user address 0x${addr.toString(16)} (+${length}) is not mapped`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const va = a + done;
      const o = va % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, length - done);
      const pfn = this.pfnAt(va);
      const f = this.mem.peekFrame(pfn);
      if (f) out.set(f.subarray(o, o + n), done);
      done += n;
    }
    return out;
  }

  /** copy_to_user: EFAULT (and nothing written) if any byte is not mapped. */
  copyToUser(addr: number | bigint, bytes: Uint8Array): Rc {
    const a = typeof addr === "bigint" ? (addr <= BigInt(TASK_SIZE) ? Number(addr) : -1) : addr;
    if (a < 0 || !this.mapped(a, bytes.length)) return err("EFAULT", "copy_to_user", `user address 0x${addr.toString(16)} (+${bytes.length}) is not mapped`);
    let done = 0;
    while (done < bytes.length) {
      const va = a + done;
      const o = va % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, bytes.length - done);
      this.mem.frame(this.pfnAt(va)).set(bytes.subarray(done, done + n), o);
      done += n;
    }
    return 0;
  }

  /**
   * pin_user_pages(): the pfns of `npages` pages starting at page-aligned `addr`, faulting them
   * in. EFAULT if any page is not mapped (and nothing stays pinned).
   */
  pinUserPages(addr: number, npages: number): Uint32Array | Err {
    if (!this.mapped(addr, npages * PAGE_SIZE))
      return err("EFAULT", "pin_user_pages", `user range 0x${addr.toString(16)} (+0x${(npages * PAGE_SIZE).toString(16)}) is not entirely mapped`);
    const out = new Uint32Array(npages);
    for (let i = 0; i < npages; i++) out[i] = this.pfnAt(addr + i * PAGE_SIZE);
    return out;
  }
}

/** What the process may do (capable()) and its limits. */
export interface Creds {
  /** CAP_IPC_LOCK: pinned pages are not charged against RLIMIT_MEMLOCK */
  capIpcLock: boolean;
  /** CAP_SYS_RESOURCE: may change IOMMU_OPTION_RLIMIT_MODE */
  capSysResource: boolean;
  /** RLIMIT_MEMLOCK in bytes */
  rlimitMemlock: number;
}

/** A user (for per-user pinned-page accounting: user->locked_vm). */
export class User {
  lockedVm = 0;
}
