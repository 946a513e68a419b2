/**
 * The VT-d hardware walker, scalable mode (VT-d spec 3.4-3.7; reference §1.1-1.6). Mirrors the
 * translation half of qemu/qemu hw/i386/intel_iommu.c: `vtd_dev_to_context_entry` (root →
 * context), `vtd_ce_get_rid2pasid_entry` / `vtd_get_pe_from_pasid_table` (PASID directory →
 * PASID entry) and `vtd_iova_to_sspte` (the second-stage walk), with the caches of iotlb.ts in
 * front of each step.
 *
 * What lives where
 *  - The structures are bytes in PhysMem, written by the driver (driver.ts). The walker reads them
 *    eight bytes at a time through `PhysMem.read64` into a reused {lo, hi} scratch word and never
 *    keeps a reference to driver state: if the driver forgets an invalidation, the caches keep
 *    what they read, exactly as hardware would.
 *  - One read of a root, context, PASID-directory or PASID entry, or of one page-table entry,
 *    counts as one memory reference: `memReadNs` of simulated time and one event
 *    (vtd.ctx.read / vtd.walk.level). Cache hits cost nothing here; the IOTLB-hit cost is charged
 *    by hw.ts.
 *  - Nested PASID entries (PGTT 011) are decoded here (qw2: FSPTPTR, FLPM, SRE/WPE/EAFE) and
 *    walked by nested.ts, which calls ssWalk for every GPA it needs translated; `nested` then tags
 *    the s2 events. The stale-translation detector (stale.ts) hears every entry read and every
 *    PWC hit and fill when it is on.
 *  - Results are left in the walker's public fields (`did`, `pasid`, `pgtt`, `leafPa`, …) and
 *    the functions return 0 or a fault reason (> 0), QEMU's `-VTD_FR_*` convention turned
 *    positive. Nothing on the success path allocates when `trace.on` is false.
 *
 * Invariants
 *  - A/D bits are written only when the PASID entry has SSADE = 1, only into entries the walk
 *    passed (A on every level it read, D on the leaf of a permitted write), as a locked
 *    read-modify-write of the entry in memory: re-read, OR the bits, write back.
 *  - A faulting level gets no A/D update, and nothing is cached from a walk that faulted.
 *  - Second-stage entries have no present bit: R = W = 0 is "not present" (fault 0x79); a present
 *    entry lacking the requested right faults 0x85 (write) / 0x86 (read), checked level by level
 *    as QEMU does, so permissions accumulate as an AND down the walk.
 *  - The PWCs hold only non-leaf entries; the walk resumes below the deepest hit and refills the
 *    levels it had to read.
 */
import type { Clock } from "../../machine.ts";
import type { PhysMem } from "../memory.ts";
import type { Trace } from "../../trace/events.ts";
import * as fault from "./fault.ts";
import * as caches from "./iotlb.ts";
import type { VtdContextCache, VtdPasidCache, VtdPwc } from "./iotlb.ts";
import * as tables from "./tables.ts";
import { DEP_SS, type VtdStaleDetector } from "./stale.ts";

// Hot-path copies of imported bindings: some loaders (tsx, vite-node) compile an imported binding
// into a getter call per access, which would cost more than the cache lookups themselves.
const { VTD_FR } = fault;
const { CC_DTE, CC_FPD, CC_PASIDE, CC_PRE, IOTLB_DIRTY, PC_EAFE, PC_FL5, PC_FPD, PC_FSPTPTR_BEYOND, PC_PGSNP, PC_SRE, PC_SSADE, PC_WPE } = caches;
const {
  AW_4LEVEL, CTX_DTE, CTX_FPD, CTX_P, CTX_PASIDE, CTX_PRE, CTX_RSVD_LO, CTX_RSVD_LO1, PASID_ENTRY_SIZE, PASID_DIR_ENTRY_SIZE,
  PASID_PDE_SHIFT, PASID_PTE_MASK, PDE_FPD, PDE_P, PDE_RSVD_LO, PE_FPD, PE_P, PE_PGSNP, PE_RSVD_LO0, PE_RSVD_LO1,
  PE_SSADE, PE2_EAFE, PE2_FLPM_SHIFT, PE2_RSVD_LO, PE2_SRE, PE2_WPE, PGTT_NESTED, PGTT_PT, PGTT_SS, ROOT_ENTRY_SIZE, ROOT_P,
  ROOT_RSVD_LO, SL_A, SL_D, SL_PS, SL_R, SL_W,
  SM_CONTEXT_ENTRY_SIZE, entryAddr, levelShift, levelSize, ssBits, ssReservedMasks, u64hl,
} = tables;

/** What the walker works on (owned by VtdHw). */
export interface VtdWalkEnv {
  readonly mem: PhysMem;
  readonly trace: Trace;
  readonly clock: Clock;
  readonly ctxCache: VtdContextCache;
  readonly pasidCache: VtdPasidCache;
  readonly pwc: VtdPwc;
  /** host address width: output address bits at and above it are reserved */
  readonly haw: number;
  /** simulated cost of one memory reference */
  readonly memReadNs: number;
  /** the stale-translation detector (stale.ts), absent when the knob turns it off */
  readonly stale?: VtdStaleDetector | null;
  /** first-stage capabilities the PASID-entry checks need (CAP.FS5LP, ECAP.SRS, ECAP.EAFS) */
  readonly fsCaps?: { readonly fs5lp: boolean; readonly srs: boolean; readonly eafs: boolean };
}

const LEVEL_SHIFT_DIV = [0, 2 ** levelShift(1), 2 ** levelShift(2), 2 ** levelShift(3), 2 ** levelShift(4)];
const INTR_FIRST = 0xfee00000;
const INTR_LAST = 0xfeefffff;

export class VtdWalker {
  // ---- results of context() ----
  ctxFlags = 0;
  pasidDirPtr = 0;
  pdts = 0;
  ridPasid = 0;
  // ---- results of pasidEntry() ----
  did = 0;
  pgtt = 0;
  aw = 0;
  peFlags = 0;
  ssptptr = 0;
  /** nested entries: the first-stage root (a GPA; PC_FSPTPTR_BEYOND when ≥ 2^48) */
  fsptptr = 0;
  /** set by the nested walker (nested.ts) while ssWalk translates a GPA for it: tags the s2 events */
  nested: { iova: number; fsLevel: number } | null = null;
  // ---- results of ssWalk() ----
  /** physical address of the leaf page (aligned to its size) */
  leafPa = 0;
  leafLevel = 0;
  leafPerm = 0;
  /** IOTLB_DIRTY when the leaf's D bit is set after this walk */
  leafFlags = 0;
  // ---- per-translation state ----
  /** a structure on the way had FPD set (qualified faults are then not recorded) */
  fpd = false;
  /** memory references made by the current translation */
  reads = 0;
  /** totals */
  memReads = 0;
  walks = 0;

  private readonly w = { lo: 0, hi: 0 };
  /** reserved-bit masks by [level][leaf ? 1 : 0] as [lo, hi] */
  private readonly rsvd: [number, number][][];

  constructor(private readonly env: VtdWalkEnv) {
    this.rsvd = [[], [], [], [], []];
    for (let level = 1; level <= 4; level++) {
      this.rsvd[level] = [ssReservedMasks(env.haw, level, false), ssReservedMasks(env.haw, level, true)];
    }
  }

  /** Start a translation. */
  begin(): void {
    this.fpd = false;
    this.reads = 0;
  }

  /** One memory reference: 64 bits at `pa` into the scratch word. */
  private read(pa: number): void {
    this.env.mem.read64(pa, this.w);
    this.reads++;
    this.memReads++;
    if (this.env.memReadNs) this.env.clock.advance(this.env.memReadNs);
  }

  /** The extra qwords of a wider structure read in the same memory reference. */
  private readMore(pa: number): void {
    this.env.mem.read64(pa, this.w);
  }

  private aboveHaw(hi: number): boolean {
    return (hi & ~((1 << (this.env.haw - 32)) - 1)) !== 0;
  }

  /**
   * vtd_dev_to_context_entry: the context entry of requester `rid`, from the context cache or
   * from memory (root table at `rootTable`). Returns 0 or a fault reason.
   */
  context(rootTable: number, rid: number): number {
    const { ctxCache, trace } = this.env;
    let slot = ctxCache.lookup(rid);
    if (slot < 0) {
      const bus = rid >>> 8;
      const devfn = rid & 0xff;
      // root entry: LP/LCTP in the low qword, UP/UCTP in the high qword (9.1)
      const rpa = rootTable + bus * ROOT_ENTRY_SIZE;
      this.read(rpa);
      const rlo0 = this.w.lo;
      const rhi0 = this.w.hi;
      this.readMore(rpa + 8);
      const rlo1 = this.w.lo;
      const rhi1 = this.w.hi;
      if (trace.on) trace.emit("vtd.ctx.read", { what: "root", addr: rpa, index: bus, hi: u64hl(rhi1, rlo1), lo: u64hl(rhi0, rlo0) });
      const lo = devfn < 128 ? rlo0 : rlo1;
      const hi = devfn < 128 ? rhi0 : rhi1;
      if (!(lo & ROOT_P)) return VTD_FR.SM_ROOT_P;
      if (lo & ROOT_RSVD_LO || this.aboveHaw(hi)) return VTD_FR.SM_ROOT_RSVD;
      // scalable-mode context entry: 32 bytes, indexed by devfn[6:0] (9.4)
      const cpa = entryAddr(lo, hi) + (devfn & 0x7f) * SM_CONTEXT_ENTRY_SIZE;
      this.read(cpa);
      const clo0 = this.w.lo;
      const chi0 = this.w.hi;
      this.readMore(cpa + 8);
      const clo1 = this.w.lo;
      const chi1 = this.w.hi;
      this.readMore(cpa + 16);
      const q2 = this.w.lo | this.w.hi;
      this.readMore(cpa + 24);
      const q3 = this.w.lo | this.w.hi;
      if (trace.on) trace.emit("vtd.ctx.read", { what: "context", addr: cpa, index: devfn, hi: u64hl(chi1, clo1), lo: u64hl(chi0, clo0) });
      if (clo0 & CTX_FPD) this.fpd = true;
      if (!(clo0 & CTX_P)) return VTD_FR.SM_CTX_P;
      // QEMU VTD_SM_CONTEXT_ENTRY_RSVD_VAL0 = 0x1e0 | ~HAW, VAL1 = 0xffffffffffe00000; qw2/qw3 zero
      if (clo0 & CTX_RSVD_LO || this.aboveHaw(chi0) || clo1 & CTX_RSVD_LO1 || chi1 || q2 || q3) return VTD_FR.SM_CTX_RSVD;
      let flags = 0;
      if (clo0 & CTX_FPD) flags |= CC_FPD;
      if (clo0 & CTX_PASIDE) flags |= CC_PASIDE;
      if (clo0 & CTX_DTE) flags |= CC_DTE;
      if (clo0 & CTX_PRE) flags |= CC_PRE;
      slot = ctxCache.fill(rid, entryAddr(clo0, chi0), (clo0 >>> 9) & 7, flags, clo1 & 0xfffff);
    }
    this.ctxFlags = ctxCache.flags[slot];
    this.pasidDirPtr = ctxCache.pasidDirPtr[slot];
    this.pdts = ctxCache.pdts[slot];
    this.ridPasid = ctxCache.ridPasid[slot];
    if (this.ctxFlags & CC_FPD) this.fpd = true;
    return 0;
  }

  /**
   * vtd_get_pe_from_pasid_table: the PASID entry of (rid, pasid), from the PASID cache or from
   * the PASID directory of the current context entry. Returns 0 or a fault reason.
   */
  pasidEntry(rid: number, pasid: number): number {
    const { pasidCache, trace } = this.env;
    let slot = pasidCache.lookup(rid, pasid);
    if (slot < 0) {
      const dirIndex = pasid >>> PASID_PDE_SHIFT;
      const dpa = this.pasidDirPtr + dirIndex * PASID_DIR_ENTRY_SIZE;
      this.read(dpa);
      const dlo = this.w.lo;
      const dhi = this.w.hi;
      if (trace.on) trace.emit("vtd.ctx.read", { what: "pasid-dir", addr: dpa, index: dirIndex, hi: 0, lo: u64hl(dhi, dlo) });
      if (dlo & PDE_FPD) this.fpd = true;
      if (!(dlo & PDE_P)) return VTD_FR.SM_PDE_P;
      if (dlo & PDE_RSVD_LO || this.aboveHaw(dhi)) return VTD_FR.SM_PDE_RSVD;
      const index = pasid & PASID_PTE_MASK;
      const ppa = entryAddr(dlo, dhi) + index * PASID_ENTRY_SIZE;
      this.read(ppa);
      const lo0 = this.w.lo;
      const hi0 = this.w.hi;
      this.readMore(ppa + 8);
      const lo1 = this.w.lo;
      const hi1 = this.w.hi;
      if (trace.on) trace.emit("vtd.ctx.read", { what: "pasid", addr: ppa, index, hi: u64hl(hi1, lo1), lo: u64hl(hi0, lo0) });
      if (lo0 & PE_FPD) this.fpd = true;
      if (!(lo0 & PE_P)) return VTD_FR.SM_PE_P;
      if (lo0 & PE_RSVD_LO0 || lo1 & PE_RSVD_LO1 || hi1 || this.aboveHaw(hi0)) return VTD_FR.SM_PE_RSVD;
      const pgtt = (lo0 >>> 6) & 7;
      const aw = (lo0 >>> 2) & 7;
      // first-stage-only PASID entries (PGTT 001) are not modelled: treated as invalid programming
      if (pgtt !== PGTT_SS && pgtt !== PGTT_PT && pgtt !== PGTT_NESTED) return VTD_FR.SM_PE_INV;
      // AW (the second stage's width) must be one CAP.SAGAW reports: 4-level only
      if ((pgtt === PGTT_SS || pgtt === PGTT_NESTED) && aw !== AW_4LEVEL) return VTD_FR.SM_PE_INV;
      let flags = 0;
      if (dlo & PDE_FPD || lo0 & PE_FPD) flags |= PC_FPD;
      if (lo0 & PE_SSADE) flags |= PC_SSADE;
      if (lo1 & PE_PGSNP) flags |= PC_PGSNP;
      let fsptptr = 0;
      if (pgtt === PGTT_NESTED) {
        // qw2 of the same 512-bit entry: SRE 128, FLPM 131:130, WPE 132, EAFE 135, FSPTPTR 191:140
        this.readMore(ppa + 16);
        const lo2 = this.w.lo;
        const hi2 = this.w.hi;
        const caps = this.env.fsCaps;
        const flpm = (lo2 >>> PE2_FLPM_SHIFT) & 3;
        // SRE / EAFE on a unit without SRS / EAFS are reserved bits
        if (lo2 & PE2_RSVD_LO || (lo2 & PE2_SRE && !caps?.srs) || (lo2 & PE2_EAFE && !caps?.eafs)) return VTD_FR.SM_PE_RSVD;
        // FLPM 01 (5-level) needs CAP.FS5LP; 10 and 11 are not paging modes
        if (flpm > 1 || (flpm === 1 && !caps?.fs5lp)) return VTD_FR.SM_PE_INV;
        if (flpm === 1) flags |= PC_FL5;
        if (lo2 & PE2_SRE) flags |= PC_SRE;
        if (lo2 & PE2_WPE) flags |= PC_WPE;
        if (lo2 & PE2_EAFE) flags |= PC_EAFE;
        // a GPA at or above 2^48 cannot be translated by the second stage: the walk faults 0x74
        fsptptr = hi2 & 0xffff0000 ? PC_FSPTPTR_BEYOND : entryAddr(lo2, hi2);
      }
      slot = pasidCache.fill(rid, pasid, lo1 & 0xffff, pgtt, aw, flags, entryAddr(lo0, hi0), fsptptr);
    }
    this.did = pasidCache.did[slot];
    this.pgtt = pasidCache.pgtt[slot];
    this.aw = pasidCache.aw[slot];
    this.peFlags = pasidCache.flags[slot];
    this.ssptptr = pasidCache.ssptptr[slot];
    this.fsptptr = pasidCache.fsptptr[slot];
    if (this.peFlags & PC_FPD) this.fpd = true;
    return 0;
  }

  /**
   * vtd_iova_to_sspte: walk the 4-level second-stage table for `iova`, starting below the
   * deepest PWC hit. On success the leaf is in leafPa / leafLevel / leafPerm / leafFlags.
   */
  ssWalk(pasid: number, iova: number, write: boolean): number {
    const { mem, trace, pwc } = this.env;
    const stale = this.env.stale;
    /** where this walk's entries start in the detector's list (a nested walk has read others before) */
    const depStart = stale ? stale.walk.n : 0;
    const did = this.did;
    const ssade = (this.peFlags & PC_SSADE) !== 0;
    const need = write ? SL_W : SL_R;
    let level = 4;
    let table = this.ssptptr;
    let perm = SL_R | SL_W;
    this.walks++;
    if (pwc.enabled) {
      for (let l = 2; l <= 4; l++) {
        const slot = pwc.lookup(did, iova, l);
        if (slot >= 0) {
          table = pwc.table[l][slot];
          perm = pwc.perm[l][slot];
          level = l - 1;
          if (stale) stale.pwcHit(false, l, slot, did, pasid, this.nested ? this.nested.iova : iova);
          break;
        }
      }
    }
    for (;;) {
      const q = Math.floor(iova / LEVEL_SHIFT_DIV[level]);
      const index = q - Math.floor(q / 512) * 512; // q % 512 without a double fmod
      const pa = table + index * 8;
      this.read(pa);
      let lo = this.w.lo;
      const hi = this.w.hi;
      if (stale) stale.read(pa, lo, hi, DEP_SS, level);
      const present = (lo & (SL_R | SL_W)) !== 0;
      const leaf = level === 1 || (lo & SL_PS) !== 0;
      let fr = 0;
      if (!present) fr = VTD_FR.SS_RW;
      else {
        const m = this.rsvd[level][leaf && level < 4 ? 1 : 0];
        if (lo & m[0] || hi & m[1]) fr = VTD_FR.SS_RSVD;
        else if (!(lo & need)) fr = write ? VTD_FR.SM_WRITE : VTD_FR.SM_READ;
      }
      let ad = 0;
      if (!fr && ssade) {
        // locked read-modify-write of the entry: A on every level, D on the leaf of a write
        if (!(lo & SL_A)) ad |= SL_A;
        if (leaf && write && !(lo & SL_D)) ad |= SL_D;
        if (ad) {
          mem.read64(pa, this.w);
          lo = (this.w.lo | ad) >>> 0;
          mem.write64(pa, lo, this.w.hi);
        }
      }
      if (trace.on) {
        trace.emit("vtd.walk.level", {
          did, pasid, iova, level, table, index, entry: u64hl(hi, lo), bits: ssBits(lo), leaf: present && leaf,
          ...(ad ? { ad: ad === SL_A ? "A" : ad === SL_D ? "D" : "A|D" } : {}),
          ...(this.nested ? { stage: "s2" as const, gpa: iova, iova: this.nested.iova, fsLevel: this.nested.fsLevel } : {}),
        });
      }
      if (fr) return fr;
      perm &= lo & (SL_R | SL_W);
      const addr = entryAddr(lo, hi);
      if (leaf) {
        const size = levelSize(level);
        // VT-d 3.15 / QEMU: a translation resulting in the interrupt range is blocked (SGN.8)
        if (addr <= INTR_LAST && addr + size - 1 >= INTR_FIRST) return VTD_FR.SM_INTR_ADDR;
        this.leafPa = addr;
        this.leafLevel = level;
        this.leafPerm = perm;
        this.leafFlags = lo & SL_D ? IOTLB_DIRTY : 0;
        return 0;
      }
      if (level <= 4 && level >= 2) {
        const ps = pwc.fill(did, iova, level, addr, perm);
        if (stale) stale.pwcFill(false, level, ps, depStart);
      }
      table = addr;
      level--;
    }
  }
}
