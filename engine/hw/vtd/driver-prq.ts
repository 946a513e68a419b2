/**
 * The Intel IOMMU driver's page request half: torvalds/linux drivers/iommu/intel/prq.c
 * (intel_iommu_enable_prq, prq_event_thread, handle_bad_prq_event, intel_prq_report,
 * intel_iommu_page_response, intel_iommu_drain_pasid_prq) as of v6.15-v6.18, reading the ring
 * that prq.ts's hardware writes. Reference: iommu-hardware.md §1.12 and §5 steps 3-4 and 8.
 *
 * Flow: the hardware raises the page request event; the threaded handler runs PRQ_IRQ_DELAY_NS
 * later. It clears PRS.PPR *before* reading head and tail (so a request queued meanwhile raises a
 * new interrupt), then for each descriptor from PQH to PQT:
 *   - a non-canonical address, a privileged request that also reads or writes, or an execute
 *     request that also reads is a bad request: answered Invalid Request, if it is the last of its
 *     group (handle_bad_prq_event);
 *   - a Stop Marker (last, neither read nor write) is dropped: it wants no response;
 *   - a requester the driver does not know is a bad request;
 *   - anything else becomes a struct iopf_fault (PASID_VALID and RESPONSE_NEEDS_PASID when the
 *     descriptor has a PASID, LAST_PAGE when LPIG) reported to the iommu core
 *     (iommu_report_device_fault), which groups and dispatches it and answers on its own when no
 *     handler takes it.
 * Then it writes PQH = tail. If PRS.PRO is set and the ring is now empty, the last requests of
 * some groups may have been lost: it discards every partial group (iopf_queue_discard_partial)
 * and clears PRO, so requests are queued again.
 *
 * Responses: the core's page_response builds a page group response descriptor (QI type 9: RID,
 * PASID + PP when the request had one, RC = the response code as is, PRGI, LPIG) and submits it
 * with qi_submit_sync; the hardware sends the PRG Response to the device (invq.ts).
 *
 * Simplification: Linux handles each reported group on a workqueue or in iommufd's read(); here
 * the iommufd handler only queues the group (as in Linux), so nothing else runs in the thread.
 */
import type { MachineCtx } from "../../machine.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_FAULT_PERM_EXEC, IOMMU_FAULT_PERM_PRIV, IOMMU_FAULT_PERM_READ, IOMMU_FAULT_PERM_WRITE,
  type IommuFaultCore, type IopfFault, type SimDevice,
} from "../model.ts";
import type { VtdHw } from "./hw.ts";
import { PRQ_DESC_SIZE, prqDescDecode } from "./prq.ts";
import { DMAR_PECTL_REG, DMAR_PQA_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG, PRS_PPR, PRS_PRO } from "./regs.ts";

/** PRQ_ORDER: 2^4 pages = 64 KiB = 2048 descriptors (Linux iommu.h). */
export const PRQ_ORDER = 4;
/** Outstanding page requests the driver lets a device have: PRQ_DEPTH = ring bytes / 32. */
export function prqDepth(order: number): number {
  return (0x1000 << order) >> 5;
}
/** The page request event → prq_event_thread running (an interrupt and a threaded-handler wakeup; reference §6). */
export const PRQ_IRQ_DELAY_NS = 10_000;

/** QI_RESP_* (Linux iommu.h): page group response codes as the VT-d descriptor carries them. */
export const QI_RESP_SUCCESS = 0x0;
export const QI_RESP_INVALID = 0x1;
export const QI_RESP_FAILURE = 0xf;

type Desc = readonly [bigint, bigint];

/**
 * A page group response descriptor (QI type 9, Linux QI_PGRP_*): qw0 PP 4, RC 15:12, RID 31:16,
 * PASID 51:32; qw1 LPIG 2, PRGI 11:3.
 */
export function qiPgrpRespDesc(rid: number, pasid: number, pasidPresent: boolean, code: number, prgi: number, lpig: boolean): Desc {
  const qw0 = (BigInt(pasid & 0xfffff) << 32n) | (BigInt(rid & 0xffff) << 16n) | (BigInt(code & 0xf) << 12n) |
    (pasidPresent ? 1n << 4n : 0n) | 0x9n;
  const qw1 = (BigInt(prgi & 0x1ff) << 3n) | (lpig ? 1n << 2n : 0n);
  return [qw0, qw1];
}

/** What prq.c needs from the rest of the driver. */
export interface PrqDriverHost {
  readonly hw: VtdHw;
  /** qi_submit_sync; `drain` sets PD (QI_OPT_WAIT_DRAIN) in the wait descriptor */
  qiSubmitSync(descs: readonly Desc[], drain?: boolean): void;
  /** device_rbtree_find */
  deviceByRid(rid: number): SimDevice | null;
  /** pages of the kernel allocator, physically contiguous (iommu_alloc_pages_node) */
  allocContiguous(pages: number): number;
  /** dmesg */
  log(line: string): void;
}

/** is_canonical_address with 4-level paging (__VIRTUAL_MASK_SHIFT 47): bits 63:47 all equal. */
function isCanonical(addr: bigint): boolean {
  const top = addr >> 47n;
  return top === 0n || top === (1n << 17n) - 1n;
}

export class IntelPrq {
  /** the iommu core's fault half (set at boot) */
  core: IommuFaultCore | null = null;
  /** physical address of the ring (iommu->prq) */
  base = 0;
  /** threads run (for tests) */
  runs = 0;

  constructor(
    private readonly ctx: MachineCtx,
    private readonly host: PrqDriverHost,
    readonly order = PRQ_ORDER,
  ) {}

  private get ringMask(): number {
    return (0x1000 << this.order) - PRQ_DESC_SIZE;
  }

  /** intel_iommu_enable_prq: the ring, the threaded interrupt, PQH = PQT = 0, PQA = ring | order. */
  enable(): void {
    const { hw } = this.host;
    this.base = this.host.allocContiguous(2 ** this.order);
    hw.prq.onInterrupt = () => this.ctx.sched.after(PRQ_IRQ_DELAY_NS, () => this.ctx.trace.within(0, () => this.eventThread()));
    hw.writeReg64(DMAR_PQH_REG, 0n);
    hw.writeReg64(DMAR_PQT_REG, 0n);
    hw.writeReg64(DMAR_PQA_REG, BigInt(this.base) | BigInt(this.order));
    hw.writeReg32(DMAR_PECTL_REG, 0); // request_threaded_irq → dmar_msi_unmask
  }

  /** prq_event_thread */
  eventThread(): void {
    const { hw } = this.host;
    const { mem, trace } = this.ctx;
    this.runs++;
    // Clear PPR bit before reading head/tail registers, to ensure that we get a new interrupt if needed.
    hw.writeReg32(DMAR_PRS_REG, PRS_PPR);
    const mask = this.ringMask;
    const tail = Number(hw.readReg64(DMAR_PQT_REG)) & mask;
    let head = Number(hw.readReg64(DMAR_PQH_REG)) & mask;
    while (head !== tail) {
      const slot = head / PRQ_DESC_SIZE;
      const q0 = mem.read64n(this.base + head);
      const q1 = mem.read64n(this.base + head + 8);
      trace.within(hw.prq.originOf(slot), () => this.handle(slot, q0, q1));
      head = (head + PRQ_DESC_SIZE) & mask;
    }
    hw.writeReg64(DMAR_PQH_REG, BigInt(tail));
    // Clear the page request overflow bit and wake up all threads that are waiting for the
    // completion of this handling.
    if (hw.readReg32(DMAR_PRS_REG) & PRS_PRO) {
      this.host.log("DMAR: IOMMU: dmar0: PRQ overflow detected");
      const h = Number(hw.readReg64(DMAR_PQH_REG)) & mask;
      const t = Number(hw.readReg64(DMAR_PQT_REG)) & mask;
      if (h === t) {
        this.core?.iopfQueueDiscardPartial();
        hw.writeReg32(DMAR_PRS_REG, PRS_PRO);
        this.host.log("DMAR: IOMMU: dmar0: PRQ overflow cleared");
        if (trace.on) trace.emit("prq.recover", { head: h / PRQ_DESC_SIZE });
      }
    }
  }

  /** One descriptor of prq_event_thread's loop. */
  private handle(slot: number, q0: bigint, q1: bigint): void {
    const trace = this.ctx.trace;
    const d = prqDescDecode(q0, q1);
    const note = (action: string, why?: string): void => {
      if (trace.on) trace.emit("prq.handle", { slot, rid: d.rid, pasid: d.pasid, group: d.prgi, last: d.last, action, why });
    };
    const bad = (why: string): void => {
      note("invalid", why);
      this.handleBadPrqEvent(q0, q1, d.last, QI_RESP_INVALID);
    };
    if (!isCanonical((q1 >> 12n) << 12n)) return bad("Address is not canonical");
    if (d.priv && (d.read || d.write)) return bad("Page request in Privilege Mode");
    if (d.exec && d.read) return bad("Execution request not supported");
    // Drop Stop Marker message. No need for a response.
    if (d.last && !d.read && !d.write) return note("stop-marker");
    const dev = this.host.deviceByRid(d.rid);
    if (!dev) return bad("no device with this requester id");
    note("report");
    this.intelPrqReport(dev, d.pasid, d.prgi, d.addr, d.last, d.read, d.write, d.exec, d.priv);
  }

  /** intel_prq_report: the descriptor as a struct iopf_fault, to the iommu core. */
  private intelPrqReport(dev: SimDevice, pasid: number, prgi: number, addr: number, last: boolean, rd: boolean, wr: boolean, exe: boolean, pm: boolean): void {
    let perm = 0;
    if (rd) perm |= IOMMU_FAULT_PERM_READ;
    if (wr) perm |= IOMMU_FAULT_PERM_WRITE;
    if (exe) perm |= IOMMU_FAULT_PERM_EXEC;
    if (pm) perm |= IOMMU_FAULT_PERM_PRIV;
    let flags = 0;
    if (last) flags |= IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
    if (pasid >= 0) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
    // prm.pasid is the descriptor's PASID field, 0 when PP = 0
    const fault: IopfFault = { flags, pasid: pasid < 0 ? 0 : pasid, grpid: prgi, perm, addr };
    if (!this.core) throw new Error("prq_event_thread: no iommu core to report page requests to");
    this.core.reportDeviceFault(dev, fault);
  }

  /** handle_bad_prq_event: log it; answer it only if it is the last of its group. */
  private handleBadPrqEvent(q0: bigint, q1: bigint, lpig: boolean, result: number): void {
    this.host.log(`DMAR: dmar0: Invalid page request: ${q0.toString(16).padStart(16, "0")} ${q1.toString(16).padStart(16, "0")}`);
    if (!lpig) return;
    const d = prqDescDecode(q0, q1);
    const pasidField = Number((q0 >> 32n) & 0xfffffn);
    this.host.qiSubmitSync([qiPgrpRespDesc(d.rid, pasidField, d.pasid >= 0, result, d.prgi, true)]);
  }

  /** intel_iommu_page_response: the group's response as a page group response descriptor. */
  pageResponse(dev: SimDevice, fault: IopfFault, code: number): void {
    const pasidPresent = (fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) !== 0;
    const lastPage = (fault.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE) !== 0;
    this.host.qiSubmitSync([qiPgrpRespDesc(dev.rid, fault.pasid, pasidPresent, code, fault.grpid, lastPage)]);
  }

  /**
   * intel_iommu_drain_pasid_prq: wait until the thread has handled every queued request of
   * (sid, pasid) — here the thread runs now if any is queued — then submit `descs` (a fenced
   * wait, the IOTLB flush, the device-TLB flush) with the PD bit, again while PRS.PRO is set.
   */
  drainPasid(sid: number, pasid: number, descs: readonly Desc[]): void {
    const { hw } = this.host;
    const queued = hw.prq.pending().some((d) => d.rid === sid && (d.pasid >= 0 ? d.pasid === pasid : pasid === 0));
    if (queued) this.eventThread(); // wait_for_completion(&iommu->prq_complete)
    for (let tries = 0; tries < 4; tries++) {
      this.host.qiSubmitSync(descs, true);
      if (!(hw.readReg32(DMAR_PRS_REG) & PRS_PRO)) return;
      this.eventThread();
    }
  }
}
