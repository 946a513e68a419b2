/**
 * eventq.c: the fault queue (FAULT object + its fd), after torvalds/linux
 * drivers/iommu/iommufd/eventq.c (v6.17: iommufd_fault_iopf_handler, iommufd_fault_fops_read,
 * iommufd_fault_fops_write, iommufd_eventq_fops_poll, iommufd_auto_response_faults,
 * iommufd_fault_destroy, iommufd_fault_alloc). Reference: iommufd-uapi.md §4.16, §6, quirks 12,
 * 13 and 15.
 *
 * Life of a group: io-pgfault.ts hands a complete page request group to
 * iommufd_fault_iopf_handler, which appends it to `deliver` and wakes pollers. read() moves
 * whole groups, oldest first, from `deliver` to `response`, each under a cookie (the lowest free
 * number ≥ 1, xa_alloc with XA_FLAGS_ALLOC1) carried by every record of the group. write() takes
 * a cookie out of `response` and answers the group; a group answered by the kernel (detach,
 * replace, destroy) leaves both lists. The core sends at most one answer per group.
 *
 * Records: iommu_hwpt_pgfault.flags is the kernel's iommu_fault_page_request.flags copied as
 * is (iommufd_compose_fault_message), so a VT-d request with a PASID also shows
 * IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID (1 << 2), a bit the uAPI header does not name.
 *
 * Not expressible here: quirk 13 (a write() from unreadable user memory returning the count of
 * bytes not copied) and a read() copy fault (EFAULT): read/write take and return buffers, not
 * user pointers.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { iommu_hwpt_page_response, iommu_hwpt_pgfault } from "../uapi/iommufd.ts";
import { IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_PAGE_RESP_INVALID } from "../hw/model.ts";
import { KFile } from "./fs.ts";
import type { IopfGroup } from "./io-pgfault.ts";
import { iommufdUcmdRespond, type Ucmd } from "./main.ts";
import { IommufdFault, type IommufdGroup, type IommufdHwPagetable } from "./private.ts";

/**
 * wake_up_interruptible → the poller runs again: the scheduler's wakeup of the VMM's fault
 * thread (reference §6 counts it in the 20-50 µs of a minor fault).
 */
export const FAULT_WAKEUP_NS = 10_000;

/** IOMMUFD_PAGE_RESP_SUCCESS / _INVALID: the only codes user space may send. */
const IOMMUFD_PAGE_RESP_INVALID = 1;

/** The fd of a FAULT object ("anon_inode:[iommufd-pgfault]"). It holds the object and the ctx. */
export class FaultFile extends KFile {
  readonly kind = "fault" as const;
  readonly path = "anon_inode:[iommufd-pgfault]";
  constructor(readonly fault: IommufdFault, private readonly ctxFile: KFile) {
    super();
  }
  protected release(): void {
    // iommufd_eventq_fops_release: closing the fd answers nothing (quirk 15); it only drops its
    // references. Pending groups are answered when their devices detach or the FAULT is destroyed.
    this.fault.fdOpen = false;
    this.fault.users--;
    this.ctxFile.put();
  }

  /** iommufd_eventq_fops_poll: EPOLLIN while groups wait to be read (EPOLLOUT always). */
  readable(): boolean {
    return this.fault.deliver.length > 0;
  }

  /**
   * poll_wait: `cb` runs once the queue is readable (at once if it is), in simulated time.
   * Returns a function that cancels the wait.
   */
  pollWait(cb: () => void): () => void {
    const fault = this.fault;
    if (this.readable()) {
      cb();
      return () => {};
    }
    const w = () => {
      // woken: poll() looks again, and sleeps again if another reader took the groups
      if (this.readable()) cb();
      else fault.pollWaiters.add(w);
    };
    fault.pollWaiters.add(w);
    return () => fault.pollWaiters.delete(w);
  }

  /** iommufd_fault_fops_read: whole groups only; 0 when nothing (or nothing that fits) is queued. */
  read(count: number, pos: number): Uint8Array | Err {
    const size = iommu_hwpt_pgfault.size;
    if (pos !== 0 || count % size)
      return err("ESPIPE", "iommufd_fault_fops_read", `count ${count} is not a multiple of sizeof(struct iommu_hwpt_pgfault) (${size})`);
    const fault = this.fault;
    const trace = fault.ictx.kernel.machine.trace;
    const out: Uint8Array[] = [];
    let done = 0;
    while (fault.deliver.length) {
      const group = fault.deliver[0];
      // a group that does not fit stays at the head of the queue (iommufd_fault_deliver_restore)
      if (done >= count || group.faults.length * size > count - done) break;
      fault.deliver.shift();
      // xa_alloc(&fault->response, …, xa_limit_32b) on an XA_FLAGS_ALLOC1 array
      let cookie = 1;
      while (fault.response.has(cookie)) cookie++;
      group.cookie = cookie;
      fault.response.set(cookie, group);
      const idev = group.handle.idev;
      for (const f of group.faults) {
        const rec = new Uint8Array(size);
        const dv = new DataView(rec.buffer);
        // iommufd_compose_fault_message
        dv.setUint32(0, f.flags, true);
        dv.setUint32(4, idev.id, true);
        dv.setUint32(8, f.pasid, true);
        dv.setUint32(12, f.grpid, true);
        dv.setUint32(16, f.perm, true);
        dv.setUint32(20, 0, true); // __reserved
        dv.setBigUint64(24, BigInt(f.addr), true);
        dv.setUint32(32, 0, true); // length: always 0 today
        dv.setUint32(36, cookie, true);
        out.push(rec);
        done += size;
      }
      if (trace.on) {
        const pasid = group.last.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID ? group.last.pasid : -1;
        trace.emit("fault.read", { fault_id: fault.id, cookie, dev_id: idev.id, pasid, group: group.last.grpid, faults: group.faults.length });
      }
    }
    const bytes = new Uint8Array(done);
    let off = 0;
    for (const r of out) {
      bytes.set(r, off);
      off += r.length;
    }
    return bytes;
  }

  /** iommufd_fault_fops_write: one response per record; stops at the first bad record. */
  write(data: Uint8Array, pos: number): number | Err {
    const rec = iommu_hwpt_page_response.size;
    if (pos !== 0 || data.length % rec)
      return err("ESPIPE", "iommufd_fault_fops_write", `count ${data.length} is not a multiple of sizeof(struct iommu_hwpt_page_response) (${rec})`);
    const fault = this.fault;
    const trace = fault.ictx.kernel.machine.trace;
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    for (let off = 0; off < data.length; off += rec) {
      const cookie = dv.getUint32(off, true);
      const code = dv.getUint32(off + 4, true);
      let e: Err | null = null;
      if (code > IOMMUFD_PAGE_RESP_INVALID)
        e = err("EINVAL", "iommufd_fault_fops_write", `record ${off / rec}: code ${code} is neither IOMMUFD_PAGE_RESP_SUCCESS (0) nor IOMMUFD_PAGE_RESP_INVALID (1)`);
      else if (!fault.response.has(cookie))
        e = err("EINVAL", "iommufd_fault_fops_write", `record ${off / rec}: cookie ${cookie} is not awaiting a response (never read, already answered, or answered by the kernel at detach)`);
      // bytes consumed if at least one record was processed, otherwise the error
      if (e) return done ? done : e;
      const group = fault.response.get(cookie)!;
      fault.response.delete(cookie);
      if (trace.on) trace.emit("fault.response", { fault_id: fault.id, cookie, code, auto: false });
      // IOMMUFD_PAGE_RESP_* equal IOMMU_PAGE_RESP_SUCCESS / _INVALID (static_assert in eventq.c)
      group.respond(code, `user space answered cookie ${cookie}`);
      done += rec;
    }
    return done;
  }
}

/** iommufd_fault_iopf_handler: queue the group for read() and wake pollers. */
export function iommufdFaultIopfHandler(group: IopfGroup): number {
  const fault = group.handle.hwpt.fault;
  if (!fault) throw new Error("iommufd_fault_iopf_handler: the HWPT has no fault queue");
  fault.deliver.push(group);
  // wake_up_interruptible: each poller runs again after the scheduler's wakeup latency
  const waiters = [...fault.pollWaiters];
  fault.pollWaiters.clear();
  const { sched } = fault.ictx.kernel.machine;
  for (const w of waiters) sched.after(FAULT_WAKEUP_NS, w);
  return 0;
}

/**
 * iommufd_auto_response_faults: the attachment (IOMMU group `igroup`, `pasid`) left `hwpt`
 * (detach or replace): every group of it still queued or awaiting a response is answered INVALID.
 */
export function iommufdAutoResponseFaults(hwpt: IommufdHwPagetable, igroup: IommufdGroup, pasid: number, why: string): void {
  const fault = hwpt.fault;
  if (!fault) return;
  const mine = (g: IopfGroup) => g.handle.hwpt === hwpt && g.handle.igroup === igroup && g.handle.pasid === pasid;
  const queued = fault.deliver.filter(mine);
  fault.deliver.splice(0, fault.deliver.length, ...fault.deliver.filter((g) => !mine(g)));
  for (const g of queued) g.respond(IOMMU_PAGE_RESP_INVALID, why, true);
  for (const [cookie, g] of [...fault.response]) {
    if (!mine(g)) continue;
    fault.response.delete(cookie);
    g.respond(IOMMU_PAGE_RESP_INVALID, why, true);
  }
}

/** IOMMU_FAULT_QUEUE_ALLOC: iommufd_fault_alloc */
export function iommufdFaultAlloc(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.flags) return err("EOPNOTSUPP", "iommufd_fault_alloc", "flags must be 0");
  const fault = ictx.objectAlloc(new IommufdFault(ictx));
  if (isErr(fault)) return fault;
  const kernel = ictx.kernel;
  const ctxFile = kernel.iommufdFileOf(ictx);
  const file = new FaultFile(fault, ctxFile.get());
  fault.users++; // the fd's reference; Pairs with FaultFile.release
  const fd = kernel.fds.reserve();
  if (isErr(fd)) {
    ctxFile.put();
    ictx.objectAbort(fault);
    return fd;
  }
  cmd.out_fault_id = fault.id;
  cmd.out_fault_fd = fd;
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) {
    kernel.fds.unreserve(fd);
    ctxFile.put();
    ictx.objectAbort(fault);
    return rc;
  }
  kernel.fds.installAt(fd, file); // fd_install only after the copy-back succeeded
  ictx.objectFinalize(fault);
  return 0;
}
