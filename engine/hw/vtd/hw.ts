/**
 * The VT-d remapping hardware unit, scalable mode: what devices' DMA reaches. After
 * qemu/qemu hw/i386/intel_iommu.c (`vtd_do_iommu_translate`, `vtd_mem_write`,
 * `vtd_handle_gcmd_write`, `vtd_mem_ir_read` / `vtd_mem_ir_write`).
 *
 * The unit owns its register file (regs.ts), caches (iotlb.ts), walker (walk.ts), fault
 * recording (fault.ts) and invalidation queue (invq.ts). Its inputs are MMIO register accesses
 * from the driver and DMA requests from devices; its state is never touched by the driver
 * otherwise. Every translation leaves through one epilogue: success, or a fault that is
 * recorded (or dropped) by the fault unit and returned as data.
 *
 * Timing: an IOTLB hit costs `iotlbHitNs`; each memory reference of a lookup or walk costs
 * `memReadNs` (charged by the walker as it goes, so events carry increasing times); each queued
 * invalidation descriptor costs `qiDescNs`. Defaults are the reference §6 assumptions.
 *
 * Nested PASID entries (PGTT = 011) are translated by the 2D walker of nested.ts, which shares
 * the IOTLB and the second-stage walker and adds a first-stage paging-structure cache. The
 * stale-translation detector (stale.ts, knob `staleDetector`) watches every cache hit.
 *
 * ATS and PRI (reference §1.11, §1.12): a Translation Request (`translationRequest`) is the same
 * lookup as a DMA, with two differences: the context entry must have DTE (else fault 0x44), and a
 * not-present or no-permission entry completes successfully with no access instead of faulting
 * (nothing recorded). A Page Request (`pageRequest`) needs a present context entry with PRE
 * (else fault 0x47) and goes to the page request queue (prq.ts). Device-TLB invalidations and
 * page group responses leave through the invalidation queue (invq.ts) to the devices of
 * `MachineCtx.pcie`.
 *
 * Not modelled (they fault 0x5B or are ignored, and say so): legacy (non-scalable) mode,
 * first-stage-only PASID entries (PGTT = 001), interrupt remapping.
 */
import type { MachineCtx } from "../../machine.ts";
import type { DmaRequest, IommuHw, Translation } from "../model.ts";
import type { AtsHw, PageRequestFate, PageRequestMsg } from "../ats.ts";
import { u64 } from "../../trace/events.ts";
import * as fault from "./fault.ts";
import { VtdFaultUnit, vtdAtsNoAccess, vtdFaultReasonName } from "./fault.ts";
import { VtdPrq } from "./prq.ts";
import { VtdInvQueue } from "./invq.ts";
import { VtdFsPwc, VtdNestedWalker } from "./nested.ts";
import { VtdStaleDetector } from "./stale.ts";
import * as caches from "./iotlb.ts";
import { VtdContextCache, VtdIotlb, VtdPasidCache, VtdPwc } from "./iotlb.ts";
import {
  DMAR_FECTL_REG, DMAR_FRCD_REG_LEN, DMAR_FRCD_REG_OFFSET, DMAR_FSTS_REG, DMAR_GCMD_REG, DMAR_GSTS_REG, DMAR_IQH_REG,
  DMAR_IQT_REG, DMAR_PECTL_REG, DMAR_RTADDR_REG, FSTS_IQE, GCMD_QIE, GCMD_SRTP, GCMD_TE, GSTS_QIES, GSTS_RTPS, GSTS_TES, RTADDR_SMT,
  VTD_AGAW_BITS, VTD_HAW, VtdRegs, vtdCapInit, vtdEcapInit, vtdRegDecls, CAP, ECAP, fieldGet,
} from "./regs.ts";
import * as tables from "./tables.ts";
import { VtdWalker } from "./walk.ts";

// Hot-path copies of imported bindings (see walk.ts).
const { VTD_FR } = fault;
const { CC_DTE, CC_PASIDE, CC_PRE, IOTLB_AD, IOTLB_DIRTY, PC_SSADE } = caches;
const { PGTT_NESTED, PGTT_PT, PGTT_SS, SL_R, SL_W } = tables;

/** Configuration of the unit (createVtd's knobs, validated there). */
export interface VtdHwConfig {
  /** IOTLB sets × ways (default 16 × 4) */
  iotlbSets: number;
  iotlbWays: number;
  /** entries per second-stage paging-structure cache level (PML4E, PDPTE, PDE); 0 disables them */
  pwcEntries: number;
  /** entries per first-stage (nested) paging-structure cache level (PML5E … PDE); 0 disables them */
  fsPwcEntries: number;
  /** the stale-translation detector (stale.ts): off costs nothing, on costs one compare per hit */
  staleDetector: boolean;
  /** fault recording registers (CAP.NFR + 1) */
  faultRecords: number;
  /** context-cache and PASID-cache entries (fully associative) */
  ctxCacheEntries: number;
  pasidCacheEntries: number;
  /** latencies in simulated ns */
  iotlbHitNs: number;
  memReadNs: number;
  qiDescNs: number;
}

export const VTD_HW_DEFAULTS: Readonly<VtdHwConfig> = {
  iotlbSets: 16,
  iotlbWays: 4,
  pwcEntries: 16,
  fsPwcEntries: 16,
  staleDetector: true,
  faultRecords: 8,
  ctxCacheEntries: 16,
  pasidCacheEntries: 32,
  iotlbHitNs: 10,
  memReadNs: 90,
  qiDescNs: 500,
};

/** The x86 interrupt address range (QEMU VTD_INTERRUPT_ADDR_FIRST / _LAST). */
export const VTD_INTERRUPT_ADDR_FIRST = 0xfee00000;
export const VTD_INTERRUPT_ADDR_LAST = 0xfeefffff;

const AW_LIMIT = 2 ** VTD_AGAW_BITS;

/** Counters for views and benchmarks. */
export interface VtdStats {
  translations: number;
  iotlbHits: number;
  iotlbMisses: number;
  iotlbEvictions: number;
  pwcHits: number;
  pwcMisses: number;
  fsPwcHits: number;
  fsPwcMisses: number;
  /** nested (PGTT 011) translations that walked; each also counts its second-stage walks in `walks` */
  nestedWalks: number;
  /** hits the stale-translation detector reported */
  staleHits: number;
  ctxCacheHits: number;
  ctxCacheMisses: number;
  pasidCacheHits: number;
  pasidCacheMisses: number;
  walks: number;
  memReads: number;
  dirtyRewalks: number;
  faults: number;
  faultsRecorded: number;
  faultsDropped: number;
  qiDescriptors: number;
  interruptRequests: number;
  /** ATS Translation Requests answered, and how many of them completed with no access */
  atsRequests: number;
  atsNoAccess: number;
  /** page requests written to the page request queue / dropped */
  prqQueued: number;
  prqDropped: number;
}

export class VtdHw implements IommuHw, AtsHw {
  readonly name = "intel-iommu (VT-d, scalable mode)";
  readonly cfg: Readonly<VtdHwConfig>;
  readonly cap: bigint;
  readonly ecap: bigint;
  readonly regs: VtdRegs;
  readonly iotlb: VtdIotlb;
  readonly pwc: VtdPwc;
  readonly ctxCache: VtdContextCache;
  readonly pasidCache: VtdPasidCache;
  readonly fault: VtdFaultUnit;
  readonly invq: VtdInvQueue;
  readonly walker: VtdWalker;
  readonly fspwc: VtdFsPwc;
  readonly nested: VtdNestedWalker;
  /** null when the knob `staleDetector` is off */
  readonly stale: VtdStaleDetector | null;
  /** the page request queue */
  readonly prq: VtdPrq;

  /** latched by GCMD.SRTP */
  private rootTable = 0;
  private translating = false;
  private qiEnabled = false;

  private translations = 0;
  private faults = 0;
  private dirtyRewalks = 0;
  private interruptRequests = 0;
  /** the translation in progress is an ATS Translation Request (see fail()) */
  private atsReq = false;
  private atsRequests = 0;
  private atsNoAccess = 0;
  /** the one success result, reused: copy its fields before the next translate() */
  private readonly ok = { ok: true as const, pa: 0, size: 0, perm: 0 };

  constructor(
    private readonly ctx: MachineCtx,
    cfg: Partial<VtdHwConfig> = {},
  ) {
    this.cfg = { ...VTD_HW_DEFAULTS, ...cfg };
    const c = this.cfg;
    this.cap = vtdCapInit({ faultRecords: c.faultRecords });
    this.ecap = vtdEcapInit();
    this.regs = new VtdRegs(vtdRegDecls(this.cap, this.ecap, c.faultRecords));
    const { trace, mem, clock } = ctx;
    this.iotlb = new VtdIotlb(c.iotlbSets, c.iotlbWays, trace);
    this.pwc = new VtdPwc(c.pwcEntries, trace);
    this.ctxCache = new VtdContextCache(c.ctxCacheEntries, trace);
    this.pasidCache = new VtdPasidCache(c.pasidCacheEntries, trace);
    this.fault = new VtdFaultUnit(this.regs, c.faultRecords, trace);
    this.prq = new VtdPrq(this.regs, mem, trace);
    this.fspwc = new VtdFsPwc(c.fsPwcEntries, trace);
    this.stale = c.staleDetector ? new VtdStaleDetector(mem, trace, this.iotlb.c.size, c.pwcEntries, c.fsPwcEntries) : null;
    this.invq = new VtdInvQueue(
      {
        regs: this.regs, mem, trace, clock, iotlb: this.iotlb, pwc: this.pwc, fspwc: this.fspwc, ctxCache: this.ctxCache,
        pasidCache: this.pasidCache, fault: this.fault, pcie: ctx.pcie,
      },
      c.qiDescNs,
    );
    const fsCaps = { fs5lp: fieldGet(this.cap, CAP.FS5LP) === 1, srs: fieldGet(this.ecap, ECAP.SRS) === 1, eafs: fieldGet(this.ecap, ECAP.EAFS) === 1 };
    this.walker = new VtdWalker({
      mem, trace, clock, ctxCache: this.ctxCache, pasidCache: this.pasidCache, pwc: this.pwc, haw: VTD_HAW, memReadNs: c.memReadNs,
      stale: this.stale, fsCaps,
    });
    this.nested = new VtdNestedWalker({
      mem, trace, clock, walker: this.walker, iotlb: this.iotlb, fspwc: this.fspwc, stale: this.stale,
      fs1gp: fieldGet(this.cap, CAP.FS1GP) === 1, memReadNs: c.memReadNs, iotlbHitNs: c.iotlbHitNs,
    });
  }

  // ==== DMA translation ===========================================================================

  /** An untranslated request without PASID to 0xFEEx_xxxx: an interrupt message, never translated. */
  isInterruptRequest(req: DmaRequest): boolean {
    return req.pasid < 0 && req.iova >= VTD_INTERRUPT_ADDR_FIRST && req.iova <= VTD_INTERRUPT_ADDR_LAST;
  }

  /**
   * Handle an interrupt request (QEMU vtd_mem_ir_write / vtd_mem_ir_read). A write is an MSI:
   * with interrupt remapping absent (ECAP.IR = 0) it passes as a compatibility-format interrupt,
   * as QEMU's vtd_interrupt_remap_msi does when IR is disabled. A read completes with no data
   * (QEMU returns MEMTX_OK without filling the buffer): the device sees zeros.
   */
  interruptRequest(req: DmaRequest, data: Uint8Array | null, len: number): void {
    this.interruptRequests++;
    if (this.cfg.iotlbHitNs) this.ctx.clock.advance(this.cfg.iotlbHitNs);
    const { trace } = this.ctx;
    if (!trace.on) return;
    if (req.write && data) {
      let v = 0;
      for (let i = 0; i < Math.min(4, data.length); i++) v |= data[i] << (8 * i);
      trace.emit("vtd.intr.msi", { rid: req.rid, addr: req.iova, data: v >>> 0 });
    } else {
      trace.emit("vtd.intr.read", { rid: req.rid, addr: req.iova, len });
    }
  }

  /**
   * vtd_do_iommu_translate. The success result is one object reused across calls (the hot path
   * allocates nothing): read its fields before translating again.
   */
  translate(req: DmaRequest): Translation {
    this.translations++;
    const iova = req.iova;
    if (!this.translating) {
      // GSTS.TES = 0: DMA remapping off, requests pass untranslated
      return this.success(iova, 4096 - (iova - Math.floor(iova / 4096) * 4096), SL_R | SL_W);
    }
    if (this.isInterruptRequest(req)) {
      // not DMA: the caller must route it to interruptRequest(); nothing is recorded
      return { ok: false, reason: 0, name: "interrupt request (0xFEEx_xxxx without PASID): not translated" };
    }
    const w = this.walker;
    w.begin();
    let fr = w.context(this.rootTable, req.rid);
    if (fr) return this.fail(req, fr);
    if (this.atsReq && !(w.ctxFlags & CC_DTE)) return this.fail(req, VTD_FR.SM_DTE);
    let pasid = req.pasid;
    if (pasid < 0) {
      pasid = w.ridPasid; // a request without PASID uses the context entry's RID_PASID
    } else if (!(w.ctxFlags & CC_PASIDE)) {
      return this.fail(req, VTD_FR.SM_PASIDE);
    } else if (pasid >= 2 ** (w.pdts + 7 + 6)) {
      return this.fail(req, VTD_FR.SM_PASID_MAX); // beyond a directory of 2^(PDTS+7) entries
    }
    fr = w.pasidEntry(req.rid, pasid);
    if (fr) return this.fail(req, fr);
    if (w.pgtt === PGTT_NESTED) {
      // the 2D walk: first stage (guest) over second stage (host), nested.ts
      const n = this.nested;
      fr = n.translate(pasid, iova, req.write);
      if (fr) return this.fail(req, fr);
      return this.success(n.pa, n.size, n.perm);
    }
    if (w.pgtt === PGTT_PT) {
      // pass-through PASID entry: output = input (QEMU vtd_dev_pt_enabled)
      if (iova <= VTD_INTERRUPT_ADDR_LAST && iova >= VTD_INTERRUPT_ADDR_FIRST) return this.fail(req, VTD_FR.SM_INTR_ADDR);
      if (iova >= 2 ** VTD_HAW) return this.fail(req, VTD_FR.ADDR_BEYOND);
      return this.success(iova, 4096 - (iova - Math.floor(iova / 4096) * 4096), SL_R | SL_W);
    }
    // second-stage only (PGTT = 010), AW = 4-level: the input must be below 2^48
    if (iova >= AW_LIMIT) return this.fail(req, VTD_FR.ADDR_BEYOND);
    const did = w.did;
    const write = req.write;
    const iotlb = this.iotlb;
    const slot = iotlb.lookup(did, pasid, iova);
    if (slot >= 0) {
      const perm = iotlb.perm[slot];
      // a permission fault is taken from the cached entry, without a re-walk (QEMU checks the
      // cached access flags the same way): a permission upgrade needs an invalidation first
      if (!(perm & (write ? SL_W : SL_R))) return this.fail(req, write ? VTD_FR.SM_WRITE : VTD_FR.SM_READ);
      const flags = iotlb.flags[slot];
      if (!write || !(flags & IOTLB_AD) || flags & IOTLB_DIRTY) {
        if (this.cfg.iotlbHitNs) this.ctx.clock.advance(this.cfg.iotlbHitNs);
        if (this.stale) this.stale.iotlbHit(slot, did, pasid, iova);
        const size = iotlb.sizeOf(slot);
        const off = iova - Math.floor(iova / size) * size; // not %: a double % is an fmod call
        return this.success(iotlb.pa[slot] + off, size - off, perm);
      }
      // a write through an entry whose leaf is not yet dirty, with SSADE on: walk again so the
      // hardware sets D in memory (the cached entry cannot prove it is set)
      this.dirtyRewalks++;
    }
    if (this.stale) this.stale.walk.reset();
    fr = w.ssWalk(pasid, iova, write);
    if (fr) return this.fail(req, fr);
    const ad = w.peFlags & PC_SSADE ? IOTLB_AD : 0;
    const filled = iotlb.fill(did, pasid, iova, w.leafLevel, PGTT_SS, w.leafPa, w.leafPerm, ad | w.leafFlags);
    if (this.stale) this.stale.iotlbFill(filled);
    const size = 2 ** (12 + 9 * (w.leafLevel - 1));
    const off = iova - Math.floor(iova / size) * size;
    if (this.ctx.trace.on) {
      this.ctx.trace.emit("vtd.walk.done", { did, pasid, iova, pa: w.leafPa + off, size, perm: w.leafPerm, reads: w.reads });
    }
    return this.success(w.leafPa + off, size - off, w.leafPerm);
  }

  private success(pa: number, size: number, perm: number): Translation {
    const r = this.ok;
    r.pa = pa;
    r.size = size;
    r.perm = perm;
    return r;
  }

  /**
   * The fault epilogue: record (subject to FPD, overflow and collapsing) and report. For an ATS
   * Translation Request a page-walk no-access condition is not a fault: the completion is
   * successful with R = W = 0 and nothing is recorded (reference §1.11).
   */
  private fail(req: DmaRequest, reason: number): Translation {
    if (this.atsReq && vtdAtsNoAccess(reason)) {
      this.atsNoAccess++;
      return this.success(0, 4096 - (req.iova % 4096), 0);
    }
    this.faults++;
    this.fault.report(req.rid, req.iova, reason, req.write, req.pasid, this.walker.fpd);
    return { ok: false, reason, name: vtdFaultReasonName(reason) };
  }

  // ==== ATS and PRI (the device side is engine/hw/ats.ts) ====================================================

  /**
   * An ATS Translation Request. The device asks with NW = 1 for a read (ECAP.NWFS = 1): the
   * completion grants only what a read needs, so a later write asks again and its walk sets D.
   * Returns ok with perm 0 for "no access", ok: false (UR) for a recorded fault.
   */
  translationRequest(req: DmaRequest): Translation {
    this.atsRequests++;
    this.atsReq = true;
    let t: Translation;
    try {
      t = this.translate(req);
    } finally {
      this.atsReq = false;
    }
    if (t.ok && !req.write) t.perm &= SL_R;
    return t;
  }

  /**
   * A Page Request message arrives: a present context entry with PRE is needed (else a recorded
   * fault: the request is blocked); then the page request queue takes it or drops it.
   */
  pageRequest(msg: PageRequestMsg): PageRequestFate {
    const req: DmaRequest = { rid: msg.rid, pasid: msg.pasid, iova: msg.addr, write: msg.write };
    const w = this.walker;
    w.begin();
    const fr = w.context(this.rootTable, msg.rid) || (w.ctxFlags & CC_PRE ? 0 : VTD_FR.SM_PRE);
    if (fr) {
      this.fail(req, fr);
      return "blocked";
    }
    return this.prq.enqueue(msg, this.ctx.trace.cmdSeq);
  }

  // ==== MMIO =======================================================================================

  private regName(off: number): string {
    const d = this.regs.decls.find((r) => off >= r.off && off < r.off + r.size);
    return d ? (off === d.off ? d.name : `${d.name}+${off - d.off}`) : `0x${off.toString(16)}`;
  }

  readReg32(off: number): number {
    return this.regs.read32(off);
  }

  readReg64(off: number): bigint {
    return this.regs.read64(off);
  }

  /** A 32-bit register write by software (vtd_mem_write, 4-byte case). */
  writeReg32(off: number, v: number): void {
    if (this.ctx.trace.on) this.ctx.trace.emit("vtd.reg.write", { reg: this.regName(off), off, value: v >>> 0 });
    const preFsts = this.regs.get32(DMAR_FSTS_REG);
    this.regs.write32(off, v);
    this.sideEffects(off, preFsts);
  }

  /** A 64-bit register write by software (vtd_mem_write, 8-byte case). */
  writeReg64(off: number, v: bigint): void {
    if (this.ctx.trace.on) this.ctx.trace.emit("vtd.reg.write", { reg: this.regName(off), off, value: u64(BigInt.asUintN(64, v)) });
    const preFsts = this.regs.get32(DMAR_FSTS_REG);
    this.regs.write64(off, v);
    this.sideEffects(off, preFsts);
  }

  private sideEffects(off: number, preFsts: number): void {
    if (off === DMAR_GCMD_REG) this.gcmdWritten();
    else if (off === DMAR_IQT_REG) {
      if (this.qiEnabled) this.invq.consume();
    } else if (off === DMAR_FSTS_REG) {
      // clearing IQE lets the queue resume from IQH
      if (preFsts & FSTS_IQE && !(this.regs.get32(DMAR_FSTS_REG) & FSTS_IQE) && this.qiEnabled) this.invq.consume();
    } else if (off === DMAR_FECTL_REG) this.fault.fectlWritten();
    else if (off === DMAR_PECTL_REG) this.prq.pectlWritten();
    else if (off >= DMAR_FRCD_REG_OFFSET && off < DMAR_FRCD_REG_OFFSET + this.cfg.faultRecords * DMAR_FRCD_REG_LEN) {
      this.fault.updatePpf(); // an F bit may have been cleared (write 1 to clear)
    }
  }

  /** vtd_handle_gcmd_write: act on the command bits that differ from the status. */
  private gcmdWritten(): void {
    const val = this.regs.get32(DMAR_GCMD_REG);
    const status = this.regs.get32(DMAR_GSTS_REG);
    const changed = val ^ status;
    if (changed & GCMD_TE) {
      this.translating = (val & GCMD_TE) !== 0;
      this.regs.setClear32(DMAR_GSTS_REG, GSTS_TES, this.translating ? GSTS_TES : 0);
    }
    if (val & GCMD_SRTP) {
      const rtaddr = this.regs.get64(DMAR_RTADDR_REG);
      if (!(rtaddr & RTADDR_SMT)) {
        throw new Error("VT-d model: legacy-mode root tables are not modelled (RTADDR.SMT = 0)");
      }
      this.rootTable = Number(rtaddr & 0x000ffffffffff000n);
      this.regs.setClear32(DMAR_GSTS_REG, 0, GSTS_RTPS);
    }
    if (changed & GCMD_QIE) {
      this.qiEnabled = (val & GCMD_QIE) !== 0;
      if (this.qiEnabled) this.regs.set64Raw(DMAR_IQH_REG, 0n);
      this.regs.setClear32(DMAR_GSTS_REG, GSTS_QIES, this.qiEnabled ? GSTS_QIES : 0);
    }
  }

  // ==== views ======================================================================================

  get stats(): VtdStats {
    return {
      translations: this.translations,
      iotlbHits: this.iotlb.hits,
      iotlbMisses: this.iotlb.misses,
      iotlbEvictions: this.iotlb.evictions,
      pwcHits: this.pwc.hits,
      pwcMisses: this.pwc.misses,
      fsPwcHits: this.fspwc.hits,
      fsPwcMisses: this.fspwc.misses,
      nestedWalks: this.nested.walks,
      staleHits: this.stale ? this.stale.staleHits : 0,
      ctxCacheHits: this.ctxCache.hits,
      ctxCacheMisses: this.ctxCache.misses,
      pasidCacheHits: this.pasidCache.hits,
      pasidCacheMisses: this.pasidCache.misses,
      walks: this.walker.walks,
      memReads: this.walker.memReads,
      dirtyRewalks: this.dirtyRewalks + this.nested.dirtyRewalks,
      faults: this.faults,
      faultsRecorded: this.fault.recorded,
      faultsDropped: this.fault.dropped,
      qiDescriptors: this.invq.processed,
      interruptRequests: this.interruptRequests,
      atsRequests: this.atsRequests,
      atsNoAccess: this.atsNoAccess,
      prqQueued: this.prq.queued,
      prqDropped: this.prq.dropped,
    };
  }
}
