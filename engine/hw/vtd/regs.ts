/**
 * The VT-d register file, declared rather than coded (after qemu/qemu hw/i386/intel_iommu.c
 * `vtd_init` / `vtd_define_long` / `vtd_define_quad` and intel_iommu_internal.h; bit positions
 * cross-checked against torvalds/linux drivers/iommu/intel/iommu.h `cap_*` / `ecap_*` / `DMA_*`).
 *
 * Every register has a reset value, a write mask (bits software may set), a write-1-to-clear mask
 * and a write-only mask (bits that always read 0). `write32`/`write64` are the guest view: they
 * honour the masks, like QEMU's `vtd_set_long`. `get*`/`set*Raw` are the model view: the hardware
 * itself updates status bits through them. Side effects of a write (GCMD commands, IQT, fault
 * record clearing) live in hw.ts, which calls the guest-view write first.
 *
 * 64-bit register values are bigints: registers are touched by the driver and by fault recording,
 * never on the DMA hot path.
 *
 * Not modelled (LOG_UNIMP in QEMU terms): register-based invalidation (CCMD, IOTLB_REG: the
 * driver uses queued invalidation only), protected memory regions, advanced fault logging,
 * interrupt remapping (IRTA).
 */

// ---- register offsets (VT-d spec 11.4; Linux include/linux/intel-iommu.h DMAR_*_REG) --------------
export const DMAR_VER_REG = 0x00; // architecture version
export const DMAR_CAP_REG = 0x08; // capabilities
export const DMAR_ECAP_REG = 0x10; // extended capabilities
export const DMAR_GCMD_REG = 0x18; // global command
export const DMAR_GSTS_REG = 0x1c; // global status
export const DMAR_RTADDR_REG = 0x20; // root table address
export const DMAR_CCMD_REG = 0x28; // context command (register-based; not modelled)
export const DMAR_FSTS_REG = 0x34; // fault status
export const DMAR_FECTL_REG = 0x38; // fault event control
export const DMAR_FEDATA_REG = 0x3c; // fault event interrupt data
export const DMAR_FEADDR_REG = 0x40; // fault event interrupt address
export const DMAR_FEUADDR_REG = 0x44; // fault event upper address
export const DMAR_PMEN_REG = 0x64; // protected memory enable
export const DMAR_IQH_REG = 0x80; // invalidation queue head
export const DMAR_IQT_REG = 0x88; // invalidation queue tail
export const DMAR_IQA_REG = 0x90; // invalidation queue address
export const DMAR_ICS_REG = 0x9c; // invalidation completion status
export const DMAR_IECTL_REG = 0xa0; // invalidation event control
export const DMAR_IEDATA_REG = 0xa4;
export const DMAR_IEADDR_REG = 0xa8;
export const DMAR_IEUADDR_REG = 0xac;
/** Page request queue (VT-d 11.4.10; Linux DMAR_PQH_REG …; reference §1.12): head, tail, address. */
export const DMAR_PQH_REG = 0xc0;
export const DMAR_PQT_REG = 0xc8;
export const DMAR_PQA_REG = 0xd0;
export const DMAR_PRS_REG = 0xdc; // page request status
export const DMAR_PECTL_REG = 0xe0; // page request event control
export const DMAR_PEDATA_REG = 0xe4;
export const DMAR_PEADDR_REG = 0xe8;
export const DMAR_PEUADDR_REG = 0xec;
/** IOTLB registers (ECAP.IRO × 16): IVA, then IOTLB_REG 8 bytes above. */
export const DMAR_IVA_REG = 0xf0;
export const DMAR_IOTLB_REG = 0xf8;
/** First fault recording register (CAP.FRO × 16), as QEMU places it. */
export const DMAR_FRCD_REG_OFFSET = 0x220;
/** Each fault record is 128 bits. */
export const DMAR_FRCD_REG_LEN = 16;

// ---- fields -------------------------------------------------------------------------------------
/** A register field: `width` bits from bit `shift`. */
export interface RegField {
  readonly shift: number;
  readonly width: number;
}

/** CAP_REG fields (Linux iommu.h cap_*; reference §1.4). */
export const CAP = {
  ND: { shift: 0, width: 3 }, // number of domain ids: 2^(4 + 2·ND)
  AFL: { shift: 3, width: 1 }, // advanced fault logging
  RWBF: { shift: 4, width: 1 }, // required write-buffer flushing
  PLMR: { shift: 5, width: 1 }, // protected low-memory region
  PHMR: { shift: 6, width: 1 }, // protected high-memory region
  CM: { shift: 7, width: 1 }, // caching mode: not-present entries may be cached
  SAGAW: { shift: 8, width: 5 }, // supported adjusted guest address widths: bit 1 = 3-level, bit 2 = 4-level, bit 3 = 5-level
  MGAW: { shift: 16, width: 6 }, // maximum guest address width − 1
  ZLR: { shift: 22, width: 1 }, // zero-length read
  FRO: { shift: 24, width: 10 }, // fault-recording register offset / 16
  SLLPS: { shift: 34, width: 4 }, // second-stage large pages: bit 0 = 2 MiB, bit 1 = 1 GiB
  PSI: { shift: 39, width: 1 }, // page-selective invalidation
  NFR: { shift: 40, width: 8 }, // number of fault-recording registers − 1
  MAMV: { shift: 48, width: 6 }, // maximum address-mask value for page-selective invalidation
  DWD: { shift: 54, width: 1 }, // write draining
  DRD: { shift: 55, width: 1 }, // read draining
  FS1GP: { shift: 56, width: 1 }, // first-stage 1 GiB pages
  PI: { shift: 59, width: 1 }, // posted interrupts
  FS5LP: { shift: 60, width: 1 }, // first-stage 5-level paging
  ESIRTPS: { shift: 62, width: 1 },
  ESRTPS: { shift: 63, width: 1 },
} as const satisfies Record<string, RegField>;

/** ECAP_REG fields (Linux iommu.h ecap_*; reference §1.4). */
export const ECAP = {
  C: { shift: 0, width: 1 }, // page-walk coherency (legacy mode)
  QI: { shift: 1, width: 1 }, // queued invalidation
  DT: { shift: 2, width: 1 }, // device-TLB (ATS)
  IR: { shift: 3, width: 1 }, // interrupt remapping
  EIM: { shift: 4, width: 1 }, // extended interrupt mode
  PT: { shift: 6, width: 1 }, // pass-through
  SC: { shift: 7, width: 1 }, // snoop control
  IRO: { shift: 8, width: 10 }, // IOTLB register offset / 16
  MHMV: { shift: 20, width: 4 }, // maximum handle mask value (interrupt entry cache)
  MTS: { shift: 25, width: 1 }, // memory type support
  NEST: { shift: 26, width: 1 }, // nested translation
  PRS: { shift: 29, width: 1 }, // page requests
  ERS: { shift: 30, width: 1 }, // execute requests (deprecated)
  SRS: { shift: 31, width: 1 }, // supervisor requests
  NWFS: { shift: 33, width: 1 }, // no write flag
  EAFS: { shift: 34, width: 1 }, // extended accessed flag
  PSS: { shift: 35, width: 5 }, // PASID size supported − 1
  PASID: { shift: 40, width: 1 }, // process address space id
  DIT: { shift: 41, width: 1 }, // device-TLB invalidation throttle
  PDS: { shift: 42, width: 1 }, // page-request drain
  SMTS: { shift: 43, width: 1 }, // scalable-mode translation
  VCS: { shift: 44, width: 1 }, // virtual command
  SLADS: { shift: 45, width: 1 }, // second-stage accessed/dirty
  SLTS: { shift: 46, width: 1 }, // second-stage translation
  FLTS: { shift: 47, width: 1 }, // first-stage translation
  SMPWC: { shift: 48, width: 1 }, // scalable-mode page-walk coherency
  RPS: { shift: 49, width: 1 }, // RID_PASID support
} as const satisfies Record<string, RegField>;

/** GCMD_REG command bits and the GSTS_REG status bits mirroring them (QEMU VTD_GCMD_*, VTD_GSTS_*). */
export const GCMD_TE = 1 << 31; // translation enable
export const GCMD_SRTP = 1 << 30; // set root table pointer
export const GCMD_QIE = 1 << 26; // queued invalidation enable
export const GSTS_TES = 1 << 31;
export const GSTS_RTPS = 1 << 30;
export const GSTS_QIES = 1 << 26;

/** RTADDR_REG: bit 10 TTM/SMT selects scalable-mode root/context tables. */
export const RTADDR_SMT = 1n << 10n;

/** FSTS_REG (Linux DMA_FSTS_*). */
export const FSTS_PFO = 1 << 0; // primary fault overflow
export const FSTS_PPF = 1 << 1; // primary pending fault (RO: OR of all F bits)
export const FSTS_IQE = 1 << 4; // invalidation queue error
export const FSTS_ICE = 1 << 5; // invalidation completion error
export const FSTS_ITE = 1 << 6; // invalidation time-out error
export const FSTS_PRO = 1 << 7; // page request overflow (lives in PRS on newer parts)
export const FSTS_FRI: RegField = { shift: 8, width: 8 }; // fault record index

/** FECTL_REG / IECTL_REG: interrupt mask and pending. */
export const FECTL_IM = 1 << 31;
export const FECTL_IP = 1 << 30;

/** PRS_REG (Linux DMA_PRS_PPR / DMA_PRS_PRO): pending page request, page request overflow. W1C. */
export const PRS_PPR = 1 << 0;
export const PRS_PRO = 1 << 1;
/** PQA_REG: base 63:12, PQS 2:0 (2^PQS 4 KiB pages of 32-byte descriptors). */
export const PQA_PQS: RegField = { shift: 0, width: 3 };

/** ICS_REG: invalidation wait descriptor complete. */
export const ICS_IWC = 1 << 0;

/** IQA_REG: base 63:12, DW bit 11 (256-bit descriptors), QS 2:0 (2^(QS+8) 128-bit slots). */
export const IQA_DW = 1n << 11n;
export const IQA_QS: RegField = { shift: 0, width: 3 };

/**
 * Fault recording register, as two 64-bit halves (reference §1.10; Linux dma_frcd_*; QEMU VTD_FRCD_*).
 * Low qword: FI (faulting page address) 63:12. High qword bits (127:64 → 63:0):
 */
export const FRCD_HI = {
  SID: { shift: 0, width: 16 }, // 79:64 requester id
  PP: { shift: 31, width: 1 }, // 95 PASID present
  FR: { shift: 32, width: 8 }, // 103:96 fault reason
  PV: { shift: 40, width: 20 }, // 123:104 PASID value
  T: { shift: 62, width: 1 }, // 126 type: 1 = read, 0 = write
  F: { shift: 63, width: 1 }, // 127 fault (valid); write 1 to clear
} as const satisfies Record<string, RegField>;
export const FRCD_F = 1n << 63n;

/** `value` placed in `f` (bigint, for building register values). */
export function fieldVal(f: RegField, value: number | bigint): bigint {
  const v = BigInt(value);
  const max = (1n << BigInt(f.width)) - 1n;
  if (v < 0n || v > max) throw new Error(`register field value ${v} does not fit ${f.width} bits`);
  return v << BigInt(f.shift);
}

/** Field `f` of a register value. */
export function fieldGet(reg: bigint, f: RegField): number {
  return Number((reg >> BigInt(f.shift)) & ((1n << BigInt(f.width)) - 1n));
}

// ---- what this unit reports -----------------------------------------------------------------------
/** Knob-dependent parts of the capability registers. */
export interface VtdCapConfig {
  /** number of fault recording registers (CAP.NFR + 1) */
  faultRecords: number;
}

/** Host address width: the simulated physical address space is 46 bits (engine/hw/memory.ts). */
export const VTD_HAW = 46;
/** Second-stage input width of every domain: 4-level tables, 48 bits (PASID entry AW = 010). */
export const VTD_AGAW_BITS = 48;
/** Maximum address-mask value for page-selective invalidation (QEMU VTD_MAMV): 2^18 pages = 1 GiB. */
export const VTD_MAMV = 18;
/** Implemented PASID width: 20 bits (ECAP.PSS = 19). */
export const VTD_PASID_BITS = 20;

/**
 * CAP_REG of the simulated unit, one field per line (the shape of QEMU `vtd_cap_init`). Every
 * value describes what the model actually does; a field the model does not implement is 0.
 */
export function vtdCapInit(cfg: VtdCapConfig): bigint {
  let cap = 0n;
  cap |= fieldVal(CAP.ND, 6); // 2^(4+2·6) = 65536 domain ids: 16-bit DIDs (Linux cap_ndoms)
  cap |= fieldVal(CAP.AFL, 0); // no advanced fault logging: primary fault records only
  cap |= fieldVal(CAP.RWBF, 0); // no write-buffer flushing needed
  cap |= fieldVal(CAP.PLMR, 0); // no protected memory regions
  cap |= fieldVal(CAP.PHMR, 0);
  cap |= fieldVal(CAP.CM, 0); // caching mode off: not-present entries are never cached
  cap |= fieldVal(CAP.SAGAW, 0b00100); // 4-level (48-bit) second-stage tables only
  cap |= fieldVal(CAP.MGAW, VTD_AGAW_BITS - 1); // 48-bit maximum guest address width
  cap |= fieldVal(CAP.ZLR, 0);
  cap |= fieldVal(CAP.FRO, DMAR_FRCD_REG_OFFSET / 16); // fault records at 0x220, as in QEMU
  cap |= fieldVal(CAP.SLLPS, 0b0011); // second-stage 2 MiB and 1 GiB leaves
  cap |= fieldVal(CAP.PSI, 1); // page-selective IOTLB invalidation
  cap |= fieldVal(CAP.NFR, cfg.faultRecords - 1); // knob `faultRecords`
  cap |= fieldVal(CAP.MAMV, VTD_MAMV); // PSI up to 2^18 pages; Linux falls back to DSI above
  cap |= fieldVal(CAP.DWD, 1); // write draining (Linux sets QI_IOTLB_DW)
  cap |= fieldVal(CAP.DRD, 1); // read draining (Linux sets QI_IOTLB_DR)
  cap |= fieldVal(CAP.FS1GP, 1); // first-stage 1 GiB pages (PDPTE with PS = 1): the nested walker (nested.ts) takes them
  cap |= fieldVal(CAP.PI, 0); // no posted interrupts
  // 5-level first-stage tables (PASID-entry FLPM = 01): the nested walker walks PML5 → PT, so a
  // nested HWPT with addr_width 57 attaches (intel_pasid_setup_nested checks cap_fl5lp_support).
  // IOVAs are exact only below 2^53 in this engine, so the top of a 57-bit space is not reachable.
  cap |= fieldVal(CAP.FS5LP, 1);
  return cap;
}

/** ECAP_REG of the simulated unit, one field per line. */
export function vtdEcapInit(): bigint {
  let ecap = 0n;
  ecap |= fieldVal(ECAP.C, 1); // walks snoop CPU caches: the driver needs no clflush
  ecap |= fieldVal(ECAP.QI, 1); // queued invalidation (the only invalidation interface modelled)
  ecap |= fieldVal(ECAP.DT, 1); // device-TLB: devices may use ATS (vfio0)
  ecap |= fieldVal(ECAP.IR, 0); // no interrupt remapping: 0xFEEx_xxxx writes pass as compatibility MSIs
  ecap |= fieldVal(ECAP.EIM, 0);
  ecap |= fieldVal(ECAP.PT, 1); // pass-through PASID entries (PGTT = 100)
  ecap |= fieldVal(ECAP.SC, 1); // snoop control: SNP / PGSNP honoured (ENFORCE_CACHE_COHERENCY)
  ecap |= fieldVal(ECAP.IRO, DMAR_IVA_REG / 16); // IOTLB registers at 0xf0 (declared, not used)
  ecap |= fieldVal(ECAP.MHMV, 0);
  ecap |= fieldVal(ECAP.NEST, 1); // nested translation (PGTT = 011): NEST_PARENT domains and nested HWPTs (nested.ts)
  ecap |= fieldVal(ECAP.PRS, 1); // page requests (vfio0 has PRI)
  ecap |= fieldVal(ECAP.ERS, 0); // execute requests: removed from the architecture
  // no supervisor requests: every request is user-privilege (PM = 0), as in QEMU, so a nested
  // HWPT with IOMMU_VTD_S1_SRE is refused at attach (EINVAL, intel_pasid_setup_nested)
  ecap |= fieldVal(ECAP.SRS, 0);
  // honours the NW (no write) flag of ATS translation requests: a read's completion grants no W,
  // so a device's later write asks again and the walk sets D (dirty tracking stays exact with ATS)
  ecap |= fieldVal(ECAP.NWFS, 1);
  ecap |= fieldVal(ECAP.PDS, 1); // page-request drain: the PD bit of a wait descriptor (intel_iommu_drain_pasid_prq)
  ecap |= fieldVal(ECAP.EAFS, 0); // no extended accessed flag: IOMMU_VTD_S1_EAFE is refused at attach (EINVAL)
  ecap |= fieldVal(ECAP.PSS, VTD_PASID_BITS - 1); // 20-bit PASIDs
  ecap |= fieldVal(ECAP.PASID, 1); // requests with PASID
  ecap |= fieldVal(ECAP.SMTS, 1); // scalable-mode translation (the only mode modelled)
  ecap |= fieldVal(ECAP.SLADS, 1); // second-stage A/D bits (dirty tracking)
  ecap |= fieldVal(ECAP.SLTS, 1); // second-stage translation
  ecap |= fieldVal(ECAP.FLTS, 1); // first-stage translation: walked inside nested (PGTT = 011) entries; FS-only PGTT 001 is not modelled
  ecap |= fieldVal(ECAP.SMPWC, 1); // scalable-mode page walks are coherent (Linux sets PWSNP)
  ecap |= fieldVal(ECAP.RPS, 0); // RID_PASID is always 0
  return ecap;
}

// ---- the register file ------------------------------------------------------------------------------
/** One declared register (QEMU vtd_define_long / vtd_define_quad + the _wo variants). */
export interface RegDecl {
  readonly name: string;
  readonly off: number;
  readonly size: 4 | 8;
  readonly reset: bigint;
  /** bits software may write */
  readonly wmask: bigint;
  /** bits that are write-1-to-clear */
  readonly w1cmask: bigint;
  /** bits that read as 0 whatever was written (command bits) */
  readonly womask?: bigint;
}

/** The register map of the unit, in offset order (values after QEMU `vtd_init`). */
export function vtdRegDecls(cap: bigint, ecap: bigint, faultRecords: number): RegDecl[] {
  const d: RegDecl[] = [
    { name: "VER_REG", off: DMAR_VER_REG, size: 4, reset: 0x30n, wmask: 0n, w1cmask: 0n }, // 3.0: first revision with scalable mode
    { name: "CAP_REG", off: DMAR_CAP_REG, size: 8, reset: cap, wmask: 0n, w1cmask: 0n },
    { name: "ECAP_REG", off: DMAR_ECAP_REG, size: 8, reset: ecap, wmask: 0n, w1cmask: 0n },
    { name: "GCMD_REG", off: DMAR_GCMD_REG, size: 4, reset: 0n, wmask: 0xff800000n, w1cmask: 0n, womask: 0xff800000n },
    { name: "GSTS_REG", off: DMAR_GSTS_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: 0n },
    { name: "RTADDR_REG", off: DMAR_RTADDR_REG, size: 8, reset: 0n, wmask: 0xfffffffffffffc00n, w1cmask: 0n },
    { name: "CCMD_REG", off: DMAR_CCMD_REG, size: 8, reset: 0n, wmask: 0n, w1cmask: 0n }, // register-based invalidation not modelled
    { name: "FSTS_REG", off: DMAR_FSTS_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: BigInt(FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE | FSTS_PRO) },
    { name: "FECTL_REG", off: DMAR_FECTL_REG, size: 4, reset: BigInt(FECTL_IM >>> 0), wmask: BigInt(FECTL_IM >>> 0), w1cmask: 0n },
    { name: "FEDATA_REG", off: DMAR_FEDATA_REG, size: 4, reset: 0n, wmask: 0xffffn, w1cmask: 0n },
    { name: "FEADDR_REG", off: DMAR_FEADDR_REG, size: 4, reset: 0n, wmask: 0xfffffffcn, w1cmask: 0n },
    { name: "FEUADDR_REG", off: DMAR_FEUADDR_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: 0n }, // RsvdZ without EIM
    { name: "PMEN_REG", off: DMAR_PMEN_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: 0n }, // RO: no PLMR/PHMR
    { name: "IQH_REG", off: DMAR_IQH_REG, size: 8, reset: 0n, wmask: 0n, w1cmask: 0n }, // hardware-owned
    { name: "IQT_REG", off: DMAR_IQT_REG, size: 8, reset: 0n, wmask: 0x7fff0n, w1cmask: 0n },
    { name: "IQA_REG", off: DMAR_IQA_REG, size: 8, reset: 0n, wmask: 0xfffffffffffff807n, w1cmask: 0n },
    { name: "ICS_REG", off: DMAR_ICS_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: BigInt(ICS_IWC) },
    { name: "IECTL_REG", off: DMAR_IECTL_REG, size: 4, reset: BigInt(FECTL_IM >>> 0), wmask: BigInt(FECTL_IM >>> 0), w1cmask: 0n },
    { name: "IEDATA_REG", off: DMAR_IEDATA_REG, size: 4, reset: 0n, wmask: 0xffffffffn, w1cmask: 0n },
    { name: "IEADDR_REG", off: DMAR_IEADDR_REG, size: 4, reset: 0n, wmask: 0xfffffffcn, w1cmask: 0n },
    { name: "IEUADDR_REG", off: DMAR_IEUADDR_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: 0n },
    // the page request queue (prq.ts): software moves PQH, the hardware PQT (Linux zeroes both at enable)
    { name: "PQH_REG", off: DMAR_PQH_REG, size: 8, reset: 0n, wmask: 0x7ffe0n, w1cmask: 0n },
    { name: "PQT_REG", off: DMAR_PQT_REG, size: 8, reset: 0n, wmask: 0x7ffe0n, w1cmask: 0n },
    { name: "PQA_REG", off: DMAR_PQA_REG, size: 8, reset: 0n, wmask: 0xfffffffffffff007n, w1cmask: 0n },
    { name: "PRS_REG", off: DMAR_PRS_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: BigInt(PRS_PPR | PRS_PRO) },
    { name: "PECTL_REG", off: DMAR_PECTL_REG, size: 4, reset: BigInt(FECTL_IM >>> 0), wmask: BigInt(FECTL_IM >>> 0), w1cmask: 0n },
    { name: "PEDATA_REG", off: DMAR_PEDATA_REG, size: 4, reset: 0n, wmask: 0xffffffffn, w1cmask: 0n },
    { name: "PEADDR_REG", off: DMAR_PEADDR_REG, size: 4, reset: 0n, wmask: 0xfffffffcn, w1cmask: 0n },
    { name: "PEUADDR_REG", off: DMAR_PEUADDR_REG, size: 4, reset: 0n, wmask: 0n, w1cmask: 0n },
    { name: "IVA_REG", off: DMAR_IVA_REG, size: 8, reset: 0n, wmask: 0n, w1cmask: 0n }, // register-based invalidation not modelled
    { name: "IOTLB_REG", off: DMAR_IOTLB_REG, size: 8, reset: 0n, wmask: 0n, w1cmask: 0n },
  ];
  for (let i = 0; i < faultRecords; i++) {
    const off = DMAR_FRCD_REG_OFFSET + i * DMAR_FRCD_REG_LEN;
    d.push({ name: `FRCD_REG_${i}_LO`, off, size: 8, reset: 0n, wmask: 0n, w1cmask: 0n });
    d.push({ name: `FRCD_REG_${i}_HI`, off: off + 8, size: 8, reset: 0n, wmask: 0n, w1cmask: FRCD_F });
  }
  return d;
}

/**
 * The register bytes plus their masks (QEMU IntelIOMMUState csr / wmask / w1cmask / womask).
 * Little-endian, byte-addressed, so a 64-bit register may be accessed as two 32-bit halves.
 */
export class VtdRegs {
  readonly size: number;
  readonly decls: readonly RegDecl[];
  private readonly csr: DataView;
  private readonly wmask: DataView;
  private readonly w1cmask: DataView;
  private readonly womask: DataView;

  constructor(decls: RegDecl[]) {
    this.decls = decls;
    const last = decls.reduce((m, r) => Math.max(m, r.off + r.size), 0);
    this.size = last;
    this.csr = new DataView(new ArrayBuffer(last));
    this.wmask = new DataView(new ArrayBuffer(last));
    this.w1cmask = new DataView(new ArrayBuffer(last));
    this.womask = new DataView(new ArrayBuffer(last));
    for (const r of decls) {
      if (r.size === 8) {
        this.csr.setBigUint64(r.off, r.reset, true);
        this.wmask.setBigUint64(r.off, r.wmask, true);
        this.w1cmask.setBigUint64(r.off, r.w1cmask, true);
        this.womask.setBigUint64(r.off, r.womask ?? 0n, true);
      } else {
        this.csr.setUint32(r.off, Number(r.reset), true);
        this.wmask.setUint32(r.off, Number(r.wmask), true);
        this.w1cmask.setUint32(r.off, Number(r.w1cmask), true);
        this.womask.setUint32(r.off, Number(r.womask ?? 0n), true);
      }
    }
  }

  private check(off: number, size: number): void {
    if (off < 0 || off + size > this.size || off % size !== 0) {
      throw new Error(`VT-d register access out of range or misaligned: 0x${off.toString(16)}/${size}`);
    }
  }

  // ---- model view (vtd_get_*_raw / vtd_set_*) ----
  get32(off: number): number {
    this.check(off, 4);
    return this.csr.getUint32(off, true);
  }
  get64(off: number): bigint {
    this.check(off, 8);
    return this.csr.getBigUint64(off, true);
  }
  set32Raw(off: number, v: number): void {
    this.check(off, 4);
    this.csr.setUint32(off, v >>> 0, true);
  }
  set64Raw(off: number, v: bigint): void {
    this.check(off, 8);
    this.csr.setBigUint64(off, BigInt.asUintN(64, v), true);
  }
  /** vtd_set_clear_mask_long: clear `clear`, then set `set`. */
  setClear32(off: number, clear: number, set: number): void {
    this.set32Raw(off, (this.get32(off) & ~clear) | set);
  }

  // ---- guest view ----
  /** Software read: write-only bits read as 0. */
  read32(off: number): number {
    this.check(off, 4);
    return (this.csr.getUint32(off, true) & ~this.womask.getUint32(off, true)) >>> 0;
  }
  read64(off: number): bigint {
    this.check(off, 8);
    return this.csr.getBigUint64(off, true) & ~this.womask.getBigUint64(off, true);
  }
  /** Software write: ((old & ~wmask) | (val & wmask)) & ~(w1cmask & val), as QEMU vtd_set_long. */
  write32(off: number, val: number): void {
    this.check(off, 4);
    const old = this.csr.getUint32(off, true);
    const wm = this.wmask.getUint32(off, true);
    const w1c = this.w1cmask.getUint32(off, true);
    this.csr.setUint32(off, (((old & ~wm) | (val & wm)) & ~(w1c & val)) >>> 0, true);
  }
  write64(off: number, val: bigint): void {
    this.check(off, 8);
    const v = BigInt.asUintN(64, val);
    const old = this.csr.getBigUint64(off, true);
    const wm = this.wmask.getBigUint64(off, true);
    const w1c = this.w1cmask.getBigUint64(off, true);
    this.csr.setBigUint64(off, ((old & ~wm) | (v & wm)) & ~(w1c & v), true);
  }
}
