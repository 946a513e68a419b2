/**
 * The VT-d first-stage paging entry: the x86 long-mode format (VT-d spec 9.7 "First-Stage Paging
 * Entries"; reference §1.5), as the hardware walker (nested.ts) decodes it and as a guest driver
 * writes it (engine/script/guest.ts). Bit positions are witnessed by Linux drivers/iommu/intel/
 * iommu.h (DMA_FL_PTE_PRESENT 0, DMA_PTE_WRITE 1, DMA_FL_PTE_US 2, DMA_FL_PTE_ACCESS 5,
 * DMA_FL_PTE_DIRTY 6, DMA_PTE_LARGE_PAGE 7) and by QEMU hw/i386/intel_iommu_internal.h
 * (VTD_FL_P, VTD_FL_RW, VTD_FL_US, VTD_FL_A, VTD_FL_D, VTD_FPTE_* reserved masks).
 *
 *   bit 0    P      present (no P: fault 0x71)
 *   bit 1    R/W    writable; effective W = AND over every level
 *   bit 2    U/S    user; a user-privilege request needs U/S = 1 at every level (fault 0x81)
 *   bits 3-4 PWT, PCD   memory type hints (not modelled: walks and DMA are coherent)
 *   bit 5    A      accessed: hardware sets it in every entry it walks through
 *   bit 6    D      dirty: hardware sets it in the leaf of a write
 *   bit 7    PS     leaf at the PDPTE (1 GiB, needs CAP.FS1GP) or PDE (2 MiB); reserved in PML5E/PML4E
 *   bit 8    G      global (CPU TLB meaning only)
 *   bit 12   PAT    in a 2 MiB / 1 GiB leaf only (so the address starts above it there)
 *   51:12    address of the next table or page (a GPA in nested mode)
 *   62:52    ignored; bit 63 XD ignored (execute requests were removed from VT-d)
 *
 * Reserved bits (QEMU VTD_FPTE_PAGE_L4_RSVD_MASK / VTD_FPTE_LPAGE_L2/L3_RSVD_MASK): PS in a
 * PML5E/PML4E; address bits 20:13 of a 2 MiB leaf and 29:13 of a 1 GiB leaf. Address bits at and
 * above the host address width are reserved in QEMU's first-stage-only model; in nested mode the
 * address is a GPA, and one at or above the second stage's 48-bit input width is reported as
 * 0x74 "First-level entry address beyond MGAW in Nested translation" instead (nested.ts).
 *
 * Entries travel as two unsigned 32-bit halves, like the second-stage ones (tables.ts).
 */

export const FL_P = 1 << 0;
export const FL_RW = 1 << 1;
export const FL_US = 1 << 2;
export const FL_PWT = 1 << 3;
export const FL_PCD = 1 << 4;
export const FL_A = 1 << 5;
export const FL_D = 1 << 6;
export const FL_PS = 1 << 7;
export const FL_G = 1 << 8;
/** PAT bit of a 2 MiB / 1 GiB leaf. */
export const FL_PAT_LARGE = 1 << 12;

/** Low-half reserved bits of a 2 MiB leaf (address bits 20:13). */
export const FL_RSVD_2M = 0x001fe000;
/** Low-half reserved bits of a 1 GiB leaf (address bits 29:13). */
export const FL_RSVD_1G = 0x3fffe000;
/** High-half bits 51:48 (hi bits 19:16): a GPA at or above 2^48. */
export const FL_HI_BEYOND_48 = 0x000f0000;

/** ADDR_WIDTH_4LEVEL / ADDR_WIDTH_5LEVEL (Linux intel/iommu.h): iommu_hwpt_vtd_s1.addr_width values. */
export const ADDR_WIDTH_4LEVEL = 48;
export const ADDR_WIDTH_5LEVEL = 57;

/** Address bits of a table pointer (non-leaf entry) given as halves: bits 51:12. */
export function flTableAddr(lo: number, hi: number): number {
  return ((lo & 0xfffff000) >>> 0) + (hi & 0xfffff) * 4294967296;
}

/** Address of the page a leaf of `level` maps: bits 51:12 for a PTE, 51:21 / 51:30 for large leaves (PAT excluded). */
export function flLeafAddr(lo: number, hi: number, level: number): number {
  const mask = level === 1 ? 0xfffff000 : level === 2 ? 0xffe00000 : 0xc0000000;
  return ((lo & mask) >>> 0) + (hi & 0xfffff) * 4294967296;
}

/**
 * Reserved low-half bits of a present entry at `level` (5 = PML5 … 1 = PT), leaf or not, with
 * `fs1gp` (CAP.FS1GP) deciding whether PS is allowed in a PDPTE.
 */
export function flReservedLo(level: number, ps: boolean, fs1gp: boolean): number {
  if (level >= 4) return FL_PS; // PS must be 0 in PML5E and PML4E
  if (!ps || level === 1) return 0; // bit 7 of a PTE is PAT: not reserved
  if (level === 3) return fs1gp ? FL_RSVD_1G : FL_PS; // a 1 GiB leaf without FS1GP: PS is reserved
  return FL_RSVD_2M;
}

const BITS: string[] = (() => {
  const t: string[] = [];
  for (let i = 0; i < 64; i++) {
    if (!(i & 1)) {
      t.push("-");
      continue;
    }
    const parts = ["P"];
    if (i & 2) parts.push("RW");
    if (i & 4) parts.push("US");
    if (i & 8) parts.push("A");
    if (i & 16) parts.push("D");
    if (i & 32) parts.push("PS");
    t.push(parts.join("|"));
  }
  return t;
})();

/** Decoded flags of a first-stage entry, "P|RW|US|A|D|PS" order; "-" when not present. */
export function fsBits(lo: number): string {
  return BITS[(lo & 7) | ((lo >>> 5) & 7) << 3];
}

/** Level → bits of input address below that level's index: 12, 21, 30, 39, 48. */
export function flLevelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

/** Bytes mapped by one entry of `level`: 4 KiB, 2 MiB, 1 GiB, 512 GiB, 256 TiB. */
export function flLevelSize(level: number): number {
  return 2 ** flLevelShift(level);
}

/** Index of `iova` in the table of `level` (the 9|9|9|9|9|12 split). */
export function flLevelIndex(iova: number, level: number): number {
  const q = Math.floor(iova / 2 ** flLevelShift(level));
  return q - Math.floor(q / 512) * 512;
}

/**
 * Canonical for a paging mode of `levels` levels (4: 48-bit, 5: 57-bit)? Only the lower half is
 * reachable here: numbers are exact below 2^53, and every upper-half canonical address (bits 63:47
 * or 63:56 all ones) lies above 2^63. [QEMU vtd_iova_fl_check_canonical]
 */
export function flCanonical(iova: number, levels: number): boolean {
  return iova < 2 ** (levels === 5 ? 56 : 47);
}
