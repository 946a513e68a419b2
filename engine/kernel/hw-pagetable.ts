/**
 * hw_pagetable.c (+ the hw_info and dirty-tracking parts of device.c / io_pagetable.c): HWPT
 * allocation, IOMMU_GET_HW_INFO, dirty tracking, and cache invalidation of nested HWPTs.
 *
 * Nested HWPTs: IOMMU_HWPT_ALLOC with pt_id = a NEST_PARENT HWPT_PAGING and driver data
 * (IOMMU_HWPT_DATA_VTD_S1) makes a HWPT_NESTED through ops.domainAllocNested
 * (iommufd_hwpt_nested_alloc); IOMMU_HWPT_INVALIDATE hands an entry array to the nested
 * domain's cacheInvalidateUser (iommufd_hwpt_invalidate). vIOMMUs do not exist on VT-d
 * (viommu.ts), so the vIOMMU forms of both answer as the kernel does without one.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { unknownBits } from "../uapi/consts.ts";
import { iommufd_hwpt_alloc_flags, iommufd_hw_info_flags } from "../uapi/iommufd.ts";
import {
  DOMAIN_ALLOC_DIRTY_TRACKING, DOMAIN_ALLOC_NEST_PARENT, DOMAIN_ALLOC_PASID, IOMMU_NO_PASID,
  type IommuUserData, type IommuUserDataArray,
} from "../hw/model.ts";
import { iommufdHwPagetableAttach } from "./device.ts";
import { ULONG_MAX } from "./io-pagetable.ts";
import { iommufdUcmdRespond, type IommufdCtx, type Ucmd } from "./main.ts";
import {
  iommufdGetDevice, iommufdGetFault, iommufdGetHwptPaging, iommufdGetObject, IommufdHwptNested, IommufdHwptPaging,
  type IommufdDevice, type IommufdHwPagetable, type IommufdIoas,
} from "./private.ts";

const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;

const n = (v: unknown): number => v as number;
const b = (v: unknown): bigint => v as bigint;

/**
 * iommufd_hwpt_paging_alloc: a HWPT_PAGING for `ioas`, compatible with `idev`. With
 * `immediateAttach` (automatic domains) the device is attached before the domain is filled.
 * The object is returned reserved: the caller finalizes it.
 */
export function iommufdHwptPagingAlloc(ictx: IommufdCtx, ioas: IommufdIoas, idev: IommufdDevice, pasid: number, flags: number, immediateAttach: boolean): IommufdHwptPaging | Err {
  const ops = ictx.kernel.machine.iommu.ops;
  const bad = unknownBits(iommufd_hwpt_alloc_flags, flags);
  if (bad) return err("EOPNOTSUPP", "iommufd_hwpt_paging_alloc", `unknown flag bits 0x${bad.toString(16)}`);
  if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !ops.capable(idev.dev, "DIRTY_TRACKING"))
    return err("EOPNOTSUPP", "iommufd_hwpt_paging_alloc", "DIRTY_TRACKING was asked for, but the device's IOMMU cannot track dirty pages");
  if (flags & IOMMU_HWPT_FAULT_ID_VALID && flags & IOMMU_HWPT_ALLOC_NEST_PARENT)
    return err("EOPNOTSUPP", "iommufd_hwpt_paging_alloc", "a nest parent cannot have a fault queue (FAULT_ID_VALID with NEST_PARENT)");
  const driverFlags =
    (flags & IOMMU_HWPT_ALLOC_NEST_PARENT ? DOMAIN_ALLOC_NEST_PARENT : 0) |
    (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING ? DOMAIN_ALLOC_DIRTY_TRACKING : 0) |
    (flags & IOMMU_HWPT_ALLOC_PASID ? DOMAIN_ALLOC_PASID : 0);
  const domain = ops.domainAllocPagingFlags(idev.dev, driverFlags, null);
  if (isErr(domain)) return domain;
  const hp = ictx.objectAlloc(new IommufdHwptPaging(ictx, ioas, domain));
  if (isErr(hp)) {
    ops.domainFree(domain);
    return hp;
  }
  ioas.users++; // Pairs with IommufdHwptPaging.destroy
  hp.pasidCompat = !!(flags & IOMMU_HWPT_ALLOC_PASID);
  hp.nestParent = !!(flags & IOMMU_HWPT_ALLOC_NEST_PARENT);
  if (idev.enforceCacheCoherency) {
    // iommufd_hwpt_paging_enforce_cc: a driver bug if it refuses here
    if (!domain.ops.enforceCacheCoherency()) throw new Error("enforce_cache_coherency failed on a new domain");
    hp.enforceCacheCoherency = true;
  }
  if (immediateAttach) {
    const rc = iommufdHwPagetableAttach(hp, idev, pasid);
    if (rc) {
      ictx.objectAbortAndDestroy(hp);
      return rc;
    }
  }
  const rc = ioas.iopt.tableAddDomain(domain);
  if (rc) {
    if (immediateAttach) detachAll(hp);
    ictx.objectAbortAndDestroy(hp);
    return rc;
  }
  hp.inIopt = true;
  ioas.hwptList.push(hp);
  return hp;
}

/** Undo immediate attachments of a HWPT that is being aborted. */
function detachAll(hp: IommufdHwptPaging): void {
  const ops = hp.ictx.kernel.machine.iommu.ops;
  for (const { idev, pasid } of hp.attached.values()) {
    const a = idev.igroup.pasidAttach.get(pasid);
    if (a?.hwpt === hp) {
      ops.blockDev(idev.dev, pasid);
      idev.igroup.pasidAttach.delete(pasid);
    }
    if (pasid === IOMMU_NO_PASID) hp.ioas.iopt.removeReservedIova(idev);
    hp.users--;
  }
  hp.attached.clear();
}

/** IOMMU_HWPT_ALLOC: iommufd_hwpt_alloc */
export function iommufdHwptAlloc(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_hwpt_alloc", "__reserved must be 0");
  const dataType = n(cmd.data_type);
  const dataLen = n(cmd.data_len);
  if ((dataType === 0 && dataLen) || (dataType !== 0 && !dataLen))
    return err("EINVAL", "iommufd_hwpt_alloc", dataType === 0 ? "data_len must be 0 when data_type is IOMMU_HWPT_DATA_NONE" : "data_type is set but data_len is 0");
  const idev = iommufdGetDevice(ictx, n(cmd.dev_id));
  if (isErr(idev)) return idev;
  const pt = iommufdGetObject(ictx, n(cmd.pt_id), "ANY");
  if (isErr(pt)) return err("EINVAL", "iommufd_hwpt_alloc", `pt_id ${n(cmd.pt_id)} is not an object (HWPT_ALLOC turns that into EINVAL)`);
  const flags = n(cmd.flags);
  let hp: IommufdHwPagetable;
  switch (pt.type) {
    case "IOAS": {
      if (dataType !== 0)
        // iommufd_hwpt_paging_alloc: user data needs a driver that accepts paging data (VT-d does not)
        return err("EOPNOTSUPP", "intel_iommu_domain_alloc_paging_flags", `the VT-d driver takes no driver data for a paging domain (data_type ${dataType})`);
      const r = iommufdHwptPagingAlloc(ictx, pt, idev, IOMMU_NO_PASID, flags, false);
      if (isErr(r)) return r;
      hp = r;
      break;
    }
    case "HWPT_PAGING": {
      // struct iommu_user_data: the driver checks type and length before it copies
      const uptr = b(cmd.data_uptr);
      const data: IommuUserData = { type: dataType, len: dataLen, copy: () => ictx.kernel.mm.copyFromUser(uptr, dataLen) };
      const r = hwptNestedAlloc(pt as IommufdHwptPaging, idev, flags, data);
      if (isErr(r)) return r;
      hp = r;
      break;
    }
    default:
      return err("EINVAL", "iommufd_hwpt_alloc", `pt_id ${pt.id} is a ${pt.type}; it must be an IOAS, a nest-parent HWPT_PAGING or a vIOMMU`);
  }
  if (flags & IOMMU_HWPT_FAULT_ID_VALID) {
    const fault = iommufdGetFault(ictx, n(cmd.fault_id));
    if (isErr(fault)) {
      ictx.objectAbortAndDestroy(hp);
      return fault;
    }
    hp.fault = fault;
    fault.users++; // Pairs with IommufdHwptPaging.destroy
    // hwpt->domain->iopf_handler = iommufd_fault_iopf_handler: the driver enables I/O page
    // faults for a device while this domain is attached (intel iopf_for_domain_set)
    hp.domain.iopfHandler = true;
  }
  cmd.out_hwpt_id = hp.id;
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) {
    ictx.objectAbortAndDestroy(hp);
    return rc;
  }
  ictx.objectFinalize(hp);
  return 0;
}

/**
 * iommufd_hwpt_nested_alloc: a HWPT_NESTED over `parent` for `idev`. The core checks flags, data
 * and the parent; the driver (ops.domainAllocNested) checks its data. Returned reserved: the
 * caller finalizes it. [The kernel reserves the object before asking the driver and aborts it on
 * failure; reserving after is indistinguishable from user space, IDs being reused lowest-first.]
 */
function hwptNestedAlloc(parent: IommufdHwptPaging, idev: IommufdDevice, flags: number, data: IommuUserData): IommufdHwptNested | Err {
  const where = "iommufd_hwpt_nested_alloc";
  const ictx = parent.ictx;
  const ops = ictx.kernel.machine.iommu.ops;
  if (flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID))
    return err("EOPNOTSUPP", where, `flags 0x${flags.toString(16)}: a nested HWPT takes only FAULT_ID_VALID and ALLOC_PASID`);
  if (!data.len) return err("EOPNOTSUPP", where, "a nested HWPT needs driver data (data_len is 0)");
  if (!ops.domainAllocNested) return err("EOPNOTSUPP", where, `the ${ops.name} driver has no nested domain allocator`);
  if (parent.autoDomain || !parent.nestParent || parent.domain.owner !== ops)
    return err("EINVAL", where, `HWPT ${parent.id} ${parent.autoDomain ? "is an automatic domain" : !parent.nestParent ? "was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT" : "belongs to another IOMMU driver"}`);
  // the driver sees every flag but FAULT_ID_VALID (iommufd handles the fault queue)
  const domain = ops.domainAllocNested(idev.dev, parent.domain, flags & IOMMU_HWPT_ALLOC_PASID ? DOMAIN_ALLOC_PASID : 0, data);
  if (isErr(domain)) return domain;
  if (domain.type !== "nested") throw new Error(`${where}: the driver returned a ${domain.type} domain (WARN_ON_ONCE)`);
  const hn = ictx.objectAlloc(new IommufdHwptNested(ictx, parent, domain));
  if (isErr(hn)) {
    ops.domainFree(domain);
    return hn;
  }
  hn.pasidCompat = !!(flags & IOMMU_HWPT_ALLOC_PASID);
  parent.users++; // Pairs with IommufdHwptNested.destroy
  parent.nestedChildren.add(hn);
  return hn;
}

/** IOMMU_GET_HW_INFO: iommufd_get_hw_info */
export function iommufdGetHwInfo(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const bad = unknownBits(iommufd_hw_info_flags, n(cmd.flags));
  if (bad) return err("EOPNOTSUPP", "iommufd_get_hw_info", `unknown flag bits 0x${bad.toString(16)}`);
  const reserved = cmd.__reserved as number[];
  const ri = reserved.findIndex((x) => x !== 0);
  if (ri >= 0) return err("EOPNOTSUPP", "iommufd_get_hw_info", `__reserved[${ri}] must be 0`);
  // Drivers do not support a random input: without INPUT_TYPE the type is DEFAULT.
  if (!(n(cmd.flags) & 1)) cmd.out_data_type = 0;
  const idev = iommufdGetDevice(ictx, n(cmd.dev_id));
  if (isErr(idev)) return idev;
  const ops = ictx.kernel.machine.iommu.ops;
  const info = ops.hwInfo(idev.dev, n(cmd.out_data_type));
  if (isErr(info)) return info;
  const userLen = n(cmd.data_len);
  const copyLen = Math.min(userLen, info.data.length);
  const mm = ictx.kernel.mm;
  let rc = mm.copyToUser(b(cmd.data_uptr), info.data.subarray(0, copyLen));
  if (rc) return rc;
  if (copyLen < userLen) {
    rc = mm.copyToUser(b(cmd.data_uptr) + BigInt(copyLen), new Uint8Array(userLen - copyLen));
    if (rc) return rc;
  }
  cmd.out_data_type = info.type;
  cmd.data_len = info.data.length;
  let caps = 0n;
  if (ops.capable(idev.dev, "DIRTY_TRACKING")) caps |= BigInt(IOMMU_HW_CAP_DIRTY_TRACKING);
  cmd.out_capabilities = caps;
  const max = ops.maxPasids(idev.dev);
  cmd.out_max_pasid_log2 = max ? Math.log2(max) : 0;
  return iommufdUcmdRespond(ucmd);
}

/** IOMMU_HWPT_SET_DIRTY_TRACKING: iommufd_hwpt_set_dirty_tracking → iopt_set_dirty_tracking */
export function iommufdHwptSetDirtyTracking(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const flags = n(cmd.flags);
  if (flags & ~1) return err("EOPNOTSUPP", "iommufd_hwpt_set_dirty_tracking", `unknown flag bits 0x${(flags & ~1).toString(16)}`);
  const hp = iommufdGetHwptPaging(ictx, n(cmd.hwpt_id));
  if (isErr(hp)) return hp;
  const ops = hp.domain.ops;
  if (!ops.setDirtyTracking || !ops.readAndClearDirty)
    return err("EOPNOTSUPP", "iopt_set_dirty_tracking", `HWPT ${hp.id} has no dirty-tracking ops (allocate it with IOMMU_HWPT_ALLOC_DIRTY_TRACKING)`);
  const enable = !!(flags & 1);
  if (enable) {
    // iopt_clear_dirty_data: start from a clean snapshot
    for (const a of hp.ioas.iopt.areas) ops.readAndClearDirty(Number(a.start), Number(a.last - a.start + 1n), false, () => {});
  }
  const rc = ops.setDirtyTracking(enable);
  if (rc) return rc;
  const t = ictx.kernel.machine.trace;
  if (t.on) t.emit("iommufd.hwpt.dirty", { hwpt_id: hp.id, enable });
  return 0;
}

/** IOMMU_HWPT_GET_DIRTY_BITMAP: iommufd_hwpt_get_dirty_bitmap → iopt_read_and_clear_dirty_data */
export function iommufdHwptGetDirtyBitmap(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const flags = n(cmd.flags);
  if (flags & ~1 || cmd.__reserved)
    return err("EOPNOTSUPP", "iommufd_hwpt_get_dirty_bitmap", flags & ~1 ? `unknown flag bits 0x${(flags & ~1).toString(16)}` : "__reserved must be 0");
  const hp = iommufdGetHwptPaging(ictx, n(cmd.hwpt_id));
  if (isErr(hp)) return hp;
  // iommufd_check_iova_range
  const iova = b(cmd.iova);
  const length = b(cmd.length);
  const pageSize = b(cmd.page_size);
  const align = hp.ioas.iopt.iovaAlignment;
  const last = (iova + length - 1n) & ULONG_MAX;
  if (iova + BigInt.asUintN(64, length - 1n) > ULONG_MAX) return err("EOVERFLOW", "iommufd_check_iova_range", "iova + length - 1 overflows");
  if (iova % align) return err("EINVAL", "iommufd_check_iova_range", `iova is not aligned to the IOAS iova_alignment (${align})`);
  if (((last + 1n) & ULONG_MAX) % align) return err("EINVAL", "iommufd_check_iova_range", `iova + length is not aligned to the IOAS iova_alignment (${align})`);
  if (!pageSize) return err("EINVAL", "iommufd_check_iova_range", "page_size is 0");
  if ((iova & (pageSize - 1n)) || (((last + 1n) & ULONG_MAX) & (pageSize - 1n)))
    return err("EINVAL", "iommufd_check_iova_range", `iova or iova + length is not aligned to page_size (${pageSize})`);
  const ops = hp.domain.ops;
  if (!ops.readAndClearDirty) return err("EOPNOTSUPP", "iommu_read_and_clear_dirty", `HWPT ${hp.id} has no dirty-tracking ops`);
  // iova_bitmap: set bits in the user's bitmap (never clears a bit already set). A walk or
  // bitmap-write error is ignored, as the kernel ignores iova_bitmap_for_each's result.
  const words = new Map<bigint, bigint>();
  const start = Number(iova);
  const size = Math.min(Number(length), 2 ** 53 - start);
  ops.readAndClearDirty(start, size, !!(flags & 1), (diova, dlen) => {
    const first = (BigInt(diova) - iova) / pageSize;
    const lastBit = (BigInt(diova + dlen - 1) - iova) / pageSize;
    for (let bit = first; bit <= lastBit; bit++) words.set(bit / 64n, (words.get(bit / 64n) ?? 0n) | (1n << (bit % 64n)));
  });
  const mm = ictx.kernel.mm;
  for (const [w, v] of words) {
    const addr = b(cmd.data) + w * 8n;
    const cur = mm.copyFromUser(addr, 8);
    if (isErr(cur)) continue;
    const dv = new DataView(cur.buffer);
    dv.setBigUint64(0, dv.getBigUint64(0, true) | v, true);
    mm.copyToUser(addr, cur);
  }
  return 0;
}

/**
 * IOMMU_HWPT_INVALIDATE: iommufd_hwpt_invalidate. `entry_num` is written back on every path:
 * the number of entries the driver handled (0 when the call fails before the driver).
 */
export function iommufdHwptInvalidate(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const entryNum = n(cmd.entry_num);
  let done = 0;
  const rc = invalidate();
  cmd.entry_num = done;
  const rc2 = iommufdUcmdRespond(ucmd);
  return rc2 || rc;
  function invalidate(): Rc {
    if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_hwpt_invalidate", "__reserved must be 0");
    if (entryNum && (!b(cmd.data_uptr) || !n(cmd.entry_len)))
      return err("EINVAL", "iommufd_hwpt_invalidate", "entry_num is set but data_uptr or entry_len is 0");
    const obj = iommufdGetObject(ictx, n(cmd.hwpt_id), "ANY");
    if (isErr(obj)) return obj;
    if (obj.type !== "HWPT_NESTED")
      return err("EINVAL", "iommufd_hwpt_invalidate", `object ${obj.id} is a ${obj.type}; invalidation needs a HWPT_NESTED or a vIOMMU`);
    const op = obj.domain.ops.cacheInvalidateUser;
    if (!op) return err("EOPNOTSUPP", "iommufd_hwpt_invalidate", `HWPT ${obj.id}'s domain has no cache_invalidate_user op`);
    // struct iommu_user_data_array
    const uptr = b(cmd.data_uptr);
    const entryLen = n(cmd.entry_len);
    const array: IommuUserDataArray = {
      type: n(cmd.data_type),
      entryLen,
      entryNum,
      copyEntry: (i) => ictx.kernel.mm.copyFromUser(BigInt.asUintN(64, uptr + BigInt(entryLen) * BigInt(i)), entryLen),
    };
    const r = op.call(obj.domain.ops, array);
    done = array.entryNum;
    return r;
  }
}
