/**
 * VT-d scalable-mode translation structures as bytes in memory: root entry, scalable-mode context
 * entry, PASID-directory entry, 512-bit PASID-table entry and the second-stage paging entry.
 *
 * Each layout is written once here, with its source; encoders are used by the driver (driver.ts,
 * which mirrors drivers/iommu/intel/{iommu.c,pasid.c,pasid.h}), decoders by the hardware walker
 * (walk.ts, which mirrors qemu/qemu hw/i386/intel_iommu.c). Spec chapter numbers are VT-d
 * Architecture Specification rev. 4.x/5.0 chapter 9 ("Translation Structure Formats"), as quoted
 * by Linux and QEMU comments; the bit positions are witnessed by that code (reference §1.2-1.6).
 *
 * Two representations, by cost:
 *  - structure entries (root/context/PASID) are built as bigint qwords: the driver writes them
 *    rarely and tests compare them byte-exactly;
 *  - page-table entries travel as two unsigned 32-bit halves (lo = bits 31:0, hi = bits 63:32),
 *    because the walker and the driver's map loop touch millions of them; `number` arithmetic on
 *    halves stays exact and allocation-free.
 */
import type { U64 } from "../../trace/events.ts";

const TWO32 = 4294967296;

/** A 64-bit value from halves, for event payloads: exact number when < 2^53, else hex text. */
export function u64hl(hi: number, lo: number): U64 {
  if (hi < 0x200000) return hi * TWO32 + lo;
  return "0x" + hi.toString(16) + lo.toString(16).padStart(8, "0");
}

/** Address bits 51:12 of an entry given as halves. */
export function entryAddr(lo: number, hi: number): number {
  return ((lo & 0xfffff000) >>> 0) + (hi & 0xfffff) * TWO32;
}

// ---- 9.1 root entry (scalable mode, 128 bits) --------------------------------------------------------
// [V-code: QEMU vtd_root_entry_present / vtd_get_context_entry_from_root; Linux iommu_context_addr:
//  "if (devfn >= 0x80) { devfn -= 0x80; entry = &root->hi; }"]
//   bit 0      LP    lower context table present (devfn 0..127)
//   63:12      LCTP  lower context table pointer
//   bit 64     UP    upper context table present (devfn 128..255)
//   127:76     UCTP  upper context table pointer
//   others     reserved (fault 0x3A)
export const ROOT_ENTRY_SIZE = 16;
export const ROOT_P = 1;
/** Reserved bits of either half of a scalable-mode root entry (11:1). */
export const ROOT_RSVD_LO = 0xffe;

/** Encode one half (lo for devfn < 128, hi for devfn ≥ 128) of a root entry. */
export function rootEntryHalf(ctp: number): bigint {
  return BigInt(ctp) | 1n;
}

// ---- 9.4 scalable-mode context entry (256 bits) ------------------------------------------------------
// [V-code: Linux iommu.h context_set_sm_* / context_pdts; QEMU VTD_SM_CONTEXT_ENTRY_*]
//   bit 0      P       present
//   bit 1      FPD     fault processing disable
//   bit 2      DTE     device-TLB enable (translation requests allowed)
//   bit 3      PASIDE  requests with PASID allowed (else fault 0x45)
//   bit 4      PRE     page requests allowed
//   8:5        reserved
//   11:9       PDTS    PASID directory size: 2^(PDTS+7) entries
//   63:12      PASIDDIRPTR
//   83:64      RID_PASID  PASID used by requests without PASID
//   84         RID_PRIV
//   255:85     reserved (QEMU VTD_SM_CONTEXT_ENTRY_RSVD_VAL1 = 0xffffffffffe00000 for qw1; qw2/qw3 zero)
/** Scalable-mode context entries are 32 bytes, 128 per 4 KiB table (Linux: `devfn *= 2` over 16-byte entries). */
export const SM_CONTEXT_ENTRY_SIZE = 32;
export const CTX_P = 1 << 0;
export const CTX_FPD = 1 << 1;
export const CTX_DTE = 1 << 2;
export const CTX_PASIDE = 1 << 3;
export const CTX_PRE = 1 << 4;
export const CTX_RSVD_LO = 0x1e0; // bits 8:5
export const CTX_PDTS_SHIFT = 9;
/** qw1 (bits 127:64): bits 20:0 are RID_PASID and RID_PRIV; the rest of qw1, and qw2/qw3, are reserved. */
export const CTX_RSVD_LO1 = 0xffe00000;

export interface SmContextEntry {
  present: boolean;
  fpd: boolean;
  dte: boolean;
  paside: boolean;
  pre: boolean;
  /** 0..7: directory of 2^(pdts+7) entries */
  pdts: number;
  pasidDirPtr: number;
  ridPasid: number;
}

/** Encode a scalable-mode context entry as four qwords (Linux context_entry_set_pasid_table). */
export function smContextEntryEncode(e: SmContextEntry): [bigint, bigint, bigint, bigint] {
  if (e.pasidDirPtr % 4096) throw new Error("context entry: PASID directory pointer must be 4 KiB aligned");
  if (e.pdts < 0 || e.pdts > 7) throw new Error("context entry: PDTS out of range");
  let lo = BigInt(e.pasidDirPtr) | (BigInt(e.pdts) << 9n);
  if (e.present) lo |= BigInt(CTX_P);
  if (e.fpd) lo |= BigInt(CTX_FPD);
  if (e.dte) lo |= BigInt(CTX_DTE);
  if (e.paside) lo |= BigInt(CTX_PASIDE);
  if (e.pre) lo |= BigInt(CTX_PRE);
  const hi = BigInt(e.ridPasid & 0xfffff);
  return [lo, hi, 0n, 0n];
}

// ---- 9.5 PASID directory entry (64 bits) -------------------------------------------------------------
// [V-code: QEMU vtd_pdire_present, VTD_PASID_DIR_FPD; Linux PASID_PTE_PRESENT]
//   bit 0   P     present
//   bit 1   FPD
//   11:2    reserved (fault 0x52)
//   63:12   PASID-table pointer
export const PASID_DIR_ENTRY_SIZE = 8;
export const PDE_P = 1;
export const PDE_FPD = 2;
export const PDE_RSVD_LO = 0xffc;
/** PASID[19:6] indexes the directory, PASID[5:0] the table (Linux PASID_PDE_SHIFT 6). */
export const PASID_PDE_SHIFT = 6;
export const PASID_PTE_MASK = 0x3f;

export function pasidDirEntryEncode(tablePa: number): bigint {
  if (tablePa % 4096) throw new Error("PASID directory entry: table pointer must be 4 KiB aligned");
  return BigInt(tablePa) | 1n;
}

// ---- 9.6 scalable-mode PASID-table entry (512 bits) ---------------------------------------------------
// [V-code: Linux pasid.h / pasid.c pasid_set_*; QEMU VTD_PE_GET_*, VTD_SM_PASID_ENTRY_*]
//   qw0  bit 0     P       present (fault 0x59)
//        bit 1     FPD
//        4:2       AW      second-stage width: levels = 2 + AW (010 = 4-level, 48-bit)
//        8:6       PGTT    001 first-stage, 010 second-stage, 011 nested, 100 pass-through
//        bit 9     SSADE   second-stage A/D enable (Linux pasid_set_ssade, "SLADE")
//        63:12     SSPTPTR second-stage root table
//   qw1  15:0      DID     (bits 79:64)
//        bit 23    PWSNP   page-walk snoop (bit 87)
//        bit 24    PGSNP   page snoop (bit 88)
//   qw2  bit 0     SRE (128), 3:2 FLPM (131:130), bit 4 WPE (132), bit 7 EAFE (135), 63:12 FSPTPTR (191:140)
export const PASID_ENTRY_SIZE = 64;
export const PE_P = 1 << 0;
export const PE_FPD = 1 << 1;
export const PE_AW_SHIFT = 2;
export const PE_PGTT_SHIFT = 6;
export const PE_SSADE = 1 << 9;
/** qw0 bits 11:10 are reserved. */
export const PE_RSVD_LO0 = 0xc00;
/** qw1 halves: bits 22:16 and 31:25 of the low half, all of the high half, are reserved. */
export const PE_PWSNP = 1 << 23;
export const PE_PGSNP = 1 << 24;
export const PE_RSVD_LO1 = 0xfe7f0000;

export const PGTT_FS = 0b001;
export const PGTT_SS = 0b010;
export const PGTT_NESTED = 0b011;
export const PGTT_PT = 0b100;
/** AW = 010: 4-level, 48-bit second-stage tables (the only width CAP.SAGAW reports). */
export const AW_4LEVEL = 0b010;

export interface PasidEntry {
  present: boolean;
  fpd: boolean;
  aw: number;
  pgtt: number;
  ssade: boolean;
  ssptptr: number;
  did: number;
  pwsnp: boolean;
  pgsnp: boolean;
  // ---- first-stage fields (qw2), used by first-stage and nested (PGTT 001 / 011) entries ----
  /** FSPTPTR: the first-stage root table (a GPA in nested mode) */
  fsptptr?: number | bigint;
  /** FLPM: 0 = 4-level (48-bit), 1 = 5-level (57-bit) */
  flpm?: number;
  sre?: boolean;
  wpe?: boolean;
  eafe?: boolean;
}

// qw2 (bits 191:128) of a scalable-mode PASID entry [V-code: Linux pasid.h pasid_set_sre (bit 128),
// pasid_set_flpm (131:130), pasid_set_wpe (132), pasid_set_eafe (135), pasid_set_flptr (191:140)]
export const PE2_SRE = 1 << 0;
export const PE2_FLPM_SHIFT = 2;
export const PE2_WPE = 1 << 4;
/** bit 133, NXE: deprecated with execute requests; ignored (Linux stopped setting it) */
export const PE2_NXE = 1 << 5;
export const PE2_EAFE = 1 << 7;
/** qw2 bits 1, 6 and 11:8 are reserved (fault 0x5A) */
export const PE2_RSVD_LO = 0xf42;

/** Encode a PASID-table entry as eight qwords (qw3..qw7 stay 0). */
export function pasidEntryEncode(e: PasidEntry): bigint[] {
  if (e.ssptptr % 4096) throw new Error("PASID entry: SSPTPTR must be 4 KiB aligned");
  let q0 = BigInt(e.ssptptr) | (BigInt(e.aw & 7) << 2n) | (BigInt(e.pgtt & 7) << 6n);
  if (e.present) q0 |= BigInt(PE_P);
  if (e.fpd) q0 |= BigInt(PE_FPD);
  if (e.ssade) q0 |= BigInt(PE_SSADE);
  let q1 = BigInt(e.did & 0xffff);
  if (e.pwsnp) q1 |= BigInt(PE_PWSNP);
  if (e.pgsnp) q1 |= BigInt(PE_PGSNP);
  let q2 = 0n;
  if (e.fsptptr !== undefined) {
    // pasid_set_flptr writes bits 63:12 of the pointer as given (a GPA from user space in nested
    // mode: the low 12 bits are dropped, as Linux's `value & PAGE_MASK`)
    q2 |= BigInt.asUintN(64, BigInt(e.fsptptr)) & 0xfffffffffffff000n;
    q2 |= BigInt((e.flpm ?? 0) & 3) << BigInt(PE2_FLPM_SHIFT);
    if (e.sre) q2 |= BigInt(PE2_SRE);
    if (e.wpe) q2 |= BigInt(PE2_WPE);
    if (e.eafe) q2 |= BigInt(PE2_EAFE);
  }
  return [q0, q1, q2, 0n, 0n, 0n, 0n, 0n];
}

/** Decode the first-stage fields of a PASID entry's qw2 (tests and views). */
export function pasidEntryDecodeFs(q2: bigint): { fsptptr: number; flpm: number; sre: boolean; wpe: boolean; eafe: boolean } {
  const lo = Number(q2 & 0xffffffffn);
  return {
    fsptptr: Number(q2 & 0x000ffffffffff000n),
    flpm: (lo >>> PE2_FLPM_SHIFT) & 3,
    sre: (lo & PE2_SRE) !== 0,
    wpe: (lo & PE2_WPE) !== 0,
    eafe: (lo & PE2_EAFE) !== 0,
  };
}

/** Decode the second-stage view of a PASID entry from qw0 and qw1 (tests and views). */
export function pasidEntryDecode(q0: bigint, q1: bigint): PasidEntry {
  const lo0 = Number(q0 & 0xffffffffn);
  const lo1 = Number(q1 & 0xffffffffn);
  return {
    present: (lo0 & PE_P) !== 0,
    fpd: (lo0 & PE_FPD) !== 0,
    aw: (lo0 >>> PE_AW_SHIFT) & 7,
    pgtt: (lo0 >>> PE_PGTT_SHIFT) & 7,
    ssade: (lo0 & PE_SSADE) !== 0,
    ssptptr: Number(q0 & 0x000ffffffffff000n),
    did: lo1 & 0xffff,
    pwsnp: (lo1 & PE_PWSNP) !== 0,
    pgsnp: (lo1 & PE_PGSNP) !== 0,
  };
}

// ---- 9.8 second-stage paging entry (64 bits) ------------------------------------------------------------
// [V-code: Linux iommu.h DMA_PTE_READ/WRITE/LARGE_PAGE/SNP, DMA_SL_PTE_DIRTY_BIT 9;
//  generic_pt/fmt/vtdss.h "unique in not having a designated present bit"; QEMU vtd_spte_rsvd*]
//   bit 0    R     read
//   bit 1    W     write
//   bit 7    PS    leaf at PDPTE (1 GiB) / PDE (2 MiB); reserved in PML4E
//   bit 8    A     accessed (set by hardware only with PASID-entry SSADE = 1)
//   bit 9    D     dirty (ditto; leaves only, on writes)
//   bit 11   SNP   snoop (leaves; reserved in non-leaf entries)
//   51:12    address of the next table or of the page
// Present iff R | W. Non-leaf entries are written with R | W (Linux __domain_mapping / pfn_to_dma_pte).
export const SL_R = 1 << 0;
export const SL_W = 1 << 1;
export const SL_PS = 1 << 7;
export const SL_A = 1 << 8;
export const SL_D = 1 << 9;
export const SL_SNP = 1 << 11;

/** Level → bits of IOVA below that level's index: 1 (PT) 12, 2 (PD) 21, 3 (PDPT) 30, 4 (PML4) 39. */
export function levelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

/** Bytes mapped by one entry of `level`: 4 KiB, 2 MiB, 1 GiB, 512 GiB. */
export function levelSize(level: number): number {
  return 2 ** levelShift(level);
}

/** Index of `iova` in the table of `level` (the 9|9|9|9|12 split). */
export function levelIndex(iova: number, level: number): number {
  return Math.floor(iova / 2 ** levelShift(level)) % 512;
}

/**
 * Reserved-bit masks of a second-stage entry for a host address width of `haw` bits (QEMU
 * vtd_spte_rsvd / vtd_spte_rsvd_large with snoop control on). Returned as [lo mask, hi mask].
 */
export function ssReservedMasks(haw: number, level: number, leaf: boolean): [number, number] {
  // address bits haw..51 (hi bits haw-32..19) and bit 62 are reserved at every level;
  // bits 63 and 61:52 are ignored (QEMU VTD_SL_IGN_COM 0xbff0000000000000)
  const hi = ((0xfffff & ~((1 << (haw - 32)) - 1)) | (1 << 30)) >>> 0;
  let lo = 0;
  if (!leaf) lo |= SL_SNP; // SNP only means something in leaves
  if (level === 4) lo |= SL_PS;
  if (leaf && level === 2) lo |= 0x1ff000; // 2 MiB page: address bits 20:12 must be 0
  if (leaf && level === 3) lo |= 0x3ffff000; // 1 GiB page: address bits 29:12 must be 0
  return [lo >>> 0, hi];
}

const BITS_TABLE: string[] = (() => {
  const t: string[] = [];
  for (let i = 0; i < 64; i++) {
    const parts: string[] = [];
    if (i & 1) parts.push("R");
    if (i & 2) parts.push("W");
    if (i & 8) parts.push("A");
    if (i & 16) parts.push("D");
    if (i & 4) parts.push("PS");
    if (i & 32) parts.push("SNP");
    t.push(i & 3 ? parts.join("|") : "-");
  }
  return t;
})();

/** Decoded flags of a second-stage entry, "R|W|A|D|PS|SNP" order; "-" when not present (R = W = 0). */
export function ssBits(lo: number): string {
  const i = (lo & 3) | ((lo >>> 7) & 1) << 2 | ((lo >>> 8) & 3) << 3 | ((lo >>> 11) & 1) << 5;
  return BITS_TABLE[i];
}

/** Encode a second-stage entry into halves: address bits 51:12 plus the low flag bits. */
export function ssPteEncode(addr: number, flags: number, out: { lo: number; hi: number }): void {
  out.lo = ((addr % TWO32) | flags) >>> 0;
  out.hi = Math.floor(addr / TWO32);
}
