/**
 * The VT-d page request queue: the hardware side (VT-d spec 7.5; reference §1.12), after the
 * page-request handling of the QEMU PRI series for hw/i386/intel_iommu.c (`vtd_prq_*`,
 * `vtd_generate_page_request_event`) and the descriptor layout Linux reads
 * (torvalds/linux drivers/iommu/intel/prq.c `struct page_req_dsc`).
 *
 * The queue is a ring of 32-byte descriptors in memory at PQA.base, 2^PQS 4 KiB pages long
 * (128 descriptors per page). The hardware writes at PQT and advances it; software reads from
 * PQH up to PQT and then moves PQH (prq_event_thread writes PQH = tail). Both registers hold byte
 * offsets into the ring. One slot always stays empty: the ring is full when PQT + 32 == PQH.
 *
 * Status and interrupt (PRS_REG, PECTL_REG):
 *  - PPR (pending page request) is set with every descriptor written; software clears it (write
 *    1) before it reads head and tail, so a request queued while it works raises a new interrupt.
 *  - PRO (overflow) is set when a request finds the ring full: that request and every request
 *    while PRO stays set are dropped, not written. Software clears PRO once it has emptied the
 *    ring (after discarding partial groups: their last requests may be among the lost).
 *  - The page request event fires only when PPR and PRO were both clear before (an interrupt is
 *    already on its way otherwise); with PECTL.IM set only IP is latched, and unmasking delivers.
 *  [QEMU drops a request that overflows without answering it, and so does this model. Hardware
 *  may answer a dropped last-in-group request itself (reference §1.12, unverified); a device here
 *  learns of the drop only as an engine-level fact, see ats.ts.]
 *
 * Descriptor (Linux page_req_dsc):
 *   qw0  7:0 type (1 = page request) · 8 PP (PASID present) · 9 PDP · 31:16 RID · 51:32 PASID ·
 *        52 ER (execute) · 53 PM (privileged)
 *   qw1  0 RD · 1 WR · 2 LPIG · 11:3 PRGI · 63:12 page address
 *   qw2, qw3  private data (never present here: PDP = 0)
 *
 * The context-entry checks a page request needs (present, PRE) are made by hw.ts before it
 * calls enqueue(); a request that fails them is a recorded fault, never a queue entry.
 */
import type { PhysMem } from "../memory.ts";
import { u64, type Trace } from "../../trace/events.ts";
import type { PageRequestFate, PageRequestMsg } from "../ats.ts";
import { DMAR_PECTL_REG, DMAR_PQA_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG, FECTL_IM, FECTL_IP, PRS_PPR, PRS_PRO, type VtdRegs } from "./regs.ts";

/** Bytes per page request descriptor. */
export const PRQ_DESC_SIZE = 32;

/** A page request descriptor, decoded. */
export interface PrqDesc {
  type: number;
  /** -1 when PP = 0 */
  pasid: number;
  rid: number;
  exec: boolean;
  priv: boolean;
  read: boolean;
  write: boolean;
  last: boolean;
  prgi: number;
  addr: number;
}

/** The four qwords of a page request descriptor. */
export function prqDescEncode(m: PageRequestMsg): [bigint, bigint, bigint, bigint] {
  let q0 = 1n; // type: page request
  if (m.pasid >= 0) q0 |= (1n << 8n) | (BigInt(m.pasid & 0xfffff) << 32n);
  q0 |= BigInt(m.rid & 0xffff) << 16n;
  if (m.exec) q0 |= 1n << 52n;
  if (m.priv) q0 |= 1n << 53n;
  let q1 = BigInt.asUintN(64, BigInt(Math.floor(m.addr / 4096)) << 12n);
  if (m.read) q1 |= 1n;
  if (m.write) q1 |= 2n;
  if (m.last) q1 |= 4n;
  q1 |= BigInt(m.prgi & 0x1ff) << 3n;
  return [q0, q1, 0n, 0n];
}

/** Decode qw0/qw1 of a descriptor. */
export function prqDescDecode(q0: bigint, q1: bigint): PrqDesc {
  const pp = (q0 >> 8n) & 1n;
  return {
    type: Number(q0 & 0xffn),
    pasid: pp ? Number((q0 >> 32n) & 0xfffffn) : -1,
    rid: Number((q0 >> 16n) & 0xffffn),
    exec: ((q0 >> 52n) & 1n) === 1n,
    priv: ((q0 >> 53n) & 1n) === 1n,
    read: (q1 & 1n) === 1n,
    write: (q1 & 2n) === 2n,
    last: (q1 & 4n) === 4n,
    prgi: Number((q1 >> 3n) & 0x1ffn),
    addr: Number(q1 >> 12n) * 4096,
  };
}

export class VtdPrq {
  /** The page request event interrupt line (the driver's prq_event_thread is connected here). */
  onInterrupt: (() => void) | null = null;
  queued = 0;
  dropped = 0;
  interrupts = 0;
  /**
   * cmd_seq of the call whose request sits in each slot: bookkeeping for events only (so the
   * driver's handling of a slot can be linked to the DMA that caused it), not hardware state.
   */
  private readonly origin = new Map<number, number>();

  constructor(
    private readonly regs: VtdRegs,
    private readonly mem: PhysMem,
    private readonly trace: Trace,
  ) {}

  /** Ring base (PQA 63:12); 0 while software has not set the queue up. */
  get base(): number {
    return Number(this.regs.get64(DMAR_PQA_REG) & 0x000ffffffffff000n);
  }

  /** Descriptors the ring holds: 128 × 2^PQS. */
  get entries(): number {
    return 128 * 2 ** Number(this.regs.get64(DMAR_PQA_REG) & 7n);
  }

  /** Head and tail as slot indexes. */
  get head(): number {
    return Number(this.regs.get64(DMAR_PQH_REG)) / PRQ_DESC_SIZE;
  }
  get tail(): number {
    return Number(this.regs.get64(DMAR_PQT_REG)) / PRQ_DESC_SIZE;
  }

  /**
   * A page request arrives: write it at PQT, or drop it (overflow). The PRQ event is raised
   * when PPR and PRO were both clear.
   */
  enqueue(m: PageRequestMsg, cmdSeq: number): PageRequestFate {
    const { regs, trace } = this;
    const pre = regs.get32(DMAR_PRS_REG);
    const drop = (why: string): PageRequestFate => {
      this.dropped++;
      if (trace.on) trace.emit("prq.overflow", { rid: m.rid, pasid: m.pasid, addr: m.addr, group: m.prgi, last: m.last, why });
      return "dropped";
    };
    if (!this.base) return drop("no page request queue: PQA is not set up");
    if (pre & PRS_PRO) return drop("PRS.PRO is set: requests are dropped until software clears it");
    const size = this.entries * PRQ_DESC_SIZE;
    const head = Number(regs.get64(DMAR_PQH_REG)) % size;
    const tail = Number(regs.get64(DMAR_PQT_REG)) % size;
    if ((tail + PRQ_DESC_SIZE) % size === head) {
      regs.setClear32(DMAR_PRS_REG, 0, PRS_PRO);
      const r = drop(`queue full (${this.entries - 1} descriptors between PQH and PQT): PRS.PRO set`);
      this.event(pre);
      return r;
    }
    const [q0, q1, q2, q3] = prqDescEncode(m);
    const pa = this.base + tail;
    this.mem.write64n(pa, q0);
    this.mem.write64n(pa + 8, q1);
    this.mem.write64n(pa + 16, q2);
    this.mem.write64n(pa + 24, q3);
    const slot = tail / PRQ_DESC_SIZE;
    this.origin.set(slot, cmdSeq);
    const next = (tail + PRQ_DESC_SIZE) % size;
    regs.set64Raw(DMAR_PQT_REG, BigInt(next));
    regs.setClear32(DMAR_PRS_REG, 0, PRS_PPR);
    this.queued++;
    if (trace.on) {
      trace.emit("prq.request", {
        slot, head: head / PRQ_DESC_SIZE, tail: next / PRQ_DESC_SIZE, rid: m.rid, pasid: m.pasid, addr: m.addr,
        group: m.prgi, last: m.last, read: m.read, write: m.write, qw0: u64(q0), qw1: u64(q1),
      });
    }
    this.event(pre);
    return "queued";
  }

  /** vtd_generate_page_request_event: only when nothing was pending before. */
  private event(pre: number): void {
    if (pre & (PRS_PPR | PRS_PRO)) return;
    this.regs.setClear32(DMAR_PECTL_REG, 0, FECTL_IP);
    if (this.regs.get32(DMAR_PECTL_REG) & FECTL_IM) return;
    this.fire();
  }

  private fire(): void {
    this.regs.setClear32(DMAR_PECTL_REG, FECTL_IP, 0);
    this.interrupts++;
    if (this.trace.on) this.trace.emit("prq.irq", { prs: this.regs.get32(DMAR_PRS_REG) });
    this.onInterrupt?.();
  }

  /** Software wrote PECTL: unmasking with IP latched delivers the pending interrupt. */
  pectlWritten(): void {
    const pectl = this.regs.get32(DMAR_PECTL_REG);
    if (pectl & FECTL_IP && !(pectl & FECTL_IM)) this.fire();
  }

  /** The cmd_seq recorded for a slot (0 if none). */
  originOf(slot: number): number {
    return this.origin.get(slot) ?? 0;
  }

  /** Descriptors between PQH and PQT, decoded (for views and tests). */
  pending(): (PrqDesc & { slot: number })[] {
    const size = this.entries * PRQ_DESC_SIZE;
    if (!this.base) return [];
    const out = [];
    let h = Number(this.regs.get64(DMAR_PQH_REG)) % size;
    const t = Number(this.regs.get64(DMAR_PQT_REG)) % size;
    while (h !== t) {
      const d = prqDescDecode(this.mem.read64n(this.base + h), this.mem.read64n(this.base + h + 8));
      out.push({ ...d, slot: h / PRQ_DESC_SIZE });
      h = (h + PRQ_DESC_SIZE) % size;
    }
    return out;
  }
}
