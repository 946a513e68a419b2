/**
 * VT-d primary fault logging (VT-d spec 7.2; reference §1.10), after qemu/qemu
 * hw/i386/intel_iommu.c `vtd_report_dmar_fault`, `vtd_try_collapse_fault`, `vtd_record_frcd`,
 * `vtd_update_fsts_ppf` and `vtd_generate_fault_event`.
 *
 * CAP.NFR + 1 fault recording registers (128 bits each, at CAP.FRO × 16) are used as a ring: the
 * hardware writes the next record at its internal pointer and advances it; FSTS.FRI is set to the
 * record that turned PPF on. A fault is dropped, not recorded, when
 *   1. FSTS.PFO is already set (software has not yet cleared the overflow),
 *   2. a pending record from the same source-id exists (collapsing, as QEMU does), or
 *   3. the next record is still valid (F = 1): then PFO is set.
 * The fault event interrupt fires only when PPF goes 0 → 1 with no other condition pending and
 * FECTL.IM clear; further faults while PPF is set raise nothing. FPD (context, PASID-directory or
 * PASID entry) suppresses only *qualified* faults.
 *
 * The fault-reason names are Linux's (drivers/iommu/intel/dmar.c `dma_remap_sm_fault_reasons`),
 * since they are what `dmesg` shows.
 */
import type { Trace } from "../../trace/events.ts";
import {
  DMAR_FECTL_REG, DMAR_FRCD_REG_LEN, DMAR_FRCD_REG_OFFSET, DMAR_FSTS_REG, FECTL_IM, FECTL_IP, FRCD_F, FSTS_FRI,
  FSTS_IQE, FSTS_PFO, FSTS_PPF, type VtdRegs,
} from "./regs.ts";

/** Scalable-mode fault reasons this model reports. */
export const VTD_FR = {
  /** 0x39 SM: Present bit in Root Entry is clear */
  SM_ROOT_P: 0x39,
  /** 0x3A SM: Non-zero reserved field set in Root Entry */
  SM_ROOT_RSVD: 0x3a,
  /** 0x41 SM: Present bit in Context Entry is clear */
  SM_CTX_P: 0x41,
  /** 0x42 SM: Non-zero reserved field set in the Context Entry */
  SM_CTX_RSVD: 0x42,
  /** 0x44 SM: DTE field in Context Entry is clear (an ATS translation request from a device without device-TLB enable) */
  SM_DTE: 0x44,
  /** 0x45 SM: PASID Enable field in Context Entry is clear (a request with PASID) */
  SM_PASIDE: 0x45,
  /** 0x46 SM: PASID is larger than the max in Context Entry (beyond PDTS) */
  SM_PASID_MAX: 0x46,
  /** 0x47 SM: PRE field in Context-Entry is clear (a page request from a device without page requests enabled) */
  SM_PRE: 0x47,
  /** 0x51 SM: Present bit in Directory Entry is clear */
  SM_PDE_P: 0x51,
  /** 0x52 SM: Non-zero reserved field set in PASID Directory Entry */
  SM_PDE_RSVD: 0x52,
  /** 0x59 SM: Present bit in PASID Table Entry is clear (e.g. a blocked RID or PASID) */
  SM_PE_P: 0x59,
  /** 0x5A SM: Non-zero reserved field set in PASID Table Entry */
  SM_PE_RSVD: 0x5a,
  /** 0x5B SM: Invalid Scalable-Mode PASID Table Entry (bad PGTT or AW; also PGTTs not modelled) */
  SM_PE_INV: 0x5b,
  /**
   * 0x79 SM: Read/Write permission error in second-level paging entry. Reported when a
   * second-stage entry on the walk has R = W = 0, i.e. is not present (SS entries have no present
   * bit). [decision: the Linux string names an R/W error *in the entry*, distinct from the
   * request-level 0x85/0x86 below; a not-present SS entry is exactly an entry whose R/W are both
   * clear. QEMU reports its legacy 0x5/0x6 for both cases.]
   */
  SS_RW: 0x79,
  /** 0x7A SM: Non-zero reserved field set in second-level paging entry */
  SS_RSVD: 0x7a,
  /**
   * 0x83 SM: Address beyond the DMA hardware max: the input address is above 2^AW − 1 of the
   * PASID entry (48 bits). [decision: 0x84 "Second-level entry address beyond the max" is about an
   * address *inside* an entry (output side); QEMU's input check is VTD_FR_ADDR_BEYOND_MGAW.]
   */
  ADDR_BEYOND: 0x83,
  /** 0x85 SM: No write permission for Write/AtomicOp request (present entry lacks W) */
  SM_WRITE: 0x85,
  /** 0x86 SM: No read permission for Read/AtomicOp request (present entry lacks R) */
  SM_READ: 0x86,
  /** 0x87 SM: Invalid address-interrupt address (the translation lands in 0xFEEx_xxxx) */
  SM_INTR_ADDR: 0x87,
  // ---- first stage and nested (PGTT = 011), raised by nested.ts ----
  /** 0x71 SM: Present bit in first-level paging entry is clear */
  FS_P: 0x71,
  /** 0x72 SM: Non-zero reserved field set in first-level paging entry (PS in a PML5E/PML4E, large-page address bits) */
  FS_RSVD: 0x72,
  /**
   * 0x74 SM: First-level entry address beyond MGAW in Nested translation: a GPA (FSPTPTR, a table
   * pointer or the final page) at or above 2^48, the second stage's input width.
   */
  NESTED_BEYOND: 0x74,
  /** 0x75 SM: Read permission error in FL-PML4 entry in Nested translation: the second stage denies reading the root table (FSPTPTR) */
  NESTED_READ_ROOT: 0x75,
  /** 0x76 SM: Read permission error in first-level paging entry in Nested translation: the second stage denies reading a lower table */
  NESTED_READ: 0x76,
  /** 0x77 SM: Write permission error in first-level paging entry in Nested translation: an A/D update needs second-stage write */
  NESTED_WRITE: 0x77,
  /** 0x80 SM: Address in first-level translation is not canonical */
  FS_NON_CANONICAL: 0x80,
  /** 0x81 SM: U/S set 0 for first-level translation with user privilege (every request is user-privilege here) */
  FS_US: 0x81,
} as const;

/** Linux dma_remap_sm_fault_reasons[fr - 0x30], the names dmesg prints. */
const SM_REASONS: Record<number, string> = {
  0x30: "SM: Invalid Root Table Address",
  0x31: "SM: TTM 0 for request with PASID",
  0x32: "SM: TTM 0 for page group request",
  0x38: "SM: Error attempting to access Root Entry",
  0x39: "SM: Present bit in Root Entry is clear",
  0x3a: "SM: Non-zero reserved field set in Root Entry",
  0x40: "SM: Error attempting to access Context Entry",
  0x41: "SM: Present bit in Context Entry is clear",
  0x42: "SM: Non-zero reserved field set in the Context Entry",
  0x43: "SM: Invalid Context Entry",
  0x44: "SM: DTE field in Context Entry is clear",
  0x45: "SM: PASID Enable field in Context Entry is clear",
  0x46: "SM: PASID is larger than the max in Context Entry",
  0x47: "SM: PRE field in Context-Entry is clear",
  0x48: "SM: RID_PASID field error in Context-Entry",
  0x50: "SM: Error attempting to access the PASID Directory Entry",
  0x51: "SM: Present bit in Directory Entry is clear",
  0x52: "SM: Non-zero reserved field set in PASID Directory Entry",
  0x58: "SM: Error attempting to access PASID Table Entry",
  0x59: "SM: Present bit in PASID Table Entry is clear",
  0x5a: "SM: Non-zero reserved field set in PASID Table Entry",
  0x5b: "SM: Invalid Scalable-Mode PASID Table Entry",
  0x5c: "SM: ERE field is clear in PASID Table Entry",
  0x5d: "SM: SRE field is clear in PASID Table Entry",
  0x70: "SM: Error attempting to access first-level paging entry",
  0x71: "SM: Present bit in first-level paging entry is clear",
  0x72: "SM: Non-zero reserved field set in first-level paging entry",
  0x73: "SM: Error attempting to access FL-PML4 entry",
  0x74: "SM: First-level entry address beyond MGAW in Nested translation",
  0x75: "SM: Read permission error in FL-PML4 entry in Nested translation",
  0x76: "SM: Read permission error in first-level paging entry in Nested translation",
  0x77: "SM: Write permission error in first-level paging entry in Nested translation",
  0x78: "SM: Error attempting to access second-level paging entry",
  0x79: "SM: Read/Write permission error in second-level paging entry",
  0x7a: "SM: Non-zero reserved field set in second-level paging entry",
  0x7b: "SM: Invalid second-level page table pointer",
  0x7c: "SM: A/D bit update needed in second-level entry when set up in no snoop",
  0x80: "SM: Address in first-level translation is not canonical",
  0x81: "SM: U/S set 0 for first-level translation with user privilege",
  0x82: "SM: No execute permission for request with PASID and ER=1",
  0x83: "SM: Address beyond the DMA hardware max",
  0x84: "SM: Second-level entry address beyond the max",
  0x85: "SM: No write permission for Write/AtomicOp request",
  0x86: "SM: No read permission for Read/AtomicOp request",
  0x87: "SM: Invalid address-interrupt address",
  0x90: "SM: A/D bit update needed in first-level entry when set up in no snoop",
};

/** The dmesg name of a fault reason. */
export function vtdFaultReasonName(fr: number): string {
  return SM_REASONS[fr] ?? "Unknown";
}

/**
 * Faults that FPD may suppress ("qualified"), after QEMU vtd_qualified_faults: faults found in a
 * present structure the software programmed. Root-entry faults and structure access errors are
 * never suppressed. [0x45/0x46 are not in QEMU's table; they are context-entry programming
 * conflicts like VTD_FR_CONTEXT_ENTRY_TT, which QEMU marks qualified.]
 */
const QUALIFIED = new Set<number>([
  0x41, 0x43, 0x44, 0x45, 0x46, 0x47, 0x51, 0x59, 0x5b, 0x71, 0x72, 0x79, 0x7a, 0x7b, 0x80, 0x81, 0x83, 0x85, 0x86, 0x87, 0x90,
  // [decision] the nested permission / address faults are programming errors found in present
  // structures, like 0x79 and 0x85/0x86 (QEMU has no nested VT-d walk to take them from)
  0x74, 0x75, 0x76, 0x77,
]);

export function vtdFaultQualified(fr: number): boolean {
  return QUALIFIED.has(fr);
}

/**
 * Conditions an ATS Translation Request does not fault on (reference §1.11): a not-present or
 * insufficient-permission entry on the page walk completes the request *successfully* with
 * R = W = 0 and records nothing: the device may then ask for the page with PRI. Everything else
 * (root/context/PASID structure errors, reserved bits, addresses beyond the width) completes with
 * UR and is recorded as for an untranslated request. [decision: second-stage R/W = 0 (0x79),
 * no read/write permission (0x85/0x86), first-stage not present (0x71), U/S (0x81) and execute
 * (0x82) are the page-walk "recoverable" conditions; the VT-d chapter on ATS is not quoted in the
 * reference, so this set is the model's reading of it.]
 */
const ATS_NO_ACCESS = new Set<number>([0x71, 0x79, 0x81, 0x82, 0x85, 0x86]);

export function vtdAtsNoAccess(fr: number): boolean {
  return ATS_NO_ACCESS.has(fr);
}

export class VtdFaultUnit {
  /** the hardware's next-record pointer (QEMU next_frcd_reg) */
  private next = 0;
  /** The fault event interrupt line (the driver's handler is connected here). */
  onInterrupt: (() => void) | null = null;
  recorded = 0;
  dropped = 0;

  constructor(
    private readonly regs: VtdRegs,
    readonly records: number,
    private readonly trace: Trace,
  ) {}

  /** Register offset of record `i`. */
  static recordOff(i: number): number {
    return DMAR_FRCD_REG_OFFSET + i * DMAR_FRCD_REG_LEN;
  }

  private isSet(i: number): boolean {
    return (this.regs.get64(VtdFaultUnit.recordOff(i) + 8) & FRCD_F) !== 0n;
  }

  /** vtd_try_collapse_fault: a pending record from the same requester exists. */
  private collapse(rid: number): boolean {
    for (let i = 0; i < this.records; i++) {
      const hi = this.regs.get64(VtdFaultUnit.recordOff(i) + 8);
      if ((hi & FRCD_F) !== 0n && Number(hi & 0xffffn) === rid) return true;
    }
    return false;
  }

  private drop(reason: number, rid: number, why: string): false {
    this.dropped++;
    if (this.trace.on) this.trace.emit("vtd.fault.drop", { reason, rid, why });
    return false;
  }

  /**
   * vtd_report_fault + vtd_report_dmar_fault. `pasid` is -1 for a request without PASID; `fpd`
   * says whether a structure on the way had FPD set. Returns whether a record was written.
   */
  report(rid: number, addr: number, reason: number, write: boolean, pasid: number, fpd: boolean): boolean {
    if (fpd && vtdFaultQualified(reason)) return this.drop(reason, rid, "FPD set: qualified fault not recorded");
    const fsts = this.regs.get32(DMAR_FSTS_REG);
    if (fsts & FSTS_PFO) return this.drop(reason, rid, "PFO set: primary fault overflow");
    if (this.collapse(rid)) return this.drop(reason, rid, "collapsed: a pending record from the same source-id exists");
    const i = this.next;
    if (this.isSet(i)) {
      this.regs.setClear32(DMAR_FSTS_REG, 0, FSTS_PFO);
      return this.drop(reason, rid, `record ${i} still pending: PFO set`);
    }
    // vtd_record_frcd: FI in the low qword, the rest in the high qword
    const page = addr - (addr % 4096);
    const off = VtdFaultUnit.recordOff(i);
    this.regs.set64Raw(off, BigInt(page));
    let hi = BigInt(rid & 0xffff) | (BigInt(reason & 0xff) << 32n) | FRCD_F;
    if (!write) hi |= 1n << 62n; // T = 1: read
    if (pasid >= 0) hi |= (1n << 31n) | (BigInt(pasid & 0xfffff) << 40n);
    this.regs.set64Raw(off + 8, hi);
    this.recorded++;
    if (this.trace.on) {
      this.trace.emit("vtd.fault.record", { index: i, reason, name: vtdFaultReasonName(reason), rid, pasid, addr: page, write });
    }
    this.next = (i + 1) % this.records;
    if (fsts & FSTS_PPF) {
      // pending faults already: no new fault event
      this.regs.setClear32(DMAR_FSTS_REG, 0, FSTS_PPF);
    } else {
      this.regs.setClear32(DMAR_FSTS_REG, 0xff << FSTS_FRI.shift, (i << FSTS_FRI.shift) | FSTS_PPF);
      this.generateEvent(fsts);
    }
    return true;
  }

  /**
   * vtd_generate_fault_event: raise the interrupt unless a previous condition is still pending;
   * with FECTL.IM set only IP is latched, and the interrupt follows when software unmasks.
   */
  generateEvent(preFsts: number): void {
    if (preFsts & (FSTS_PPF | FSTS_PFO | FSTS_IQE)) return;
    this.regs.setClear32(DMAR_FECTL_REG, 0, FECTL_IP);
    if (this.regs.get32(DMAR_FECTL_REG) & FECTL_IM) return;
    this.fire();
  }

  private fire(): void {
    this.regs.setClear32(DMAR_FECTL_REG, FECTL_IP, 0);
    if (this.trace.on) this.trace.emit("vtd.fault.irq", { fsts: this.regs.get32(DMAR_FSTS_REG) });
    this.onInterrupt?.();
  }

  /** vtd_update_fsts_ppf: PPF is the OR of every record's F bit; call after software clears F. */
  updatePpf(): void {
    let any = false;
    for (let i = 0; i < this.records; i++) {
      if (this.isSet(i)) {
        any = true;
        break;
      }
    }
    this.regs.setClear32(DMAR_FSTS_REG, FSTS_PPF, any ? FSTS_PPF : 0);
  }

  /** vtd_handle_fectl_write: unmasking with IP latched delivers the pending interrupt. */
  fectlWritten(): void {
    const fectl = this.regs.get32(DMAR_FECTL_REG);
    if (fectl & FECTL_IP && !(fectl & FECTL_IM)) this.fire();
  }

  /** Records currently valid, for views and tests. */
  pending(): { index: number; reason: number; rid: number; pasid: number; addr: number; write: boolean }[] {
    const out = [];
    for (let i = 0; i < this.records; i++) {
      const off = VtdFaultUnit.recordOff(i);
      const hi = this.regs.get64(off + 8);
      if (!(hi & FRCD_F)) continue;
      out.push({
        index: i,
        reason: Number((hi >> 32n) & 0xffn),
        rid: Number(hi & 0xffffn),
        pasid: hi & (1n << 31n) ? Number((hi >> 40n) & 0xfffffn) : -1,
        addr: Number(this.regs.get64(off)),
        write: !(hi & (1n << 62n)),
      });
    }
    return out;
  }
}
