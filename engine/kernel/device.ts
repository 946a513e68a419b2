/**
 * device.c: binding a device to an iommufd, and attaching it (its RID or one PASID) to a HWPT,
 * replacing the attachment, or detaching it.
 *
 * Attachments are per IOMMU group: the first device of a group to attach a PASID slot attaches
 * the whole group in the driver; later devices of the group must use the same HWPT (else EINVAL)
 * and only join the attachment's device list. Each attached device holds a reference on the
 * HWPT; an automatic domain (made by attaching to an IOAS) is destroyed with its last reference.
 *
 * Attaching to an IOAS means "automatic domain": reuse a compatible auto HWPT_PAGING of that
 * IOAS (EINVAL from one means "incompatible, try the next"), or make a new one. Attaching the
 * RID to a paging HWPT also reserves the device's reserved regions (the MSI window) in the IOAS.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { IOMMU_NO_PASID } from "../hw/model.ts";
import type { IommufdCtx } from "./main.ts";
import { iommufdHwptPagingAlloc } from "./hw-pagetable.ts";
import { iommufdAutoResponseFaults } from "./eventq.ts";
import {
  IommufdDevice, IommufdGroup, IommufdHwptNested, IommufdHwptPaging, iommufdGetObject,
  type IommufdHwPagetable, type IommufdIoas,
} from "./private.ts";
import type { SimDevice } from "../hw/model.ts";

/** iommufd_device_bind: claim DMA ownership of `dev` for this ctx; a DEVICE object. */
export function iommufdDeviceBind(ictx: IommufdCtx, dev: SimDevice): IommufdDevice | Err {
  const ops = ictx.kernel.machine.iommu.ops;
  if (!ops.capable(dev, "CACHE_COHERENCY"))
    return err("EINVAL", "iommufd_device_bind", "the IOMMU cannot guarantee cache-coherent DMA for this device");
  const owner = ictx.kernel.dmaOwner.get(dev.group);
  if (owner && owner !== ictx)
    return err("EBUSY", "iommu_device_claim_dma_owner", `IOMMU group ${dev.group} is owned by another iommufd`);
  let igroup = ictx.groups.get(dev.group);
  const newGroup = !igroup;
  if (!igroup) igroup = new IommufdGroup(dev.group);
  const idev = ictx.objectAlloc(new IommufdDevice(ictx, dev, igroup));
  if (isErr(idev)) return idev;
  if (newGroup) ictx.groups.set(dev.group, igroup);
  igroup.devices.add(idev);
  idev.enforceCacheCoherency = ops.capable(dev, "ENFORCE_CACHE_COHERENCY");
  if (!owner) {
    ictx.kernel.dmaOwner.set(dev.group, ictx);
    ops.blockDev(dev, IOMMU_NO_PASID); // claiming ownership puts the group in the blocking domain
  }
  idev.users++; // the caller's (VFIO driver's) reference; Pairs with iommufdDeviceUnbind
  ictx.objectFinalize(idev);
  return idev;
}

/** iommufd_device_unbind: detach everything, destroy the DEVICE, release DMA ownership. */
export function iommufdDeviceUnbind(idev: IommufdDevice): void {
  const ictx = idev.ictx;
  const pasids = [...idev.igroup.pasidAttach.entries()].filter(([, a]) => a.devices.has(idev)).map(([p]) => p);
  // PASIDs first, then the RID (vfio_df_iommufd_unbind order)
  for (const p of pasids.sort((a, b) => b - a)) iommufdDeviceDetach(idev, p);
  idev.users--;
  ictx.objectRemove(idev.id, true);
  if (![...ictx.groups.values()].some((g) => g.group === idev.dev.group)) {
    ictx.kernel.dmaOwner.delete(idev.dev.group);
    ictx.kernel.machine.iommu.ops.blockDev(idev.dev, IOMMU_NO_PASID);
  }
}

/** iommufd_hwpt_pasid_compat */
function hwptPasidCompat(hwpt: IommufdHwPagetable, idev: IommufdDevice, pasid: number): Rc {
  const g = idev.igroup;
  if (pasid === IOMMU_NO_PASID) {
    if (!hwpt.pasidCompat && [...g.pasidAttach.keys()].some((p) => p !== IOMMU_NO_PASID))
      return err("EINVAL", "iommufd_hwpt_pasid_compat", "PASIDs of the device are attached, so its RID needs a HWPT allocated with IOMMU_HWPT_ALLOC_PASID");
    return 0;
  }
  if (!hwpt.pasidCompat)
    return err("EINVAL", "iommufd_hwpt_pasid_compat", `HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_PASID, so it cannot be attached to a PASID`);
  const rid = g.pasidAttach.get(IOMMU_NO_PASID);
  if (rid && !rid.hwpt.pasidCompat)
    return err("EINVAL", "iommufd_hwpt_pasid_compat", `the RID is attached to HWPT ${rid.hwpt.id}, which is not PASID-compatible`);
  return 0;
}

/** find_hwpt_paging: the paging HWPT whose IOAS an attachment uses — a nested HWPT's parent. */
function paging(hwpt: IommufdHwPagetable): IommufdHwptPaging | null {
  if (hwpt instanceof IommufdHwptPaging) return hwpt;
  if (hwpt instanceof IommufdHwptNested) return hwpt.parent;
  return null;
}

function resvOwner(idev: IommufdDevice): object {
  return idev; // iopt reservations are tagged with the device
}

/** The driver attach of a whole group to a HWPT for one PASID slot (iommufd_hwpt_attach_device). */
function hwptAttachDevice(hwpt: IommufdHwPagetable, idev: IommufdDevice, pasid: number): Rc {
  const ops = idev.ictx.kernel.machine.iommu.ops;
  if (hwpt.fault && !idev.dev.pri)
    return err("ENODEV", "intel_iommu_enable_iopf", `${idev.dev.path} has no PRI, so a HWPT with a fault queue cannot be attached`);
  if (hwpt.domain.owner !== ops)
    return err("EINVAL", "iommu_attach_group", "the domain belongs to a different IOMMU driver");
  if (pasid !== IOMMU_NO_PASID) {
    for (const d of idev.igroup.devices) {
      const max = ops.maxPasids(d.dev);
      if (max > 0 && pasid >= max) return err("EINVAL", "iommu_attach_device_pasid", `PASID ${pasid} is beyond the device's maximum (${max - 1})`);
    }
  }
  for (const d of groupDevicesOf(idev)) {
    const rc = ops.attachDev(hwpt.domain, d, pasid);
    if (rc) return rc;
  }
  return 0;
}

function groupDevicesOf(idev: IommufdDevice): SimDevice[] {
  return idev.ictx.kernel.machine.devices.filter((d) => d.group === idev.dev.group);
}

/** iommufd_hw_pagetable_attach */
function hwPagetableAttach(hwpt: IommufdHwPagetable, idev: IommufdDevice, pasid: number): Rc {
  let rc = hwptPasidCompat(hwpt, idev, pasid);
  if (rc) return rc;
  const g = idev.igroup;
  const attach = g.pasidAttach.get(pasid);
  if (attach && attach.hwpt !== hwpt)
    return err("EINVAL", "iommufd_hw_pagetable_attach", `another device of IOMMU group ${g.group} is attached to HWPT ${attach.hwpt.id}; the group must share one HWPT`);
  if (attach?.devices.has(idev))
    return err("EBUSY", "iommufd_hw_pagetable_attach", `device ${idev.id} is already attached${pasid ? ` for PASID ${pasid}` : ""}`);
  const hp = paging(hwpt);
  if (hp && pasid === IOMMU_NO_PASID) {
    rc = hp.ioas.iopt.enforceDevResvRegions(idev.ictx.kernel.machine.iommu.ops.getResvRegions(idev.dev), resvOwner(idev), `device ${idev.id}`);
    if (rc) return rc;
  }
  if (!attach) {
    rc = hwptAttachDevice(hwpt, idev, pasid);
    if (rc) {
      if (hp && pasid === IOMMU_NO_PASID) hp.ioas.iopt.removeReservedIova(resvOwner(idev));
      return rc;
    }
    g.pasidAttach.set(pasid, { hwpt, devices: new Set([idev]) });
  } else {
    attach.devices.add(idev);
  }
  hwpt.users++; // Pairs with hwPagetableDetach
  hwpt.attached.set(`${idev.id}/${pasid}`, { idev, pasid });
  const t = idev.ictx.kernel.machine.trace;
  if (t.on) t.emit("iommufd.device.attach", { dev_id: idev.id, hwpt_id: hwpt.id, pasid, replace: false });
  return 0;
}

/** iommufd_hw_pagetable_detach: returns the HWPT that lost a reference, or null. */
function hwPagetableDetach(idev: IommufdDevice, pasid: number): IommufdHwPagetable | null {
  const g = idev.igroup;
  const attach = g.pasidAttach.get(pasid);
  if (!attach || !attach.devices.has(idev)) return null;
  const hwpt = attach.hwpt;
  attach.devices.delete(idev);
  if (!attach.devices.size) {
    const ops = idev.ictx.kernel.machine.iommu.ops;
    for (const d of groupDevicesOf(idev)) ops.blockDev(d, pasid);
    g.pasidAttach.delete(pasid);
    // iommufd_hwpt_detach_device → iommufd_auto_response_faults: the attachment's faults get INVALID
    iommufdAutoResponseFaults(hwpt, g, pasid, `iommufd_auto_response_faults: device ${idev.id} detached${pasid ? ` PASID ${pasid}` : ""} from HWPT ${hwpt.id}`);
  }
  const hp = paging(hwpt);
  if (hp && pasid === IOMMU_NO_PASID) hp.ioas.iopt.removeReservedIova(resvOwner(idev));
  hwpt.attached.delete(`${idev.id}/${pasid}`);
  const t = idev.ictx.kernel.machine.trace;
  if (t.on) t.emit("iommufd.device.detach", { dev_id: idev.id, hwpt_id: hwpt.id, pasid });
  return hwpt;
}

/** iommufd_hw_pagetable_put: drop an attachment's reference; an auto domain dies with its last. */
function hwPagetablePut(ictx: IommufdCtx, hwpt: IommufdHwPagetable | null): void {
  if (!hwpt) return;
  hwpt.users--;
  const hp = hwpt instanceof IommufdHwptPaging ? hwpt : null; // only a paging HWPT can be automatic
  if (hp && hp.autoDomain && hwpt.users === 1) ictx.objectRemove(hwpt.id, true);
}

/** iommufd_device_do_replace: returns the old HWPT (to put), or an Err. */
function doReplace(idev: IommufdDevice, pasid: number, hwpt: IommufdHwPagetable): IommufdHwPagetable | null | Err {
  const g = idev.igroup;
  const attach = g.pasidAttach.get(pasid);
  if (!attach || !attach.devices.has(idev))
    return err("EINVAL", "iommufd_device_do_replace", `device ${idev.id} is not attached${pasid ? ` for PASID ${pasid}` : ""}, so there is nothing to replace`);
  const old = attach.hwpt;
  if (hwpt === old) return null;
  let rc = hwptPasidCompat(hwpt, idev, pasid);
  if (rc) return rc;
  const hp = paging(hwpt);
  const oldHp = paging(old);
  const ops = idev.ictx.kernel.machine.iommu.ops;
  // iommufd_group_do_replace_reserved_iova: every device of the group gets its regions in the new IOAS
  const movedResv = hp && pasid === IOMMU_NO_PASID && (!oldHp || oldHp.ioas !== hp.ioas);
  if (movedResv) {
    for (const d of attach.devices) {
      rc = hp!.ioas.iopt.enforceDevResvRegions(ops.getResvRegions(d.dev), resvOwner(d), `device ${d.id}`);
      if (rc) {
        for (const u of attach.devices) hp!.ioas.iopt.removeReservedIova(resvOwner(u));
        return rc;
      }
    }
  }
  rc = hwpt.fault && !idev.dev.pri
    ? err("ENODEV", "intel_iommu_enable_iopf", `${idev.dev.path} has no PRI, so a HWPT with a fault queue cannot be attached`)
    : 0;
  if (!rc) {
    for (const d of groupDevicesOf(idev)) {
      rc = ops.attachDev(hwpt.domain, d, pasid);
      if (rc) {
        for (const d2 of groupDevicesOf(idev)) ops.attachDev(old.domain, d2, pasid); // back to the old domain
        break;
      }
    }
  }
  if (rc) {
    if (movedResv) for (const u of attach.devices) hp!.ioas.iopt.removeReservedIova(resvOwner(u));
    return rc;
  }
  if (oldHp && pasid === IOMMU_NO_PASID && (!hp || hp.ioas !== oldHp.ioas))
    for (const u of attach.devices) oldHp.ioas.iopt.removeReservedIova(resvOwner(u));
  attach.hwpt = hwpt;
  // iommufd_hwpt_replace_device: the old HWPT's faults of this attachment get INVALID
  if (old.fault) iommufdAutoResponseFaults(old, g, pasid, `iommufd_auto_response_faults: device ${idev.id}${pasid ? ` PASID ${pasid}` : ""} replaced HWPT ${old.id} with HWPT ${hwpt.id}`);
  // Move the references held by the device list to the new HWPT.
  for (const d of attach.devices) {
    hwpt.users++;
    old.attached.delete(`${d.id}/${pasid}`);
    hwpt.attached.set(`${d.id}/${pasid}`, { idev: d, pasid });
  }
  old.users -= attach.devices.size - 1; // the caller puts the last one
  const t = idev.ictx.kernel.machine.trace;
  if (t.on) t.emit("iommufd.device.attach", { dev_id: idev.id, hwpt_id: hwpt.id, pasid, replace: true });
  return old;
}

type DoAttach = (idev: IommufdDevice, pasid: number, hwpt: IommufdHwPagetable) => IommufdHwPagetable | null | Err;

const doAttach: DoAttach = (idev, pasid, hwpt) => {
  const rc = hwPagetableAttach(hwpt, idev, pasid);
  return rc ? rc : null;
};

/** iommufd_device_auto_get_domain */
function autoGetDomain(idev: IommufdDevice, pasid: number, ioas: IommufdIoas, ptId: { value: number }, fn: DoAttach): IommufdHwPagetable | null | Err {
  const immediate = fn === doAttach;
  for (const hp of ioas.hwptList) {
    if (!hp.autoDomain) continue;
    const r = fn(idev, pasid, hp);
    if (isErr(r)) {
      if (r.name === "EINVAL") continue; // incompatible: try the next one
      return r;
    }
    ptId.value = hp.id;
    return r;
  }
  const hp = iommufdHwptPagingAlloc(idev.ictx, ioas, idev, pasid, 0, immediate);
  if (isErr(hp)) return hp;
  let destroy: IommufdHwPagetable | null = null;
  if (!immediate) {
    const r = fn(idev, pasid, hp);
    if (isErr(r)) {
      idev.ictx.objectAbortAndDestroy(hp);
      return r;
    }
    destroy = r;
  }
  hp.autoDomain = true;
  ptId.value = hp.id;
  idev.ictx.objectFinalize(hp);
  return destroy;
}

/** iommufd_device_change_pt */
function changePt(idev: IommufdDevice, pasid: number, ptId: { value: number }, fn: DoAttach): Rc {
  const obj = iommufdGetObject(idev.ictx, ptId.value, "ANY");
  if (isErr(obj)) return obj;
  let destroy: IommufdHwPagetable | null | Err;
  switch (obj.type) {
    case "HWPT_NESTED":
    case "HWPT_PAGING":
      destroy = fn(idev, pasid, obj);
      break;
    case "IOAS":
      destroy = autoGetDomain(idev, pasid, obj, ptId, fn);
      break;
    default:
      return err("EINVAL", "iommufd_device_change_pt", `object ${ptId.value} is a ${obj.type}, not an IOAS or HWPT`);
  }
  if (isErr(destroy)) return destroy;
  hwPagetablePut(idev.ictx, destroy);
  return 0;
}

/** iommufd_device_attach: pt_id is rewritten to the HWPT attached. */
export function iommufdDeviceAttach(idev: IommufdDevice, pasid: number, ptId: { value: number }): Rc {
  return changePt(idev, pasid, ptId, doAttach);
}

/** iommufd_device_replace */
export function iommufdDeviceReplace(idev: IommufdDevice, pasid: number, ptId: { value: number }): Rc {
  return changePt(idev, pasid, ptId, doReplace);
}

/** iommufd_device_detach: never fails; not attached is a no-op. */
export function iommufdDeviceDetach(idev: IommufdDevice, pasid: number): void {
  const hwpt = hwPagetableDetach(idev, pasid);
  hwPagetablePut(idev.ictx, hwpt);
}

/** Is the device (RID or PASID) attached? */
export function iommufdDeviceIsAttached(idev: IommufdDevice, pasid: number): boolean {
  return !!idev.igroup.pasidAttach.get(pasid)?.devices.has(idev);
}

export { hwPagetableAttach as iommufdHwPagetableAttach };
