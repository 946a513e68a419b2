/**
 * iommufd_private.h: the object types of one iommufd context and their typed getters.
 *
 * Every object lives in its context's ID table and starts with one `users` reference, held by
 * that table. Whoever else depends on an object takes another reference (a HWPT_PAGING on its
 * IOAS, each attachment on its HWPT, the VFIO driver on its DEVICE); IOMMU_DESTROY succeeds only
 * when the table's reference is the last one (iommufd_object_remove), else EBUSY. Short-term
 * references of a running ioctl (wait_cnt) are not modelled: the engine runs one call at a time.
 */
import { err, type Err } from "../uapi/errno.ts";
import { IOMMU_PAGE_RESP_INVALID, type IommuDomain, type SimDevice } from "../hw/model.ts";
import type { IopfGroup } from "./io-pgfault.ts";
import type { IoPagetable } from "./io-pagetable.ts";
import type { IommufdCtx } from "./main.ts";

/** enum iommufd_object_type */
export const IOMMUFD_OBJ = {
  NONE: 0, ANY: 0, DEVICE: 1, HWPT_PAGING: 2, HWPT_NESTED: 3, IOAS: 4, ACCESS: 5, FAULT: 6,
  VIOMMU: 7, VDEVICE: 8, VEVENTQ: 9, HW_QUEUE: 10,
} as const;
export type ObjType = Exclude<keyof typeof IOMMUFD_OBJ, "NONE" | "ANY">;

/** struct iommufd_object */
export abstract class IommufdObject {
  abstract readonly type: ObjType;
  /** ID in ictx.objects; 0 until allocated */
  id = 0;
  /** refcount; 1 = only the ID table holds it */
  users = 1;
  /** false between reserve and finalize: invisible to lookups */
  published = false;
  constructor(readonly ictx: IommufdCtx) {}
  /** Tear down what the object holds (the kernel's per-type destroy op). Never fails. */
  abstract destroy(): void;
  /** What still holds this object, beyond the ID table (for EBUSY reasons and the object view). */
  abstract holders(): string[];
}

/**
 * struct iommufd_ioas: an I/O address space. Created by IOMMU_IOAS_ALLOC (or implicitly by VFIO
 * compatibility). Every HWPT_PAGING made from it is on hwptList and holds a reference on it.
 */
export class IommufdIoas extends IommufdObject {
  readonly type = "IOAS" as const;
  /** HWPT_PAGINGs whose domains mirror this IOAS (entries: IommufdHwptPaging.ioas === this) */
  readonly hwptList: IommufdHwptPaging[] = [];
  constructor(ictx: IommufdCtx, readonly iopt: IoPagetable) {
    super(ictx);
  }
  destroy(): void {
    this.iopt.destroyTable();
    if (this.ictx.vfioIoas === this) this.ictx.vfioIoas = null;
  }
  holders(): string[] {
    return this.hwptList.map((h) => `HWPT_PAGING ${h.id}`);
  }
}

/** struct iommufd_hw_pagetable: the part shared by paging and nested HWPTs. */
export abstract class IommufdHwPagetable extends IommufdObject {
  abstract readonly domain: IommuDomain;
  /** FAULT object receiving this HWPT's I/O page faults (FAULT_ID_VALID); holds a reference */
  fault: IommufdFault | null = null;
  /** allocated with IOMMU_HWPT_ALLOC_PASID */
  pasidCompat = false;
  /** attachments: "devId/pasid" → device, each holding a reference */
  readonly attached = new Map<string, { idev: IommufdDevice; pasid: number }>();
  holders(): string[] {
    return [...this.attached.values()].map((a) => `device ${a.idev.id}${a.pasid ? ` PASID ${a.pasid}` : ""}`);
  }
}

/**
 * struct iommufd_hwpt_paging: a kernel-managed page table (an iommu_domain of paging type) that
 * mirrors its IOAS. Made by IOMMU_HWPT_ALLOC on an IOAS, or automatically (autoDomain) when a
 * device is attached to an IOAS; auto domains die with their last attachment.
 */
export class IommufdHwptPaging extends IommufdHwPagetable {
  readonly type = "HWPT_PAGING" as const;
  autoDomain = false;
  nestParent = false;
  enforceCacheCoherency = false;
  /** HWPT_NESTEDs allocated on this nest parent, each holding a reference on it */
  readonly nestedChildren = new Set<IommufdHwptNested>();
  /** set when the domain was added to ioas.iopt (iopt_table_add_domain succeeded) */
  inIopt = false;
  constructor(ictx: IommufdCtx, readonly ioas: IommufdIoas, readonly domain: IommuDomain) {
    super(ictx);
  }
  destroy(): void {
    // iommufd_hwpt_paging_destroy: remove from the IOAS (unmaps everything), free the domain.
    if (this.inIopt) this.ioas.iopt.tableRemoveDomain(this.domain);
    const i = this.ioas.hwptList.indexOf(this);
    if (i >= 0) this.ioas.hwptList.splice(i, 1);
    this.domain.owner.domainFree(this.domain);
    this.ioas.users--; // Pairs with the reference taken in iommufdHwptPagingAlloc
    if (this.fault) this.fault.users--;
  }
  override holders(): string[] {
    return [...super.holders(), ...[...this.nestedChildren].map((n) => `HWPT_NESTED ${n.id}`)];
  }
}

/**
 * struct iommufd_hwpt_nested: a user-managed page table — an iommu_domain of nested type whose
 * stage-1 table lives in the user's (guest's) memory — over a nest-parent HWPT_PAGING. Made by
 * IOMMU_HWPT_ALLOC with pt_id = the parent and driver data (IOMMU_HWPT_DATA_VTD_S1); the user
 * invalidates its caches with IOMMU_HWPT_INVALIDATE. It holds a reference on the parent, so the
 * parent cannot be destroyed while it exists.
 */
export class IommufdHwptNested extends IommufdHwPagetable {
  readonly type = "HWPT_NESTED" as const;
  constructor(ictx: IommufdCtx, readonly parent: IommufdHwptPaging, readonly domain: IommuDomain) {
    super(ictx);
  }
  destroy(): void {
    // iommufd_hwpt_nested_destroy: free the domain, then drop the parent's reference
    this.domain.owner.domainFree(this.domain);
    this.parent.nestedChildren.delete(this);
    this.parent.users--; // Pairs with the reference taken in hwptNestedAlloc (hw-pagetable.ts)
    if (this.fault) this.fault.users--;
  }
}

/** struct iommufd_group: the devices of one IOMMU group bound to this ctx, attached together. */
export class IommufdGroup {
  readonly devices = new Set<IommufdDevice>();
  /** pasid → the HWPT the group is attached to for it, with the devices that attached */
  readonly pasidAttach = new Map<number, { hwpt: IommufdHwPagetable; devices: Set<IommufdDevice> }>();
  constructor(readonly group: number) {}
}

/**
 * struct iommufd_device: a physical device bound to this ctx (VFIO_DEVICE_BIND_IOMMUFD). The VFIO
 * driver holds a reference until the device fd is closed, so IOMMU_DESTROY always gives EBUSY.
 */
export class IommufdDevice extends IommufdObject {
  readonly type = "DEVICE" as const;
  enforceCacheCoherency = false;
  constructor(ictx: IommufdCtx, readonly dev: SimDevice, readonly igroup: IommufdGroup) {
    super(ictx);
  }
  destroy(): void {
    this.igroup.devices.delete(this);
    if (!this.igroup.devices.size) this.ictx.groups.delete(this.igroup.group);
  }
  holders(): string[] {
    return this.users > 1 ? [`the VFIO device file of ${this.dev.path}`] : [];
  }
}

/**
 * struct iommufd_fault: a queue of I/O page fault groups with an fd (IOMMU_FAULT_QUEUE_ALLOC).
 * The fd and every HWPT allocated with it hold references.
 */
export class IommufdFault extends IommufdObject {
  readonly type = "FAULT" as const;
  fdOpen = true;
  /** groups waiting to be read (eventq.ts iommufd_fault_iopf_handler appends) */
  readonly deliver: IopfGroup[] = [];
  /** cookie → group read and awaiting a response */
  readonly response = new Map<number, IopfGroup>();
  /** poll() callers waiting for the queue to become readable (woken by the iopf handler) */
  readonly pollWaiters = new Set<() => void>();
  /** iommufd_fault_destroy: every group still queued or awaiting a response is answered INVALID. */
  destroy(): void {
    const groups = [...this.deliver, ...this.response.values()];
    this.deliver.length = 0;
    this.response.clear();
    for (const g of groups) g.respond(IOMMU_PAGE_RESP_INVALID, `iommufd_fault_destroy: FAULT ${this.id} destroyed`, true);
  }
  holders(): string[] {
    const h: string[] = [];
    if (this.fdOpen) h.push("its open fault fd");
    const n = this.users - 1 - (this.fdOpen ? 1 : 0);
    if (n > 0) h.push(`${n} HWPT(s) allocated with it`);
    return h;
  }
}

export type AnyObject = IommufdIoas | IommufdHwptPaging | IommufdHwptNested | IommufdDevice | IommufdFault;

/** iommufd_get_object(): a published object of `type`, else ENOENT. */
export function iommufdGetObject(ictx: IommufdCtx, id: number, type: ObjType | "ANY"): AnyObject | Err {
  const obj = ictx.objects.get(id);
  if (!obj || !obj.published) return err("ENOENT", "iommufd_get_object", `no object with ID ${id}`);
  if (type !== "ANY" && obj.type !== type) return err("ENOENT", "iommufd_get_object", `object ${id} is a ${obj.type}, not a ${type}`);
  return obj as AnyObject;
}

export function iommufdGetIoas(ictx: IommufdCtx, id: number): IommufdIoas | Err {
  return iommufdGetObject(ictx, id, "IOAS") as IommufdIoas | Err;
}

export function iommufdGetDevice(ictx: IommufdCtx, id: number): IommufdDevice | Err {
  return iommufdGetObject(ictx, id, "DEVICE") as IommufdDevice | Err;
}

export function iommufdGetHwptPaging(ictx: IommufdCtx, id: number): IommufdHwptPaging | Err {
  return iommufdGetObject(ictx, id, "HWPT_PAGING") as IommufdHwptPaging | Err;
}

export function iommufdGetFault(ictx: IommufdCtx, id: number): IommufdFault | Err {
  return iommufdGetObject(ictx, id, "FAULT") as IommufdFault | Err;
}
