/**
 * The Intel IOMMU driver's nested domains: torvalds/linux drivers/iommu/intel/nested.c
 * (intel_iommu_domain_alloc_nested, intel_nested_attach_dev, intel_nested_set_dev_pasid,
 * intel_nested_cache_invalidate_user, intel_nested_domain_free), with the nested parts of
 * pasid.c (intel_pasid_setup_nested / intel_pasid_replace_nested / pasid_pte_config_nestd) and
 * cache.c (cache tags of nested domains and of their parent), read at Kingxukai/linux
 * @ 0291023e7330 (nested.c) and @ 9b44fff655e2 (pasid.c, cache.c), ~v6.17, plus the later
 * stable fix that makes nested domains flush with PASID-based IOTLB descriptors again.
 *
 * What a nested domain is here: a user-managed stage-1 (the guest's x86 page table at
 * `s1.pgtblAddr`, a GPA) over a nest-parent paging domain (DmarDomain with nestParent), which the
 * kernel keeps mirroring its IOAS (GPA → HPA). Attaching it writes a PASID entry with PGTT = 011,
 * FSPTPTR = the guest's table, SSPTPTR = the parent's table, FLPM by addr_width, SRE/WPE/EAFE by
 * the flags, SSADE and PGSNP from the parent, and the nested domain's own DID.
 *
 * Cache tags (cache.c cache_tag_assign_domain): attaching a nested domain to (dev, pasid) gives
 * the nested domain an IOTLB tag {its DID, pasid} and its parent a NESTING_IOTLB tag with the same
 * {DID, pasid}. So
 *   - a guest's IOMMU_HWPT_INVALIDATE flushes the nested tags with PASID-based IOTLB descriptors
 *     (type 6, page-selective with AM from calculate_psi_aligned_address and IH = the entry's
 *     LEAF flag; PASID-selective when the mask reaches MAX_AGAW_PFN_WIDTH);
 *   - a change of the parent (IOAS_UNMAP) flushes the parent's own tags and every NESTING tag with
 *     IOTLB descriptors (type 2) carrying the nested DIDs, which by the VT-d scope rules remove
 *     every nested IOTLB entry of those DIDs whatever their address (driver.ts
 *     cacheTagFlushRange).
 * Device-TLB tags (ATS) come with the page-request/ATS work; none are issued here.
 *
 * Simplifications, each deliberate:
 *  - The DID is allocated when the nested domain is allocated (as for paging domains in
 *    driver.ts), not at first attach by domain_attach_iommu; it is released at free.
 *  - Linux briefly (v6.17, after "Split intel_iommu_domain_alloc_paging_flags()") flushed nested
 *    domains with type-2 descriptors, because they are not "first-stage paging" domains; stable
 *    fixes added intel_domain_use_piotlb() (SVA, NESTED, first-stage) and the PASID-based form is
 *    what this driver issues, as v6.8–v6.16 did through `use_first_level`.
 */
import { err, isErr, type Err, type Rc } from "../../uapi/errno.ts";
import {
  DOMAIN_ALLOC_PASID, IOMMU_NO_PASID, iommuCopyStructFromUser, iommuCopyStructFromUserArray,
  type IommuDomain, type IommuDomainOps, type IommuUserData, type IommuUserDataArray, type SimDevice,
} from "../model.ts";
import { ADDR_WIDTH_4LEVEL, ADDR_WIDTH_5LEVEL } from "./fs.ts";
import { CAP, ECAP, fieldGet } from "./regs.ts";
import { AW_4LEVEL, PGTT_NESTED, pasidEntryEncode } from "./tables.ts";
import type { DmarDomain, IntelIommu } from "./driver.ts";

/** enum iommu_hwpt_data_type / iommu_hwpt_invalidate_data_type values this driver takes. */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** iommu_hwpt_vtd_s1.flags */
export const IOMMU_VTD_S1_SRE = 1n << 0n;
export const IOMMU_VTD_S1_EAFE = 1n << 1n;
export const IOMMU_VTD_S1_WPE = 1n << 2n;
/** iommu_hwpt_vtd_s1_invalidate.flags */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1;
/** sizeof(struct iommu_hwpt_vtd_s1) = offsetofend(…, __reserved): its first release was already complete */
const VTD_S1_SIZE = 24;
/** sizeof(struct iommu_hwpt_vtd_s1_invalidate) = offsetofend(…, __reserved) */
const VTD_S1_INV_SIZE = 24;
/** MAX_AGAW_PFN_WIDTH (intel/iommu.h): a mask this wide covers every address */
export const MAX_AGAW_PFN_WIDTH = 52;
const U64 = (1n << 64n) - 1n;
const PAGE = 4096;

/** struct iommu_hwpt_vtd_s1 as the driver keeps it (dmar_domain->s1_cfg). */
export interface VtdS1Cfg {
  flags: bigint;
  pgtblAddr: bigint;
  addrWidth: number;
}

/**
 * struct dmar_domain of type IOMMU_DOMAIN_NESTED: a user-managed stage-1 over `parent`
 * (dmar_domain->s2_domain). It maps nothing itself; the user changes its table in guest memory and
 * invalidates through cacheInvalidateUser.
 */
export class NestedDomain implements IommuDomain {
  readonly type = "nested" as const;
  readonly id: number;
  pgsizeBitmap = 0;
  readonly apertureStart = 0;
  readonly apertureEnd = 0;
  readonly nestParent = false;
  readonly dirtyTracking = false;
  readonly ops: IommuDomainOps;
  /** where it is attached: "rid:pasid" → (device, pasid); cache tags derive from it */
  readonly attachments = new Map<string, { dev: SimDevice; pasid: number }>();
  freed = false;

  constructor(
    readonly owner: IntelIommu,
    did: number,
    readonly parent: DmarDomain,
    readonly s1: VtdS1Cfg,
  ) {
    this.id = did;
    this.ops = {
      // iommu_map on a domain without __IOMMU_DOMAIN_PAGING: the core refuses
      mapPages: () => err("EINVAL", "iommu_map", "a nested domain has no kernel-managed page table"),
      unmapPages: () => 0,
      iotlbSync: () => {},
      flushIotlbAll: () => nestedCacheTagFlushRange(this, 0n, U64, 0),
      iovaToPhys: () => -1,
      enforceCacheCoherency: () => false,
      cacheInvalidateUser: (array) => intelNestedCacheInvalidateUser(this, array),
    };
  }

  /** The cache tags (cache.c): one IOTLB tag per distinct PASID the domain is attached with. */
  tagPasids(): number[] {
    return [...new Set([...this.attachments.values()].map((a) => a.pasid))].sort((a, b) => a - b);
  }

  /**
   * The cache tags in list order (cache.c cache_tag_assign_domain): per attachment its IOTLB tag
   * {DID, PASID} (shared by devices with the same PASID) and, for a device with ATS, its DEVTLB
   * tag. The parent holds the same pairs as NESTING_IOTLB / NESTING_DEVTLB tags.
   */
  cacheTags(): { did: number; pasid: number; dev?: SimDevice }[] {
    const tags: { did: number; pasid: number; dev?: SimDevice }[] = [];
    const iotlb = new Set<number>();
    for (const { dev, pasid } of this.attachments.values()) {
      if (!iotlb.has(pasid)) {
        iotlb.add(pasid);
        tags.push({ did: this.id, pasid });
      }
      if (this.owner.info(dev).atsEnabled) tags.push({ did: this.id, pasid, dev });
    }
    return tags;
  }
}

// ==== allocation ===================================================================================

/**
 * intel_iommu_domain_alloc_nested. `s2` is the parent when it is one of this driver's paging
 * domains (null otherwise). The payload's fields are not looked at here (not even __reserved):
 * the consistency checks run at attach, in intel_pasid_setup_nested.
 */
export function intelIommuDomainAllocNested(iommu: IntelIommu, _dev: SimDevice, s2: DmarDomain | null, flags: number, data: IommuUserData): IommuDomain | Err {
  const where = "intel_iommu_domain_alloc_nested";
  if (fieldGet(iommu.hw.ecap, ECAP.NEST) !== 1) return err("EOPNOTSUPP", where, "the IOMMU has no nested translation (ECAP.NEST = 0)");
  if (flags & ~DOMAIN_ALLOC_PASID) return err("EOPNOTSUPP", where, `flags 0x${flags.toString(16)}: only IOMMU_HWPT_ALLOC_PASID is accepted`);
  /* Must be nested domain */
  if (data.type !== IOMMU_HWPT_DATA_VTD_S1) return err("EOPNOTSUPP", where, `data_type ${data.type} is not IOMMU_HWPT_DATA_VTD_S1 (1)`);
  if (!s2 || !s2.nestParent) return err("EINVAL", where, "the parent is not a second-stage paging domain allocated with IOMMU_HWPT_ALLOC_NEST_PARENT");
  const bytes = iommuCopyStructFromUser(data, IOMMU_HWPT_DATA_VTD_S1, VTD_S1_SIZE, VTD_S1_SIZE, "iommu_copy_struct_from_user");
  if (isErr(bytes)) return bytes;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const s1: VtdS1Cfg = { flags: v.getBigUint64(0, true), pgtblAddr: v.getBigUint64(8, true), addrWidth: v.getUint32(16, true) };
  const did = iommu.allocDid();
  if (isErr(did)) return did;
  const d = new NestedDomain(iommu, did, s2, s1);
  s2.s1Domains.add(d); // list_add(&domain->s2_link, &s2_domain->s1_domains)
  return d;
}

/** intel_nested_domain_free: off the parent's list; the DID goes back. */
export function intelNestedDomainFree(iommu: IntelIommu, d: NestedDomain): void {
  if (d.attachments.size) throw new Error(`intel_nested_domain_free: nested domain ${d.id} is still attached`);
  d.parent.s1Domains.delete(d);
  iommu.releaseDid(d.id);
  d.freed = true;
}

// ==== attach =======================================================================================

/**
 * The checks of intel_pasid_setup_nested / intel_pasid_replace_nested, in their order: the
 * stage-1 address width must be one the hardware walks, and SRE / EAFE need ECAP.SRS / EAFS.
 */
function nestedCfgCheck(iommu: IntelIommu, d: NestedDomain, where: string): Rc {
  const { cap, ecap } = iommu.hw;
  /* Address width should match the address width supported by hardware */
  if (d.s1.addrWidth === ADDR_WIDTH_5LEVEL) {
    if (fieldGet(cap, CAP.FS5LP) !== 1) return err("EINVAL", where, "5-level paging not supported (CAP.FS5LP = 0)");
  } else if (d.s1.addrWidth !== ADDR_WIDTH_4LEVEL) {
    return err("EINVAL", where, `Invalid stage-1 address width ${d.s1.addrWidth} (48 or 57)`);
  }
  if (d.s1.flags & IOMMU_VTD_S1_SRE && fieldGet(ecap, ECAP.SRS) !== 1)
    return err("EINVAL", where, "No supervisor request support (IOMMU_VTD_S1_SRE needs ECAP.SRS)");
  if (d.s1.flags & IOMMU_VTD_S1_EAFE && fieldGet(ecap, ECAP.EAFS) !== 1)
    return err("EINVAL", where, "No extended access flag support (IOMMU_VTD_S1_EAFE needs ECAP.EAFS)");
  return 0;
}

/** pasid_pte_config_nestd, as eight qwords. */
export function nestedPasidEntry(iommu: IntelIommu, d: NestedDomain): bigint[] {
  const s2 = d.parent;
  const sre = (d.s1.flags & IOMMU_VTD_S1_SRE) !== 0n;
  return pasidEntryEncode({
    present: true,
    fpd: false, // pasid_set_fault_enable
    aw: AW_4LEVEL, // pasid_set_address_width(pte, s2_domain->agaw)
    pgtt: PGTT_NESTED,
    ssade: s2.trackingOn, // if (s2_domain->dirty_tracking) pasid_set_ssade
    ssptptr: s2.pgd,
    did: d.id,
    pwsnp: fieldGet(iommu.hw.ecap, ECAP.SMPWC) === 1,
    pgsnp: s2.forceSnooping,
    fsptptr: d.s1.pgtblAddr,
    flpm: d.s1.addrWidth === ADDR_WIDTH_5LEVEL ? 1 : 0,
    sre,
    wpe: sre && (d.s1.flags & IOMMU_VTD_S1_WPE) !== 0n, // WPE only together with SRE
    eafe: (d.s1.flags & IOMMU_VTD_S1_EAFE) !== 0n,
  });
}

/**
 * intel_nested_attach_dev (the RID: block first, then set up — a failure leaves the RID blocked,
 * and the core re-attaches the old domain) and intel_nested_set_dev_pasid (a PASID: set up, or
 * replace a present entry and flush it with the old DID).
 */
export function intelNestedAttachDev(iommu: IntelIommu, d: NestedDomain, dev: SimDevice, pasid: number): Rc {
  const info = iommu.info(dev);
  if (d.freed) throw new Error("intel_nested_attach_dev: domain was freed");
  if (pasid === IOMMU_NO_PASID) {
    // device_block_translation(dev)
    const old = info.domains.get(pasid);
    if (old) iommu.detachBookkeeping(old, dev, pasid);
    iommu.pasidTearDownEntry(dev, pasid);
    // iommu->agaw < s2_domain->agaw → ENODEV ("Adjusted guest address width not compatible"):
    // never here, the unit and every domain are 48-bit (VTD_AGAW_BITS);
    // paging_domain_compatible(s2): one unit, every device compatible
    const rc = nestedCfgCheck(iommu, d, "intel_pasid_setup_nested");
    if (rc) return rc;
    // not present → present with CM = 0: pasid_flush_caches only flushes the write buffer
    iommu.writePasidEntry(iommu.pasidEntryAddr(dev, pasid), nestedPasidEntry(iommu, d));
  } else {
    const where = "intel_nested_set_dev_pasid";
    if (!info.pasidSupported) return err("EOPNOTSUPP", where, `${dev.name} has no PASID capability`);
    if (pasid < 0 || pasid >= iommu.maxPasids(dev)) return err("EINVAL", where, `PASID ${pasid} out of range`);
    const old = info.domains.get(pasid);
    const rc = nestedCfgCheck(iommu, d, old ? "intel_pasid_replace_nested" : "intel_pasid_setup_nested");
    if (rc) return rc;
    const pe = iommu.pasidEntryAddr(dev, pasid);
    if (!old) {
      iommu.pasidTearDownEntry(dev, pasid); // a non-present entry: nothing happens
      iommu.writePasidEntry(pe, nestedPasidEntry(iommu, d));
    } else {
      const [q0, q1] = iommu.pasidEntryWords(pe);
      const oldDid = Number(q1 & 0xffffn);
      iommu.writePasidEntry(pe, nestedPasidEntry(iommu, d));
      iommu.detachBookkeeping(old, dev, pasid);
      if (q0 & 1n) iommu.pasidFlushPresent(oldDid, pasid, dev);
    }
  }
  info.domains.set(pasid, d);
  d.attachments.set(`${dev.rid}:${pasid}`, { dev, pasid });
  if (iommu.ctx.trace.on) iommu.ctx.trace.emit("iommu.attach", { rid: dev.rid, pasid, did: d.id, pgtt: PGTT_NESTED });
  return 0;
}

// ==== cache tags and invalidation ==================================================================

/**
 * The parent's NESTING_IOTLB tags {nested DID, PASID} and NESTING_DEVTLB tags (with `dev`), for
 * every attachment of every nested child.
 */
export function nestingTags(s2: DmarDomain): { did: number; pasid: number; dev?: SimDevice }[] {
  return [...s2.s1Domains].flatMap((child) => child.cacheTags());
}

/**
 * calculate_psi_aligned_address (cache.c) in 64-bit arithmetic, for ranges that come from user
 * space (start and end inclusive, u64). Returns the aligned address and the mask (log2 pages).
 * [deviation: a range whose end precedes its start (npages = 0 with addr ≠ 0, or an overflowing
 * npages) has no defined result in the kernel (__roundup_pow_of_two(0)); it is treated as one page]
 */
export function psiAligned64(start: bigint, end: bigint): { addr: bigint; mask: number } {
  const size = (end - start + 1n) & U64;
  // aligned_nrpages(start, size) = PAGE_ALIGN((start & ~PAGE_MASK) + size) >> VTD_PAGE_SHIFT
  const pages = ((((start & 0xfffn) + size) & U64) + 0xfffn) >> 12n;
  let aligned = 1n;
  while (aligned < pages) aligned <<= 1n;
  let mask = 0;
  while (1n << BigInt(mask) < aligned) mask++;
  const pfn = start >> 12n;
  const bitmask = aligned - 1n;
  if (bitmask & pfn) {
    const endPfn = (pfn + pages - 1n) & U64;
    const shared = ~(pfn ^ endPfn) & ~bitmask & U64;
    if (shared) {
      let m = 0;
      while (!((shared >> BigInt(m)) & 1n)) m++;
      mask = m;
    } else mask = MAX_AGAW_PFN_WIDTH;
  }
  const unit = 4096n << BigInt(Math.min(mask, 63));
  return { addr: mask >= 64 ? 0n : start - (start % unit), mask };
}

/** qi_desc_piotlb: page-selective-within-PASID (G = 11): DID, PASID, ADDR, IH, AM. */
function qiPiotlbDesc(did: number, pasid: number, addr: bigint, mask: number, ih: number): readonly [bigint, bigint] {
  const qw0 = (BigInt(pasid & 0xfffff) << 32n) | (BigInt(did) << 16n) | (3n << 4n) | 0x6n;
  const qw1 = (addr & ~0xfffn & U64) | (BigInt(ih & 1) << 6n) | BigInt(mask & 0x3f);
  return [qw0, qw1];
}

/** qi_desc_piotlb_all: PASID-selective (G = 10). */
function qiPiotlbAllDesc(did: number, pasid: number): readonly [bigint, bigint] {
  return [(BigInt(pasid & 0xfffff) << 32n) | (BigInt(did) << 16n) | (2n << 4n) | 0x6n, 0n];
}

/**
 * cache_tag_flush_range for a nested domain (intel_domain_use_piotlb): per tag, in list order, a
 * PASID-based IOTLB descriptor (the whole space — start 0, end ULONG_MAX — or a mask of
 * MAX_AGAW_PFN_WIDTH becomes PASID-selective) and, for a device with ATS, its device-TLB
 * descriptor for the same range, batched into one submission.
 * [deviation: a range whose aligned address is not exact below 2^53 flushes the whole device
 * TLB: the device-TLB descriptor builder takes numbers]
 */
export function nestedCacheTagFlushRange(d: NestedDomain, start: bigint, end: bigint, ih: number): void {
  let addr = 0n;
  let mask = MAX_AGAW_PFN_WIDTH;
  if (!(start === 0n && end === U64)) ({ addr, mask } = psiAligned64(start, end));
  const all = mask >= MAX_AGAW_PFN_WIDTH;
  const devAll = all || addr > BigInt(Number.MAX_SAFE_INTEGER);
  const descs = d.cacheTags().map((t) =>
    t.dev
      ? d.owner.devtlbTagDesc(t.dev, t.pasid, devAll ? 0 : Number(addr), devAll ? MAX_AGAW_PFN_WIDTH : mask)
      : all ? qiPiotlbAllDesc(d.id, t.pasid) : qiPiotlbDesc(d.id, t.pasid, addr, mask, ih),
  );
  if (descs.length) d.owner.qiSubmitSync(descs);
}

/**
 * intel_nested_cache_invalidate_user: the entries in order; the first bad one stops the loop
 * and its errno is returned; `array.entryNum` becomes the number handled before it.
 *   data type not VTD_S1                      → EINVAL (nothing handled)
 *   entry copy (iommu_copy_struct_from_user_array): entry_len ≠ 24 → EINVAL, unreadable → EFAULT
 *   flags other than LEAF, or __reserved ≠ 0  → EOPNOTSUPP
 *   addr not 4 KiB aligned, or npages = U64_MAX with addr ≠ 0 → EINVAL
 * Each good entry flushes [addr, addr + npages * 4 KiB - 1] with IH = LEAF.
 */
export function intelNestedCacheInvalidateUser(d: NestedDomain, array: IommuUserDataArray): Rc {
  const where = "intel_nested_cache_invalidate_user";
  let processed = 0;
  let ret: Rc = 0;
  if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) {
    ret = err("EINVAL", where, `data_type ${array.type} is not IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 (0)`);
  } else {
    for (let index = 0; index < array.entryNum; index++) {
      const bytes = iommuCopyStructFromUserArray(array, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, index, VTD_S1_INV_SIZE, VTD_S1_INV_SIZE, "iommu_copy_struct_from_user_array");
      if (isErr(bytes)) {
        ret = bytes;
        break;
      }
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const addr = v.getBigUint64(0, true);
      const npages = v.getBigUint64(8, true);
      const flags = v.getUint32(16, true);
      const reserved = v.getUint32(20, true);
      if (flags & ~IOMMU_VTD_INV_FLAGS_LEAF || reserved) {
        ret = err("EOPNOTSUPP", where, `entry ${index}: ${reserved ? "__reserved must be 0" : `flags 0x${flags.toString(16)}: only IOMMU_VTD_INV_FLAGS_LEAF is defined`}`);
        break;
      }
      if (addr % BigInt(PAGE) || (npages === U64 && addr)) {
        ret = err("EINVAL", where, `entry ${index}: ${addr % BigInt(PAGE) ? `addr 0x${addr.toString(16)} is not 4 KiB aligned` : "npages = U64_MAX (everything) needs addr 0"}`);
        break;
      }
      // addr + nrpages_to_size(npages) - 1, in u64 arithmetic
      const end = (addr + ((npages << 12n) & U64) - 1n) & U64;
      nestedCacheTagFlushRange(d, addr, end, flags & IOMMU_VTD_INV_FLAGS_LEAF);
      processed++;
    }
  }
  array.entryNum = processed;
  return ret;
}

/**
 * parent_domain_set_dirty_tracking: the nested children's PASID entries follow the parent's
 * SSADE (intel_pasid_setup_dirty_tracking accepts PGTT_NESTED): flip it, then PASID-cache and
 * domain-selective IOTLB invalidation with the child's DID.
 */
export function nestedSetDirtyTracking(iommu: IntelIommu, s2: DmarDomain, enable: boolean): void {
  const { mem } = iommu.ctx;
  for (const child of s2.s1Domains) {
    for (const { dev, pasid } of (child as NestedDomain).attachments.values()) {
      const pe = iommu.pasidEntryAddr(dev, pasid);
      const q0 = mem.read64n(pe);
      const ssade = 1n << 9n;
      if (((q0 & ssade) !== 0n) === enable) continue;
      mem.write64n(pe, enable ? q0 | ssade : q0 & ~ssade);
      iommu.pasidCacheFlushPasid(child.id, pasid);
      iommu.iotlbFlushDomain(child.id);
    }
  }
}
