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
  /** pfn of each pinned page (valid where pinCount > 0) */
  readonly pfns: Uint32Array;
  readonly pinCount: Uint16Array;
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
  ) {
    this.pfns = new Uint32Array(npages);
    this.pinCount = new Uint16Array(npages);
  }

  /**
   * Pin pages [first, first + n). Pages already pinned only get their count raised. On failure
   * nothing new stays pinned. (pfn_reader_user_pin / iopt_pages_fill_xarray)
   */
  pin(first: number, n: number): Rc {
    const newly: number[] = [];
    for (let i = first; i < first + n; i++) if (!this.pinCount[i]) newly.push(i);
    if (newly.length) {
      const { mm } = this.owner;
      if (this.source.kind === "user") {
        const base = this.source.uptr;
        // pin_user_pages_fast over runs of not-yet-pinned pages
        for (const i of newly) {
          const addr = base + i * PAGE_SIZE;
          const v = mm.findVma(addr);
          if (!v) return err("EFAULT", "pfn_reader_user_pin", `user page 0x${addr.toString(16)} is not mapped`);
        }
        for (const i of newly) this.pfns[i] = mm.pfnAt(base + i * PAGE_SIZE);
      } else {
        const { file, start } = this.source;
        if (!file) return err("EINVAL", "memfd_pin_folios", "the fd is not a shmem or hugetlbfs memfd");
        const firstPage = Math.floor(start / PAGE_SIZE);
        // memfd_pin_folios → memfd_alloc_folio → shmem_read_folio (SGP_CACHE): shmem_get_folio_gfp
        // refuses an index at or beyond i_size with -EINVAL (mm/shmem.c); the selftest
        // iommufd_mock_domain.basic (file variant) expects EINVAL after ftruncate(mfd, 0).
        for (const i of newly) {
          if ((firstPage + i) * PAGE_SIZE >= file.size)
            return err("EINVAL", "shmem_get_folio_gfp", `offset 0x${((firstPage + i) * PAGE_SIZE).toString(16)} is beyond the end of memfd "${file.name}" (${file.size} bytes)`);
        }
        for (const i of newly) this.pfns[i] = file.pfn(mm.mem, firstPage + i);
      }
      const rc = this.account(newly.length);
      if (rc) return rc;
    }
    for (let i = first; i < first + n; i++) this.pinCount[i]++;
    this.npinned += newly.length;
    if (newly.length && this.owner.trace.on)
      this.owner.trace.emit("iommufd.pages.pin", { npages: newly.length, locked_vm: this.lockedVm() });
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
