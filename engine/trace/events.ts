/**
 * The event catalogue: every event the engine can emit, in one place (after QEMU's trace-events).
 *
 * Names are `<layer>.<unit>.<event>`, so a prefix selects a family ("vtd.iotlb." is every IOTLB
 * event), as QEMU's trace wildcards do. Every event carries:
 *   seq      strictly increasing, from 1
 *   t        simulated time in ns when it happened
 *   cmd_seq  seq of the ioctl / DMA / script call that caused it (0 outside any call)
 * Payloads are numbers, booleans and short strings only: never references into engine state, so
 * events can be structured-cloned to the UI or printed as JSON lines. 64-bit values that may not
 * fit a double exactly (page-table entries, u64 ioctl fields) travel as "0x…" hex strings.
 *
 * The app streams these at up to 100k/s: keep payloads flat and small.
 */

/** A u64 as it travels in an event: a number when exact (< 2^53), else a 0x-prefixed hex string. */
export type U64 = number | string;

export interface EventMap {
  // ---- engine/kernel/main.ts: the syscall boundary -------------------------------------------
  /** A system call begins; its seq is the cmd_seq of everything it causes, its result included. */
  "sys.enter": { call: string; fd: number; req?: string; line?: number };
  /** A system call made by the script: ioctl, open, close, read, write, mmap, … */
  "sys.call": {
    call: string; // "ioctl", "open", …
    fd: number; // -1 when the call has no fd
    /** ioctl: the request's name (or hex when unknown) */
    req?: string;
    /** ioctl: the decoded argument as the kernel saw it after the call (outputs filled) */
    arg?: Record<string, U64>;
    /** For calls that are not ioctls: a short argument text, e.g. '"/dev/iommu"' */
    text?: string;
    ret: U64; // the syscall's return value; -1 on error
    errno?: string; // errno name on failure
    reason?: string; // which kernel check failed, and why
    line?: number; // script line that made the call, when known
  };
  /** An engine bug (a broken internal invariant) caught at the boundary: reported, never hidden as an errno. */
  "engine.bug": { message: string; where: string };

  // ---- engine/kernel: iommufd objects ----------------------------------------------------------
  "iommufd.obj.alloc": { id: number; type: string; ictx: number };
  "iommufd.obj.destroy": { id: number; type: string; ictx: number };
  "iommufd.ioas.map": { ioas_id: number; iova: U64; length: U64; pa_first: U64; prot: number };
  "iommufd.ioas.unmap": { ioas_id: number; iova: U64; length: U64 };
  "iommufd.ioas.reserve": { ioas_id: number; start: U64; last: U64; owner: string };
  "iommufd.ioas.unreserve": { ioas_id: number; start: U64; last: U64; owner: string };
  "iommufd.pages.pin": { npages: number; locked_vm: number };
  "iommufd.pages.unpin": { npages: number; locked_vm: number };
  "iommufd.device.attach": { dev_id: number; hwpt_id: number; pasid: number; replace: boolean };
  "iommufd.device.detach": { dev_id: number; hwpt_id: number; pasid: number };
  "iommufd.hwpt.dirty": { hwpt_id: number; enable: boolean };

  // ---- engine/kernel/process.ts: the user process ----------------------------------------------
  "mm.mmap": { addr: U64; length: U64; thp: boolean; fd: number };
  "mm.munmap": { addr: U64; length: U64 };

  // ---- engine/hw: the IOMMU-driver view of a domain (iommu_map / iommu_unmap tracepoints) -------
  /** include/trace/events/iommu.h `map`: one contiguous run mapped into a domain. */
  "iommu.map": { did: number; iova: U64; paddr: U64; size: U64; pgsize: number };
  "iommu.unmap": { did: number; iova: U64; size: U64 };
  "iommu.attach": { rid: number; pasid: number; did: number; pgtt: number };
  "iommu.detach": { rid: number; pasid: number; did: number };

  // ---- device DMA -------------------------------------------------------------------------------
  /** A device DMA; its seq is the cmd_seq of every event the transfer causes. */
  "dma.request": { rid: number; pasid: number; iova: U64; len: number; write: boolean; line?: number };
  "dma.complete": { rid: number; pasid: number; iova: U64; pa: U64; len: number; write: boolean };
  "dma.fault": {
    rid: number;
    pasid: number; // -1: request without PASID
    iova: U64;
    write: boolean;
    reason: number; // hardware fault reason code (VT-d FR)
    name: string; // its name
  };

  // ---- engine/hw/vtd: the VT-d model -------------------------------------------------------------
  /** One read of a translation structure above the page table: root, context, PASID dir/table. */
  "vtd.ctx.read": { what: string; addr: U64; index: number; hi: U64; lo: U64 };
  /** One level of a page-table walk. level 4 = PML4 … 1 = PT. */
  "vtd.walk.level": {
    did: number;
    pasid: number;
    iova: U64;
    level: number;
    table: U64; // physical address of the table read
    index: number; // entry index within it
    entry: U64; // the 64-bit entry value read
    /** decoded bits, e.g. "R|W|A|D" or "R|W|PS" or "-" for not present */
    bits: string;
    leaf: boolean; // this entry ends the walk (4 KiB PTE or PS=1)
    /** A/D bits this walk set in the entry (locked read-modify-write; only with PASID-entry SSADE=1) */
    ad?: string;
  };
  "vtd.walk.done": { did: number; pasid: number; iova: U64; pa: U64; size: number; perm: number; reads: number };
  "vtd.iotlb.hit": { did: number; pasid: number; page: U64; size: number; perm: number; set: number; way: number };
  "vtd.iotlb.miss": { did: number; pasid: number; page: U64; set: number };
  "vtd.iotlb.fill": { did: number; pasid: number; page: U64; size: number; perm: number; set: number; way: number };
  "vtd.iotlb.evict": { did: number; pasid: number; page: U64; size: number; set: number; way: number };
  /** One IOTLB entry removed by an invalidation; `by` names the descriptor that removed it. */
  "vtd.iotlb.inv": { did: number; pasid: number; page: U64; size: number; set: number; way: number; by: string };
  /** Paging-structure cache: a non-leaf entry of `level` covering `tag` (iova >> shift). */
  "vtd.pwc.hit": { did: number; level: number; tag: U64; table: U64; way: number };
  "vtd.pwc.miss": { did: number; level: number; tag: U64 };
  "vtd.pwc.fill": { did: number; level: number; tag: U64; table: U64; way: number };
  "vtd.pwc.evict": { did: number; level: number; tag: U64; way: number };
  "vtd.pwc.inv": { did: number; level: number; tag: U64; by: string; way: number };
  /** Context cache: decoded present context entries, tagged by source-id (fully associative). */
  "vtd.ctxcache.hit": { rid: number; way: number };
  "vtd.ctxcache.miss": { rid: number };
  "vtd.ctxcache.fill": { rid: number; way: number };
  "vtd.ctxcache.evict": { rid: number; way: number };
  "vtd.ctxcache.inv": { rid: number; way: number; by: string };
  /** PASID cache: decoded present PASID entries, tagged by (source-id, PASID), selected for invalidation by DID. */
  "vtd.pasidcache.hit": { rid: number; pasid: number; did: number; way: number };
  "vtd.pasidcache.miss": { rid: number; pasid: number };
  "vtd.pasidcache.fill": { rid: number; pasid: number; did: number; way: number };
  "vtd.pasidcache.evict": { rid: number; pasid: number; did: number; way: number };
  "vtd.pasidcache.inv": { rid: number; pasid: number; did: number; way: number; by: string };
  /** A register written by the driver (MMIO), e.g. IQT after queuing descriptors. */
  "vtd.reg.write": { reg: string; off: number; value: U64 };
  /** A queued-invalidation descriptor executed by the hardware (VT-d 6.5.2). */
  "vtd.qi.desc": { type: number; name: string; qw0: U64; qw1: U64; granularity: string };
  /** The queue stopped at a bad descriptor: FSTS.IQE set, IQH left pointing at it. */
  "vtd.qi.error": { head: number; type: number; qw0: U64; why: string };
  /** A fault recorded in a fault recording register (VT-d 7.2). */
  "vtd.fault.record": { index: number; reason: number; name: string; rid: number; pasid: number; addr: U64; write: boolean };
  /** A fault not recorded: PFO already set, no free record, or collapsed into a pending record of the same source. */
  "vtd.fault.drop": { reason: number; rid: number; why: string };
  "vtd.fault.clear": { index: number; /** the driver's log line for the record (Linux dmar_fault_do_one) */ text?: string };
  /** The fault event interrupt was raised (PPF went 0 → 1 with FECTL.IM clear). */
  "vtd.fault.irq": { fsts: number };
  /** An untranslated request without PASID to 0xFEEx_xxxx: an interrupt message, not DMA. */
  "vtd.intr.msi": { rid: number; addr: U64; data: number };
  /** A read of the interrupt window: completes with no data (QEMU vtd_mem_ir_read). */
  "vtd.intr.read": { rid: number; addr: U64; len: number };

  // ---- engine/script: the script itself --------------------------------------------------------
  "script.console": { level: string; text: string; line?: number };
  "script.start": { name: string };
  "script.end": { ok: boolean; error?: string; line?: number };
}

export type EventKind = keyof EventMap;

export type TraceEvent<K extends EventKind = EventKind> = {
  [P in K]: { seq: number; t: number; cmd_seq: number; k: P } & EventMap[P];
}[K];

/** One-line documentation of each family, for the timeline filter and the README. */
export const EVENT_FAMILIES: Record<string, string> = {
  "sys.": "system calls made by the script (ioctl, open, close, mmap, …) with decoded arguments and result",
  "iommufd.": "iommufd objects: allocation, destruction, IOAS maps, reservations, pinning, attach/detach",
  "mm.": "the script's process memory: mmap / munmap",
  "iommu.": "the IOMMU driver's view: runs mapped into or unmapped from a domain, device attach",
  "dma.": "device DMA: request, completion, fault",
  "vtd.ctx.": "VT-d root / context / PASID structure reads",
  "vtd.walk.": "VT-d page-table walks, one event per level",
  "vtd.iotlb.": "VT-d IOTLB hit / miss / fill / evict / invalidate",
  "vtd.pwc.": "VT-d paging-structure cache hit / miss / fill / evict / invalidate",
  "vtd.ctxcache.": "VT-d context-entry cache hit / miss / fill / invalidate",
  "vtd.pasidcache.": "VT-d PASID-entry cache hit / miss / fill / invalidate",
  "vtd.qi.": "VT-d queued-invalidation descriptors",
  "vtd.reg.": "VT-d register writes by the driver (RTADDR, GCMD, IQT, …)",
  "vtd.intr.": "requests to the interrupt window 0xFEEx_xxxx (MSI writes), never DMA-translated",
  "vtd.fault.": "VT-d fault recording",
  "script.": "the script: console output, start and end",
  "engine.": "engine bugs (a broken invariant inside the simulator)",
};

/** A u64 for an event payload: exact number, or hex text when it would not be exact. */
export function u64(v: number | bigint): U64 {
  if (typeof v === "number") return v;
  return v <= 0x1fffffffffffffn && v >= 0n ? Number(v) : "0x" + v.toString(16);
}

/**
 * The trace: stamps and forwards events to a sink. `on` is checked by hot paths (the walker, the
 * IOTLB) before they build a payload, so a run without a listener costs one branch per site.
 */
export class Trace {
  on: boolean;
  private seq = 0;
  /** seq of the call in progress; events emitted meanwhile carry it as cmd_seq */
  cmdSeq = 0;
  /** the script line making the current call or DMA, when known (for events that start one) */
  line: number | undefined;
  constructor(
    private readonly clock: { readonly now: number },
    private sink: ((e: TraceEvent) => void) | null = null,
  ) {
    this.on = sink !== null;
  }
  setSink(sink: ((e: TraceEvent) => void) | null): void {
    this.sink = sink;
    this.on = sink !== null;
  }
  /** The seq the next event will get (for linking a call to its events). */
  get nextSeq(): number {
    return this.seq + 1;
  }
  emit<K extends EventKind>(k: K, payload: EventMap[K]): number {
    const seq = ++this.seq;
    if (this.sink) {
      const e = { seq, t: this.clock.now, cmd_seq: this.cmdSeq, k, ...payload } as unknown as TraceEvent;
      this.sink(e);
    }
    return seq;
  }
  /** Run `fn` as one call: events it causes carry `seq` of the call as their cmd_seq. */
  within<T>(cmdSeq: number, fn: () => T): T {
    const prev = this.cmdSeq;
    this.cmdSeq = cmdSeq;
    try {
      return fn();
    } finally {
      this.cmdSeq = prev;
    }
  }
}
