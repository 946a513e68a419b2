/**
 * Queued invalidation: the hardware side (VT-d spec 6.5.2; reference §1.9), after qemu/qemu
 * hw/i386/intel_iommu.c `vtd_fetch_inv_desc` / `vtd_process_inv_desc` and its per-type handlers.
 *
 * The queue is a ring of descriptors in memory at IQA.base: 2^(QS+8) 128-bit slots, read as
 * 256-bit descriptors when IQA.DW = 1 (what Linux uses in scalable mode). Software writes
 * descriptors at IQT and then advances IQT; the hardware consumes from IQH up to IQT, in order,
 * and moves IQH. Here consumption is synchronous with the IQT write (the driver then finds the
 * wait descriptor's status already written, as qi_submit_sync would after spinning); each
 * descriptor costs `descNs` of simulated time.
 *
 * Descriptor types handled (type = qw0 bits 3:0, extension bits 11:9 must be 0):
 *   1 context-cache   G 01 global, 10 domain (scalable-mode context entries carry no DID, so it
 *                     acts as global, as QEMU vtd_process_context_cache_desc does), 11 device
 *                     (SID, function mask FM)
 *   2 IOTLB           G 01 global, 10 domain (DID), 11 page-selective (DID, ADDR, AM, IH): also
 *                     every first-stage/nested entry of the DID; IH = 1 keeps the PWCs
 *   5 wait            SW: write status data to the status address; IF: set ICS.IWC
 *   6 PASID-IOTLB     G 10 all of (DID, PASID) (any PGTT), 11 page-selective within (DID, PASID)
 *                     (first-stage/nested entries only: never second-stage-only or pass-through)
 *   7 PASID-cache     G 00 domain (DID), 01 PASID-selective (DID + PASID), 11 global
 *   3 device-TLB      an ATS Invalidate Request to device SID for requests without PASID: one
 *                     page (S = 0) or the naturally aligned range whose size the lowest 0 bit of
 *                     ADDR[63:12] gives (S = 1); the wait that follows completes only after the
 *                     device's Invalidate Completion (ATS_INVALIDATE_NS of simulated time)
 *   8 PASID dev-TLB   the same for one PASID (G = 1: every PASID)
 *   9 page group      a PRG Response to device RID for group PRGI (with PASID when PP), code RC:
 *     response        the device receives it PCIE_MSG_NS later (ats.ts)
 *   4 IEC             accepted, nothing to do (no interrupt remapping; LOG_UNIMP in QEMU terms)
 * Anything else (type 0, types ≥ 10, a reserved granularity, AM > CAP.MAMV) is an invalid
 * descriptor: FSTS.IQE is set, IQH stays at it, and nothing more is fetched until software
 * clears IQE.
 *
 * [decision] A PASID-selective type-6 descriptor also drops the second-stage PWC entries of its
 * DID: the spec lets hardware invalidate more than asked, and SS-PWC entries carry no PASID to
 * select by; this way a PASID-entry replacement that Linux flushes with type 6
 * (intel_pasid_flush_present) can never leave a stale table pointer behind.
 *
 * The first-stage (nested) PWC of nested.ts: type 2 of any granularity drops every entry of the
 * DID ([decision] explained in nested.ts: they hold second-stage translations), global drops all;
 * type 6 PASID-selective drops the (DID, PASID) entries, page-selective drops those overlapping
 * the range unless IH = 1.
 * [decision] Type 6 page-selective accepts any AM (0..63; AM ≥ 52 reaches the whole address
 * space): Linux's cache.c (cache_tag_flush_iotlb for nested/first-stage domains) issues them with
 * masks up to MAX_AGAW_PFN_WIDTH - 1 without consulting CAP.MAMV, which it does consult for
 * type 2; the MAMV limit stays on type 2.
 */
import type { Clock } from "../../machine.ts";
import type { PhysMem } from "../memory.ts";
import type { Trace } from "../../trace/events.ts";
import { VTD_MAMV, DMAR_FSTS_REG, DMAR_ICS_REG, DMAR_IQA_REG, DMAR_IQH_REG, DMAR_IQT_REG, FSTS_IQE, ICS_IWC, type VtdRegs } from "./regs.ts";
import type { VtdContextCache, VtdIotlb, VtdPasidCache, VtdPwc } from "./iotlb.ts";
import type { VtdFsPwc } from "./nested.ts";
import type { VtdFaultUnit } from "./fault.ts";
import { ATS_INVALIDATE_NS, prgRespName, type AtsDevice } from "../ats.ts";
import { u64hl } from "./tables.ts";

const TWO32 = 4294967296;

/** Descriptor types (Linux QI_*_TYPE, QEMU VTD_INV_DESC_*). */
export const QI_CC_TYPE = 0x1;
export const QI_IOTLB_TYPE = 0x2;
export const QI_DIOTLB_TYPE = 0x3;
export const QI_IEC_TYPE = 0x4;
export const QI_IWD_TYPE = 0x5;
export const QI_EIOTLB_TYPE = 0x6;
export const QI_PC_TYPE = 0x7;
export const QI_DEIOTLB_TYPE = 0x8;
export const QI_PGRP_RESP_TYPE = 0x9;

const TYPE_NAMES: Record<number, string> = {
  1: "context-cache", 2: "iotlb", 3: "dev-iotlb", 4: "iec", 5: "wait", 6: "pasid-iotlb", 7: "pasid-cache",
  8: "pasid-dev-iotlb", 9: "page-group-response",
};

/** What the queue invalidates. */
export interface VtdInvTargets {
  readonly regs: VtdRegs;
  readonly mem: PhysMem;
  readonly trace: Trace;
  readonly clock: Clock;
  readonly iotlb: VtdIotlb;
  readonly pwc: VtdPwc;
  /** the first-stage (nested) PWC, when the unit has one */
  readonly fspwc?: VtdFsPwc;
  readonly ctxCache: VtdContextCache;
  readonly pasidCache: VtdPasidCache;
  readonly fault: VtdFaultUnit;
  /** the ATS/PRI devices, by requester id: where device-TLB invalidations and page responses go */
  readonly pcie?: ReadonlyMap<number, AtsDevice>;
}

/**
 * The byte range of a device-TLB invalidation (VT-d 6.5.2.5): S = 0 is the 4 KiB page at ADDR;
 * S = 1 takes the lowest 0 bit z of ADDR[63:12] and invalidates the aligned 2^(z+1) bytes around
 * ADDR (Linux qi_flush_dev_iotlb sets the bits below to 1). All ones: the whole address space.
 */
export function devTlbRange(lo1: number, hi1: number, s: boolean): { addr: number; size: number } {
  const addr = ((lo1 & 0xfffff000) >>> 0) + hi1 * TWO32;
  if (!s) return { addr, size: 4096 };
  let z = 12;
  while (z < 64 && (z < 32 ? (lo1 >>> z) & 1 : (hi1 >>> (z - 32)) & 1)) z++;
  if (z + 1 >= 53) return { addr: 0, size: 2 ** 64 };
  const size = 2 ** (z + 1);
  return { addr: Math.floor(addr / size) * size, size };
}

export class VtdInvQueue {
  /** descriptors executed */
  processed = 0;
  private readonly w = { lo: 0, hi: 0 };

  constructor(
    private readonly t: VtdInvTargets,
    /** simulated cost of one descriptor */
    private readonly descNs: number,
  ) {}

  /** 256-bit descriptors? */
  private get dw(): boolean {
    return (this.t.regs.get64(DMAR_IQA_REG) & (1n << 11n)) !== 0n;
  }

  /** Number of descriptors the ring holds. */
  get length(): number {
    const qs = Number(this.t.regs.get64(DMAR_IQA_REG) & 7n);
    const slots = 2 ** (qs + 8);
    return this.dw ? slots / 2 : slots;
  }

  private get base(): number {
    return Number(this.t.regs.get64(DMAR_IQA_REG) & 0x000ffffffffff000n);
  }

  /** vtd_handle_iqt_write + vtd_fetch_inv_desc: consume descriptors from IQH up to IQT. */
  consume(): void {
    const { regs } = this.t;
    if (regs.get32(DMAR_FSTS_REG) & FSTS_IQE) return; // stopped until software clears IQE
    const shift = this.dw ? 5 : 4;
    const iqt = Number(regs.get64(DMAR_IQT_REG));
    const len = this.length;
    let head = Number(regs.get64(DMAR_IQH_REG)) >> shift;
    const tail = iqt >> shift;
    if ((this.dw && iqt & 0x10) || tail >= len) {
      this.error(head, 0, 0, 0, this.dw && iqt & 0x10 ? "IQT bit 4 set with 256-bit descriptors" : "IQT beyond the queue");
      return;
    }
    while (head !== tail) {
      const why = this.process(this.base + head * (shift === 5 ? 32 : 16));
      if (why) {
        regs.set64Raw(DMAR_IQH_REG, BigInt(head << shift));
        return;
      }
      head = (head + 1) % len;
      regs.set64Raw(DMAR_IQH_REG, BigInt(head << shift));
    }
  }

  private error(head: number, type: number, lo: number, hi: number, why: string): void {
    const { regs, fault, trace } = this.t;
    const fsts = regs.get32(DMAR_FSTS_REG);
    regs.setClear32(DMAR_FSTS_REG, 0, FSTS_IQE);
    if (trace.on) trace.emit("vtd.qi.error", { head, type, qw0: u64hl(hi, lo), why });
    fault.generateEvent(fsts);
  }

  /** Execute the descriptor at `pa`. Returns an error text (descriptor rejected) or "" (done). */
  private process(pa: number): string {
    const { mem, trace, clock, iotlb, pwc, fspwc, ctxCache, pasidCache, regs } = this.t;
    const w = this.w;
    mem.read64(pa, w);
    const lo0 = w.lo;
    const hi0 = w.hi;
    mem.read64(pa + 8, w);
    const lo1 = w.lo;
    const hi1 = w.hi;
    const type = lo0 & 0xf;
    const g = (lo0 >>> 4) & 3;
    const did = (lo0 >>> 16) & 0xffff;
    const head = Number(regs.get64(DMAR_IQH_REG)) >> (this.dw ? 5 : 4);
    const reject = (why: string): string => {
      this.error(head, type, lo0, hi0, why);
      return why;
    };
    if ((lo0 >>> 9) & 7) return reject("descriptor type extension bits 11:9 set: unknown type");
    let gran = "";
    // decode and validate first, so the descriptor's event precedes the invalidations it causes
    let act: (() => void) | null = null;
    const addr = ((lo1 & 0xfffff000) >>> 0) + hi1 * TWO32;
    const am = lo1 & 0x3f;
    const ih = (lo1 >>> 6) & 1;
    switch (type) {
      case QI_CC_TYPE: {
        // vtd_process_context_cache_desc
        if (g === 1 || g === 2) {
          gran = g === 1 ? "global" : "domain (acts as global: SM context entries carry no DID)";
          const by = g === 1 ? "cc-global" : "cc-domain";
          act = () => ctxCache.invMatching(0, 0, by);
        } else if (g === 3) {
          const sid = hi0 & 0xffff;
          const fm = (hi0 >>> 16) & 3;
          const fmask = [0, 4, 6, 7][fm]; // FM masks function-number bits 2, 2:1, 2:0
          gran = `device sid=0x${sid.toString(16)} fm=${fm}`;
          act = () => ctxCache.invMatching(sid, 0xffff & ~fmask, "cc-device");
        } else return reject("context-cache invalidation with reserved granularity 00");
        break;
      }
      case QI_IOTLB_TYPE: {
        // vtd_process_iotlb_desc
        if (g === 1) {
          gran = "global";
          act = () => {
            iotlb.invAll("iotlb-global");
            pwc.invAll("iotlb-global");
            fspwc?.invAll("iotlb-global");
          };
        } else if (g === 2) {
          gran = `domain did=${did}`;
          act = () => {
            iotlb.invDomain(did, "iotlb-dsi");
            pwc.invDomain(did, "iotlb-dsi");
            fspwc?.invDomain(did, "iotlb-dsi");
          };
        } else if (g === 3) {
          if (am > VTD_MAMV) return reject(`IOTLB page-selective invalidation with AM ${am} > MAMV ${VTD_MAMV}`);
          gran = `page did=${did} addr=0x${addr.toString(16)} am=${am} ih=${ih}`;
          act = () => {
            iotlb.invPage(did, addr, am, "iotlb-psi");
            if (!ih) {
              const size = 4096 * 2 ** am;
              const start = addr - (addr % size);
              pwc.invRange(did, start, start + size, "iotlb-psi");
            }
            fspwc?.invDomain(did, "iotlb-psi");
          };
        } else return reject("IOTLB invalidation with reserved granularity 00");
        break;
      }
      case QI_IWD_TYPE: {
        // vtd_process_wait_desc
        gran = "wait";
        const sw = (lo0 & (1 << 5)) !== 0;
        const iflag = (lo0 & (1 << 4)) !== 0;
        const status = ((lo1 & ~3) >>> 0) + hi1 * TWO32;
        if (sw) gran += ` sw status=0x${hi0.toString(16)}@0x${status.toString(16)}`;
        if (iflag) gran += " if";
        if (lo0 & (1 << 6)) gran += " fn";
        if (lo0 & (1 << 7)) gran += " pd";
        act = () => {
          if (sw) {
            const b = new Uint8Array(4);
            new DataView(b.buffer).setUint32(0, hi0, true);
            mem.write(status, b);
          }
          if (iflag) regs.setClear32(DMAR_ICS_REG, 0, ICS_IWC);
        };
        break;
      }
      case QI_EIOTLB_TYPE: {
        // vtd_process_piotlb_desc
        const pasid = hi0 & 0xfffff;
        if (g === 2) {
          gran = `pasid did=${did} pasid=${pasid}`;
          act = () => {
            iotlb.invPasid(did, pasid, "piotlb-pasid");
            pwc.invDomain(did, "piotlb-pasid");
            fspwc?.invPasid(did, pasid, "piotlb-pasid");
          };
        } else if (g === 3) {
          gran = `page did=${did} pasid=${pasid} addr=0x${addr.toString(16)} am=${am} ih=${ih}`;
          act = () => {
            iotlb.invPasidPage(did, pasid, addr, am, "piotlb-psi");
            if (!ih) {
              const size = 4096 * 2 ** am;
              const start = addr - (addr % size);
              fspwc?.invPasidRange(did, pasid, start, start + size, "piotlb-psi");
            }
          };
        } else return reject(`PASID-IOTLB invalidation with reserved granularity ${g}`);
        break;
      }
      case QI_PC_TYPE: {
        // vtd_process_pasid_desc
        const pasid = hi0 & 0xfffff;
        if (g === 0) {
          gran = `domain did=${did}`;
          act = () => pasidCache.inv(did, -1, "pc-domain");
        } else if (g === 1) {
          gran = `pasid did=${did} pasid=${pasid}`;
          act = () => pasidCache.inv(did, pasid, "pc-pasid");
        } else if (g === 3) {
          gran = "global";
          act = () => pasidCache.inv(-1, -1, "pc-global");
        } else return reject("PASID-cache invalidation with reserved granularity 10");
        break;
      }
      case QI_DIOTLB_TYPE:
      case QI_DEIOTLB_TYPE: {
        // vtd_process_device_iotlb_desc: an ATS Invalidate Request to the endpoint
        const pasidBased = type === QI_DEIOTLB_TYPE;
        const sid = pasidBased ? (lo0 >>> 16) & 0xffff : hi0 & 0xffff;
        const pasid = pasidBased ? hi0 & 0xfffff : -1;
        const global = pasidBased && (lo1 & 1) === 1;
        const sbit = pasidBased ? ((lo1 >>> 11) & 1) === 1 : (lo1 & 1) === 1;
        const { addr: start, size } = devTlbRange(lo1, hi1, sbit);
        const ep = this.t.pcie?.get(sid);
        gran = `sid=0x${sid.toString(16)}${pasidBased ? (global ? " all PASIDs" : ` pasid=${pasid}`) : ""} ` +
          (size >= 2 ** 52 ? "all" : `addr=0x${start.toString(16)} size=0x${size.toString(16)}`) + (ep?.atsEnabled ? "" : " (no ATS endpoint: nothing cached)");
        act = () => {
          if (!ep || !ep.atsEnabled) return;
          ep.atsInvalidate(pasid, global, start, size, TYPE_NAMES[type]);
          if (ATS_INVALIDATE_NS) clock.advance(ATS_INVALIDATE_NS); // the wait completes after the device's Invalidate Completion
        };
        break;
      }
      case QI_PGRP_RESP_TYPE: {
        // page group response: a PRG Response message to the device
        const pp = (lo0 >>> 4) & 1;
        const rc = (lo0 >>> 12) & 0xf;
        const rid = (lo0 >>> 16) & 0xffff;
        const pasid = pp ? hi0 & 0xfffff : -1;
        const lpig = ((lo1 >>> 2) & 1) === 1;
        const prgi = (lo1 >>> 3) & 0x1ff;
        const ep = this.t.pcie?.get(rid);
        gran = `rid=0x${rid.toString(16)}${pp ? ` pasid=${pasid}` : ""} prgi=${prgi}${lpig ? " lpig" : ""} rc=${rc} (${prgRespName(rc)})`;
        act = () => {
          if (trace.on) trace.emit("prq.response", { rid, pasid, group: prgi, last: lpig, code: rc, name: prgRespName(rc) });
          ep?.receivePageResponse(pasid, prgi, rc);
        };
        break;
      }
      case QI_IEC_TYPE:
        gran = "not modelled (no interrupt remapping)";
        break;
      default:
        return reject(`unknown descriptor type ${type}`);
    }
    this.processed++;
    if (this.descNs) clock.advance(this.descNs);
    if (trace.on) {
      trace.emit("vtd.qi.desc", { type, name: TYPE_NAMES[type], qw0: u64hl(hi0, lo0), qw1: u64hl(hi1, lo1), granularity: gran });
    }
    act?.();
    return "";
  }
}
