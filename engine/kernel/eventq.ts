/**
 * eventq.c: the fault queue (FAULT object + its fd). I/O page faults reach it from devices with
 * PRI; until page requests are modelled, no fault is ever queued, but the object, the fd and
 * the read/write protocol checks answer exactly as the kernel's do on an empty queue.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { iommu_hwpt_page_response, iommu_hwpt_pgfault } from "../uapi/iommufd.ts";
import { KFile } from "./fs.ts";
import { iommufdUcmdRespond, type Ucmd } from "./main.ts";
import { IommufdFault } from "./private.ts";

/** The fd of a FAULT object ("anon_inode:[iommufd-pgfault]"). It holds the object and the ctx. */
export class FaultFile extends KFile {
  readonly kind = "fault" as const;
  readonly path = "anon_inode:[iommufd-pgfault]";
  constructor(readonly fault: IommufdFault, private readonly ctxFile: KFile) {
    super();
  }
  protected release(): void {
    // Closing the fd answers nothing (quirk): it only drops its references.
    this.fault.fdOpen = false;
    this.fault.users--;
    this.ctxFile.put();
  }

  /** iommufd_fault_fops_read: whole groups only; 0 when nothing (or nothing that fits) is queued. */
  read(count: number, pos: number): Uint8Array | Err {
    if (pos !== 0 || count % iommu_hwpt_pgfault.size)
      return err("ESPIPE", "iommufd_fault_fops_read", `count ${count} is not a multiple of sizeof(struct iommu_hwpt_pgfault) (${iommu_hwpt_pgfault.size})`);
    return new Uint8Array(0);
  }

  /** iommufd_fault_fops_write: one response per record; stops at the first bad record. */
  write(data: Uint8Array, pos: number): number | Err {
    const rec = iommu_hwpt_page_response.size;
    if (pos !== 0 || data.length % rec)
      return err("ESPIPE", "iommufd_fault_fops_write", `count ${data.length} is not a multiple of sizeof(struct iommu_hwpt_page_response) (${rec})`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    for (let off = 0; off < data.length; off += rec) {
      const cookie = dv.getUint32(off, true);
      const code = dv.getUint32(off + 4, true);
      let e: Err | null = null;
      if (code > 1) e = err("EINVAL", "iommufd_fault_fops_write", `code ${code} is neither IOMMUFD_PAGE_RESP_SUCCESS nor IOMMUFD_PAGE_RESP_INVALID`);
      else if (!this.fault.response.has(cookie)) e = err("EINVAL", "iommufd_fault_fops_write", `cookie ${cookie} is not awaiting a response`);
      if (e) return done ? done : e;
      this.fault.response.delete(cookie);
      done += rec;
    }
    return done;
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
