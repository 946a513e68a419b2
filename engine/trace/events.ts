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
  /**
   * An object published. HWPT_PAGING carries its IOAS and whether it is an automatic domain
   * (made by attaching to an IOAS); HWPT_NESTED its parent HWPT.
   */
  "iommufd.obj.alloc": { id: number; type: string; ictx: number; ioas_id?: number; auto?: boolean; parent_id?: number };
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
  /**
   * One level of a page-table walk (one memory reference). level 5 = PML5, 4 = PML4 … 1 = PT.
   * A second-stage-only walk (PGTT 010) has no `stage`. A nested walk (PGTT 011, the 2D walk of
   * engine/hw/vtd/nested.ts) tags every read: "s1" steps read a first-stage (guest) entry from
   * the table at HPA `table` (GPA `tableGpa`); "s2" steps read a second-stage entry while
   * translating `gpa`, for the first-stage table of level `fsLevel` (0: the final page). So the
   * grid guest levels × host levels is (fsLevel, level) of the s2 steps and level of the s1 steps.
   */
  "vtd.walk.level": {
    did: number;
    pasid: number;
    /** the request's input address (also for s2 steps) */
    iova: U64;
    level: number;
    table: U64; // physical address of the table read
    index: number; // entry index within it
    entry: U64; // the 64-bit entry value read
    /** decoded bits: second stage "R|W|A|D|PS|SNP", first stage "P|RW|US|A|D|PS"; "-" for not present */
    bits: string;
    leaf: boolean; // this entry ends the walk (4 KiB PTE or PS=1)
    /** A/D bits this walk set in the entry (locked read-modify-write; SS only with PASID-entry SSADE=1) */
    ad?: string;
    /** nested walks only: which stage's entry this is */
    stage?: "s1" | "s2";
    /** s2 steps: the guest-physical address being translated */
    gpa?: U64;
    /** s2 steps: the first-stage level whose table is being fetched (5..1), 0 for the final page */
    fsLevel?: number;
    /** s1 steps: the guest-physical address of the first-stage table read */
    tableGpa?: U64;
  };
  /** A translation's walk completed; nested walks add the final GPA and the first- and second-stage leaf sizes. */
  "vtd.walk.done": {
    did: number; pasid: number; iova: U64; pa: U64; size: number; perm: number; reads: number;
    gpa?: U64; fsSize?: number; ssSize?: number;
  };
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
  /**
   * First-stage / nested paging-structure cache (engine/hw/vtd/nested.ts): a first-stage non-leaf
   * entry of `level` for (did, pasid, iova >> shift), holding the next table already translated
   * through the second stage: `table` (HPA) and `tableGpa`.
   */
  "vtd.fspwc.hit": { did: number; pasid: number; level: number; tag: U64; table: U64; tableGpa: U64; way: number };
  "vtd.fspwc.miss": { did: number; pasid: number; level: number; tag: U64 };
  "vtd.fspwc.fill": { did: number; pasid: number; level: number; tag: U64; table: U64; tableGpa: U64; way: number };
  "vtd.fspwc.evict": { did: number; pasid: number; level: number; tag: U64; way: number };
  "vtd.fspwc.inv": { did: number; pasid: number; level: number; tag: U64; by: string; way: number };
  /**
   * The stale-translation detector (engine/hw/vtd/stale.ts): a DMA was served from a cached
   * translation (`cache` "iotlb", "pwc" or "fspwc", slot `slot`) built from a page-table entry
   * that has since changed in memory with no invalidation in between. `entryPa` is the entry's
   * physical address, `stage`/`level` its place in the walk, `cached` its value when the cache was
   * filled and `memory` its value now (accessed/dirty bits are ignored).
   */
  "vtd.stale.hit": {
    cache: string; did: number; pasid: number; iova: U64; slot: number;
    stage: string; level: number; entryPa: U64; cached: U64; memory: U64;
  };
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

  // ---- engine/hw/ats.ts: a device's ATS and PRI (its device-TLB, translation and page requests) ---
  /** An ATS Translation Request for one page, sent because the device's ATC missed. */
  "ats.request": { rid: number; pasid: number; iova: U64; write: boolean };
  /**
   * Its Translation Completion. status "success" with perm 0 is "no access" (R = W = 0, no fault
   * recorded: the cue for a page request); "UR" is a structural fault the IOMMU recorded (reason).
   */
  "ats.completion": { rid: number; pasid: number; iova: U64; pa: U64; size: number; perm: number; status: string; reason?: number };
  /** Device-TLB (ATC) of `rid`: a translated request served from it. */
  "devtlb.hit": { rid: number; pasid: number; page: U64; size: number; perm: number; way: number };
  "devtlb.miss": { rid: number; pasid: number; page: U64; why: string };
  "devtlb.fill": { rid: number; pasid: number; page: U64; size: number; pa: U64; perm: number; way: number };
  "devtlb.evict": { rid: number; pasid: number; page: U64; size: number; way: number };
  /** An entry removed by an ATS Invalidate Request; `by` names the QI descriptor (dev-iotlb / pasid-dev-iotlb). */
  "devtlb.inv": { rid: number; pasid: number; page: U64; size: number; way: number; by: string };
  /** A PRI Page Request sent by the device; `group` is the PRG index; `stop`: a Stop Marker (last, no R/W). */
  "pri.request": { rid: number; pasid: number; addr: U64; group: number; last: boolean; read: boolean; write: boolean; stop: boolean };
  /** A PRG Response received by the device; `matched` false: no closing request was waiting (PRI status UPRGI). */
  "pri.response": { rid: number; pasid: number; group: number; code: number; name: string; matched: boolean };

  // ---- engine/hw/vtd/prq.ts, driver-prq.ts: the VT-d page request queue and Linux's prq.c -------
  /** The hardware wrote a page request descriptor at ring slot `slot`; head/tail are slot indexes after the write. */
  "prq.request": {
    slot: number; head: number; tail: number; rid: number; pasid: number; addr: U64; group: number; last: boolean;
    read: boolean; write: boolean; qw0: U64; qw1: U64;
  };
  /** A page request dropped: queue full (PRS.PRO set), PRO still set, or no queue set up. */
  "prq.overflow": { rid: number; pasid: number; addr: U64; group: number; last: boolean; why: string };
  /** The page request event interrupt (PRS has PPR and/or PRO). */
  "prq.irq": { prs: number };
  /**
   * prq_event_thread read one descriptor: action "report" (to the iommu core), "stop-marker"
   * (dropped, no response), "invalid" (bad request: INVALID response if last), "no-device".
   */
  "prq.handle": { slot: number; rid: number; pasid: number; group: number; last: boolean; action: string; why?: string };
  /** After an overflow the driver emptied the ring: partial groups discarded, PRS.PRO cleared. */
  "prq.recover": { head: number };
  /** A page group response descriptor (QI type 9) executed: the PRG Response leaves for the device. */
  "prq.response": { rid: number; pasid: number; group: number; last: boolean; code: number; name: string };

  // ---- engine/kernel/io-pgfault.ts: the iommu core's I/O page fault path -----------------------
  /** A request that is not the last of its group, held on the device's partial list. */
  "iopf.partial": { rid: number; pasid: number; group: number; addr: U64 };
  /** A group completed by its last request and handed to its domain's handler (iommufd: the FAULT object). */
  "iopf.group": { rid: number; pasid: number; group: number; faults: number; dev_id: number; hwpt_id: number; fault_id: number };
  /** The core answers a group (ops->page_response); `why` says who decided. */
  "iopf.response": { rid: number; pasid: number; group: number; code: number; name: string; why: string };
  /** Partial requests thrown away (queue overflow or the device leaving the fault queue). */
  "iopf.discard": { rid: number; count: number; why: string };

  // ---- engine/kernel/eventq.ts: the iommufd fault queue (FAULT object) -------------------------
  /** read() delivered one whole group under `cookie`. */
  "fault.read": { fault_id: number; cookie: number; dev_id: number; pasid: number; group: number; faults: number };
  /** A group answered: by write() (auto false), or by the kernel on detach/replace/destroy (auto true, INVALID). */
  "fault.response": { fault_id: number; cookie: number; code: number; auto: boolean; why?: string };

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
  "vtd.fspwc.": "VT-d first-stage (nested) paging-structure cache: guest table entries with their next table already translated",
  "vtd.stale.": "the stale-translation detector: a DMA served from a cached translation whose page-table entries changed without an invalidation",
  "vtd.ctxcache.": "VT-d context-entry cache hit / miss / fill / invalidate",
  "vtd.pasidcache.": "VT-d PASID-entry cache hit / miss / fill / invalidate",
  "vtd.qi.": "VT-d queued-invalidation descriptors",
  "vtd.reg.": "VT-d register writes by the driver (RTADDR, GCMD, IQT, …)",
  "vtd.intr.": "requests to the interrupt window 0xFEEx_xxxx (MSI writes), never DMA-translated",
  "vtd.fault.": "VT-d fault recording",
  "ats.": "ATS translation requests and completions between a device and the IOMMU",
  "devtlb.": "a device's own TLB (ATC): hit / miss / fill / evict / invalidate",
  "pri.": "PRI page requests sent by a device and the page group responses it receives",
  "prq.": "the VT-d page request queue: descriptors, overflow, interrupt, the driver's handling, responses (QI type 9)",
  "iopf.": "the kernel's I/O page fault core: partial requests, groups, responses",
  "fault.": "the iommufd fault queue: groups read by user space (cookies) and answered",
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
