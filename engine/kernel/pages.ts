/**
 * pages.c: the memory behind IOAS areas, and pinning it.
 *
 * An IoptPages is one memory source — a range of user virtual memory (IOMMU_IOAS_MAP) or of a
 * memfd (IOMMU_IOAS_MAP_FILE) — covering `npages` whole pages. Areas point into it; IOAS_COPY
 * makes more areas share the same IoptPages, so memory is pinned and accounted once however many
 * IOASes, domains or copies use it.
 *
 * Pinning is per page and counted: a page is pinned (and charged to RLIMIT_MEMLOCK) when its
 * count goes 0 → 1 and released when it goes back to 0. An area's pages are held while its IOAS
 * has at least one domain; mapping into an IOAS without domains pins nothing and does not even
 * look at the user memory (the kernel's lazy pinning: errors show up at the first attach).
 *
 * Accounting modes (iommufd_private.h IOPT_PAGES_ACCOUNT_*): none when the process has
 * CAP_IPC_LOCK, per-user (the default for /dev/iommu, like io_uring) or per-mm (the default for
 * VFIO compatibility, like VFIO type1). Exceeding RLIMIT_MEMLOCK gives ENOMEM and undoes the pin.
 */
import { err, type Rc } from "../uapi/errno.ts";
import { PAGE_SIZE } from "../hw/memory.ts";
import type { Creds, MemFile, Mm, User } from "./process.ts";
import type { Trace } from "../trace/events.ts";

export type AccountMode = "none" | "user" | "mm";

export class IoptPages {
  /** pfn of each pinned page (valid where pinCount > 0); allocated at the first pin */
  private pfnArr: Uint32Array | null = null;
  private pinArr: Uint16Array | null = null;
  /** pages currently pinned */
  npinned = 0;
  /** references from areas */
  users = 0;

  constructor(
    readonly source: { kind: "user"; uptr: number } | { kind: "file"; file: MemFile | null; start: number },
    /** byte offset of the first mapped byte inside the first page */
    readonly startByte: number,
    readonly length: number,
    readonly npages: number,
    readonly writable: boolean,
    readonly accountMode: AccountMode,
    private readonly owner: { mm: Mm; user: User; creds: Creds; trace: Trace },
  ) {}

  /** A mapping that is never pinned (an IOAS without domains) costs no per-page memory. */
  get pfns(): Uint32Array {
    return (this.pfnArr ??= new Uint32Array(this.npages));
  }
  get pinCount(): Uint16Array {
    return (this.pinArr ??= new Uint16Array(this.npages));
  }

  /**
   * Pin pages [first, first + n). Pages already pinned only get their count raised. On failure
   * nothing new stays pinned. (pfn_reader_user_pin / iopt_pages_fill_xarray: pin, then charge.)
   */
  pin(first: number, n: number): Rc {
    const pinCount = this.pinCount;
    let newly = 0;
    for (let i = first; i < first + n; i++) if (!pinCount[i]) newly++;
    if (newly) {
      const { mm } = this.owner;
      if (this.source.kind === "user") {
        // pin_user_pages_fast: every page must be mapped
        const base = this.source.uptr;
        for (let i = first; i < first + n; ) {
          const addr = base + i * PAGE_SIZE;
          const v = mm.findVma(addr);
          if (!v) return err("EFAULT", "pfn_reader_user_pin", `user page 0x${addr.toString(16)} is not mapped`);
          i = Math.floor((v.start + v.length - base) / PAGE_SIZE); // skip to the end of this VMA
        }
      } else {
        const { file, start } = this.source;
        if (!file) return err("EINVAL", "memfd_pin_folios", "the fd is not a shmem or hugetlbfs memfd");
        // memfd_pin_folios → memfd_alloc_folio → shmem_read_folio (SGP_CACHE): shmem_get_folio_gfp
        // refuses an index at or beyond i_size with -EINVAL (mm/shmem.c); the selftest
        // iommufd_mock_domain.basic (file variant) expects EINVAL after ftruncate(mfd, 0).
        const lastOffset = (Math.floor(start / PAGE_SIZE) + first + n - 1) * PAGE_SIZE;
        if (lastOffset >= file.size) {
          const bad = Math.max(Math.ceil(file.size / PAGE_SIZE) * PAGE_SIZE, (Math.floor(start / PAGE_SIZE) + first) * PAGE_SIZE);
          return err("EINVAL", "shmem_get_folio_gfp", `offset 0x${bad.toString(16)} is beyond the end of memfd "${file.name}" (${file.size} bytes)`);
        }
      }
      const rc = this.account(newly);
      if (rc) return rc;
      const pfns = this.pfns;
      if (this.source.kind === "user") {
        const base = this.source.uptr;
        for (let i = first; i < first + n; i++) if (!pinCount[i]) pfns[i] = mm.pfnAt(base + i * PAGE_SIZE);
      } else {
        const firstPage = Math.floor(this.source.start / PAGE_SIZE);
        for (let i = first; i < first + n; i++) if (!pinCount[i]) pfns[i] = this.source.file!.pfn(mm.mem, firstPage + i);
      }
    }
    for (let i = first; i < first + n; i++) pinCount[i]++;
    this.npinned += newly;
    if (newly && this.owner.trace.on) this.owner.trace.emit("iommufd.pages.pin", { npages: newly, locked_vm: this.lockedVm() });
    return 0;
  }

  /** Drop one pin of pages [first, first + n); pages reaching 0 are unpinned and uncharged. */
  unpin(first: number, n: number): void {
    let released = 0;
    for (let i = first; i < first + n; i++) {
      if (!this.pinCount[i]) throw new Error(`iopt_pages: unpin of page ${i} that is not pinned`);
      if (--this.pinCount[i] === 0) released++;
    }
    if (!released) return;
    this.npinned -= released;
    this.unaccount(released);
    if (this.owner.trace.on) this.owner.trace.emit("iommufd.pages.unpin", { npages: released, locked_vm: this.lockedVm() });
  }

  private lockedVm(): number {
    return this.accountMode === "mm" ? this.owner.mm.lockedVm : this.owner.user.lockedVm;
  }

  /** iopt_pages_update_pinned / incr_user_locked_vm */
  private account(n: number): Rc {
    const { mm, user, creds } = this.owner;
    mm.pinnedVm += n;
    if (this.accountMode === "none") return 0;
    const limit = Math.floor(creds.rlimitMemlock / PAGE_SIZE);
    const holder = this.accountMode === "mm" ? mm : user;
    if (holder.lockedVm + n > limit) {
      mm.pinnedVm -= n;
      return err("ENOMEM", "incr_user_locked_vm", `pinning ${n} more page(s) would exceed RLIMIT_MEMLOCK (${creds.rlimitMemlock} bytes; ${holder.lockedVm} pages already locked)`);
    }
    holder.lockedVm += n;
    return 0;
  }

  private unaccount(n: number): void {
    const { mm, user } = this.owner;
    mm.pinnedVm -= n;
    if (this.accountMode === "none") return;
    (this.accountMode === "mm" ? mm : user).lockedVm -= n;
  }
}
