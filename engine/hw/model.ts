/**
 * The contract between the kernel half (engine/kernel, mirroring iommufd) and an IOMMU model
 * (engine/hw/<model>), in the shape of Linux's `struct iommu_ops` / `struct iommu_domain_ops`
 * (include/linux/iommu.h).
 *
 * An IOMMU model has two halves, as a real system does:
 *  - the *driver* (drivers/iommu/intel/*.c for VT-d): allocates domains, writes page tables and
 *    context/PASID entries into simulated physical memory, submits invalidation descriptors;
 *  - the *hardware* (QEMU's hw/i386/intel_iommu.c for VT-d): registers, caches, the walker, fault
 *    recording. Devices' DMA goes to the hardware only.
 * iommufd reaches the driver only through `IommuOps` and `IommuDomain.ops`, never the hardware's
 * state, exactly as iommufd reaches drivers only through iommu_ops.
 *
 * Addresses in this interface are plain numbers: domains' apertures are at most 57 bits wide and
 * the simulated physical address space is 46 bits, so every value is exact below 2^53.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";

/** include/linux/iommu.h IOMMU_READ … : protection bits of a mapping. */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;
export const IOMMU_NOEXEC = 1 << 3;
export const IOMMU_MMIO = 1 << 4;
export const IOMMU_PRIV = 1 << 5;

/** IOMMU_NO_PASID: the RID's own address space in scalable mode (RID_PASID = 0 in Linux). */
export const IOMMU_NO_PASID = 0;

/** enum iommu_cap (include/linux/iommu.h), the ones iommufd asks about. */
export type IommuCap = "CACHE_COHERENCY" | "ENFORCE_CACHE_COHERENCY" | "DIRTY_TRACKING" | "DEFERRED_FLUSH";

/** A simulated PCI device: what the IOMMU core and iommufd know about it. */
export interface SimDevice {
  /** index N of /dev/vfio/devices/vfioN */
  readonly index: number;
  readonly name: string;
  readonly path: string;
  /** requester id: bus << 8 | devfn */
  readonly rid: number;
  /** PASID width in bits (0: no PASID capability) */
  readonly pasidBits: number;
  readonly pri: boolean;
  readonly ats: boolean;
  /** IOMMU group number; devices of one group share attachments */
  readonly group: number;
}

/** enum iommu_resv_type (include/linux/iommu.h) */
export type ResvType = "DIRECT" | "DIRECT_RELAXABLE" | "RESERVED" | "MSI" | "SW_MSI";

/** struct iommu_resv_region: IOVA the device must not get mapped (or that must stay 1:1). */
export interface ResvRegion {
  start: number;
  length: number;
  type: ResvType;
}

/** Flags of ops.domainAllocPagingFlags: the uAPI IOMMU_HWPT_ALLOC_* bits that reach drivers. */
export const DOMAIN_ALLOC_NEST_PARENT = 1 << 0;
export const DOMAIN_ALLOC_DIRTY_TRACKING = 1 << 1;
export const DOMAIN_ALLOC_PASID = 1 << 3;

/** struct iommu_domain_ops: what the core may do to a domain. */
export interface IommuDomainOps {
  /**
   * Map `pgcount` pages of `pgsize` (a size in the domain's pgsizeBitmap) from `iova` to `paddr`.
   * Returns the number of bytes mapped, or an Err (nothing is left half-done for a failed page).
   */
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number): number | Err;
  /** Unmap up to `pgcount` pages of `pgsize` at `iova`; returns bytes unmapped (0 if nothing was there). */
  unmapPages(iova: number, pgsize: number, pgcount: number): number;
  /** Make the preceding unmaps visible: invalidate the IOTLB for [iova, iova + size). */
  iotlbSync(iova: number, size: number): void;
  flushIotlbAll(): void;
  /** What the table holds at `iova`, for tests and views: physical address, or -1 when unmapped. */
  iovaToPhys(iova: number): number;
  /** Dirty tracking (struct iommu_dirty_ops); absent when the domain cannot track. */
  setDirtyTracking?(enable: boolean): Rc;
  /**
   * Report dirty IOVA in [iova, iova + size) through `record`, clearing the dirty state unless
   * `noClear` (IOMMU_DIRTY_NO_CLEAR). Returns an Err when the domain is not tracking.
   */
  readAndClearDirty?(iova: number, size: number, noClear: boolean, record: (iova: number, length: number) => void): Rc;
  /** Forbid no-snoop for this domain (enforce_cache_coherency). */
  enforceCacheCoherency(): boolean;
  /**
   * iommu_domain_ops.cache_invalidate_user: invalidate what a user-managed (nested) domain's
   * caches hold, from an array of driver-defined entries. Sets `array.entryNum` to the number of
   * entries handled (also on failure). Absent for kernel-managed paging domains.
   */
  cacheInvalidateUser?(array: IommuUserDataArray): Rc;
}

/**
 * struct iommu_user_data (include/linux/iommu.h): driver data a user passed by pointer. The
 * driver checks the type and length first and only then copies (iommuCopyStructFromUser), so
 * the order of EINVAL and EFAULT is the kernel's.
 */
export interface IommuUserData {
  /** enum iommu_hwpt_data_type */
  readonly type: number;
  /** the user's length in bytes */
  readonly len: number;
  /** copy_from_user of `len` bytes (EFAULT when unreadable) */
  copy(): Uint8Array | Err;
}

/** struct iommu_user_data_array: an array of `entryNum` entries of `entryLen` bytes each. */
export interface IommuUserDataArray {
  /** enum iommu_hwpt_invalidate_data_type */
  readonly type: number;
  readonly entryLen: number;
  /** in: entries in the array; out: entries the driver handled */
  entryNum: number;
  /** copy_from_user of entry `index` (`entryLen` bytes; EFAULT when unreadable) */
  copyEntry(index: number): Uint8Array | Err;
}

/**
 * __iommu_copy_struct_from_user (include/linux/iommu.h): the driver-data copy rule. Wrong type →
 * EINVAL; a user length below the struct's first-release size (`minLen`) or above the kernel's
 * current size (`dataLen`) → EINVAL (never E2BIG); otherwise copied and zero-extended to `dataLen`.
 */
export function iommuCopyStructFromUser(data: IommuUserData, dataType: number, dataLen: number, minLen: number, where: string): Uint8Array | Err {
  if (data.type !== dataType) return err("EINVAL", where, `data type ${data.type} is not the expected ${dataType}`);
  if (data.len < minLen || dataLen < data.len)
    return err("EINVAL", where, `data length ${data.len} is outside [${minLen}, ${dataLen}] (driver data is never zero-checked: a longer struct is EINVAL, not E2BIG)`);
  const bytes = data.copy();
  if (isErr(bytes)) return bytes;
  const out = new Uint8Array(dataLen);
  out.set(bytes.subarray(0, data.len));
  return out;
}

/** __iommu_copy_struct_from_user_array: entry `index` of an array, with the same rule. */
export function iommuCopyStructFromUserArray(array: IommuUserDataArray, dataType: number, index: number, dataLen: number, minLen: number, where: string): Uint8Array | Err {
  if (index >= array.entryNum) throw new Error(`${where}: entry ${index} beyond entry_num ${array.entryNum} (driver bug)`);
  return iommuCopyStructFromUser({ type: array.type, len: array.entryLen, copy: () => array.copyEntry(index) }, dataType, dataLen, minLen, where);
}

/** struct iommu_domain */
export interface IommuDomain {
  readonly type: "paging" | "nested" | "blocked" | "identity";
  /** hardware domain id, for display (VT-d DID) */
  readonly id: number;
  /** bitmap of supported page sizes (bit n set = 2^n bytes) */
  pgsizeBitmap: number;
  /** domain->geometry.aperture_start / aperture_end (inclusive) */
  readonly apertureStart: number;
  readonly apertureEnd: number;
  readonly ops: IommuDomainOps;
  /** Allocated with NEST_PARENT (may be the parent of nested domains). */
  readonly nestParent: boolean;
  readonly dirtyTracking: boolean;
  /** Parent of a nested domain. */
  readonly parent?: IommuDomain;
  /** The driver (ops) that made it: attaching to a device of another IOMMU is refused. */
  readonly owner: IommuOps;
  /**
   * domain->iopf_handler is set: iommufd sets it for a HWPT allocated with a fault queue
   * (IOMMU_HWPT_FAULT_ID_VALID), and the driver enables I/O page faults for the device while
   * such a domain is attached (intel iopf_for_domain_set).
   */
  iopfHandler?: boolean;
}

/** Output of ops.hwInfo: enum iommu_hw_info_type and its payload, little-endian bytes. */
export interface HwInfo {
  type: number;
  data: Uint8Array;
}

/** struct iommu_ops: per-IOMMU-driver operations the core and iommufd use. */
export interface IommuOps {
  readonly name: string;
  /** iommu_capable(dev, cap) */
  capable(dev: SimDevice, cap: IommuCap): boolean;
  /** ops->hw_info: the vendor info blob. `type` is the requested type (0 = default). */
  hwInfo(dev: SimDevice, type: number): HwInfo | Err;
  /** ops->domain_alloc_paging_flags: a new empty paging domain. */
  domainAllocPagingFlags(dev: SimDevice, flags: number, userData: null): IommuDomain | Err;
  /** ops->get_resv_regions */
  getResvRegions(dev: SimDevice): ResvRegion[];
  /** Attach `domain` to the device's RID (pasid = IOMMU_NO_PASID) or to one PASID. Replaces what was there. */
  attachDev(domain: IommuDomain, dev: SimDevice, pasid: number): Rc;
  /** Put the RID or PASID back to blocking DMA (the blocked domain). Never fails. */
  blockDev(dev: SimDevice, pasid: number): void;
  /** Free a domain no device is attached to. */
  domainFree(domain: IommuDomain): void;
  /** Maximum PASIDs the device may use through this IOMMU (0: none). */
  maxPasids(dev: SimDevice): number;
  /**
   * ops->domain_alloc_nested: a nested (user-managed stage-1) domain on `parent`, a paging domain
   * allocated with DOMAIN_ALLOC_NEST_PARENT. `flags` are the IOMMU_HWPT_ALLOC_* bits that reach
   * the driver (iommufd strips FAULT_ID_VALID). Absent: the driver cannot nest (EOPNOTSUPP).
   */
  domainAllocNested?(dev: SimDevice, parent: IommuDomain, flags: number, data: IommuUserData): IommuDomain | Err;
  /**
   * Connect the iommu core's I/O page fault half (io-pgfault.c), which the kernel owns: the
   * driver reports page requests to it and it answers through `pageResponse`. Called once at boot.
   */
  setFaultCore?(core: IommuFaultCore): void;
  /** ops->page_response: send the page group response for `fault` (the group's last request). */
  pageResponse?(dev: SimDevice, fault: IopfFault, code: number): void;
}

/** The result of one DMA translation by the hardware. */
export type Translation =
  | { ok: true; pa: number; /** bytes from pa to the end of the translated page */ size: number; perm: number }
  | { ok: false; reason: number; name: string };

/** A DMA request as it arrives at the IOMMU. */
export interface DmaRequest {
  rid: number;
  /** -1: a request without PASID */
  pasid: number;
  iova: number;
  write: boolean;
}

/** The hardware half: what devices talk to. */
export interface IommuHw {
  readonly name: string;
  /** Translate one request (one page's worth); records faults as the hardware does. */
  translate(req: DmaRequest): Translation;
}

/**
 * A whole IOMMU model, as a machine holds it.
 * @example const m = createVtd(machine); m.ops.domainAllocPagingFlags(dev, 0, null)
 */
export interface IommuModel {
  readonly kind: string;
  readonly ops: IommuOps;
  readonly hw: IommuHw;
}

/**
 * iommu_pgsize() + __iommu_map() (drivers/iommu/iommu.c): map [iova, iova + size) to paddr with
 * the largest page sizes the domain allows that fit the alignment of both addresses, at most
 * `maxPgsize` (PAGE_SIZE when the IOAS has huge pages disabled). On failure, whatever was mapped
 * by this call is unmapped again (iommu_map undoes a partial map).
 */
export function iommuMap(domain: IommuDomain, iova: number, paddr: number, size: number, prot: number, maxPgsize = Infinity): number | Err {
  const origIova = iova;
  let mapped = 0;
  while (size > 0) {
    const { pgsize, count } = iommuPgsize(domain.pgsizeBitmap, iova, paddr, size, maxPgsize);
    const r = domain.ops.mapPages(iova, paddr, pgsize, count, prot);
    if (typeof r !== "number") {
      if (mapped) iommuUnmap(domain, origIova, mapped);
      return r;
    }
    iova += r;
    paddr += r;
    size -= r;
    mapped += r;
  }
  return mapped;
}

/** iommu_unmap(): unmap [iova, iova + size) with the page sizes the table actually holds. */
export function iommuUnmap(domain: IommuDomain, iova: number, size: number): number {
  let unmapped = 0;
  while (unmapped < size) {
    // __iommu_unmap passes the IOVA as the "physical" address too: only its alignment matters
    const { pgsize, count } = iommuPgsize(domain.pgsizeBitmap, iova + unmapped, iova + unmapped, size - unmapped, Infinity);
    const r = domain.ops.unmapPages(iova + unmapped, pgsize, count);
    if (r === 0) break;
    unmapped += r;
  }
  domain.ops.iotlbSync(iova, size);
  return unmapped;
}

/** iommu_pgsize(): the largest supported page size for this step, and how many of it fit. */
export function iommuPgsize(bitmap: number, iova: number, paddr: number, size: number, maxPgsize: number): { pgsize: number; count: number } {
  let best = 0;
  for (let bit = 0; bit < 31 + 22; bit++) {
    const pg = 2 ** bit;
    if (pg > size || pg > maxPgsize) break;
    if (!(Math.floor(bitmap / pg) % 2)) continue;
    if (iova % pg || paddr % pg) break;
    best = pg;
  }
  if (!best) throw new Error(`iommu_pgsize: no page size of 0x${bitmap.toString(16)} fits iova 0x${iova.toString(16)} size 0x${size.toString(16)}`);
  // pgcount: as many of `best` as fit before the next larger page size would also fit
  let count = Math.floor(size / best);
  let next = 0;
  for (let bit = Math.log2(best) + 1; bit < 53; bit++) {
    const pg = 2 ** bit;
    if (Math.floor(bitmap / pg) % 2 && pg <= maxPgsize) { next = pg; break; }
  }
  if (next) {
    const toBoundary = (next - (iova % next)) % next;
    if (toBoundary && (paddr % next) === (iova % next) && toBoundary / best < count) count = toBoundary / best;
  }
  return { pgsize: best, count: Math.max(1, count) };
}

// ---- recoverable faults: the iommu core's I/O page fault interface (include/linux/iommu.h) ----

/**
 * enum iommu_page_response_code: what a fault handler answers. Linux's VT-d driver writes the
 * value straight into the page group response's RC field (intel_iommu_page_response →
 * QI_PGRP_RESP_CODE), so SUCCESS and INVALID are PCI "Success" (0) and "Invalid Request" (1);
 * FAILURE (2) would be a reserved PCI code there (PCI "Response Failure" is 0xF). iommufd lets
 * user space send only SUCCESS and INVALID.
 */
export const IOMMU_PAGE_RESP_SUCCESS = 0;
export const IOMMU_PAGE_RESP_INVALID = 1;
export const IOMMU_PAGE_RESP_FAILURE = 2;

/** struct iommu_fault_page_request flags (v6.10+ values: private data went away, NEEDS_PASID moved to bit 2). */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
export const IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID = 1 << 2;
/** IOMMU_FAULT_PERM_*: what the page request asked for */
export const IOMMU_FAULT_PERM_READ = 1 << 0;
export const IOMMU_FAULT_PERM_WRITE = 1 << 1;
export const IOMMU_FAULT_PERM_EXEC = 1 << 2;
export const IOMMU_FAULT_PERM_PRIV = 1 << 3;

/** struct iommu_fault_page_request: one page request as the driver reports it to the core. */
export interface IopfFault {
  flags: number;
  pasid: number;
  /** Page Request Group Index (9 bits) */
  grpid: number;
  perm: number;
  /** page address */
  addr: number;
}

/**
 * The iommu core's fault half as a driver sees it (drivers/iommu/io-pgfault.c): the driver adds
 * a device while I/O page faults are enabled for it, reports each page request, and discards
 * partial groups after a queue overflow. The core answers through IommuOps.pageResponse.
 */
export interface IommuFaultCore {
  /** iopf_queue_add_device */
  iopfQueueAddDevice(dev: SimDevice): Rc;
  /** iopf_queue_remove_device: drop partial faults, answer every pending group INVALID */
  iopfQueueRemoveDevice(dev: SimDevice): void;
  /** iopf_queue_discard_partial: after a page request queue overflow */
  iopfQueueDiscardPartial(): void;
  /** iommu_report_device_fault: 0, or an Err when no handler took it (the core answered INVALID itself) */
  reportDeviceFault(dev: SimDevice, fault: IopfFault): Rc;
}
