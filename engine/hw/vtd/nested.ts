/**
 * Nested (two-dimensional) translation, PASID-entry PGTT = 011 (VT-d spec 3.8 "Nested
 * Translation"; reference §1.7): the first stage — the guest's x86 page table, whose root
 * (FSPTPTR) and every next-table pointer are guest-physical addresses — produces a GPA, and the
 * second stage — the host's table of the nest-parent domain (SSPTPTR) — turns every GPA into a
 * host-physical address: each first-stage table before it can be read, and the final page.
 *
 * QEMU's intel_iommu has no nested walk (PGTT = 011 is rejected there; its x-flts mode walks the
 * first stage alone, `vtd_iova_to_flpte`); the first-stage rules here follow that function, and
 * the nesting follows the SMMU model's `translate_table_addr_ipa` and `combine_tlb` in
 * hw/arm/smmu-common.c. Deviations are marked [decision].
 *
 * The walk, 4-level first stage × 4-level second stage, nothing cached (24 memory references):
 *
 *   S S S S   translate FSPTPTR (the PML4 table's GPA)                 s2 steps, fsLevel 4
 *   F         read the PML4E                                            s1 step, level 4
 *   S S S S   translate the PDPT's GPA                                  s2 steps, fsLevel 3
 *   F         read the PDPTE                                            …
 *   S S S S / F / S S S S / F                                           PD, PT
 *   S S S S   translate the final GPA                                   s2 steps, fsLevel 0
 *
 * Every reference is a `vtd.walk.level` event tagged with its stage (see engine/trace/events.ts),
 * so a view can draw the grid of guest levels × host levels. With a 5-level first stage (FLPM =
 * 01, CAP.FS5LP) it is 29. Large pages at either stage shorten their walks; the caches below
 * shorten them further.
 *
 * Rules, per first-stage level, in this order:
 *   - the input must be canonical for the paging mode (0x80) — checked before anything;
 *   - a table GPA at or above 2^48 (the second stage's input width) faults 0x74; the second-stage
 *     walk that fetches a table needs read permission: denied at the root table faults 0x75, at
 *     any other 0x76; a not-present or reserved second-stage entry faults as itself (0x79, 0x7A);
 *   - the first-stage entry: not present 0x71, reserved bits 0x72, an address at or above 2^48
 *     0x74, U/S = 0 0x81 (every request is user-privilege: the model's requests carry no PM bit,
 *     as QEMU's — "No emulated device supports supervisor privilege request yet" — so SRE/WPE are
 *     never consulted and a unit without ECAP.SRS never needs them), R/W = 0 on a write 0x85;
 *     [decision: QEMU checks U/S and R/W before the reserved bits; here reserved bits come first,
 *     as the x86 MMU reports RSVD before protection];
 *   - A/D: hardware sets A in every first-stage entry it reads and D in the leaf of a write, by a
 *     locked read-modify-write, which needs second-stage *write* permission on the table page
 *     (else 0x77). With SSADE on, that write also sets the second stage's D bit of the table
 *     page: the table's GPA is translated again as a write (four more s2 steps). Linux's guest
 *     driver pre-sets A in every entry and D in writable leaves (DMA_FL_PTE_ACCESS / _DIRTY), so
 *     this is rare;
 *   - the final GPA: at or above 2^48 0x74; its second-stage walk checks the request's own
 *     access (0x85 / 0x86) and may set SS A/D (dirty tracking of a nest parent works);
 *   - effective permission = first-stage W (AND over levels) AND second-stage R/W of the page.
 * 0x70 and 0x73 (an error *accessing* a first-stage entry or the FL-PML4E) cannot happen here:
 * simulated memory answers every address the second stage can produce (its reserved-bit check
 * keeps outputs below the 46-bit host address width).
 *
 * Caches and tags
 *   - IOTLB: the translation, tagged by the nested entry's DID and the PASID (RID_PASID for a
 *     request without PASID), PGTT 011; the cached size is the smaller of the first- and
 *     second-stage leaves (QEMU smmu-common `combine_tlb`), so a 2 MiB guest page over 4 KiB host
 *     pages caches 4 KiB.
 *   - second-stage PWC (iotlb.ts VtdPwc): the s2 walks use it as any second-stage walk does,
 *     tagged by DID + GPA.
 *   - first-stage PWC (`VtdFsPwc`, the "nested PWC" of §1.8): a first-stage non-leaf entry with
 *     its next table *already translated* (HPA), tagged by DID + PASID + the input bits above
 *     that entry's reach; a hit skips every read above it, including the s2 walks.
 * Invalidation (invq.ts): a PASID-based IOTLB invalidation (type 6) reaches nested IOTLB entries
 * and the first-stage PWC (page-selective with IH = 1 keeps the PWC); an IOTLB invalidation
 * (type 2) of the DID reaches every nested IOTLB entry of the DID whatever its address, the
 * second-stage PWC of the DID, and — [decision] — every first-stage PWC entry of the DID, IH
 * notwithstanding: those entries hold second-stage translations of table pointers, so a change of
 * the second stage (which is what type 2 announces) can make any of them stale.
 */
import type { Clock } from "../../machine.ts";
import type { PhysMem } from "../memory.ts";
import type { Trace } from "../../trace/events.ts";
import { SetAssocCache } from "../common/cache.ts";
import * as fault from "./fault.ts";
import * as caches from "./iotlb.ts";
import type { VtdIotlb } from "./iotlb.ts";
import * as fs from "./fs.ts";
import { DEP_FS, type VtdStaleDetector } from "./stale.ts";
import * as tables from "./tables.ts";
import type { VtdWalker } from "./walk.ts";

// Hot-path copies of imported bindings (see walk.ts).
const { VTD_FR } = fault;
const { IOTLB_AD, IOTLB_DIRTY, PC_FL5, PC_SSADE } = caches;
const { FL_A, FL_D, FL_HI_BEYOND_48, FL_P, FL_PS, FL_RW, FL_US, flLeafAddr, flReservedLo, flTableAddr, fsBits } = fs;
const { PGTT_NESTED, SL_R, SL_W, u64hl } = tables;

/** IOTLB entry flag of nested entries: the first-stage leaf's D bit is known to be set. */
export const IOTLB_FS_DIRTY = 4;

const GPA_LIMIT = 2 ** 48;
const SHIFT_DIV = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48];
const LEVEL_SIZE = SHIFT_DIV;

// ==== the first-stage (nested) paging-structure cache ===============================================

/**
 * First-stage PWC: one small fully-associative cache per non-leaf level (PDE 2, PDPTE 3, PML4E 4,
 * PML5E 5), tagged by (DID, PASID, input bits above the entry's reach). Payload: the next table's
 * HPA and GPA, the first-stage permissions accumulated so far (FL_RW | FL_US), and the second-stage
 * permissions of the next table's page (an A/D update there needs SS write).
 */
export class VtdFsPwc {
  /** by level 2..5; [0], [1] unused */
  readonly c: (SetAssocCache | null)[] = [null, null];
  readonly table: Float64Array[] = [new Float64Array(0), new Float64Array(0)];
  readonly tableGpa: Float64Array[] = [new Float64Array(0), new Float64Array(0)];
  readonly perm: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0)];
  readonly ssPerm: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0)];
  readonly did: Uint16Array[] = [new Uint16Array(0), new Uint16Array(0)];
  readonly pasid: Int32Array[] = [new Int32Array(0), new Int32Array(0)];
  hits = 0;
  misses = 0;
  fills = 0;
  invalidations = 0;

  constructor(
    readonly entriesPerLevel: number,
    private readonly trace: Trace,
  ) {
    for (let level = 2; level <= 5; level++) {
      const n = Math.max(entriesPerLevel, 1);
      this.c.push(entriesPerLevel > 0 ? new SetAssocCache(1, entriesPerLevel) : null);
      this.table.push(new Float64Array(n));
      this.tableGpa.push(new Float64Array(n));
      this.perm.push(new Uint8Array(n));
      this.ssPerm.push(new Uint8Array(n));
      this.did.push(new Uint16Array(n));
      this.pasid.push(new Int32Array(n));
    }
  }

  get enabled(): boolean {
    return this.entriesPerLevel > 0;
  }

  private static key(did: number, pasid: number): number {
    return did + pasid * 65536;
  }

  lookup(did: number, pasid: number, iova: number, level: number): number {
    const c = this.c[level];
    if (!c) return -1;
    const tag = Math.floor(iova / LEVEL_SIZE[level]);
    const slot = c.lookup(0, tag, VtdFsPwc.key(did, pasid));
    if (slot >= 0) {
      this.hits++;
      if (this.trace.on) {
        this.trace.emit("vtd.fspwc.hit", { did, pasid, level, tag, table: this.table[level][slot], tableGpa: this.tableGpa[level][slot], way: slot });
      }
    } else {
      this.misses++;
      if (this.trace.on) this.trace.emit("vtd.fspwc.miss", { did, pasid, level, tag });
    }
    return slot;
  }

  fill(did: number, pasid: number, iova: number, level: number, table: number, tableGpa: number, perm: number, ssPerm: number): number {
    const c = this.c[level];
    if (!c) return -1;
    const tag = Math.floor(iova / LEVEL_SIZE[level]);
    const k1 = VtdFsPwc.key(did, pasid);
    let slot = c.peek(0, tag, k1);
    if (slot < 0) {
      slot = c.victim(0);
      if (c.valid[slot] && this.trace.on) {
        this.trace.emit("vtd.fspwc.evict", { did: this.did[level][slot], pasid: this.pasid[level][slot], level, tag: c.k0[slot], way: slot });
      }
    }
    c.insert(slot, tag, k1);
    this.table[level][slot] = table;
    this.tableGpa[level][slot] = tableGpa;
    this.perm[level][slot] = perm;
    this.ssPerm[level][slot] = ssPerm;
    this.did[level][slot] = did;
    this.pasid[level][slot] = pasid;
    this.fills++;
    if (this.trace.on) this.trace.emit("vtd.fspwc.fill", { did, pasid, level, tag, table, tableGpa, way: slot });
    return slot;
  }

  /** Remove entries matching `pred` (level, slot) → boolean. */
  private invWhere(by: string, pred: (level: number, slot: number) => boolean): number {
    let n = 0;
    for (let level = 2; level <= 5; level++) {
      const c = this.c[level];
      if (!c) continue;
      for (let s = 0; s < c.size; s++) {
        if (!c.valid[s] || !pred(level, s)) continue;
        c.invalidate(s);
        this.invalidations++;
        n++;
        if (this.trace.on) {
          this.trace.emit("vtd.fspwc.inv", { did: this.did[level][s], pasid: this.pasid[level][s], level, tag: c.k0[s], by, way: s });
        }
      }
    }
    return n;
  }

  invAll(by: string): number {
    return this.invWhere(by, () => true);
  }

  /** Every entry of `did` (an IOTLB invalidation of the DID, type 2, any granularity). */
  invDomain(did: number, by: string): number {
    return this.invWhere(by, (l, s) => this.did[l][s] === did);
  }

  /** Every entry of (did, pasid) (PASID-selective P_IOTLB). */
  invPasid(did: number, pasid: number, by: string): number {
    return this.invWhere(by, (l, s) => this.did[l][s] === did && this.pasid[l][s] === pasid);
  }

  /** Entries of (did, pasid) whose reach overlaps [start, end) (page-selective P_IOTLB with IH = 0). */
  invPasidRange(did: number, pasid: number, start: number, end: number, by: string): number {
    return this.invWhere(by, (l, s) => {
      if (this.did[l][s] !== did || this.pasid[l][s] !== pasid) return false;
      const base = this.c[l]!.k0[s] * LEVEL_SIZE[l];
      return base < end && start < base + LEVEL_SIZE[l];
    });
  }
}

// ==== the 2D walk ===================================================================================

/** What the nested walker works on (owned by VtdHw). */
export interface VtdNestedEnv {
  readonly mem: PhysMem;
  readonly trace: Trace;
  readonly clock: Clock;
  readonly walker: VtdWalker;
  readonly iotlb: VtdIotlb;
  readonly fspwc: VtdFsPwc;
  readonly stale: VtdStaleDetector | null;
  /** CAP.FS1GP: 1 GiB first-stage leaves */
  readonly fs1gp: boolean;
  readonly memReadNs: number;
  readonly iotlbHitNs: number;
}

export class VtdNestedWalker {
  // ---- results of translate() ----
  pa = 0;
  /** bytes from pa to the end of the cached translation */
  size = 0;
  perm = 0;
  // ---- counters ----
  /** nested translations that walked (IOTLB misses and dirty re-walks) */
  walks = 0;
  dirtyRewalks = 0;

  private readonly w = { lo: 0, hi: 0 };
  /** the s2 tag handed to the walker while it translates for us */
  private readonly tag = { iova: 0, fsLevel: 0 };
  // second-stage facts about the first-stage table being read
  private tablePerm = 0;
  private tableDirty = false;
  // results of walk()
  private gpa = 0;
  private fsLevel = 0;
  private fsPerm = 0;
  private fsDirty = false;

  constructor(private readonly env: VtdNestedEnv) {}

  /**
   * Translate `iova` for the nested PASID entry the walker just decoded (walker.did, fsptptr,
   * ssptptr, peFlags). Returns 0 (pa/size/perm set) or a fault reason.
   */
  translate(pasid: number, iova: number, write: boolean): number {
    const { walker, iotlb, stale, clock } = this.env;
    const levels = walker.peFlags & PC_FL5 ? 5 : 4;
    if (!fs.flCanonical(iova, levels)) return VTD_FR.FS_NON_CANONICAL;
    const did = walker.did;
    const slot = iotlb.lookup(did, pasid, iova);
    if (slot >= 0) {
      const perm = iotlb.perm[slot];
      // as on the second-stage path: a permission fault from the cached entry, no re-walk
      if (!(perm & (write ? SL_W : SL_R))) return write ? VTD_FR.SM_WRITE : VTD_FR.SM_READ;
      const flags = iotlb.flags[slot];
      if (!write || (flags & IOTLB_FS_DIRTY && (!(flags & IOTLB_AD) || flags & IOTLB_DIRTY))) {
        if (this.env.iotlbHitNs) clock.advance(this.env.iotlbHitNs);
        if (stale) stale.iotlbHit(slot, did, pasid, iova);
        const size = iotlb.sizeOf(slot);
        const off = iova - Math.floor(iova / size) * size;
        this.pa = iotlb.pa[slot] + off;
        this.size = size - off;
        this.perm = perm;
        return 0;
      }
      // a write through an entry whose first-stage leaf (or, with SSADE, second-stage leaf) is not
      // known dirty: walk again so the D bits land in memory
      this.dirtyRewalks++;
    }
    this.walks++;
    if (stale) stale.walk.reset();
    let fr = this.walk(pasid, iova, write, levels);
    if (fr) return fr;
    // the final GPA through the second stage, with the request's own access
    const gpa = this.gpa;
    if (gpa >= GPA_LIMIT) return VTD_FR.NESTED_BEYOND;
    fr = this.ss(pasid, gpa, write, 0, iova);
    if (fr) return fr;
    const ssLevel = walker.leafLevel;
    const ssSize = LEVEL_SIZE[ssLevel];
    const hpa = walker.leafPa + (gpa - Math.floor(gpa / ssSize) * ssSize);
    const level = Math.min(this.fsLevel, ssLevel);
    const size = LEVEL_SIZE[level];
    const off = iova - Math.floor(iova / size) * size;
    const perm = walker.leafPerm & (this.fsPerm & FL_RW ? SL_R | SL_W : SL_R);
    let flags = walker.leafFlags & IOTLB_DIRTY;
    if (walker.peFlags & PC_SSADE) flags |= IOTLB_AD;
    if (this.fsDirty) flags |= IOTLB_FS_DIRTY;
    const fslot = iotlb.fill(did, pasid, iova, level, PGTT_NESTED, hpa - off, perm, flags);
    if (stale) stale.iotlbFill(fslot);
    this.pa = hpa;
    this.size = size - off;
    this.perm = perm;
    const { trace } = this.env;
    if (trace.on) {
      trace.emit("vtd.walk.done", {
        did, pasid, iova, pa: hpa, size, perm, reads: walker.reads, gpa, fsSize: LEVEL_SIZE[this.fsLevel], ssSize,
      });
    }
    return 0;
  }

  /** One memory reference, counted and timed like the walker's. */
  private read(pa: number): void {
    const { walker, mem, clock, memReadNs } = this.env;
    mem.read64(pa, this.w);
    walker.reads++;
    walker.memReads++;
    if (memReadNs) clock.advance(memReadNs);
  }

  /** A second-stage walk of `gpa` on our behalf (its events tagged s2 / fsLevel). */
  private ss(pasid: number, gpa: number, write: boolean, fsLevel: number, iova: number): number {
    const walker = this.env.walker;
    this.tag.iova = iova;
    this.tag.fsLevel = fsLevel;
    walker.nested = this.tag;
    try {
      return walker.ssWalk(pasid, gpa, write);
    } finally {
      walker.nested = null;
    }
  }

  /** Translate the GPA of the first-stage table of `level`: sets tablePerm/tableDirty; returns its HPA, or -fault. */
  private fetchTable(pasid: number, tableGpa: number, level: number, root: boolean, iova: number, write: boolean): number {
    if (tableGpa >= GPA_LIMIT) return -VTD_FR.NESTED_BEYOND;
    const fr = this.ss(pasid, tableGpa, write, level, iova);
    if (fr) {
      // a present second-stage entry without read permission: the nested table-read faults
      if (fr === VTD_FR.SM_READ) return -(root ? VTD_FR.NESTED_READ_ROOT : VTD_FR.NESTED_READ);
      if (fr === VTD_FR.SM_WRITE) return -VTD_FR.NESTED_WRITE;
      return -fr;
    }
    const walker = this.env.walker;
    const size = LEVEL_SIZE[walker.leafLevel];
    this.tablePerm = walker.leafPerm;
    this.tableDirty = (walker.leafFlags & IOTLB_DIRTY) !== 0;
    return walker.leafPa + (tableGpa - Math.floor(tableGpa / size) * size);
  }

  /** The first-stage walk; leaves gpa / fsLevel / fsPerm / fsDirty. Returns 0 or a fault reason. */
  private walk(pasid: number, iova: number, write: boolean, levels: number): number {
    const { walker, mem, trace, fspwc, stale, fs1gp } = this.env;
    const did = walker.did;
    const ssade = (walker.peFlags & PC_SSADE) !== 0;
    let level = levels;
    let tableGpa = walker.fsptptr;
    let table = -1;
    let perm = FL_RW | FL_US;
    if (fspwc.enabled) {
      for (let l = 2; l <= levels; l++) {
        const slot = fspwc.lookup(did, pasid, iova, l);
        if (slot >= 0) {
          table = fspwc.table[l][slot];
          tableGpa = fspwc.tableGpa[l][slot];
          perm = fspwc.perm[l][slot];
          this.tablePerm = fspwc.ssPerm[l][slot];
          this.tableDirty = false;
          level = l - 1;
          if (stale) stale.pwcHit(true, l, slot, did, pasid, iova);
          break;
        }
      }
    }
    /** the level whose entry points to the table being fetched: fill its PWC entry once the table is translated */
    let pendingFill = 0;
    for (;;) {
      if (table < 0) {
        const t = this.fetchTable(pasid, tableGpa, level, level === levels, iova, false);
        if (t < 0) return -t;
        table = t;
        if (pendingFill) {
          const ps = fspwc.fill(did, pasid, iova, pendingFill, table, tableGpa, perm, this.tablePerm);
          if (stale) stale.pwcFill(true, pendingFill, ps);
          pendingFill = 0;
        }
      }
      const q = Math.floor(iova / SHIFT_DIV[level]);
      const index = q - Math.floor(q / 512) * 512;
      const pa = table + index * 8;
      this.read(pa);
      let lo = this.w.lo;
      const hi = this.w.hi;
      if (stale) stale.read(pa, lo, hi, DEP_FS, level);
      const present = (lo & FL_P) !== 0;
      const ps = (lo & FL_PS) !== 0;
      const leaf = level === 1 || (ps && level <= 3);
      let fr = 0;
      if (!present) fr = VTD_FR.FS_P;
      else if (lo & flReservedLo(level, ps, fs1gp)) fr = VTD_FR.FS_RSVD;
      else if (hi & FL_HI_BEYOND_48) fr = VTD_FR.NESTED_BEYOND;
      else if (!(lo & FL_US)) fr = VTD_FR.FS_US;
      else if (write && !(lo & FL_RW)) fr = VTD_FR.SM_WRITE;
      let ad = 0;
      if (!fr) {
        if (!(lo & FL_A)) ad |= FL_A;
        if (leaf && write && !(lo & FL_D)) ad |= FL_D;
        if (ad) {
          // the locked read-modify-write is a write to the guest's table page
          if (!(this.tablePerm & SL_W)) fr = VTD_FR.NESTED_WRITE;
          else {
            if (ssade && !this.tableDirty) {
              // the table page's second-stage D bit: translate its GPA again, as a write
              const t = this.fetchTable(pasid, tableGpa, level, level === levels, iova, true);
              if (t < 0) return -t;
            }
            mem.read64(pa, this.w);
            lo = (this.w.lo | ad) >>> 0;
            mem.write64(pa, lo, this.w.hi);
          }
        }
      }
      if (trace.on) {
        trace.emit("vtd.walk.level", {
          did, pasid, iova, level, table, index, entry: u64hl(hi, lo), bits: fsBits(lo), leaf: present && leaf && fr !== VTD_FR.FS_RSVD,
          ...(ad && !fr ? { ad: ad === FL_A ? "A" : ad === FL_D ? "D" : "A|D" } : {}),
          stage: "s1" as const, tableGpa,
        });
      }
      if (fr) return fr;
      perm &= lo & (FL_RW | FL_US);
      if (leaf) {
        const size = LEVEL_SIZE[level];
        this.gpa = flLeafAddr(lo, hi, level) + (iova - Math.floor(iova / size) * size);
        this.fsLevel = level;
        this.fsPerm = perm;
        this.fsDirty = (lo & FL_D) !== 0;
        return 0;
      }
      tableGpa = flTableAddr(lo, hi);
      table = -1;
      pendingFill = level;
      level--;
    }
  }
}
