/**
 * io-pgfault.c: the iommu core's I/O page fault path (torvalds/linux drivers/iommu/io-pgfault.c
 * as of v6.17: iommu_report_device_fault, find_fault_handler, iopf_group_alloc,
 * iopf_group_response, iopf_queue_add_device / _remove_device / _discard_partial). Reference:
 * iommu-hardware.md §5 step 5 and 8, pitfalls 2 and 11.
 *
 * What lives where
 *  - One `FaultParam` per device while its driver has I/O page faults enabled
 *    (iopf_queue_add_device, from intel_iommu_enable_iopf): the *partial* list of requests that
 *    are not the last of their group, and the *faults* list of groups delivered to a handler and
 *    not yet answered (Linux's pending_node).
 *  - A request reported by the driver (prq.c) first needs a handler: the domain attached to the
 *    device's RID, or to the request's PASID when it has one (VT-d has no user-managed PASID
 *    table), must have an iopf handler, i.e. be a HWPT with a fault queue. No handler, or no
 *    fault param: the core answers at once with Invalid Request (iopf_error_response), whether
 *    the request is the last of its group or not.
 *  - A non-last request goes on the partial list (head first, as list_add does) and gets no
 *    response. The last request of a group forms an `IopfGroup`: every partial request with the
 *    same group index (grpid only, not PASID: pitfall 11), oldest first, then the last one; the
 *    group goes on the pending list and to the handler (iommufd_fault_iopf_handler).
 *  - A group is answered exactly once: iopf_group_response sends ops->page_response only while
 *    the group is pending, so a late answer (user space after a detach answered it, or the detach
 *    after user space did) sends nothing.
 *  - iopf_queue_remove_device (the last iopf domain leaves the device) drops the partial list and
 *    answers every pending group Invalid; iopf_queue_discard_partial (after a PRQ overflow) drops
 *    every device's partial list.
 *
 * The handler of an iommufd HWPT (eventq.ts) queues the group on the FAULT object; user space
 * reads it, answers with its cookie, and that answer comes back here.
 */
import { err, type Rc } from "../uapi/errno.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_NO_PASID, IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_INVALID, IOMMU_PAGE_RESP_SUCCESS, type IommuFaultCore, type IopfFault, type SimDevice,
} from "../hw/model.ts";
import { iommufdFaultIopfHandler } from "./eventq.ts";
import type { Kernel } from "./kernel.ts";
import type { IommufdDevice, IommufdGroup, IommufdHwPagetable } from "./private.ts";

/** The name of an enum iommu_page_response_code value. */
export function iommuPageRespName(code: number): string {
  if (code === IOMMU_PAGE_RESP_SUCCESS) return "SUCCESS";
  if (code === IOMMU_PAGE_RESP_INVALID) return "INVALID";
  if (code === IOMMU_PAGE_RESP_FAILURE) return "FAILURE";
  return `code ${code}`;
}

/**
 * struct iommu_attach_handle as iommufd makes it (struct iommufd_attach_handle): the attachment
 * of an IOMMU group (or one PASID of it) to a HWPT, and the device that made it.
 */
export interface IopfAttachHandle {
  readonly hwpt: IommufdHwPagetable;
  readonly idev: IommufdDevice;
  readonly igroup: IommufdGroup;
  readonly pasid: number;
}

/** struct iopf_group: the requests of one page request group, answered together. */
export class IopfGroup {
  /** iommufd's cookie while the group awaits a response (0 before read()) */
  cookie = 0;
  /** on the device's pending (faults) list: not answered yet */
  pending = true;
  constructor(
    private readonly core: IopfCore,
    readonly dev: SimDevice,
    /** partial requests oldest first, then the last one */
    readonly faults: readonly IopfFault[],
    readonly handle: IopfAttachHandle,
  ) {}

  /** group->last_fault */
  get last(): IopfFault {
    return this.faults[this.faults.length - 1];
  }

  /**
   * iopf_group_response: answer the group (once). `auto` marks the kernel's own INVALID answers
   * to a group of a FAULT object (detach, replace, destroy).
   */
  respond(code: number, why: string, auto = false): void {
    const fault = this.handle.hwpt.fault;
    const trace = this.core.kernel.machine.trace;
    if (auto && fault && trace.on) trace.emit("fault.response", { fault_id: fault.id, cookie: this.cookie, code, auto: true, why });
    this.core.groupResponse(this, code, why);
  }
}

/** struct iommu_fault_param */
interface FaultParam {
  readonly dev: SimDevice;
  /** requests that are not the last of their group, most recent first (list_add) */
  partial: IopfFault[];
  /** groups handed to a handler and not answered (pending_node list) */
  readonly groups: Set<IopfGroup>;
}

/** The iommu core's I/O page fault half, one per kernel. */
export class IopfCore implements IommuFaultCore {
  private readonly params = new Map<number, FaultParam>();

  constructor(readonly kernel: Kernel) {}

  private get ops() {
    return this.kernel.machine.iommu.ops;
  }

  /** iopf_queue_add_device */
  iopfQueueAddDevice(dev: SimDevice): Rc {
    if (!this.ops.pageResponse) return err("ENODEV", "iopf_queue_add_device", "the IOMMU driver has no page_response op");
    if (this.params.has(dev.rid)) return err("EBUSY", "iopf_queue_add_device", `${dev.path} is already on the iopf queue`);
    this.params.set(dev.rid, { dev, partial: [], groups: new Set() });
    return 0;
  }

  /** iopf_queue_remove_device: drop the partial requests, answer every pending group INVALID. */
  iopfQueueRemoveDevice(dev: SimDevice): void {
    const param = this.params.get(dev.rid);
    if (!param) throw new Error(`iopf_queue_remove_device: ${dev.path} is not on the iopf queue (WARN_ON)`);
    this.discard(param, "the device left the iopf queue (its last iopf domain was detached)");
    for (const group of [...param.groups]) this.groupResponse(group, IOMMU_PAGE_RESP_INVALID, "iopf_queue_remove_device: the device's last iopf domain was detached");
    this.params.delete(dev.rid);
  }

  /** iopf_queue_discard_partial: after a page request queue overflow. */
  iopfQueueDiscardPartial(): void {
    for (const param of this.params.values()) this.discard(param, "page request queue overflow: the last requests of these groups may be lost");
  }

  private discard(param: FaultParam, why: string): void {
    if (!param.partial.length) return;
    const trace = this.kernel.machine.trace;
    if (trace.on) trace.emit("iopf.discard", { rid: param.dev.rid, count: param.partial.length, why });
    param.partial = [];
  }

  /**
   * find_fault_handler: the attachment of the device's RID, or of the fault's PASID, whose
   * domain has an iopf handler (an iommufd HWPT with a fault queue). VT-d has no user-managed
   * PASID table (ops->user_pasid_table), so a PASID fault needs that PASID attached.
   */
  private findFaultHandler(dev: SimDevice, fault: IopfFault): IopfAttachHandle | null {
    const ictx = this.kernel.dmaOwner.get(dev.group);
    const igroup = ictx?.groups.get(dev.group);
    if (!igroup) return null;
    const pasid = fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID ? fault.pasid : IOMMU_NO_PASID;
    const attach = igroup.pasidAttach.get(pasid);
    if (!attach || !attach.hwpt.fault) return null;
    const idev = [...attach.devices].find((d) => d.dev === dev) ?? [...attach.devices][0];
    return { hwpt: attach.hwpt, idev, igroup, pasid };
  }

  /** iommu_report_device_fault */
  reportDeviceFault(dev: SimDevice, fault: IopfFault): Rc {
    const trace = this.kernel.machine.trace;
    const pasid = fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID ? fault.pasid : -1;
    const handle = this.findFaultHandler(dev, fault);
    const param = this.params.get(dev.rid);
    if (!handle || !param) {
      // err_bad_iopf → iopf_error_response: INVALID for this request, last or not
      const why = !handle
        ? `no domain with an I/O page fault handler is attached to ${pasid < 0 ? "the RID" : `PASID ${pasid}`} (no HWPT with a fault queue)`
        : "a fault-capable domain is attached but the device is not on the iopf queue (WARN_ON)";
      if (trace.on) {
        trace.emit("iopf.response", { rid: dev.rid, pasid, group: fault.grpid, code: IOMMU_PAGE_RESP_INVALID, name: "INVALID", why: `iopf_error_response: ${why}` });
      }
      this.ops.pageResponse?.(dev, fault, IOMMU_PAGE_RESP_INVALID);
      return err("EINVAL", "iommu_report_device_fault", why);
    }
    if (!(fault.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) {
      // report_partial_fault: a request that is not the last does not need to be ack'd
      param.partial.unshift({ ...fault });
      if (trace.on) trace.emit("iopf.partial", { rid: dev.rid, pasid, group: fault.grpid, addr: fault.addr });
      return 0;
    }
    // iopf_group_alloc: the partial requests of this group (by grpid only) before the last one
    const mine = param.partial.filter((f) => f.grpid === fault.grpid);
    param.partial = param.partial.filter((f) => f.grpid !== fault.grpid);
    const group = new IopfGroup(this, dev, [...mine.reverse(), { ...fault }], handle);
    param.groups.add(group);
    if (trace.on) {
      trace.emit("iopf.group", {
        rid: dev.rid, pasid, group: fault.grpid, faults: group.faults.length, dev_id: handle.idev.id, hwpt_id: handle.hwpt.id,
        fault_id: handle.hwpt.fault!.id,
      });
    }
    // domain->iopf_handler = iommufd_fault_iopf_handler: never fails
    iommufdFaultIopfHandler(group);
    return 0;
  }

  /** iopf_group_response: ops->page_response, only while the group is pending. */
  groupResponse(group: IopfGroup, code: number, why: string): void {
    if (!group.pending) return;
    group.pending = false;
    this.params.get(group.dev.rid)?.groups.delete(group);
    const last = group.last;
    const trace = this.kernel.machine.trace;
    if (trace.on) {
      const pasid = last.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID ? last.pasid : -1;
      trace.emit("iopf.response", { rid: group.dev.rid, pasid, group: last.grpid, code, name: iommuPageRespName(code), why });
    }
    this.ops.pageResponse?.(group.dev, last, code);
  }

  /**
   * Whether (device, PASID or -1 for the RID) is attached to a domain with an iopf handler: what
   * the device's own driver (the script's VMM) knows when it puts that context in
   * recoverable-fault mode, so its DMA misses become page requests (SCRIPT-API.md).
   */
  hasHandler(dev: SimDevice, pasid: number): boolean {
    const flags = pasid >= 0 ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0;
    return this.findFaultHandler(dev, { flags, pasid: Math.max(pasid, 0), grpid: 0, perm: 0, addr: 0 }) !== null;
  }

  /** Pending groups and partial requests of a device (for views and tests). */
  stateOf(dev: SimDevice): { partial: number; pending: number } | null {
    const p = this.params.get(dev.rid);
    return p ? { partial: p.partial.length, pending: p.groups.size } : null;
  }
}
