/**
 * The device side of PCIe Address Translation Services (ATS) and the Page Request Interface
 * (PRI), generic over IOMMU models: what an ATS-capable function (vfio0) does with its own
 * translation cache, the device-TLB or ATC. Reference: iommu-hardware.md §1.11, §1.12, §5 and
 * pitfalls 1, 2, 10, 11; PCIe capability fields after torvalds/linux include/uapi/linux/pci_regs.h
 * (PCI_ATS_*, PCI_PRI_*) and drivers/pci/ats.c (pci_enable_ats, pci_enable_pri, pci_reset_pri).
 *
 * What lives where
 *  - The PCI capability registers the IOMMU driver programs: ATS (enable, Smallest Translation
 *    Unit, Invalidate Queue Depth) and PRI (enable, outstanding-request allocation, status: Response
 *    Failure, Unexpected PRG Index, PRG Response PASID Required). The driver reaches them through
 *    `MachineCtx.pcie` exactly as Linux reaches a pci_dev's config space.
 *  - The ATC: a small fully associative LRU cache of Translation Completions, tagged by (PASID or
 *    "no PASID", page, size). Requests that hit it go out *translated*: the IOMMU does not walk
 *    them again. Only an ATS Invalidate Request from the IOMMU (QI type 3 / 8) removes an entry,
 *    so a driver that forgets the device-TLB flush leaves the device using a stale translation.
 *  - The DMA engine for ATS: per 4 KiB request, ATC lookup → on a miss a Translation Request
 *    (`AtsHw.translationRequest`) → fill → translated access. A completion with no access
 *    (R = W = 0, no fault recorded: §1.11) is the cue for PRI: when the device's driver has put the
 *    context in recoverable-fault mode (`usePri`: its domain has a fault queue, SCRIPT-API.md) the
 *    device sends a one-request page group and *waits*; Success → it translates again (and may
 *    fault again), anything else → the DMA fails. Without PRI for that context the device sends
 *    the request untranslated and the IOMMU faults it and records it, as for any other device
 *    [decision: PCIe leaves the reaction to an R = W = 0 completion to the function; issuing the
 *    access untranslated keeps non-recoverable faults visible in the fault records].
 *  - Page requests and responses: a request crosses the link (PCIE_MSG_NS) to the IOMMU, which
 *    queues or drops it; the PRG response comes back the same way and is matched to the oldest
 *    outstanding group with that index (and PASID when PRG Response PASID Required is set).
 *
 * Time: a Translation Request costs ATS_TRANSLATION_NS plus whatever the IOMMU charges for its
 * walk; messages take PCIE_MSG_NS one way; an ATS invalidation's round trip (ATS_INVALIDATE_NS)
 * is charged by the IOMMU's queued invalidation, which waits for the completion. All are the
 * reference §6 assumptions, tunable here.
 *
 * Not modelled: ATS for untranslated-only attributes (N, U, Global, Priv/Exe in completions), the
 * PRI outstanding-request limit (a device here never has more than a few outstanding), ATS
 * invalidation completion timeouts (FSTS.ITE), Stop Markers sent by the device on its own.
 */
import type { MachineCtx } from "../machine.ts";
import { SetAssocCache } from "./common/cache.ts";
import { interruptWindow, type DmaFaultInfo } from "./dma.ts";
import type { DmaRequest, IommuHw, SimDevice, Translation } from "./model.ts";

const PAGE = 4096;
const LEVEL_SIZE = [0, 4096, 2 ** 21, 2 ** 30];
const TWO21 = 2 ** 21;

/** Translation Request + Completion round trip over the link, on top of the IOMMU's own walk. */
export const ATS_TRANSLATION_NS = 1000;
/** One posted message (Page Request, PRG Response) crossing the link. */
export const PCIE_MSG_NS = 500;
/** ATS Invalidate Request + Invalidate Completion round trip (charged by the IOMMU's QI wait). */
export const ATS_INVALIDATE_NS = 1500;
/** How many Success responses a DMA request accepts before it gives up on a page. */
export const PRI_MAX_ROUNDS = 8;
/** ATC entries of a device (fully associative, LRU). */
export const ATC_ENTRIES = 32;

/** PCIe PRG Response codes (PCIe PRI; iommu-hardware.md §7 pitfall 10). */
export const PRG_RESP_SUCCESS = 0x0;
export const PRG_RESP_INVALID = 0x1;
export const PRG_RESP_FAILURE = 0xf;

/** The name of a PRG Response code. */
export function prgRespName(code: number): string {
  if (code === PRG_RESP_SUCCESS) return "Success";
  if (code === PRG_RESP_INVALID) return "Invalid Request";
  if (code === PRG_RESP_FAILURE) return "Response Failure";
  return `reserved code 0x${code.toString(16)}`;
}

/** A PRI Page Request message as it leaves the device (PCIe Page Request, reference §1.12). */
export interface PageRequestMsg {
  rid: number;
  /** -1: no PASID prefix */
  pasid: number;
  /** page address (4 KiB aligned) */
  addr: number;
  /** Page Request Group Index, 9 bits */
  prgi: number;
  /** L: last request of its group */
  last: boolean;
  read: boolean;
  write: boolean;
  exec: boolean;
  priv: boolean;
}

/** What became of a page request at the IOMMU. */
export type PageRequestFate = "queued" | "dropped" | "blocked";

/** What an IOMMU's hardware half offers ATS/PRI devices (VtdHw implements it). */
export interface AtsHw extends IommuHw {
  /**
   * An ATS Translation Request for the page of `req.iova`. `ok: true` is a successful completion:
   * `pa` and `size` (bytes from pa to the end of the translated range) and `perm` (1 = R, 2 = W);
   * `perm` 0 means "no access", with no fault recorded. `ok: false` is UR/CA: a structural error,
   * recorded as a fault by the IOMMU.
   */
  translationRequest(req: DmaRequest): Translation;
  /** A Page Request message arriving at the IOMMU. */
  pageRequest(msg: PageRequestMsg): PageRequestFate;
}

/** The IOMMU's hardware half, when it speaks ATS. */
export function atsHw(hw: IommuHw): AtsHw | null {
  const h = hw as Partial<AtsHw>;
  return typeof h.translationRequest === "function" && typeof h.pageRequest === "function" ? (h as AtsHw) : null;
}

/** A DMA that failed: a translation fault (reason = the IOMMU's code) or a page request answered with other than Success (responseCode). */
export interface AtsFaultInfo extends DmaFaultInfo {
  /** PRG Response code when the DMA failed on a page response (reason is then 0) */
  responseCode?: number;
}

/** One DMA through an ATS device. */
export interface AtsDmaOp {
  iova: number;
  length: number;
  /** -1: without PASID */
  pasid: number;
  write: boolean;
  /** the bytes of a write */
  data?: Uint8Array;
  /** the device uses PRI for this context (its domain has a fault queue) */
  usePri: boolean;
}

/** How a DMA ended: the bytes read (a read), or the fault that stopped it. */
export type AtsDmaResult = { ok: true; data: Uint8Array | null } | { ok: false; fault: AtsFaultInfo };

/** A raw page request, as device.pageRequest() sends it. */
export interface PageRequestOp {
  addr: number;
  pasid: number;
  prgi: number;
  last: boolean;
  read: boolean;
  write: boolean;
  exec?: boolean;
  priv?: boolean;
}

interface GroupWaiter {
  /** cmd_seq of the call that sent the closing request (events of the response carry it) */
  seq: number;
  respond(code: number): void;
}

interface Transfer {
  op: AtsDmaOp;
  out: Uint8Array | null;
  done: number;
  rounds: number;
  seq: number;
  cb: (r: AtsDmaResult) => void;
}

/**
 * One PCIe function with ATS (and maybe PRI): its capability registers, its ATC, and its DMA
 * engine. Created by the Machine for every device with ATS or PRI; the IOMMU driver enables the
 * capabilities, the IOMMU hardware sends it invalidations and page responses.
 */
export class AtsDevice {
  // ---- ATS capability (PCI_ATS_CAP / PCI_ATS_CTRL) ----
  readonly atsSupported: boolean;
  /** PCI_ATS_CTRL_ENABLE */
  atsEnabled = false;
  /** Smallest Translation Unit: log2(bytes) − 12 (PCI_ATS_CTRL_STU) */
  stu = 0;
  /** Invalidate Queue Depth (PCI_ATS_CAP_QDEP): 0 encodes 32 */
  readonly invQueueDepth = 0;
  /** Page Aligned Request (PCI_ATS_CAP_PAGE_ALIGNED): requests carry page addresses */
  readonly pageAligned = true;
  // ---- PRI capability (PCI_PRI_CTRL / PCI_PRI_STATUS) ----
  readonly priSupported: boolean;
  /** PCI_PRI_CTRL_ENABLE */
  priEnabled = false;
  /** Outstanding Page Request Capacity (PCI_PRI_MAX_REQ) */
  readonly priCapacity = 512;
  /** Outstanding Page Request Allocation (PCI_PRI_ALLOC_REQ) */
  priAlloc = 0;
  /** PCI_PRI_STATUS_RF: a Response Failure arrived; PRI is stopped until reset */
  priRf = false;
  /** PCI_PRI_STATUS_UPRGI: a response named a group the device was not waiting for */
  priUprgi = false;
  /** PCI_PRI_STATUS_PASID: responses must carry the request's PASID (devices with PASID) */
  readonly prgRespPasidRequired: boolean;

  /** the ATC: tags in `atc`, payload per slot */
  readonly atc: SetAssocCache;
  private readonly atcPa: Float64Array;
  private readonly atcPerm: Uint8Array;
  private readonly atcLevel: Uint8Array;
  private readonly atcPasid: Int32Array;

  /** closing requests sent and waiting for their group's response: key → FIFO */
  private readonly waiting = new Map<string, GroupWaiter[]>();
  /** next group index the DMA engine tries (the upper half, so scripts' small numbers stay free) */
  private nextPrgi = 0x100;

  // counters, for views and benchmarks
  atcHits = 0;
  atcMisses = 0;
  translationRequests = 0;
  pageRequests = 0;
  pageResponses = 0;
  invalidations = 0;

  constructor(
    private readonly ctx: MachineCtx,
    readonly dev: SimDevice,
    /** the IOMMU hardware the device is behind (looked up late: the model is built after the devices) */
    private readonly hwOf: () => IommuHw,
    atcEntries = ATC_ENTRIES,
  ) {
    this.atsSupported = dev.ats;
    this.priSupported = dev.pri;
    this.prgRespPasidRequired = dev.pasidBits > 0;
    this.atc = new SetAssocCache(1, atcEntries);
    this.atcPa = new Float64Array(atcEntries);
    this.atcPerm = new Uint8Array(atcEntries);
    this.atcLevel = new Uint8Array(atcEntries);
    this.atcPasid = new Int32Array(atcEntries);
  }

  // ==== the PCI config space, as the IOMMU driver programs it (drivers/pci/ats.c) ====================

  /** pci_enable_ats(pdev, ps): ps is the page shift (≥ 12). Returns false when it cannot. */
  pciEnableAts(ps: number): boolean {
    if (!this.atsSupported || this.atsEnabled || ps < 12) return false;
    this.stu = ps - 12;
    this.atsEnabled = true;
    return true;
  }

  /** pci_disable_ats: the function stops using (and drops) its cached translations. */
  pciDisableAts(): void {
    this.atsEnabled = false;
    this.atc.clear();
  }

  /** pci_reset_pri: clears the status (RF, UPRGI); only while PRI is disabled. */
  pciResetPri(): boolean {
    if (!this.priSupported || this.priEnabled) return false;
    this.priRf = false;
    this.priUprgi = false;
    return true;
  }

  /** pci_enable_pri(pdev, reqs): allocate min(reqs, capacity) outstanding requests and enable. */
  pciEnablePri(reqs: number): boolean {
    if (!this.priSupported || this.priEnabled) return false;
    this.priAlloc = Math.min(reqs, this.priCapacity);
    this.priEnabled = true;
    return true;
  }

  pciDisablePri(): void {
    this.priEnabled = false;
  }

  // ==== the ATC ======================================================================================

  private static key1(pasid: number, level: number): number {
    return pasid + 1 + level * TWO21;
  }

  /** The ATC slot translating (pasid, iova) with the access wanted, or -1 (a miss, counted and traced). */
  private atcLookup(pasid: number, iova: number, write: boolean): number {
    const c = this.atc;
    const trace = this.ctx.trace;
    for (let level = 1; level <= 3; level++) {
      const size = LEVEL_SIZE[level];
      const vpn = Math.floor(iova / size);
      const slot = c.lookup(0, vpn, AtsDevice.key1(pasid, level));
      if (slot < 0) continue;
      const perm = this.atcPerm[slot];
      if (!(perm & (write ? 2 : 1))) {
        this.atcMisses++;
        if (trace.on) trace.emit("devtlb.miss", { rid: this.dev.rid, pasid, page: vpn * size, why: `cached without ${write ? "write" : "read"} permission` });
        return -1;
      }
      this.atcHits++;
      if (trace.on) trace.emit("devtlb.hit", { rid: this.dev.rid, pasid, page: vpn * size, size, perm, way: c.wayOfSlot(slot) });
      return slot;
    }
    this.atcMisses++;
    if (trace.on) trace.emit("devtlb.miss", { rid: this.dev.rid, pasid, page: iova - (iova % PAGE), why: "absent" });
    return -1;
  }

  private atcFill(pasid: number, page: number, level: number, pa: number, perm: number): number {
    const c = this.atc;
    const trace = this.ctx.trace;
    const size = LEVEL_SIZE[level];
    const vpn = page / size;
    const k1 = AtsDevice.key1(pasid, level);
    let slot = c.peek(0, vpn, k1);
    if (slot < 0) {
      slot = c.victim(0);
      if (c.valid[slot] && trace.on) {
        const l = this.atcLevel[slot];
        trace.emit("devtlb.evict", { rid: this.dev.rid, pasid: this.atcPasid[slot], page: c.k0[slot] * LEVEL_SIZE[l], size: LEVEL_SIZE[l], way: slot });
      }
    }
    c.insert(slot, vpn, k1);
    this.atcPa[slot] = pa;
    this.atcPerm[slot] = perm;
    this.atcLevel[slot] = level;
    this.atcPasid[slot] = pasid;
    if (trace.on) trace.emit("devtlb.fill", { rid: this.dev.rid, pasid, page, size, pa, perm, way: slot });
    return slot;
  }

  /**
   * An ATS Invalidate Request from the IOMMU (QI type 3 without PASID, type 8 with one):
   * drop every entry of that PASID (`pasid` -1: entries of requests without PASID; `global`: any
   * PASID) that overlaps [addr, addr + size).
   */
  atsInvalidate(pasid: number, global: boolean, addr: number, size: number, by: string): void {
    const c = this.atc;
    const trace = this.ctx.trace;
    this.invalidations++;
    const end = addr + size;
    for (let slot = 0; slot < c.size; slot++) {
      if (!c.valid[slot]) continue;
      if (!global && this.atcPasid[slot] !== pasid) continue;
      const esize = LEVEL_SIZE[this.atcLevel[slot]];
      const page = c.k0[slot] * esize;
      if (page >= end || page + esize <= addr) continue;
      c.invalidate(slot);
      if (trace.on) trace.emit("devtlb.inv", { rid: this.dev.rid, pasid: this.atcPasid[slot], page, size: esize, way: slot, by });
    }
  }

  /** Cached translations, for views and tests. */
  atcEntries(): { pasid: number; page: number; size: number; pa: number; perm: number }[] {
    const out = [];
    const c = this.atc;
    for (let slot = 0; slot < c.size; slot++) {
      if (!c.valid[slot]) continue;
      const size = LEVEL_SIZE[this.atcLevel[slot]];
      out.push({ pasid: this.atcPasid[slot], page: c.k0[slot] * size, size, pa: this.atcPa[slot], perm: this.atcPerm[slot] });
    }
    return out;
  }

  // ==== DMA ============================================================================================

  /**
   * A DMA through ATS. `cb` is called exactly once: synchronously when no page request was needed,
   * else later in simulated time (after the page response and the retry). Events caused later
   * carry `seq` (the DMA's dma.request) as their cmd_seq.
   */
  dma(op: AtsDmaOp, cb: (r: AtsDmaResult) => void): void {
    const trace = this.ctx.trace;
    if (!Number.isInteger(op.iova) || op.iova < 0) throw new Error(`DMA: iova must be a non-negative integer, got ${op.iova}`);
    if (!Number.isInteger(op.length) || op.length < 0) throw new Error(`DMA: length must be a non-negative integer, got ${op.length}`);
    const seq = trace.emit("dma.request", { rid: this.dev.rid, pasid: op.pasid, iova: op.iova, len: op.length, write: op.write, line: trace.line });
    const t: Transfer = { op, out: op.write ? null : new Uint8Array(op.length), done: 0, rounds: 0, seq, cb };
    this.run(t);
  }

  /** Move the transfer forward until it ends or waits for a page response. */
  private run(t: Transfer): void {
    const { ctx, dev } = this;
    const { trace, clock } = ctx;
    const hw = this.hwOf();
    const ats = atsHw(hw);
    const iw = interruptWindow(hw);
    const op = t.op;
    const req: DmaRequest = { rid: dev.rid, pasid: op.pasid, iova: op.iova, write: op.write };
    while (t.done < op.length) {
      const cur = op.iova + t.done;
      req.iova = cur;
      let n = Math.min(op.length - t.done, PAGE - (cur % PAGE));
      if (iw && iw.isInterruptRequest(req)) {
        // an MSI: never translated, never cached
        iw.interruptRequest(req, op.data ? op.data.subarray(t.done, t.done + n) : null, n);
        if (trace.on) trace.emit("dma.complete", { rid: dev.rid, pasid: op.pasid, iova: cur, pa: cur, len: n, write: op.write });
        t.done += n;
        continue;
      }
      let slot = this.atcLookup(op.pasid, cur, op.write);
      if (slot < 0 && ats) {
        // Translation Request for the page; the completion covers a naturally aligned range
        const page = cur - (cur % PAGE);
        this.translationRequests++;
        if (trace.on) trace.emit("ats.request", { rid: dev.rid, pasid: op.pasid, iova: page, write: op.write });
        if (ATS_TRANSLATION_NS) clock.advance(ATS_TRANSLATION_NS);
        req.iova = page;
        const c = ats.translationRequest(req);
        req.iova = cur;
        if (!c.ok) {
          if (trace.on) trace.emit("ats.completion", { rid: dev.rid, pasid: op.pasid, iova: page, pa: 0, size: 0, perm: 0, status: "UR", reason: c.reason });
          if (trace.on) trace.emit("dma.fault", { rid: dev.rid, pasid: op.pasid, iova: cur, write: op.write, reason: c.reason, name: c.name });
          return this.finish(t, { reason: c.reason, reasonName: c.name, iova: cur, pasid: op.pasid < 0 ? undefined : op.pasid, rid: dev.rid, write: op.write, done: t.done });
        }
        // the completion's range: the smallest of 4 KiB / 2 MiB / 1 GiB that ends where it ends
        const pa = c.pa;
        const perm = c.perm;
        const end = page + c.size;
        let level = 1;
        while (level < 3 && (c.size > LEVEL_SIZE[level] || end % LEVEL_SIZE[level] !== 0)) level++;
        const size = LEVEL_SIZE[level];
        const start = end - size;
        const paStart = pa - (page - start);
        if (trace.on) trace.emit("ats.completion", { rid: dev.rid, pasid: op.pasid, iova: page, pa: perm ? paStart : 0, size: perm ? size : 0, perm, status: "success" });
        if (perm & (op.write ? 2 : 1)) {
          slot = this.atcFill(op.pasid, start, level, paStart, perm);
        } else if (op.usePri && this.priEnabled && !this.priRf) {
          this.stall(t, page);
          return;
        } else {
          // no access and no PRI for this context: the request goes out untranslated, and the
          // IOMMU blocks and records it like any other device's
          const u = hw.translate(req);
          if (!u.ok) {
            if (trace.on) trace.emit("dma.fault", { rid: dev.rid, pasid: op.pasid, iova: cur, write: op.write, reason: u.reason, name: u.name });
            return this.finish(t, { reason: u.reason, reasonName: u.name, iova: cur, pasid: op.pasid < 0 ? undefined : op.pasid, rid: dev.rid, write: op.write, done: t.done });
          }
          const upa = u.pa;
          n = Math.min(n, u.size);
          this.move(t, upa, n);
          continue;
        }
      } else if (slot < 0) {
        // no ATS in this IOMMU model: plain untranslated requests
        const u = hw.translate(req);
        if (!u.ok) return this.finish(t, { reason: u.reason, reasonName: u.name, iova: cur, pasid: op.pasid < 0 ? undefined : op.pasid, rid: dev.rid, write: op.write, done: t.done });
        const upa = u.pa;
        n = Math.min(n, u.size);
        this.move(t, upa, n);
        continue;
      }
      // a translated request: the IOMMU passes it without a walk
      const esize = LEVEL_SIZE[this.atcLevel[slot]];
      const off = cur - this.atc.k0[slot] * esize;
      n = Math.min(n, esize - off);
      this.move(t, this.atcPa[slot] + off, n);
    }
    this.finish(t, null);
  }

  private move(t: Transfer, pa: number, n: number): void {
    const { trace, mem } = this.ctx;
    const op = t.op;
    if (op.write) mem.write(pa, op.data!.subarray(t.done, t.done + n));
    else t.out!.set(mem.read(pa, n), t.done);
    if (trace.on) trace.emit("dma.complete", { rid: this.dev.rid, pasid: op.pasid, iova: op.iova + t.done, pa, len: n, write: op.write });
    t.done += n;
  }

  private finish(t: Transfer, fault: AtsFaultInfo | null): void {
    t.cb(fault ? { ok: false, fault } : { ok: true, data: t.out });
  }

  /** No access to `page`: ask for it with a one-request page group and wait for the response. */
  private stall(t: Transfer, page: number): void {
    const op = t.op;
    const trace = this.ctx.trace;
    const fail = (responseCode: number | undefined, why: string): void => {
      if (trace.on) trace.emit("dma.fault", { rid: this.dev.rid, pasid: op.pasid, iova: op.iova + t.done, write: op.write, reason: 0, name: why });
      this.finish(t, {
        reason: 0, reasonName: why, iova: op.iova + t.done, pasid: op.pasid < 0 ? undefined : op.pasid, rid: this.dev.rid,
        write: op.write, done: t.done, responseCode,
      });
    };
    if (++t.rounds > PRI_MAX_ROUNDS) {
      fail(undefined, `no translation after ${PRI_MAX_ROUNDS} page requests answered Success`);
      return;
    }
    const prgi = this.allocPrgi(op.pasid);
    this.sendPageRequest(
      { addr: page, pasid: op.pasid, prgi, last: true, read: !op.write, write: op.write },
      t.seq,
      (fate) => {
        if (fate !== "queued") fail(undefined, `page request ${fate === "dropped" ? "dropped by a full page request queue" : "blocked by the IOMMU"}: no response will come`);
      },
      (code) => {
        if (code === PRG_RESP_SUCCESS) this.run(t); // translate again: it may fault again
        else fail(code, `page request answered ${prgRespName(code)} (PRG response code 0x${code.toString(16)})`);
      },
    );
  }

  private groupKey(pasid: number, prgi: number): string {
    return this.prgRespPasidRequired ? `${pasid}:${prgi}` : `${prgi}`;
  }

  /** A group index no closing request of this PASID is waiting on (9 bits). */
  private allocPrgi(pasid: number): number {
    for (let i = 0; i < 512; i++) {
      const prgi = 0x100 + ((this.nextPrgi - 0x100 + i) % 0x100);
      if (!this.waiting.get(this.groupKey(pasid, prgi))?.length) {
        this.nextPrgi = prgi + 1 > 0x1ff ? 0x100 : prgi + 1;
        return prgi;
      }
    }
    return this.nextPrgi;
  }

  // ==== PRI ===========================================================================================

  /**
   * Send one Page Request message. `arrived(fate)` runs when it reaches the IOMMU (PCIE_MSG_NS
   * later); for a request that closes its group (last, with read or write) and was queued,
   * `response(code)` runs when the group's PRG Response arrives. Events caused meanwhile carry
   * `seq` as their cmd_seq.
   */
  sendPageRequest(r: PageRequestOp, seq: number, arrived: (fate: PageRequestFate) => void, response?: (code: number) => void): void {
    const { trace, sched } = this.ctx;
    const hw = atsHw(this.hwOf());
    if (!hw) throw new Error(`${this.dev.name}: the IOMMU model takes no page requests`);
    const msg: PageRequestMsg = {
      rid: this.dev.rid, pasid: r.pasid, addr: r.addr, prgi: r.prgi, last: r.last, read: r.read, write: r.write,
      exec: !!r.exec, priv: !!r.priv,
    };
    this.pageRequests++;
    const stop = r.last && !r.read && !r.write;
    if (trace.on) {
      trace.emit("pri.request", { rid: msg.rid, pasid: msg.pasid, addr: msg.addr, group: msg.prgi, last: msg.last, read: msg.read, write: msg.write, stop });
    }
    sched.after(PCIE_MSG_NS, () =>
      trace.within(seq, () => {
        const fate = hw.pageRequest(msg);
        if (fate === "queued" && msg.last && !stop && response) {
          const key = this.groupKey(msg.pasid, msg.prgi);
          let list = this.waiting.get(key);
          if (!list) this.waiting.set(key, (list = []));
          list.push({ seq, respond: response });
        }
        arrived(fate);
      }),
    );
  }

  /**
   * A PRG Response from the IOMMU (QI type 9): it reaches the device PCIE_MSG_NS later and
   * completes the oldest closing request of that group. `pasid` is -1 when the response
   * carries none.
   */
  receivePageResponse(pasid: number, prgi: number, code: number): void {
    const { trace, sched } = this.ctx;
    sched.after(PCIE_MSG_NS, () => {
      this.pageResponses++;
      const key = this.groupKey(pasid, prgi);
      const list = this.waiting.get(key);
      const w = list?.shift();
      if (list && !list.length) this.waiting.delete(key);
      trace.within(w ? w.seq : trace.cmdSeq, () => {
        if (code === PRG_RESP_FAILURE) this.priRf = true; // the function stops PRI (PCIe PRI)
        if (!w) this.priUprgi = true;
        if (trace.on) {
          trace.emit("pri.response", { rid: this.dev.rid, pasid, group: prgi, code, name: prgRespName(code), matched: !!w });
        }
        w?.respond(code);
      });
    });
  }

  /** Closing requests still waiting for their group's response (for views and tests). */
  get outstandingGroups(): number {
    let n = 0;
    for (const l of this.waiting.values()) n += l.length;
    return n;
  }
}
