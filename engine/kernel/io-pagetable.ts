/**
 * io_pagetable.c / io_pagetable.h: the IOVA bookkeeping of one IOAS, and keeping its domains in
 * sync with it.
 *
 * Three sets of inclusive ranges [start, last] over the 64-bit IOVA space (bigints: the space
 * reaches ULONG_MAX and `last + 1` can overflow — beware, as pages.c warns):
 *   areas     what is mapped: each points at an IoptPages and never overlaps another area;
 *   reserved  what can never be mapped: outside an attached domain's aperture, devices' reserved
 *             regions (the x86 MSI window), each tagged with its owner so detach can remove it;
 *   allowed   optional user list (IOMMU_IOAS_ALLOW_IOVAS) that reservations must not touch and
 *             that confines automatic IOVA allocation.
 * Invariants: no area intersects a reserved range; no reserved range intersects an allowed range;
 * every area is aligned to iovaAlignment; while `domains` is non-empty every area's pages are
 * pinned once (per IoptPages page) and mapped in every domain.
 *
 * Simplified from the kernel: one lock-free list per set (the kernel uses interval trees and
 * rwsems); no in-kernel accesses (emulated devices) yet, so no EDEADLK / locked areas.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { HPAGE_SIZE, PAGE_SIZE } from "../hw/memory.ts";
import { iommuMap, iommuUnmap, IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, type IommuDomain, type ResvRegion } from "../hw/model.ts";
import { u64, type Trace } from "../trace/events.ts";
import type { IoptPages } from "./pages.ts";

export const ULONG_MAX = (1n << 64n) - 1n;
export const SIZE_MAX = ULONG_MAX;
const PAGE = BigInt(PAGE_SIZE);

/** struct iopt_area: [start, last] of IOVA backed by pages, from byte `pageOffset` of them. */
export interface IoptArea {
  start: bigint;
  last: bigint;
  pages: IoptPages;
  /** byte offset into pages (counting from the first page's start) of the area's first byte */
  pageOffset: number;
  /** IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE */
  iommuProt: number;
}

/** struct iopt_pages_list: one memory source and the part of it to map. */
export interface PagesElm {
  pages: IoptPages;
  /** byte offset into pages of the first byte */
  startByte: number;
  length: bigint;
}

export interface IoptReserved {
  start: bigint;
  last: bigint;
  /** the domain or device (as a key object) that reserved it, and a name for the log */
  owner: object;
  ownerName: string;
}

export interface Range {
  start: bigint;
  last: bigint;
}

function intersects(a: Range, start: bigint, last: bigint): boolean {
  return a.start <= last && a.last >= start;
}

function roundupPowOfTwo(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

function lowestSetBit(n: bigint): bigint {
  return n & -n;
}

export class IoPagetable {
  /** sorted by start */
  readonly areas: IoptArea[] = [];
  readonly reserved: IoptReserved[] = [];
  allowed: Range[] = [];
  readonly domains: IommuDomain[] = [];
  iovaAlignment = 1n;
  disableLargePages = false;

  constructor(
    private readonly trace: Trace,
    /** the IOAS ID, for events */
    public ioasId = 0,
  ) {}

  areaIterFirst(start: bigint, last: bigint): IoptArea | undefined {
    return this.areas.find((a) => intersects(a, start, last));
  }
  reservedIterFirst(start: bigint, last: bigint): IoptReserved | undefined {
    return this.reserved.find((r) => intersects(r, start, last));
  }
  allowedIterFirst(start: bigint, last: bigint): Range | undefined {
    return this.allowed.find((r) => intersects(r, start, last));
  }

  /** iopt_check_iova: may [iova, iova + length - 1] be mapped with FIXED_IOVA? */
  checkIova(iova: bigint, length: bigint): Rc {
    if (iova % this.iovaAlignment)
      return err("EINVAL", "iopt_check_iova", `iova 0x${iova.toString(16)} is not aligned to the IOAS iova_alignment (${this.iovaAlignment})`);
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return err("EOVERFLOW", "iopt_check_iova", "iova + length - 1 overflows");
    const r = this.reservedIterFirst(iova, last);
    if (r)
      return err("EINVAL", "iopt_check_iova", `the range touches reserved IOVA [0x${r.start.toString(16)}, 0x${r.last.toString(16)}] (${r.ownerName})`);
    const a = this.areaIterFirst(iova, last);
    if (a)
      return err("EEXIST", "iopt_check_iova", `the range overlaps the existing mapping [0x${a.start.toString(16)}, 0x${a.last.toString(16)}]`);
    return 0;
  }

  /**
   * iopt_alloc_iova: the lowest free IOVA for `length` bytes, aligned like the source address
   * `addr` (the user VA, file offset or source IOVA) and at most to a huge page, keeping addr's
   * offset inside its page. Search space [PAGE_SIZE, ULONG_MAX - PAGE_SIZE], inside the allowed
   * ranges if any. (Kingxukai/linux io_pagetable.c @ 9b44fff655e2, reference §4.5.1)
   */
  allocIova(length: bigint, addr: bigint): bigint | Err {
    const pageOffset = addr % PAGE;
    let align = roundupPowOfTwo(length);
    if (addr) align = align < lowestSetBit(addr) ? align : lowestSetBit(addr);
    const maxAlign = BigInt(HPAGE_SIZE);
    if (align > maxAlign) align = maxAlign;
    if (length >= ULONG_MAX / 2n) return err("EOVERFLOW", "iopt_alloc_iova", "length is too large to align");
    if (align < this.iovaAlignment)
      return err("EINVAL", "iopt_alloc_iova", `the source address 0x${addr.toString(16)} only allows alignment ${align}, below the IOAS iova_alignment (${this.iovaAlignment})`);
    const lo = PAGE;
    const hi = ULONG_MAX - PAGE;
    const spans: Range[] = this.allowed.length
      ? this.allowed
          .map((r) => ({ start: r.start > lo ? r.start : lo, last: r.last < hi ? r.last : hi }))
          .filter((r) => r.start <= r.last)
          .sort((a, b) => (a.start < b.start ? -1 : 1))
      : [{ start: lo, last: hi }];
    const used: Range[] = [...this.reserved, ...this.areas].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (const span of spans) {
      let holeStart = span.start;
      const tryHole = (hs: bigint, he: bigint): bigint | undefined => {
        // __alloc_iova_check_range: ALIGN_UP, then OR in the page offset
        let s = ((hs + align - 1n) / align) * align;
        s |= pageOffset;
        if (s >= he || he - s < length - 1n) return undefined;
        return s;
      };
      for (const u of used) {
        if (u.last < holeStart) continue;
        if (u.start > span.last) break;
        if (u.start > holeStart) {
          const got = tryHole(holeStart, u.start - 1n < span.last ? u.start - 1n : span.last);
          if (got !== undefined) return got;
        }
        if (u.last >= span.last) {
          holeStart = span.last + 1n;
          break;
        }
        holeStart = u.last + 1n;
      }
      if (holeStart <= span.last) {
        const got = tryHole(holeStart, span.last);
        if (got !== undefined) return got;
      }
    }
    return err("ENOSPC", "iopt_alloc_iova", `no free IOVA range of ${length} bytes with alignment ${align}`);
  }

  /**
   * iopt_map_pages / iopt_alloc_area_pages / iopt_insert_area / iopt_fill_domains_pages: place
   * one area per element, back to back from `iova` (or from an allocated IOVA when iova is
   * null), then map them into every domain. All or nothing. Returns the IOVA used.
   */
  mapPages(elms: PagesElm[], length: bigint, iova: bigint | null, iommuProt: number, sourceAddr: bigint): bigint | Err {
    if (!length || length % this.iovaAlignment)
      return err("EINVAL", "iopt_alloc_area_pages", `length 0x${length.toString(16)} is zero or not a multiple of the IOAS iova_alignment (${this.iovaAlignment})`);
    let start: bigint;
    if (iova !== null) {
      const rc = this.checkIova(iova, length);
      if (rc) return rc;
      start = iova;
    } else {
      const got = this.allocIova(length, sourceAddr);
      if (isErr(got)) return got;
      start = got;
    }
    const inserted: IoptArea[] = [];
    const undo = (): void => {
      for (const a of inserted) this.removeAreaNoUnmap(a);
    };
    let next = start;
    for (const elm of elms) {
      // iopt_insert_area
      if (iommuProt & IOMMU_WRITE && !elm.pages.writable) {
        undo();
        return err("EPERM", "iopt_insert_area", "WRITEABLE was asked for memory that was mapped read-only");
      }
      if (BigInt(elm.startByte % PAGE_SIZE) % this.iovaAlignment) {
        undo();
        return err("EINVAL", "iopt_insert_area", `the memory starts at offset 0x${(elm.startByte % PAGE_SIZE).toString(16)} inside its page, not a multiple of the IOAS iova_alignment (${this.iovaAlignment})`);
      }
      const area: IoptArea = { start: next, last: next + elm.length - 1n, pages: elm.pages, pageOffset: elm.startByte, iommuProt };
      this.insertArea(area);
      elm.pages.users++;
      inserted.push(area);
      next += elm.length;
    }
    if (this.domains.length) {
      const filled: IoptArea[] = [];
      for (const area of inserted) {
        const rc = this.fillArea(area);
        if (rc) {
          for (const a of filled) this.unfillArea(a);
          undo();
          return rc;
        }
        filled.push(area);
      }
    }
    if (this.trace.on) {
      const pa = this.domains.length ? this.areaPhys(inserted[0], 0) : -1;
      this.trace.emit("iommufd.ioas.map", { ioas_id: this.ioasId, iova: u64(start), length: u64(length), pa_first: pa, prot: iommuProt });
    }
    return start;
  }

  private insertArea(area: IoptArea): void {
    let i = 0;
    while (i < this.areas.length && this.areas[i].start < area.start) i++;
    this.areas.splice(i, 0, area);
  }

  private removeAreaNoUnmap(area: IoptArea): void {
    this.areas.splice(this.areas.indexOf(area), 1);
    area.pages.users--;
  }

  /** First page index and page count of the pages an area covers. */
  private areaPageSpan(area: IoptArea): [number, number] {
    const length = Number(area.last - area.start + 1n);
    const first = Math.floor(area.pageOffset / PAGE_SIZE);
    const end = Math.ceil((area.pageOffset + length) / PAGE_SIZE);
    return [first, end - first];
  }

  /** Physical address of byte `k` of a (pinned) area. */
  areaPhys(area: IoptArea, k: number): number {
    const b = area.pageOffset + k;
    return area.pages.pfns[Math.floor(b / PAGE_SIZE)] * PAGE_SIZE + (b % PAGE_SIZE);
  }

  /** Pin an area and map it into every domain; undo everything on failure. */
  private fillArea(area: IoptArea): Rc {
    const [first, n] = this.areaPageSpan(area);
    const rc = area.pages.pin(first, n);
    if (rc) return rc;
    const done: IommuDomain[] = [];
    for (const d of this.domains) {
      const r = this.mapAreaIntoDomain(area, d);
      if (r) {
        for (const u of done) this.unmapAreaFromDomain(area, u);
        area.pages.unpin(first, n);
        return r;
      }
      done.push(d);
    }
    return 0;
  }

  /** batch_to_domain: map the area's physically contiguous runs with iommu_map. */
  private mapAreaIntoDomain(area: IoptArea, domain: IommuDomain): Rc {
    const length = Number(area.last - area.start + 1n);
    const iova0 = Number(area.start);
    const maxPg = this.disableLargePages ? PAGE_SIZE : Infinity;
    let k = 0;
    while (k < length) {
      // extend the run while the next page is physically adjacent
      const pa = this.areaPhys(area, k);
      let runEnd = Math.min(length, k + (PAGE_SIZE - (pa % PAGE_SIZE)));
      while (runEnd < length && this.areaPhys(area, runEnd) === pa + (runEnd - k)) runEnd = Math.min(length, runEnd + PAGE_SIZE);
      const r = iommuMap(domain, iova0 + k, pa, runEnd - k, area.iommuProt, maxPg);
      if (isErr(r)) {
        if (k) iommuUnmap(domain, iova0, k);
        return r;
      }
      k = runEnd;
    }
    return 0;
  }

  private unmapAreaFromDomain(area: IoptArea, domain: IommuDomain): void {
    const length = Number(area.last - area.start + 1n);
    iommuUnmap(domain, Number(area.start), length); // the driver emits iommu.unmap for what it removes
  }

  /** Unmap an area from every domain, then unpin it (iopt_area_unfill_domains). */
  private unfillArea(area: IoptArea): void {
    if (!this.domains.length) return;
    for (const d of this.domains) this.unmapAreaFromDomain(area, d);
    const [first, n] = this.areaPageSpan(area);
    area.pages.unpin(first, n);
  }

  /** Remove one area: unmap and unpin it, drop it from the IOAS. */
  private removeArea(area: IoptArea): void {
    this.unfillArea(area);
    this.removeAreaNoUnmap(area);
    if (this.trace.on)
      this.trace.emit("iommufd.ioas.unmap", { ioas_id: this.ioasId, iova: u64(area.start), length: u64(area.last - area.start + 1n) });
  }

  /**
   * iopt_unmap_iova_range: unmap every area inside [start, last], lowest first. An area that
   * sticks out of the range stops it with ENOENT, leaving the lower areas unmapped (not atomic).
   * Returns the bytes unmapped (possibly 0: the caller decides whether that is an error).
   * `progress.unmapped` is the kernel's `*unmapped` out-parameter: iopt_unmap_iova_range sets it
   * on the error path too, to the bytes removed before the failing area (VFIO compat copies it
   * back to userspace even when the call fails).
   */
  unmapIovaRange(start: bigint, last: bigint, progress?: { unmapped: bigint }): bigint | Err {
    let unmapped = 0n;
    for (;;) {
      const area = this.areaIterFirst(start, last);
      if (!area) break;
      if (area.start < start || area.last > last) {
        if (progress) progress.unmapped = unmapped;
        return err("ENOENT", "iopt_unmap_iova_range", `the mapping [0x${area.start.toString(16)}, 0x${area.last.toString(16)}] is only partly inside the range; areas are never split`);
      }
      unmapped += area.last - area.start + 1n;
      this.removeArea(area);
    }
    if (progress) progress.unmapped = unmapped;
    return unmapped;
  }

  /**
   * iopt_get_pages: the memory behind [start, last], which must be covered by contiguous areas
   * (for IOAS_COPY; any covered sub-range is accepted, despite the header's wording).
   */
  getPages(start: bigint, last: bigint): PagesElm[] | Err {
    const out: PagesElm[] = [];
    let next = start;
    for (const a of this.areas) {
      if (a.last < next) continue;
      if (a.start > next) break;
      const s = next;
      const e = a.last < last ? a.last : last;
      out.push({ pages: a.pages, startByte: a.pageOffset + Number(s - a.start), length: e - s + 1n });
      if (a.last >= last) return out;
      next = a.last + 1n;
    }
    return err("ENOENT", "iopt_get_pages", `[0x${start.toString(16)}, 0x${last.toString(16)}] is not entirely covered by contiguous mappings`);
  }

  /**
   * iopt_cut_iova: split the areas that contain each IOVA so that it becomes an area's last byte
   * (VFIO TYPE1 compatibility, huge pages disabled so no IOPTE spans the cut).
   */
  cutIova(iovas: bigint[]): Rc {
    for (const c of iovas) {
      const area = this.areas.find((a) => a.start <= c && c < a.last);
      if (!area) continue;
      const newStart = c + 1n;
      if (newStart % this.iovaAlignment || BigInt((area.pageOffset + Number(newStart - area.start)) % PAGE_SIZE) % this.iovaAlignment)
        return err("EINVAL", "iopt_area_split", `0x${newStart.toString(16)} is not aligned to the IOAS iova_alignment (${this.iovaAlignment})`);
      const rhs: IoptArea = { start: newStart, last: area.last, pages: area.pages, pageOffset: area.pageOffset + Number(newStart - area.start), iommuProt: area.iommuProt };
      area.last = c;
      area.pages.users++;
      this.insertArea(rhs);
    }
    return 0;
  }

  // ---- reserved and allowed IOVA ---------------------------------------------------------------

  /** iopt_reserve_iova */
  reserveIova(start: bigint, last: bigint, owner: object, ownerName: string): Rc {
    const a = this.areaIterFirst(start, last);
    if (a)
      return err("EADDRINUSE", "iopt_reserve_iova", `${ownerName} needs [0x${start.toString(16)}, 0x${last.toString(16)}] reserved, but 0x${a.start.toString(16)} is mapped there`);
    const al = this.allowedIterFirst(start, last);
    if (al)
      return err("EADDRINUSE", "iopt_reserve_iova", `${ownerName} needs [0x${start.toString(16)}, 0x${last.toString(16)}] reserved, but it intersects the allowed range [0x${al.start.toString(16)}, 0x${al.last.toString(16)}]`);
    this.reserved.push({ start, last, owner, ownerName });
    this.reserved.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    if (this.trace.on) this.trace.emit("iommufd.ioas.reserve", { ioas_id: this.ioasId, start: u64(start), last: u64(last), owner: ownerName });
    return 0;
  }

  /** iopt_remove_reserved_iova: drop everything `owner` reserved. */
  removeReservedIova(owner: object): void {
    for (let i = this.reserved.length - 1; i >= 0; i--) {
      const r = this.reserved[i];
      if (r.owner !== owner) continue;
      this.reserved.splice(i, 1);
      if (this.trace.on) this.trace.emit("iommufd.ioas.unreserve", { ioas_id: this.ioasId, start: u64(r.start), last: u64(r.last), owner: r.ownerName });
    }
  }

  /** iopt_table_enforce_dev_resv_regions: reserve a device's reserved regions, all or nothing. */
  enforceDevResvRegions(regions: ResvRegion[], owner: object, ownerName: string): Rc {
    const msi = regions.filter((r) => r.type === "MSI" || r.type === "SW_MSI");
    if (msi.some((r) => r.type === "MSI") && msi.some((r) => r.type === "SW_MSI"))
      return err("EINVAL", "iopt_table_enforce_dev_resv_regions", "the driver reports both a hardware and a software MSI region");
    if (msi.filter((r) => r.type === "SW_MSI").length > 1)
      return err("EINVAL", "iopt_table_enforce_dev_resv_regions", "the driver reports more than one software MSI region");
    for (const r of regions) {
      if (r.type === "DIRECT_RELAXABLE") continue;
      const rc = this.reserveIova(BigInt(r.start), BigInt(r.start) + BigInt(r.length) - 1n, owner, `${ownerName} ${r.type} region`);
      if (rc) {
        this.removeReservedIova(owner);
        return rc;
      }
    }
    return 0;
  }

  /** iopt_set_allow_iova: replace the allowed list; refused if a range hits reserved IOVA. */
  setAllowIova(ranges: Range[]): Rc {
    for (const r of ranges) {
      const res = this.reservedIterFirst(r.start, r.last);
      if (res)
        return err("EADDRINUSE", "iopt_set_allow_iova", `allowed range [0x${r.start.toString(16)}, 0x${r.last.toString(16)}] intersects reserved IOVA [0x${res.start.toString(16)}, 0x${res.last.toString(16)}] (${res.ownerName})`);
    }
    this.allowed = ranges.map((r) => ({ start: r.start, last: r.last })).sort((a, b) => (a.start < b.start ? -1 : 1));
    return 0;
  }

  /** The holes of the reserved set over [0, ULONG_MAX]: what IOMMU_IOAS_IOVA_RANGES reports. */
  iovaRanges(): Range[] {
    const out: Range[] = [];
    let next = 0n;
    for (const r of this.reserved) {
      if (r.start > next) out.push({ start: next, last: r.start - 1n });
      if (r.last >= ULONG_MAX) return out;
      if (r.last + 1n > next) next = r.last + 1n;
    }
    out.push({ start: next, last: ULONG_MAX });
    return out;
  }

  // ---- domains -----------------------------------------------------------------------------------

  /** iopt_calculate_iova_alignment */
  private calculateIovaAlignment(extra?: IommuDomain): bigint {
    let a = this.disableLargePages ? PAGE : 1n;
    for (const d of extra ? [...this.domains, extra] : this.domains) {
      const min = BigInt(lowestPgsize(d.pgsizeBitmap));
      if (min > a) a = min;
    }
    return a;
  }

  /** iopt_check_iova_alignment: may every area live with a new alignment? */
  private checkIovaAlignment(align: bigint): Rc {
    for (const a of this.areas) {
      if (a.start % align || (a.last - a.start + 1n) % align || BigInt(a.pageOffset % PAGE_SIZE) % align)
        return err("EADDRINUSE", "iopt_check_iova_alignment", `the mapping at 0x${a.start.toString(16)} is not aligned to ${align}, which the new domain needs`);
    }
    return 0;
  }

  /**
   * iopt_table_add_domain: the domain joins the IOAS and is filled with every area (pinning
   * them if it is the first domain). All or nothing.
   */
  tableAddDomain(domain: IommuDomain): Rc {
    const newAlign = this.calculateIovaAlignment(domain);
    if (newAlign > PAGE)
      return err("EINVAL", "iopt_table_add_domain", `the domain's smallest page (${newAlign}) is larger than PAGE_SIZE`);
    if (newAlign !== this.iovaAlignment) {
      const rc = this.checkIovaAlignment(newAlign);
      if (rc) return rc;
    }
    const name = `domain ${domain.id} aperture`;
    if (domain.apertureStart !== 0) {
      const rc = this.reserveIova(0n, BigInt(domain.apertureStart) - 1n, domain, name);
      if (rc) return rc;
    }
    if (BigInt(domain.apertureEnd) !== ULONG_MAX) {
      const rc = this.reserveIova(BigInt(domain.apertureEnd) + 1n, ULONG_MAX, domain, name);
      if (rc) {
        this.removeReservedIova(domain);
        return rc;
      }
    }
    // iopt_fill_domain
    const first = this.domains.length === 0;
    const done: IoptArea[] = [];
    for (const area of this.areas) {
      const [p, n] = this.areaPageSpan(area);
      if (first) {
        const rc = area.pages.pin(p, n);
        if (rc) {
          this.unfillDomain(domain, done, first);
          this.removeReservedIova(domain);
          return rc;
        }
      }
      const rc = this.mapAreaIntoDomain(area, domain);
      if (rc) {
        if (first) area.pages.unpin(p, n);
        this.unfillDomain(domain, done, first);
        this.removeReservedIova(domain);
        return rc;
      }
      done.push(area);
    }
    this.domains.push(domain);
    this.iovaAlignment = newAlign;
    return 0;
  }

  private unfillDomain(domain: IommuDomain, areas: IoptArea[], unpin: boolean): void {
    for (const area of areas) {
      this.unmapAreaFromDomain(area, domain);
      if (unpin) {
        const [p, n] = this.areaPageSpan(area);
        area.pages.unpin(p, n);
      }
    }
  }

  /** iopt_table_remove_domain: unmap everything from it; the last domain's removal unpins. */
  tableRemoveDomain(domain: IommuDomain): void {
    const i = this.domains.indexOf(domain);
    if (i < 0) throw new Error(`iopt_table_remove_domain: domain ${domain.id} is not in IOAS ${this.ioasId}`);
    this.domains.splice(i, 1);
    this.unfillDomain(domain, this.areas, this.domains.length === 0);
    this.removeReservedIova(domain);
    this.iovaAlignment = this.calculateIovaAlignment();
  }

  /** iopt_disable_large_pages (IOMMU_OPTION_HUGE_PAGES = 0, and VFIO TYPE1). */
  disableLarge(): Rc {
    if (this.disableLargePages) return 0;
    if (this.domains.length && this.areas.length)
      return err("EINVAL", "iopt_disable_large_pages", "domains already hold mappings that may use large pages");
    this.disableLargePages = true;
    const a = this.calculateIovaAlignment();
    if (a !== this.iovaAlignment) {
      const rc = this.checkIovaAlignment(a);
      if (rc) {
        this.disableLargePages = false;
        return rc;
      }
    }
    this.iovaAlignment = a;
    return 0;
  }

  enableLarge(): void {
    this.disableLargePages = false;
    this.iovaAlignment = this.calculateIovaAlignment();
  }

  /** iopt_destroy_table: the IOAS is going away; no domains can be left. */
  destroyTable(): void {
    if (this.domains.length) throw new Error(`IOAS ${this.ioasId} destroyed with domains attached`);
    while (this.areas.length) this.removeArea(this.areas[0]);
  }

  /** Total bytes mapped. */
  get mappedBytes(): bigint {
    return this.areas.reduce((s, a) => s + (a.last - a.start + 1n), 0n);
  }
}

/** Smallest page size in a pgsize bitmap. */
export function lowestPgsize(bitmap: number): number {
  for (let b = 0; b < 53; b++) if (Math.floor(bitmap / 2 ** b) % 2) return 2 ** b;
  throw new Error("empty pgsize bitmap");
}

/** IOMMU_IOAS_MAP_* → IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE (conv_iommu_prot: always cache coherent). */
export function convIommuProt(readable: boolean, writeable: boolean): number {
  return IOMMU_CACHE | (readable ? IOMMU_READ : 0) | (writeable ? IOMMU_WRITE : 0);
}
