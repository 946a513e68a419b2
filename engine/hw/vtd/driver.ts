/**
 * The Intel IOMMU driver, scalable mode: the kernel half of the VT-d model. Mirrors
 * torvalds/linux drivers/iommu/intel/iommu.c (probe, attach, domain alloc/free, map/unmap,
 * dirty tracking, hw_info), pasid.c (PASID directory and entries, intel_pasid_setup_second_level,
 * intel_pasid_tear_down_entry, intel_pasid_setup_dirty_tracking, the replace path), cache.c
 * (cache tags, cache_tag_flush_range, calculate_psi_aligned_address) and dmar.c (queued
 * invalidation qi_submit_sync, the dmar_fault interrupt handler), as of Linux 6.12-6.18.
 *
 * The driver reaches the hardware only as Linux does: by writing bytes into physical memory
 * (root/context tables, PASID directory and tables, second-stage page tables, invalidation
 * descriptors) and by MMIO register writes (GCMD, RTADDR, IQA, IQT, FECTL, FSTS, FRCD).
 *
 * Simplifications, each deliberate:
 *  - One DRHD unit; every device sits behind it. DIDs are allocated when a domain is allocated
 *    (lowest free from 2, as Linux's ida from IDA_START_DID; 0 and 1 are reserved) rather than at
 *    first attach, since there is only one unit.
 *  - Domains are always second-stage (PGTT = 010), 4-level, 48-bit. Linux ≥ 6.15 prefers
 *    first-stage for plain domains when ECAP.FLTS is set; the first-stage walker is not modelled
 *    yet, so this driver behaves like intel_iommu_domain_alloc_second_stage for every request.
 *  - The page-table code is this driver's own (Linux now uses generic_pt/fmt/vtdss.h): the entry
 *    format and the invalidation rules are Linux's; unmap frees every table that becomes empty
 *    (Linux frees tables the unmapped range covers entirely), and the freed pages are released
 *    only after the IOTLB flush, with IH = 0 (as intel_iommu_tlb_sync with a non-empty freelist).
 *  - ATS and PRI (reference §1.11, §1.12, §5): intel_iommu_probe_device enables ATS on a device
 *    that has it (iommu_enable_pci_ats, v6.15+; older kernels did it at attach in
 *    iommu_enable_pci_caps) and then PRI (iommu_enable_pci_pri), with DTE/PRE set in its context
 *    entry. Every flush of a domain ends with the device-TLB of each ATS device attached: cache.c
 *    assigns a device's IOTLB tag before its DEVTLB tag (list_add_tail), so the device-TLB
 *    descriptor always follows the IOTLB one (a device could otherwise refetch the stale
 *    translation through ATS); pasid.c's devtlb_invalidation_with_pasid follows every PASID-entry
 *    teardown or change, and intel_iommu_drain_pasid_prq every teardown of a device with PRI.
 *    Attaching a domain with an iopf handler (a HWPT with a fault queue) enables I/O page faults
 *    for the device (intel_iommu_enable_iopf: ENODEV without PRI; iopf_queue_add_device), and the
 *    last such detach disables them (iopf_queue_remove_device answers what is pending). The page
 *    request queue and page responses are driver-prq.ts (prq.c).
 *  - Nested domains (IOMMU_HWPT_DATA_VTD_S1 over a NEST_PARENT domain) live in nested-driver.ts
 *    (nested.c); this file hooks them into attach, free, the parent's cache-tag flushes and
 *    dirty tracking.
 *  - ENFORCE_CACHE_COHERENCY: Linux sets SNP in each second-stage leaf (set_pte_snp), and that is
 *    done here; in addition PGSNP is set in the PASID entries of such a domain so the choice is
 *    visible in the entry (Linux sets PGSNP for first-stage domains only). The hardware result is
 *    the same: snooped DMA.
 */
import type { MachineCtx } from "../../machine.ts";
import { err, type Err, type Rc } from "../../uapi/errno.ts";
import { u64 } from "../../trace/events.ts";
import {
  DOMAIN_ALLOC_DIRTY_TRACKING, DOMAIN_ALLOC_NEST_PARENT, DOMAIN_ALLOC_PASID, IOMMU_NO_PASID, IOMMU_READ, IOMMU_WRITE,
  type HwInfo, type IommuCap, type IommuDomain, type IommuDomainOps, type IommuOps, type ResvRegion, type SimDevice,
  type IommuFaultCore, type IopfFault,
} from "../model.ts";
import { IntelPrq, prqDepth } from "./driver-prq.ts";
import { vtdFaultReasonName } from "./fault.ts";
import { VTD_INTERRUPT_ADDR_FIRST, type VtdHw } from "./hw.ts";
import {
  CAP, DMAR_FECTL_REG, DMAR_FSTS_REG, DMAR_GCMD_REG, DMAR_IQA_REG, DMAR_IQT_REG, DMAR_RTADDR_REG, ECAP, FSTS_FRI,
  FSTS_IQE, FSTS_PFO, FSTS_PPF, FSTS_PRO, GCMD_QIE, GCMD_SRTP, GCMD_TE, IQA_DW, RTADDR_SMT, VTD_AGAW_BITS,
  fieldGet,
} from "./regs.ts";
import {
  NestedDomain, intelIommuDomainAllocNested, intelNestedAttachDev, intelNestedDomainFree, nestedSetDirtyTracking, nestingTags,
} from "./nested-driver.ts";
import type { IommuUserData } from "../model.ts";
import {
  AW_4LEVEL, PASID_DIR_ENTRY_SIZE, PASID_ENTRY_SIZE, PASID_PDE_SHIFT, PASID_PTE_MASK, PE_SSADE, PGTT_FS, PGTT_PT,
  PGTT_SS, ROOT_ENTRY_SIZE, SL_D, SL_PS, SL_R, SL_SNP, SL_W, SM_CONTEXT_ENTRY_SIZE, entryAddr, levelIndex, levelSize,
  pasidDirEntryEncode, pasidEntryEncode, rootEntryHalf, smContextEntryEncode,
} from "./tables.ts";

const PAGE = 4096;
const SZ_2M = 2 * 1024 * 1024;
const SZ_1G = 1024 * 1024 * 1024;
const TWO32 = 4294967296;

/** enum iommu_hw_info_type */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;

/** Linux IDA_START_DID: DID 0 is reserved, DID 1 is FLPT_DEFAULT_DID (SVA and pass-through). */
export const IDA_START_DID = 2;

/** qi_submit_sync status words (Linux enum { QI_FREE, QI_IN_USE, QI_DONE, QI_ABORT }). */
const QI_IN_USE = 1;
const QI_DONE = 2;
/** QI_LENGTH: 256 descriptors; 256-bit each in scalable mode, so two pages. */
const QI_LENGTH = 256;

/** Time from the fault-event interrupt to the handler (reference §6: 2-5 µs). */
export const DMAR_FAULT_IRQ_DELAY_NS = 3000;

type Desc = readonly [bigint, bigint];

// ---- invalidation descriptors (Linux iommu.h QI_* macros) --------------------------------------------
/** Context-cache invalidate (type 1): G 01 global, 10 domain, 11 device. */
function qiCcDesc(gran: number, did: number, sid: number, fm: number): Desc {
  return [(BigInt(fm) << 48n) | (BigInt(sid) << 32n) | (BigInt(did) << 16n) | (BigInt(gran) << 4n) | 0x1n, 0n];
}
/** IOTLB invalidate (type 2), qi_desc_iotlb: DR/DW per CAP.DRD/DWD, IH from bit 0 of `addr`. */
function qiIotlbDesc(did: number, addr: number, am: number, gran: number): Desc {
  const ih = BigInt(addr % 2);
  const qw0 = (BigInt(did) << 16n) | (1n << 7n) | (1n << 6n) | (BigInt(gran) << 4n) | 0x2n;
  const qw1 = (BigInt(addr - (addr % PAGE)) & ~0xfffn) | (ih << 6n) | BigInt(am);
  return [qw0, qw1];
}
/** PASID-based IOTLB invalidate (type 6), all of (DID, PASID): qi_flush_piotlb(.., npages = -1). */
function qiPiotlbAllDesc(did: number, pasid: number): Desc {
  return [(BigInt(pasid & 0xfffff) << 32n) | (BigInt(did) << 16n) | (2n << 4n) | 0x6n, 0n];
}
/** PASID-cache invalidate (type 7): G 00 domain, 01 PASID-selective, 11 global. */
function qiPcDesc(gran: number, did: number, pasid: number): Desc {
  return [(BigInt(pasid & 0xfffff) << 32n) | (BigInt(did) << 16n) | (BigInt(gran) << 4n) | 0x7n, 0n];
}
/**
 * Device-TLB invalidate (type 3), qi_flush_dev_iotlb: SID, PFSID, QDEP; with a mask the address
 * gets ones below bit 12 + mask - 1 and S = 1 (a 2^mask-page range).
 */
function qiDevIotlbDesc(sid: number, pfsid: number, qdep: number, addr: number, mask: number): Desc {
  let a = BigInt.asUintN(64, BigInt(addr));
  let qw1 = 0n;
  if (mask) {
    a |= (1n << BigInt(12 + mask - 1)) - 1n;
    qw1 |= 1n; // QI_DEV_IOTLB_SIZE
  }
  const qw0 = (BigInt(sid & 0xffff) << 32n) | (BigInt(qdep & 0x1f) << 16n) | (BigInt(pfsid & 0xf) << 12n) |
    (BigInt((pfsid >> 4) & 0xfff) << 52n) | 0x3n;
  return [qw0, qw1 | (a & ~0xfffn)];
}
/** PASID-based device-TLB invalidate (type 8), qi_flush_dev_iotlb_pasid: S = bit 11, the size as the lowest 0 bit. */
function qiDevIotlbPasidDesc(sid: number, pfsid: number, pasid: number, qdep: number, addr: number, sizeOrder: number): Desc {
  const qw0 = (BigInt(pasid & 0xfffff) << 32n) | (BigInt(sid & 0xffff) << 16n) | (BigInt(qdep & 0x1f) << 4n) |
    (BigInt(pfsid & 0xf) << 12n) | (BigInt((pfsid >> 4) & 0xfff) << 52n) | 0x8n;
  let qw1 = BigInt.asUintN(64, BigInt(addr)) & ~0xfffn;
  if (sizeOrder) {
    // ones in [12, 12 + order - 1), the bit at 12 + order - 1 cleared: that zero gives the size
    qw1 |= ((1n << BigInt(sizeOrder)) - 1n) << 12n;
    qw1 &= ~(1n << BigInt(sizeOrder - 1 + 12));
    qw1 |= 1n << 11n; // QI_DEV_EIOTLB_SIZE
  }
  return [qw0, BigInt.asUintN(64, qw1)];
}
/** MAX_AGAW_PFN_WIDTH: a device-TLB mask that covers everything. */
const MAX_AGAW_PFN_WIDTH = 52;
/** QI_IWD_STATUS_DATA(QI_DONE) | QI_IWD_FENCE | QI_IWD_TYPE: the fenced wait opening a PRQ drain. */
const QI_IWD_FENCE_DESC: Desc = [(2n << 32n) | (1n << 6n) | 0x5n, 0n];
const QI_PC_PASID_SEL = 1;
const QI_PC_GLOBAL = 3;
const DMA_TLB_GLOBAL_FLUSH = 1;
const DMA_TLB_DSI_FLUSH = 2;
const DMA_TLB_PSI_FLUSH = 3;
const DMA_CCMD_GLOBAL_INVL = 1;

/**
 * calculate_psi_aligned_address (cache.c): the naturally aligned power-of-two range of pages
 * covering [start, end] (end inclusive), as (address, mask = log2 pages).
 */
export function calculatePsiAlignedAddress(start: number, end: number): { addr: number; mask: number; pages: number } {
  const pages = Math.ceil(((start % PAGE) + (end - start + 1)) / PAGE);
  let aligned = 1;
  while (aligned < pages) aligned *= 2;
  let mask = Math.log2(aligned);
  const pfn = BigInt(Math.floor(start / PAGE));
  const bitmask = BigInt(aligned - 1);
  if (bitmask & pfn) {
    const endPfn = pfn + BigInt(pages) - 1n;
    const shared = BigInt.asUintN(64, ~(pfn ^ endPfn) & ~bitmask);
    if (shared) {
      let m = 0;
      while (!((shared >> BigInt(m)) & 1n)) m++;
      mask = m;
    } else mask = 52; // MAX_AGAW_PFN_WIDTH
    aligned = 2 ** mask;
  }
  const unit = PAGE * 2 ** mask;
  return { addr: start - (start % unit), mask, pages: aligned };
}

/** struct device_domain_info, the parts this driver needs. */
export interface DeviceInfo {
  readonly dev: SimDevice;
  /** physical address of the PASID directory (2^order contiguous pages) */
  readonly pasidDir: number;
  readonly dirPages: number;
  /** pasid_table->max_pasid */
  readonly maxPasid: number;
  readonly pasidSupported: boolean;
  /** info->ats_enabled / pri_enabled (set at probe), pfsid, ats_qdep */
  atsEnabled: boolean;
  priEnabled: boolean;
  readonly pfsid: number;
  readonly atsQdep: number;
  /** info->iopf_refcount: domains with an iopf handler attached to the device (RID or PASIDs) */
  iopfRefcount: number;
  /** what each attached PASID (0 = RID_PASID) points to */
  readonly domains: Map<number, DmarDomain | NestedDomain>;
}

/**
 * struct dmar_domain: a second-stage paging domain. Its page table lives in PhysMem from `pgd`.
 */
export class DmarDomain implements IommuDomain {
  readonly type = "paging" as const;
  readonly id: number;
  pgsizeBitmap = PAGE | SZ_2M | SZ_1G;
  readonly apertureStart = 0;
  readonly apertureEnd = 2 ** VTD_AGAW_BITS - 1;
  readonly ops: IommuDomainOps;
  readonly nestParent: boolean;
  /** allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (has dirty ops) */
  readonly dirtyTracking: boolean;
  readonly owner: IntelIommu;
  /** physical address of the PML4 table */
  readonly pgd: number;
  /** dmar_domain->dirty_tracking: SSADE is on in its PASID entries */
  trackingOn = false;
  /** dmar_domain->force_snooping / set_pte_snp */
  forceSnooping = false;
  /** dmar_domain->has_mappings */
  hasMappings = false;
  /** domain->iopf_handler is set (iommufd: a HWPT with a fault queue) */
  iopfHandler?: boolean;
  freed = false;
  /** where it is attached: "rid:pasid" → (device, pasid); cache tags derive from it */
  readonly attachments = new Map<string, { dev: SimDevice; pasid: number }>();
  /** s2_domain->s1_domains: nested domains allocated on this nest parent (nested-driver.ts) */
  readonly s1Domains = new Set<NestedDomain>();
  /** iommu_iotlb_gather: page-table pages to free after the next flush, and the unmapped range */
  freelist: number[] = [];
  gatherStart = Infinity;
  gatherEnd = -Infinity;

  constructor(owner: IntelIommu, did: number, pgd: number, flags: number) {
    this.owner = owner;
    this.id = did;
    this.pgd = pgd;
    this.nestParent = (flags & DOMAIN_ALLOC_NEST_PARENT) !== 0;
    this.dirtyTracking = (flags & DOMAIN_ALLOC_DIRTY_TRACKING) !== 0;
    const o = owner;
    const ops: IommuDomainOps = {
      mapPages: (iova, paddr, pgsize, pgcount, prot) => o.domainMapPages(this, iova, paddr, pgsize, pgcount, prot),
      unmapPages: (iova, pgsize, pgcount) => o.domainUnmapPages(this, iova, pgsize, pgcount),
      iotlbSync: (iova, size) => o.domainIotlbSync(this, iova, size),
      flushIotlbAll: () => o.domainFlushIotlbAll(this),
      iovaToPhys: (iova) => o.domainIovaToPhys(this, iova),
      enforceCacheCoherency: () => o.domainEnforceCacheCoherency(this),
    };
    if (this.dirtyTracking) {
      ops.setDirtyTracking = (enable) => o.domainSetDirtyTracking(this, enable);
      ops.readAndClearDirty = (iova, size, noClear, record) => o.domainReadAndClearDirty(this, iova, size, noClear, record);
    }
    this.ops = ops;
  }

  /** The cache tags (cache.c): one IOTLB tag per distinct PASID the domain is attached with. */
  tagPasids(): number[] {
    return [...new Set([...this.attachments.values()].map((a) => a.pasid))].sort((a, b) => a - b);
  }
}

export class IntelIommu implements IommuOps {
  readonly name = "intel-iommu";
  /** dmesg lines of this driver */
  readonly log: string[] = [];
  private readonly rootTable: number;
  private readonly qiDesc: number;
  private readonly qiStatus: number;
  private freeHead = 0;
  /** software shadow of GCMD (iommu->gcmd) */
  private gcmd = 0;
  private readonly usedDids = new Set<number>();
  private readonly infos = new Map<number, DeviceInfo>();
  private readonly domains = new Set<DmarDomain>();
  /** scratch word for page-table reads */
  private readonly w = { lo: 0, hi: 0 };
  /** QI submissions made (each is a batch plus one wait descriptor) */
  qiSubmissions = 0;
  /** prq.c: the page request queue's driver half */
  readonly prq: IntelPrq;
  /** the iommu core's I/O page fault half (io-pgfault.c, the kernel's): set at boot */
  private faultCore: IommuFaultCore | null = null;

  constructor(
    /** @internal (nested-driver.ts) */
    readonly ctx: MachineCtx,
    readonly hw: VtdHw,
    devices: readonly SimDevice[],
    /** driver build options: prqOrder (Linux PRQ_ORDER, default 4) */
    opts: { prqOrder?: number } = {},
  ) {
    const { mem } = ctx;
    // init_dmars: root table, queued invalidation, root pointer, global flushes, fault irq, enable
    this.rootTable = mem.allocKernelPage();
    this.qiDesc = this.allocContiguous(2);
    this.qiStatus = mem.allocKernelPage();
    this.dmarEnableQi();
    this.iommuSetRootEntry();
    // dmar_set_interrupt + dmar_msi_unmask: the fault handler runs as an interrupt, later
    hw.fault.onInterrupt = () => ctx.sched.after(DMAR_FAULT_IRQ_DELAY_NS, () => this.dmarFault());
    hw.writeReg32(DMAR_FECTL_REG, 0);
    // intel_iommu_enable_prq (init_dmars, for a unit with PASID and ECAP.PRS)
    this.prq = new IntelPrq(ctx, {
      hw,
      qiSubmitSync: (descs, drain) => this.qiSubmitSync(descs, drain),
      deviceByRid: (rid) => this.infos.get(rid)?.dev ?? null,
      allocContiguous: (pages) => this.allocContiguous(pages),
      log: (line) => this.log.push(line),
    }, opts.prqOrder);
    if (fieldGet(this.ecap, ECAP.PASID) === 1 && fieldGet(this.ecap, ECAP.PRS) === 1) this.prq.enable();
    for (const dev of devices) this.probeDevice(dev);
    this.iommuEnableTranslation();
  }

  private get cap(): bigint {
    return this.hw.cap;
  }
  private get ecap(): bigint {
    return this.hw.ecap;
  }

  private allocContiguous(pages: number): number {
    const first = this.ctx.mem.allocKernelPage();
    for (let i = 1; i < pages; i++) {
      const pa = this.ctx.mem.allocKernelPage();
      if (pa !== first + i * PAGE) throw new Error("intel-iommu: kernel page allocator returned non-contiguous pages");
    }
    return first;
  }

  private writeQwords(pa: number, q: readonly bigint[]): void {
    for (let i = 0; i < q.length; i++) this.ctx.mem.write64n(pa + 8 * i, q[i]);
  }

  /** @internal (nested-driver.ts): write a PASID entry's qwords. */
  writePasidEntry(pe: number, q: readonly bigint[]): void {
    this.writeQwords(pe, q);
  }

  /** @internal (nested-driver.ts): the lowest free DID from IDA_START_DID (domain_attach_iommu's ida_alloc_range). */
  allocDid(): number | Err {
    const ndoms = 2 ** (4 + 2 * fieldGet(this.cap, CAP.ND));
    let did = IDA_START_DID;
    while (did < ndoms && this.usedDids.has(did)) did++;
    if (did >= ndoms) return err("ENOSPC", "domain_attach_iommu", "no free domain ids");
    this.usedDids.add(did);
    return did;
  }

  /** @internal (nested-driver.ts) */
  releaseDid(did: number): void {
    this.usedDids.delete(did);
  }

  /** @internal (nested-driver.ts): PASID-selective-within-domain PASID-cache invalidation. */
  pasidCacheFlushPasid(did: number, pasid: number): void {
    this.qiSubmitSync([qiPcDesc(QI_PC_PASID_SEL, did, pasid)]);
  }

  /** @internal (nested-driver.ts): domain-selective IOTLB invalidation. */
  iotlbFlushDomain(did: number): void {
    this.qiSubmitSync([qiIotlbDesc(did, 0, 0, DMA_TLB_DSI_FLUSH)]);
  }

  // ==== dmar.c: queued invalidation ================================================================

  /** __dmar_enable_qi: IQT = 0, IQA = desc | DW | QS=1 (256 × 256-bit descriptors), GCMD.QIE. */
  private dmarEnableQi(): void {
    this.freeHead = 0;
    this.hw.writeReg32(DMAR_IQT_REG, 0);
    this.hw.writeReg64(DMAR_IQA_REG, BigInt(this.qiDesc) | IQA_DW | 1n);
    this.gcmd |= GCMD_QIE;
    this.hw.writeReg32(DMAR_GCMD_REG, this.gcmd);
  }

  /**
   * qi_submit_sync: copy the descriptors and a wait descriptor (status write of QI_DONE) into the
   * ring, move IQT, and wait for the status word. The hardware consumes synchronously, so the
   * word must already read QI_DONE; anything else is an engine bug (this driver only issues
   * valid descriptors).
   */
  qiSubmitSync(descs: readonly Desc[], drain = false): void {
    const { mem } = this.ctx;
    let index = this.freeHead;
    for (const [qw0, qw1] of descs) {
      this.writeQwords(this.qiDesc + index * 32, [qw0, qw1, 0n, 0n]);
      index = (index + 1) % QI_LENGTH;
    }
    const waitIndex = index;
    const status = this.qiStatus + waitIndex * 4;
    mem.write(status, new Uint8Array([QI_IN_USE, 0, 0, 0]));
    // QI_IWD_STATUS_DATA(QI_DONE) | QI_IWD_STATUS_WRITE | QI_IWD_TYPE
    // QI_OPT_WAIT_DRAIN adds QI_IWD_PRQ_DRAIN (PD, bit 7): page requests and responses drained too
    const pd = drain ? 1n << 7n : 0n;
    this.writeQwords(this.qiDesc + waitIndex * 32, [(BigInt(QI_DONE) << 32n) | pd | (1n << 5n) | 0x5n, BigInt(status), 0n, 0n]);
    this.freeHead = (waitIndex + 1) % QI_LENGTH;
    this.qiSubmissions++;
    this.hw.writeReg32(DMAR_IQT_REG, this.freeHead << 5);
    const done = mem.read(status, 4)[0];
    if (done !== QI_DONE) {
      const fsts = this.hw.readReg32(DMAR_FSTS_REG);
      throw new Error(`qi_submit_sync: wait descriptor not completed (status ${done}, FSTS 0x${fsts.toString(16)}${fsts & FSTS_IQE ? ", IQE" : ""})`);
    }
  }

  // ==== iommu.c: bring-up ============================================================================

  /** iommu_set_root_entry: RTADDR with SMT, GCMD.SRTP, then the global context/PASID/IOTLB flushes. */
  private iommuSetRootEntry(): void {
    this.hw.writeReg64(DMAR_RTADDR_REG, BigInt(this.rootTable) | RTADDR_SMT);
    this.hw.writeReg32(DMAR_GCMD_REG, this.gcmd | GCMD_SRTP);
    this.qiSubmitSync([qiCcDesc(DMA_CCMD_GLOBAL_INVL, 0, 0, 0)]);
    this.qiSubmitSync([qiPcDesc(QI_PC_GLOBAL, 0, 0)]);
    this.qiSubmitSync([qiIotlbDesc(0, 0, 0, DMA_TLB_GLOBAL_FLUSH)]);
  }

  private iommuEnableTranslation(): void {
    this.gcmd |= GCMD_TE;
    this.hw.writeReg32(DMAR_GCMD_REG, this.gcmd);
  }

  /**
   * intel_iommu_probe_device (scalable mode): allocate the PASID directory
   * (intel_pasid_alloc_table) and program the context entry (intel_pasid_setup_sm_context).
   * Not-present → present with CM = 0: no cache flush needed.
   */
  private probeDevice(dev: SimDevice): void {
    const pasidSupported = dev.pasidBits > 0 && fieldGet(this.ecap, ECAP.PASID) === 1;
    // intel_pasid_alloc_table: size = max_pasid >> (PASID_PDE_SHIFT - 3); order = get_order(size)
    const maxPasidDev = pasidSupported ? Math.min(2 ** dev.pasidBits, 2 ** 20) : 0;
    const size = maxPasidDev / 8;
    let order = 0;
    while (PAGE * 2 ** order < size) order++;
    const pages = 2 ** order;
    const pasidDir = this.allocContiguous(pages);
    const maxPasid = 2 ** (order + 12 + 3);
    const info: DeviceInfo = {
      dev, pasidDir, dirPages: pages, maxPasid, pasidSupported, domains: new Map(),
      atsEnabled: false, priEnabled: false, pfsid: dev.rid, atsQdep: 0, iopfRefcount: 0,
    };
    this.infos.set(dev.rid, info);
    // context_get_sm_pds: PDTS = log2(max_pasid >> 6) - 7
    const pds = Math.max(0, Math.log2(maxPasid / 2 ** PASID_PDE_SHIFT) - 7);
    const ce = this.iommuContextAddr(dev.rid);
    this.writeQwords(ce, smContextEntryEncode({
      present: true,
      fpd: false, // context_set_fault_enable
      dte: dev.ats && fieldGet(this.ecap, ECAP.DT) === 1,
      paside: pasidSupported,
      pre: dev.pri && fieldGet(this.ecap, ECAP.PRS) === 1,
      pdts: pds,
      pasidDirPtr: pasidDir,
      ridPasid: IOMMU_NO_PASID,
    }));
    // the core attaches the blocking domain first: device_block_translation →
    // intel_pasid_tear_down_entry → intel_pasid_get_entry allocates the RID_PASID's table page,
    // so a blocked RID faults on its (not present) PASID entry, 0x59
    this.pasidEntryAddr(dev, IOMMU_NO_PASID);
    // iommu_enable_pci_ats + iommu_enable_pci_pri (end of intel_iommu_probe_device, scalable mode)
    const fn = this.ctx.pcie?.get(dev.rid);
    if (fn && dev.ats && fieldGet(this.ecap, ECAP.DT) === 1 && fn.pageAligned && fn.pciEnableAts(12)) info.atsEnabled = true;
    // PRI needs ATS; with PASID enabled the device must carry the PASID in PRG responses
    if (fn && info.atsEnabled && dev.pri && fieldGet(this.ecap, ECAP.PRS) === 1 && (pasidSupported || !fn.prgRespPasidRequired)) {
      if (fn.pciResetPri() && fn.pciEnablePri(prqDepth(this.prq.order))) info.priEnabled = true;
    }
  }

  /** iommu_context_addr(.., alloc = true): the context entry of `rid`, allocating its table. */
  private iommuContextAddr(rid: number): number {
    const bus = rid >>> 8;
    let devfn = rid & 0xff;
    let half = this.rootTable + bus * ROOT_ENTRY_SIZE;
    if (devfn >= 0x80) {
      devfn -= 0x80;
      half += 8;
    }
    this.ctx.mem.read64(half, this.w);
    let table: number;
    if (this.w.lo & 1) table = entryAddr(this.w.lo, this.w.hi);
    else {
      table = this.ctx.mem.allocKernelPage();
      this.ctx.mem.write64n(half, rootEntryHalf(table));
    }
    return table + devfn * SM_CONTEXT_ENTRY_SIZE;
  }

  // ==== pasid.c ======================================================================================

  /** @internal (nested-driver.ts) */
  info(dev: SimDevice): DeviceInfo {
    const info = this.infos.get(dev.rid);
    if (!info) throw new Error(`intel-iommu: device ${dev.name} (rid 0x${dev.rid.toString(16)}) was not probed`);
    return info;
  }

  /** intel_pasid_get_entry: the PASID entry's address, allocating its PASID table on first use. */
  pasidEntryAddr(dev: SimDevice, pasid: number): number {
    const info = this.info(dev);
    if (pasid >= info.maxPasid) throw new Error(`intel_pasid_get_entry: PASID ${pasid} beyond max_pasid ${info.maxPasid}`);
    const dirEntry = info.pasidDir + (pasid >>> PASID_PDE_SHIFT) * PASID_DIR_ENTRY_SIZE;
    this.ctx.mem.read64(dirEntry, this.w);
    let table: number;
    if (this.w.lo & 1) table = entryAddr(this.w.lo, this.w.hi);
    else {
      table = this.ctx.mem.allocKernelPage();
      this.ctx.mem.write64n(dirEntry, pasidDirEntryEncode(table));
    }
    return table + (pasid & PASID_PTE_MASK) * PASID_ENTRY_SIZE;
  }

  /** @internal (nested-driver.ts) */
  pasidEntryWords(pe: number): [bigint, bigint] {
    return [this.ctx.mem.read64n(pe), this.ctx.mem.read64n(pe + 8)];
  }

  /** pasid_pte_config_second_level, as eight qwords. */
  private secondLevelEntry(domain: DmarDomain): bigint[] {
    return pasidEntryEncode({
      present: true,
      fpd: false, // pasid_set_fault_enable
      aw: AW_4LEVEL,
      pgtt: PGTT_SS,
      ssade: domain.trackingOn,
      ssptptr: domain.pgd,
      did: domain.id,
      pwsnp: fieldGet(this.ecap, ECAP.SMPWC) === 1, // pasid_set_page_snoop(pte, !!ecap_smpwc)
      pgsnp: domain.forceSnooping,
    });
  }

  /**
   * intel_pasid_tear_down_entry: clear a present entry, then PASID-cache invalidation, then the
   * IOTLB: domain-selective for second-stage/nested entries, PASID-based for first-stage and
   * pass-through ones (VT-d spec table "Guidance to Software for Invalidations").
   */
  /** @internal (nested-driver.ts) */
  pasidTearDownEntry(dev: SimDevice, pasid: number): void {
    const pe = this.pasidEntryAddr(dev, pasid);
    const [q0, q1] = this.pasidEntryWords(pe);
    if (!(q0 & 1n)) return;
    const did = Number(q1 & 0xffffn);
    const pgtt = Number((q0 >> 6n) & 7n);
    this.writeQwords(pe, [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    this.qiSubmitSync([qiPcDesc(QI_PC_PASID_SEL, did, pasid)]);
    if (pgtt === PGTT_PT || pgtt === PGTT_FS) this.qiSubmitSync([qiPiotlbAllDesc(did, pasid)]);
    else this.qiSubmitSync([qiIotlbDesc(did, 0, 0, DMA_TLB_DSI_FLUSH)]);
    this.devtlbInvalidationWithPasid(dev, pasid);
    this.drainPasidPrq(dev, pasid, did);
  }

  /**
   * devtlb_invalidation_with_pasid (pasid.c): after the IOTLB, the device's own TLB, all of it:
   * without PASID (type 3) for RID_PASID, PASID-based (type 8) otherwise.
   */
  devtlbInvalidationWithPasid(dev: SimDevice, pasid: number): void {
    const info = this.info(dev);
    if (!info.atsEnabled) return;
    if (pasid === IOMMU_NO_PASID) this.qiSubmitSync([qiDevIotlbDesc(dev.rid, info.pfsid, info.atsQdep, 0, 64 - 12)]);
    else this.qiSubmitSync([qiDevIotlbPasidDesc(dev.rid, info.pfsid, pasid, info.atsQdep, 0, 64 - 12)]);
  }

  /**
   * intel_iommu_drain_pasid_prq (called from intel_pasid_tear_down_entry): for a device with PRI,
   * the queued requests of (device, PASID) are handled, then a fenced wait, the IOTLB and the
   * device-TLB invalidations go out with the PD (drain) bit (VT-d 7.10).
   */
  private drainPasidPrq(dev: SimDevice, pasid: number, did: number): void {
    const info = this.info(dev);
    if (!info.priEnabled) return;
    const descs: Desc[] = [QI_IWD_FENCE_DESC];
    if (pasid === IOMMU_NO_PASID) {
      descs.push(qiIotlbDesc(did, 0, 0, DMA_TLB_DSI_FLUSH));
      descs.push(qiDevIotlbDesc(dev.rid, info.pfsid, info.atsQdep, 0, MAX_AGAW_PFN_WIDTH));
    } else {
      descs.push(qiPiotlbAllDesc(did, pasid));
      descs.push(qiDevIotlbPasidDesc(dev.rid, info.pfsid, pasid, info.atsQdep, 0, MAX_AGAW_PFN_WIDTH));
    }
    this.prq.drainPasid(dev.rid, pasid, descs);
  }

  /**
   * intel_pasid_flush_present: after changing a present entry (other than P and SSADE):
   * PASID-selective PASID-cache invalidation, then PASID-selective P_IOTLB, with the old DID.
   */
  /** @internal (nested-driver.ts) */
  pasidFlushPresent(did: number, pasid: number, dev?: SimDevice): void {
    this.qiSubmitSync([qiPcDesc(QI_PC_PASID_SEL, did, pasid)]);
    this.qiSubmitSync([qiPiotlbAllDesc(did, pasid)]);
    if (dev) this.devtlbInvalidationWithPasid(dev, pasid);
  }

  // ==== IommuOps =====================================================================================

  /** intel_iommu_capable */
  capable(_dev: SimDevice, cap: IommuCap): boolean {
    switch (cap) {
      case "CACHE_COHERENCY":
        return true;
      case "ENFORCE_CACHE_COHERENCY":
        return fieldGet(this.ecap, ECAP.SC) === 1;
      case "DIRTY_TRACKING":
        return fieldGet(this.ecap, ECAP.SMTS) === 1 && fieldGet(this.ecap, ECAP.SLADS) === 1; // ssads_supported
      case "DEFERRED_FLUSH":
        return true;
      default:
        return false;
    }
  }

  /**
   * intel_iommu_hw_info: struct iommu_hw_info_vtd { __u32 flags; __u32 __reserved;
   * __aligned_u64 cap_reg; __aligned_u64 ecap_reg; }, little-endian.
   */
  hwInfo(_dev: SimDevice, type: number): HwInfo | Err {
    if (type !== IOMMU_HW_INFO_TYPE_DEFAULT && type !== IOMMU_HW_INFO_TYPE_INTEL_VTD) {
      return err("EOPNOTSUPP", "intel_iommu_hw_info", `hw_info type ${type} is not IOMMU_HW_INFO_TYPE_INTEL_VTD (1)`);
    }
    const data = new Uint8Array(24);
    const v = new DataView(data.buffer);
    // flags: Linux reports the SPR17 errata on every unit (intel_iommu_hw_info sets it
    // unconditionally), and __domain_mapping refuses read-only mappings on nest parents to match
    v.setUint32(0, 1, true); // IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17
    v.setUint32(4, 0, true); // __reserved
    v.setBigUint64(8, this.hw.readReg64(0x08), true); // cap_reg
    v.setBigUint64(16, this.hw.readReg64(0x10), true); // ecap_reg
    return { type: IOMMU_HW_INFO_TYPE_INTEL_VTD, data };
  }

  /** intel_iommu_domain_alloc_paging_flags → intel_iommu_domain_alloc_second_stage. */
  domainAllocPagingFlags(_dev: SimDevice, flags: number, userData: null): IommuDomain | Err {
    const where = "intel_iommu_domain_alloc_paging_flags";
    const known = DOMAIN_ALLOC_NEST_PARENT | DOMAIN_ALLOC_DIRTY_TRACKING | DOMAIN_ALLOC_PASID;
    if (flags & ~known) return err("EOPNOTSUPP", where, `unsupported flags 0x${(flags & ~known).toString(16)}`);
    if (userData !== null) return err("EOPNOTSUPP", where, "user data is not supported for paging domains");
    if (flags & DOMAIN_ALLOC_NEST_PARENT && fieldGet(this.ecap, ECAP.NEST) !== 1) {
      return err("EOPNOTSUPP", "intel_iommu_domain_alloc_second_stage", "NEST_PARENT needs ECAP.NEST");
    }
    if (flags & DOMAIN_ALLOC_DIRTY_TRACKING && !this.capable(_dev, "DIRTY_TRACKING")) {
      return err("EOPNOTSUPP", "intel_iommu_domain_alloc_second_stage", "DIRTY_TRACKING needs ECAP.SLADS");
    }
    const ndoms = 2 ** (4 + 2 * fieldGet(this.cap, CAP.ND));
    let did = IDA_START_DID;
    while (did < ndoms && this.usedDids.has(did)) did++;
    if (did >= ndoms) return err("ENOSPC", "domain_attach_iommu", "no free domain ids");
    this.usedDids.add(did);
    const domain = new DmarDomain(this, did, this.ctx.mem.allocKernelPage(), flags);
    this.domains.add(domain);
    return domain;
  }

  /** intel_iommu_domain_alloc_nested (nested-driver.ts). */
  domainAllocNested(dev: SimDevice, parent: IommuDomain, flags: number, data: IommuUserData): IommuDomain | Err {
    const s2 = parent instanceof DmarDomain && this.domains.has(parent) ? parent : null;
    return intelIommuDomainAllocNested(this, dev, s2, flags, data);
  }

  /** intel_iommu_get_resv_regions: the IOAPIC/MSI window, IOMMU_RESV_MSI. */
  getResvRegions(_dev: SimDevice): ResvRegion[] {
    return [{ start: VTD_INTERRUPT_ADDR_FIRST, length: 0x100000, type: "MSI" }];
  }

  private ownDomain(domain: IommuDomain, where: string): DmarDomain | Err {
    if (!(domain instanceof DmarDomain) || domain.owner !== this || !this.domains.has(domain)) {
      return err("EINVAL", where, "the domain was not allocated by this IOMMU");
    }
    return domain;
  }

  /**
   * intel_iommu_attach_device (pasid = IOMMU_NO_PASID: device_block_translation, then
   * intel_pasid_setup_second_level) or intel_iommu_set_dev_pasid (setup, or
   * intel_pasid_replace_second_level when the PASID is in use).
   */
  attachDev(domain: IommuDomain, dev: SimDevice, pasid: number): Rc {
    // iopf_for_domain_replace: I/O page faults on for the new domain first, off for the old one after
    const oldIopf = (this.info(dev).domains.get(pasid) as IommuDomain | undefined)?.iopfHandler === true;
    if (domain.iopfHandler) {
      const rc = this.intelIommuEnableIopf(dev);
      if (rc) return rc;
    }
    const rc = this.attachDevDomain(domain, dev, pasid);
    if (rc) {
      if (domain.iopfHandler) this.intelIommuDisableIopf(dev);
      return rc;
    }
    if (oldIopf) this.intelIommuDisableIopf(dev);
    return 0;
  }

  private attachDevDomain(domain: IommuDomain, dev: SimDevice, pasid: number): Rc {
    if (domain instanceof NestedDomain && domain.owner === this) return intelNestedAttachDev(this, domain, dev, pasid);
    const d = this.ownDomain(domain, pasid === IOMMU_NO_PASID ? "intel_iommu_attach_device" : "intel_iommu_set_dev_pasid");
    if (!(d instanceof DmarDomain)) return d;
    const info = this.info(dev);
    if (pasid !== IOMMU_NO_PASID) {
      if (!info.pasidSupported) return err("EOPNOTSUPP", "intel_iommu_set_dev_pasid", `${dev.name} has no PASID capability`);
      if (pasid < 0 || pasid >= this.maxPasids(dev)) return err("EINVAL", "intel_iommu_set_dev_pasid", `PASID ${pasid} out of range`);
    }
    const old = info.domains.get(pasid);
    const pe = this.pasidEntryAddr(dev, pasid);
    if (pasid === IOMMU_NO_PASID || !old) {
      // device_block_translation for the RID; a free PASID entry needs nothing
      if (old) this.detachBookkeeping(old, dev, pasid);
      this.pasidTearDownEntry(dev, pasid);
      // intel_pasid_setup_second_level: not-present → present, CM = 0: no flush
      this.writeQwords(pe, this.secondLevelEntry(d));
    } else {
      // intel_pasid_replace_second_level: write the whole entry, flush with the old DID
      const [q0, q1] = this.pasidEntryWords(pe);
      const oldDid = Number(q1 & 0xffffn);
      this.writeQwords(pe, this.secondLevelEntry(d));
      this.detachBookkeeping(old, dev, pasid);
      if (q0 & 1n) this.pasidFlushPresent(oldDid, pasid, dev);
    }
    info.domains.set(pasid, d);
    d.attachments.set(`${dev.rid}:${pasid}`, { dev, pasid });
    if (this.ctx.trace.on) this.ctx.trace.emit("iommu.attach", { rid: dev.rid, pasid, did: d.id, pgtt: PGTT_SS });
    return 0;
  }

  /** @internal (nested-driver.ts) */
  detachBookkeeping(domain: DmarDomain | NestedDomain, dev: SimDevice, pasid: number): void {
    domain.attachments.delete(`${dev.rid}:${pasid}`);
    this.info(dev).domains.delete(pasid);
    if (this.ctx.trace.on) this.ctx.trace.emit("iommu.detach", { rid: dev.rid, pasid, did: domain.id });
  }

  /** blocking_domain_attach_dev / intel_iommu_remove_dev_pasid: tear the PASID entry down. */
  blockDev(dev: SimDevice, pasid: number): void {
    const info = this.info(dev);
    const old = info.domains.get(pasid);
    if (old) this.detachBookkeeping(old, dev, pasid);
    if ((old as IommuDomain | undefined)?.iopfHandler) this.intelIommuDisableIopf(dev); // iopf_for_domain_remove, before the teardown
    if (pasid < info.maxPasid) this.pasidTearDownEntry(dev, pasid);
  }

  // ==== I/O page faults (iommu.c intel_iommu_enable_iopf / _disable_iopf, prq.c) ======================

  /** intel_iommu_enable_iopf: needs PRI enabled at probe; the first user adds the device to the iopf queue. */
  private intelIommuEnableIopf(dev: SimDevice): Rc {
    const info = this.info(dev);
    if (!info.priEnabled)
      return err("ENODEV", "intel_iommu_enable_iopf", `${dev.path} has no PRI enabled, so a domain with an I/O page fault handler cannot be attached`);
    if (info.iopfRefcount) {
      info.iopfRefcount++;
      return 0;
    }
    if (!this.faultCore) throw new Error("intel_iommu_enable_iopf: no iommu core to add the device to");
    const rc = this.faultCore.iopfQueueAddDevice(dev);
    if (rc) return rc;
    info.iopfRefcount = 1;
    return 0;
  }

  /** intel_iommu_disable_iopf: the last user removes the device from the iopf queue (pending groups answered INVALID). */
  private intelIommuDisableIopf(dev: SimDevice): void {
    const info = this.info(dev);
    if (!info.priEnabled || !info.iopfRefcount) throw new Error("intel_iommu_disable_iopf: I/O page faults were not enabled (WARN_ON)");
    if (--info.iopfRefcount) return;
    this.faultCore?.iopfQueueRemoveDevice(dev);
  }

  /** The iommu core's fault half (installed by the kernel at boot). */
  setFaultCore(core: IommuFaultCore): void {
    this.faultCore = core;
    this.prq.core = core;
  }

  /** ops->page_response: intel_iommu_page_response (prq.c). */
  pageResponse(dev: SimDevice, fault: IopfFault, code: number): void {
    this.prq.pageResponse(dev, fault, code);
  }

  /**
   * The cache tags of a second-stage domain in list order (cache.c __cache_tag_assign_domain):
   * per attachment its IOTLB tag (one per PASID, shared) and then, for a device with ATS, its
   * DEVTLB tag; flushes walk the list in this order, IOTLB before device-TLB.
   */
  private cacheTags(d: DmarDomain): ({ devtlb: false; pasid: number } | { devtlb: true; dev: SimDevice; pasid: number })[] {
    const tags: ({ devtlb: false; pasid: number } | { devtlb: true; dev: SimDevice; pasid: number })[] = [];
    const iotlb = new Set<number>();
    for (const { dev, pasid } of d.attachments.values()) {
      if (!iotlb.has(pasid)) {
        iotlb.add(pasid);
        tags.push({ devtlb: false, pasid });
      }
      if (this.info(dev).atsEnabled) tags.push({ devtlb: true, dev, pasid });
    }
    return tags;
  }

  /** The device-TLB descriptor of a DEVTLB tag for (addr, mask) (cache.c cache_tag_flush_devtlb_*). @internal (nested-driver.ts) */
  devtlbTagDesc(dev: SimDevice, pasid: number, addr: number, mask: number): Desc {
    const info = this.info(dev);
    return pasid === IOMMU_NO_PASID
      ? qiDevIotlbDesc(dev.rid, info.pfsid, info.atsQdep, addr, mask)
      : qiDevIotlbPasidDesc(dev.rid, info.pfsid, pasid, info.atsQdep, addr, mask);
  }

  /** intel_iommu_domain_free → domain_exit: free every page-table page and the DID. */
  domainFree(domain: IommuDomain): void {
    if (domain instanceof NestedDomain && domain.owner === this) return intelNestedDomainFree(this, domain);
    const d = this.ownDomain(domain, "intel_iommu_domain_free");
    if (!(d instanceof DmarDomain)) throw new Error("intel_iommu_domain_free: foreign domain");
    if (d.attachments.size) throw new Error(`intel_iommu_domain_free: domain ${d.id} is still attached`);
    for (const pa of d.freelist) this.ctx.mem.freeKernelPage(pa);
    d.freelist = [];
    this.freeTable(d.pgd, 4);
    this.usedDids.delete(d.id);
    this.domains.delete(d);
    d.freed = true;
  }

  private freeTable(table: number, level: number): void {
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        this.ctx.mem.read64(table + i * 8, this.w);
        if (this.w.lo & (SL_R | SL_W) && !(this.w.lo & SL_PS)) this.freeTable(entryAddr(this.w.lo, this.w.hi), level - 1);
      }
    }
    this.ctx.mem.freeKernelPage(table);
  }

  /** dev->iommu->max_pasids: min(pci_max_pasids, 2 << ECAP.PSS) when PASID is usable. */
  maxPasids(dev: SimDevice): number {
    if (dev.pasidBits <= 0 || fieldGet(this.ecap, ECAP.PASID) !== 1) return 0;
    return Math.min(2 ** dev.pasidBits, 2 ** (fieldGet(this.ecap, ECAP.PSS) + 1));
  }

  // ==== the second-stage page table (domain ops) ========================================================

  /** The table holding level-`level` entries for `iova`, allocating missing tables (pfn_to_dma_pte). */
  private tableFor(d: DmarDomain, iova: number, level: number, alloc: boolean): number {
    const { mem } = this.ctx;
    let table = d.pgd;
    for (let l = 4; l > level; l--) {
      const epa = table + levelIndex(iova, l) * 8;
      mem.read64(epa, this.w);
      if (!(this.w.lo & (SL_R | SL_W))) {
        if (!alloc) return -1;
        const next = mem.allocKernelPage();
        // non-leaf entries are R | W (Linux: DMA_PTE_READ | DMA_PTE_WRITE)
        mem.write64(epa, ((next % TWO32) | SL_R | SL_W) >>> 0, Math.floor(next / TWO32));
        table = next;
      } else if (this.w.lo & SL_PS) {
        return -2; // a large leaf sits above the wanted level
      } else table = entryAddr(this.w.lo, this.w.hi);
    }
    return table;
  }

  private tableEmpty(table: number): boolean {
    for (let i = 0; i < 512; i++) {
      this.ctx.mem.read64(table + i * 8, this.w);
      if (this.w.lo & (SL_R | SL_W)) return false;
    }
    return true;
  }

  /** intel_iommu_map_pages → __domain_mapping: write `pgcount` leaves of `pgsize`. */
  domainMapPages(d: DmarDomain, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number): number | Err {
    const where = "intel_iommu_map";
    const { mem } = this.ctx;
    if (d.freed) throw new Error("intel_iommu_map: domain was freed");
    const level = pgsize === PAGE ? 1 : pgsize === SZ_2M ? 2 : pgsize === SZ_1G ? 3 : 0;
    if (!level || !(d.pgsizeBitmap & pgsize)) return err("EINVAL", where, `page size 0x${pgsize.toString(16)} not supported`);
    if (iova % pgsize || paddr % pgsize) return err("EINVAL", where, "iova and paddr must be aligned to the page size");
    let attr = 0;
    if (prot & IOMMU_READ) attr |= SL_R;
    if (prot & IOMMU_WRITE) attr |= SL_W;
    if (!(attr & (SL_R | SL_W))) return err("EINVAL", "__domain_mapping", "neither read nor write permission");
    if (!(prot & IOMMU_WRITE) && d.nestParent) {
      return err("EINVAL", "__domain_mapping", "Read-only mapping is disallowed on the domain which serves as the parent in a nested configuration, due to HW errata (ERRATA_772415_SPR17)");
    }
    if (d.forceSnooping) attr |= SL_SNP; // set_pte_snp
    if (level > 1) attr |= SL_PS;
    const size = pgsize * pgcount;
    if (iova + size - 1 > d.apertureEnd) {
      return err("EFAULT", where, `iova 0x${(iova + size - 1).toString(16)} beyond the domain's ${VTD_AGAW_BITS}-bit address width`);
    }
    for (let i = 0; i < pgcount; i++) {
      const va = iova + i * pgsize;
      const pa = paddr + i * pgsize;
      const table = this.tableFor(d, va, level, true);
      let fail: Err | null = null;
      if (table === -2) fail = err("EBUSY", "__domain_mapping", `a larger page already maps 0x${va.toString(16)}`);
      else {
        const epa = table + levelIndex(va, level) * 8;
        mem.read64(epa, this.w);
        if (this.w.lo & (SL_R | SL_W)) {
          if (level > 1 && !(this.w.lo & SL_PS) && this.subtreeEmpty(entryAddr(this.w.lo, this.w.hi), level - 1)) {
            // "Ensure that old small page tables are removed to make room for superpage(s)"
            this.freeTable(entryAddr(this.w.lo, this.w.hi), level - 1);
            mem.write64(epa, 0, 0);
          } else fail = err("EBUSY", "__domain_mapping", `PTE for iova 0x${va.toString(16)} already set`);
        }
        if (!fail) mem.write64(epa, ((pa % TWO32) | attr) >>> 0, Math.floor(pa / TWO32));
      }
      if (fail) {
        // nothing half-done: take back what this call mapped
        if (i) this.unmapRange(d, iova, iova + i * pgsize);
        return fail;
      }
    }
    d.hasMappings = true;
    if (this.ctx.trace.on) this.ctx.trace.emit("iommu.map", { did: d.id, iova, paddr: u64(paddr), size, pgsize });
    // iotlb_sync_map → cache_tag_flush_range_np: CM = 0, so no invalidation is needed
    return size;
  }

  private subtreeEmpty(table: number, level: number): boolean {
    for (let i = 0; i < 512; i++) {
      this.ctx.mem.read64(table + i * 8, this.w);
      const lo = this.w.lo;
      if (!(lo & (SL_R | SL_W))) continue;
      if (level === 1 || lo & SL_PS) return false;
      const hi = this.w.hi;
      if (!this.subtreeEmpty(entryAddr(lo, hi), level - 1)) return false;
    }
    return true;
  }

  /**
   * Clear every leaf overlapping [start, end) below `table` (whole large leaves, like Linux's
   * "horrid API" rule), putting tables that become empty on the domain's freelist. Returns the
   * end of the last leaf removed (0 if none).
   */
  private clearLevel(d: DmarDomain, table: number, level: number, base: number, start: number, end: number): number {
    const { mem } = this.ctx;
    const size = levelSize(level);
    let last = 0;
    const first = Math.floor((start - base) / size);
    const lastIdx = Math.floor((end - 1 - base) / size);
    for (let i = first; i <= lastIdx; i++) {
      const epa = table + i * 8;
      mem.read64(epa, this.w);
      const lo = this.w.lo;
      if (!(lo & (SL_R | SL_W))) continue;
      const eb = base + i * size;
      if (level === 1 || lo & SL_PS) {
        mem.write64(epa, 0, 0);
        d.gatherStart = Math.min(d.gatherStart, eb);
        d.gatherEnd = Math.max(d.gatherEnd, eb + size);
        last = Math.max(last, eb + size);
      } else {
        const child = entryAddr(lo, this.w.hi);
        const l = this.clearLevel(d, child, level - 1, eb, Math.max(start, eb), Math.min(end, eb + size));
        last = Math.max(last, l);
        if (this.tableEmpty(child)) {
          // the gather keeps the unmapped range only: a page-selective flush with IH = 0 of
          // that range also drops every paging-structure-cache entry on its path
          mem.write64(epa, 0, 0);
          d.freelist.push(child);
        }
      }
    }
    return last;
  }

  private unmapRange(d: DmarDomain, start: number, end: number): number {
    return this.clearLevel(d, d.pgd, 4, 0, start, end);
  }

  /** intel_iommu_unmap_pages: a range covered by a larger leaf unmaps the whole leaf. */
  domainUnmapPages(d: DmarDomain, iova: number, pgsize: number, pgcount: number): number {
    if (d.freed) throw new Error("intel_iommu_unmap: domain was freed");
    const size = pgsize * pgcount;
    const end = Math.min(iova + size, d.apertureEnd + 1);
    if (iova >= end) return 0;
    const last = this.unmapRange(d, iova, end);
    if (!last) return 0;
    const unmapped = Math.max(size, last - iova);
    if (this.ctx.trace.on) this.ctx.trace.emit("iommu.unmap", { did: d.id, iova, size: unmapped });
    return unmapped;
  }

  /**
   * intel_iommu_tlb_sync: flush the gathered range (∪ [iova, iova + size)), IH = 1 unless
   * page-table pages were freed, then release those pages.
   */
  domainIotlbSync(d: DmarDomain, iova: number, size: number): void {
    const start = Math.min(iova, d.gatherStart);
    const end = Math.max(iova + size, d.gatherEnd);
    const ih = d.freelist.length ? 0 : 1;
    if (end > start) this.cacheTagFlushRange(d, start, end - 1, ih);
    for (const pa of d.freelist) this.ctx.mem.freeKernelPage(pa);
    d.freelist = [];
    d.gatherStart = Infinity;
    d.gatherEnd = -Infinity;
  }

  /** intel_flush_iotlb_all → cache_tag_flush_all: domain-selective per IOTLB tag. */
  domainFlushIotlbAll(d: DmarDomain): void {
    const descs = this.cacheTags(d).map((t) =>
      t.devtlb ? this.devtlbTagDesc(t.dev, t.pasid, 0, MAX_AGAW_PFN_WIDTH) : qiIotlbDesc(d.id, 0, 0, DMA_TLB_DSI_FLUSH),
    );
    // NESTING_IOTLB tags: the nested children's DIDs; NESTING_DEVTLB: the whole device TLB (cache.c cache_tag_flush_all)
    for (const t of nestingTags(d)) {
      descs.push(t.dev ? this.devtlbTagDesc(t.dev, t.pasid, 0, MAX_AGAW_PFN_WIDTH) : qiIotlbDesc(t.did, 0, 0, DMA_TLB_DSI_FLUSH));
    }
    if (descs.length) this.qiSubmitSync(descs);
  }

  /**
   * cache_tag_flush_range for a second-stage domain: one IOTLB descriptor per cache tag,
   * page-selective with the aligned mask, or domain-selective when the mask exceeds CAP.MAMV or
   * PSI is not supported; batched into one submission (qi_batch).
   */
  cacheTagFlushRange(d: DmarDomain, start: number, end: number, ih: number): void {
    const { addr, mask } = calculatePsiAlignedAddress(start, end);
    const psi = fieldGet(this.cap, CAP.PSI) === 1 && mask <= fieldGet(this.cap, CAP.MAMV);
    // per tag: the IOTLB descriptor, then (ATS devices) the device-TLB one for the same range
    const descs = this.cacheTags(d).map((t) =>
      t.devtlb
        ? this.devtlbTagDesc(t.dev, t.pasid, addr, mask)
        : psi ? qiIotlbDesc(d.id, addr + ih, mask, DMA_TLB_PSI_FLUSH) : qiIotlbDesc(d.id, 0, 0, DMA_TLB_DSI_FLUSH),
    );
    // NESTING_IOTLB tags (cache.c): a change of a nest parent reaches every nested translation
    // built on it, by an IOTLB (type 2) descriptor with each nested child's DID, which by the scope
    // rules removes all first-stage/nested entries of that DID whatever their address; a
    // NESTING_DEVTLB tag flushes the device's whole TLB ("There is no easy way to identify the
    // exact set of nested translations affected by a change in S2")
    for (const t of nestingTags(d)) {
      if (t.dev) descs.push(this.devtlbTagDesc(t.dev, t.pasid, 0, MAX_AGAW_PFN_WIDTH));
      else descs.push(psi ? qiIotlbDesc(t.did, addr + ih, mask, DMA_TLB_PSI_FLUSH) : qiIotlbDesc(t.did, 0, 0, DMA_TLB_DSI_FLUSH));
    }
    if (descs.length) this.qiSubmitSync(descs);
  }

  /** intel_iommu_iova_to_phys: a software walk. */
  domainIovaToPhys(d: DmarDomain, iova: number): number {
    if (iova < 0 || iova > d.apertureEnd) return -1;
    const { mem } = this.ctx;
    let table = d.pgd;
    for (let level = 4; level >= 1; level--) {
      mem.read64(table + levelIndex(iova, level) * 8, this.w);
      const lo = this.w.lo;
      if (!(lo & (SL_R | SL_W))) return -1;
      const addr = entryAddr(lo, this.w.hi);
      if (level === 1 || lo & SL_PS) return addr + (iova % levelSize(level));
      table = addr;
    }
    return -1;
  }

  /**
   * intel_iommu_enforce_cache_coherency_ss: refused once the domain has mappings (existing PTEs
   * would lack SNP); afterwards every leaf gets SNP. Attached PASID entries also get PGSNP
   * (intel_pasid_setup_page_snoop_control's flow: set, then flush as for a present entry).
   */
  domainEnforceCacheCoherency(d: DmarDomain): boolean {
    if (d.forceSnooping) return true;
    if (fieldGet(this.ecap, ECAP.SC) !== 1 || d.hasMappings) return false;
    d.forceSnooping = true;
    for (const { dev, pasid } of d.attachments.values()) {
      const pe = this.pasidEntryAddr(dev, pasid);
      const q1 = this.ctx.mem.read64n(pe + 8);
      this.ctx.mem.write64n(pe + 8, q1 | (1n << 24n));
      this.pasidFlushPresent(d.id, pasid, dev);
    }
    return true;
  }

  /** Visit every present leaf overlapping [start, end): (entry address, leaf iova, leaf size, lo). */
  private forEachLeaf(d: DmarDomain, start: number, end: number, fn: (epa: number, iova: number, size: number, lo: number, hi: number) => void): void {
    const visit = (table: number, level: number, base: number): void => {
      const size = levelSize(level);
      const first = Math.max(0, Math.floor((start - base) / size));
      const last = Math.min(511, Math.floor((end - 1 - base) / size));
      for (let i = first; i <= last; i++) {
        const epa = table + i * 8;
        this.ctx.mem.read64(epa, this.w);
        const lo = this.w.lo;
        const hi = this.w.hi;
        if (!(lo & (SL_R | SL_W))) continue;
        const eb = base + i * size;
        if (level === 1 || lo & SL_PS) fn(epa, eb, size, lo, hi);
        else visit(entryAddr(lo, hi), level - 1, eb);
      }
    };
    if (end > start) visit(d.pgd, 4, 0);
  }

  /**
   * intel_iommu_set_dirty_tracking → intel_pasid_setup_dirty_tracking for every PASID entry of
   * the domain: flip SSADE, then PASID-cache invalidation and a domain-selective IOTLB flush.
   * Enabling first clears every D bit (iommufd's iopt_set_dirty_tracking does so before calling
   * the driver) so no dirt is inherited from an earlier cycle.
   */
  domainSetDirtyTracking(d: DmarDomain, enable: boolean): Rc {
    if (d.trackingOn === enable) return 0;
    const { mem } = this.ctx;
    if (enable) {
      this.forEachLeaf(d, 0, d.apertureEnd + 1, (epa, _iova, _size, lo, hi) => {
        if (lo & SL_D) mem.write64(epa, (lo & ~SL_D) >>> 0, hi);
      });
    }
    for (const { dev, pasid } of d.attachments.values()) {
      const pe = this.pasidEntryAddr(dev, pasid);
      const q0 = mem.read64n(pe);
      const pgtt = Number((q0 >> 6n) & 7n);
      if (pgtt !== PGTT_SS) return err("EOPNOTSUPP", "intel_pasid_setup_dirty_tracking", `dirty tracking not supported on translation type ${pgtt}`);
      mem.write64n(pe, enable ? q0 | BigInt(PE_SSADE) : q0 & ~BigInt(PE_SSADE));
      this.qiSubmitSync([qiPcDesc(QI_PC_PASID_SEL, d.id, pasid)]);
      this.qiSubmitSync([qiIotlbDesc(d.id, 0, 0, DMA_TLB_DSI_FLUSH)]);
      this.devtlbInvalidationWithPasid(dev, pasid);
    }
    // parent_domain_set_dirty_tracking: nested children follow their parent's SSADE
    nestedSetDirtyTracking(this, d, enable);
    d.trackingOn = enable;
    return 0;
  }

  /**
   * intel_iommu_read_and_clear_dirty: report leaves with D = 1 (clipped to the asked range),
   * clear D unless `noClear`, then flush the IOTLB for the range with IH = 1 (iommufd's
   * iommu_iotlb_sync on the gather) so cached "already dirty" translations are dropped and the
   * next write sets D again.
   */
  domainReadAndClearDirty(d: DmarDomain, iova: number, size: number, noClear: boolean, record: (iova: number, length: number) => void): Rc {
    if (!d.trackingOn) return err("EINVAL", "intel_iommu_read_and_clear_dirty", "dirty tracking is not enabled on this domain");
    const { mem } = this.ctx;
    const end = Math.min(iova + size, d.apertureEnd + 1);
    // the gather: iommu_dirty_bitmap_record adds each reported range to it
    let gStart = Infinity;
    let gEnd = -Infinity;
    this.forEachLeaf(d, iova, end, (epa, leaf, leafSize, lo) => {
      if (!(lo & SL_D)) return;
      const s = Math.max(leaf, iova);
      const e = Math.min(leaf + leafSize, end);
      record(s, e - s);
      if (!noClear) {
        // test_and_clear_bit: a locked update of the entry in memory
        mem.read64(epa, this.w);
        mem.write64(epa, (this.w.lo & ~SL_D) >>> 0, this.w.hi);
        gStart = Math.min(gStart, s);
        gEnd = Math.max(gEnd, e);
      }
    });
    if (gEnd > gStart) this.cacheTagFlushRange(d, gStart, gEnd - 1, 1);
    return 0;
  }

  // ==== dmar.c: the fault interrupt handler ===============================================================

  /**
   * dmar_fault: walk the fault records from FSTS.FRI while F is set, log each, clear its F bit
   * (write 1 to clear), then clear PFO (and PPF/PRO) in FSTS.
   */
  dmarFault(): void {
    const hw = this.hw;
    const fsts = hw.readReg32(DMAR_FSTS_REG);
    if (fsts) this.log.push(`DMAR: DRHD: handling fault status reg ${fsts.toString(16)}`);
    if (fsts & FSTS_PPF) {
      const nfr = fieldGet(this.cap, CAP.NFR) + 1;
      const reg = fieldGet(this.cap, CAP.FRO) * 16;
      let index = (fsts >>> FSTS_FRI.shift) & 0xff;
      for (;;) {
        const off = reg + index * 16;
        const data = hw.readReg32(off + 12);
        if (!(data & (1 << 31))) break;
        const reason = data & 0xff;
        const type = (data >>> 30) & 1;
        const pasid = (data >>> 8) & 0xfffff;
        const d8 = hw.readReg32(off + 8);
        const sid = d8 & 0xffff;
        const pp = (d8 >>> 31) & 1;
        const addr = Number(hw.readReg64(off) & ~0xfffn);
        hw.writeReg32(off + 12, 1 << 31); // clear the fault
        const bdf = `${(sid >>> 8).toString(16).padStart(2, "0")}:${((sid >>> 3) & 0x1f).toString(16).padStart(2, "0")}.${sid & 7}`;
        const text = `DMAR: [${type ? "DMA Read" : "DMA Write"} ${pp ? `PASID 0x${pasid.toString(16)}` : "NO_PASID"}] Request device [${bdf}] fault addr 0x${addr.toString(16)} [fault reason 0x${reason.toString(16).padStart(2, "0")}] ${vtdFaultReasonName(reason)}`;
        this.log.push(text);
        if (this.ctx.trace.on) this.ctx.trace.emit("vtd.fault.clear", { index, text });
        index = (index + 1) % nfr;
      }
    }
    hw.writeReg32(DMAR_FSTS_REG, FSTS_PFO | FSTS_PPF | FSTS_PRO);
  }

  /** Addresses of the structures, for views and tests. */
  get layout(): { rootTable: number; qiDesc: number; qiStatus: number } {
    return { rootTable: this.rootTable, qiDesc: this.qiDesc, qiStatus: this.qiStatus };
  }

  /** The device's PASID directory and size, for views and tests. */
  pasidTableOf(dev: SimDevice): { dir: number; pages: number; maxPasid: number } {
    const i = this.info(dev);
    return { dir: i.pasidDir, pages: i.dirPages, maxPasid: i.maxPasid };
  }
}
