/**
 * `guest(...)`: a small guest operating system for nested-translation scripts. It plays the part
 * of a VM whose vIOMMU driver (Linux drivers/iommu/intel/iommu.c with a first-stage domain) builds
 * an x86 first-stage page table in the VM's RAM, so a script can allocate a nested HWPT
 * (IOMMU_HWPT_DATA_VTD_S1) over it and watch the device's 2D walk.
 *
 * It is written only against the script globals — `mmap`, `ioctl`, `peek`, `poke` and the uAPI
 * constants — exactly as a script could write it itself:
 *   - guest RAM is user memory (mmap), mapped into the IOAS at GPA `base` with
 *     IOMMU_IOAS_MAP_FIXED_IOVA, so that for the nest parent IOVA = guest-physical address;
 *   - page-table pages are bump-allocated from the top of guest RAM downwards (alloc()), so a
 *     script that places its data from the bottom up never collides with them;
 *   - every entry is real bytes in guest RAM (poke), which the IOMMU reads through the second
 *     stage; a script may read them back (pte, read) and poke them (write) like a guest kernel.
 *
 * Entry bits are Linux's (intel/iommu.h, __domain_mapping and pfn_to_dma_pte for a first-stage
 * domain): non-leaf entries are P | R/W | U/S | A; leaves are P | U/S | A, plus R/W and D when
 * writable, plus PS for 2 MiB / 1 GiB pages. Linux pre-sets A and D so the IOMMU rarely has to
 * write them (DMA_FL_PTE_ACCESS, DMA_FL_PTE_DIRTY); `{ presetAD: false }` leaves them clear, to
 * watch the hardware set them. XD is never set (VT-d removed execute requests).
 *
 * @example
 *   const g = guest({ iommufd, ioas, size: 16 << 20 });          // 16 MiB of guest RAM at GPA 0
 *   g.map(0x4000_0000, 0x10_0000, 0x2000);                        // IOVA → GPA, 4 KiB pages
 *   const { out_hwpt_id: nested } = ioctl(iommufd, IOMMU_HWPT_ALLOC,
 *     { dev_id, pt_id: parent, data_type: IOMMU_HWPT_DATA_VTD_S1, data_uptr: g.s1() });
 */
import { ScriptError } from "./marshal.ts";

/** The globals the guest is built from (a subset of createGlobals' result). */
export interface GuestGlobals {
  ioctl(fd: number, request: number, arg?: unknown): unknown;
  mmap(length: number, opts?: { align?: number }): number;
  peek(addr: number, length: number): Uint8Array;
  poke(addr: number, bytes: Uint8Array): void;
  [name: string]: unknown;
}

export interface GuestOptions {
  /** the /dev/iommu fd */
  iommufd: number;
  /** the IOAS the nest parent mirrors: guest RAM is mapped there at GPA `base` */
  ioas: number;
  /** bytes of guest RAM (a multiple of 4 KiB; default 16 MiB) */
  size?: number;
  /** guest-physical (= IOVA) address of guest RAM (4 KiB aligned; default 0) */
  base?: number;
  /** first-stage paging levels: 4 (48-bit, default) or 5 (57-bit) */
  levels?: number;
  /** back guest RAM with 2 MiB transparent huge pages (the host maps it with 2 MiB IOPTEs) */
  hugepages?: boolean;
}

export interface GuestMapOptions {
  /** writable (R/W = 1, and D pre-set); default true */
  write?: boolean;
  /** user (U/S = 1): every DMA is a user-privilege request, so leave it on; default true */
  user?: boolean;
  /** page size: 4096, 2 MiB or 1 GiB; default the largest that the alignment of iova, gpa and size allows */
  pageSize?: number;
  /** pre-set A (and D on writable leaves) as Linux does; default true */
  presetAD?: boolean;
}

/** One level of pte(): the entry the walk reads at `level` for an IOVA. */
export interface GuestPteLevel {
  level: number;
  /** GPA of the table */
  table: number;
  index: number;
  /** GPA of the entry itself: write(entryGpa, bytes) pokes it */
  entryGpa: number;
  entry: bigint;
  bits: string;
  leaf: boolean;
}

const SZ_4K = 4096;
const SZ_2M = 2 * 1024 * 1024;
const SZ_1G = 1024 * 1024 * 1024;
const P = 1n;
const RW = 2n;
const US = 4n;
const A = 1n << 5n;
const D = 1n << 6n;
const PS = 1n << 7n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

function bitsOf(e: bigint): string {
  if (!(e & P)) return "-";
  const parts = ["P"];
  if (e & RW) parts.push("RW");
  if (e & US) parts.push("US");
  if (e & A) parts.push("A");
  if (e & D) parts.push("D");
  if (e & PS) parts.push("PS");
  return parts.join("|");
}

function intArg(v: unknown, what: string): number {
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new ScriptError(`guest: ${what} must be a non-negative integer below 2^53, got ${String(v)}`);
  return v;
}

function shiftOf(level: number): number {
  return 2 ** (12 + 9 * (level - 1));
}

/** A guest: its RAM, its first-stage page table, and the helpers a script needs. */
export class Guest {
  /** user address of guest RAM */
  readonly ram: number;
  readonly base: number;
  readonly size: number;
  readonly levels: number;
  /** GPA of the root table (PML4, or PML5 with 5 levels): iommu_hwpt_vtd_s1.pgtbl_addr */
  readonly root: number;
  /** the next page-table page alloc() hands out (top of RAM, downwards) */
  private nextTable: number;
  private readonly g: GuestGlobals;
  private readonly o: GuestOptions;

  constructor(g: GuestGlobals, o: GuestOptions) {
    if (typeof o !== "object" || o === null) throw new ScriptError("guest: pass an object like { iommufd, ioas, size }");
    this.g = g;
    this.o = o;
    intArg(o.iommufd, "iommufd");
    intArg(o.ioas, "ioas");
    const size = o.size === undefined ? 16 * 1024 * 1024 : intArg(o.size, "size");
    const base = o.base === undefined ? 0 : intArg(o.base, "base");
    const levels = o.levels === undefined ? 4 : o.levels;
    if (levels !== 4 && levels !== 5) throw new ScriptError(`guest: levels must be 4 or 5, got ${String(levels)}`);
    if (!size || size % SZ_4K) throw new ScriptError(`guest: size must be a non-zero multiple of 4 KiB, got 0x${size.toString(16)}`);
    if (base % SZ_4K) throw new ScriptError(`guest: base must be 4 KiB aligned, got 0x${base.toString(16)}`);
    if (o.hugepages && (size % SZ_2M || base % SZ_2M)) throw new ScriptError("guest: with hugepages, size and base must be multiples of 2 MiB");
    this.size = size;
    this.base = base;
    this.levels = levels;
    this.ram = g.mmap(size, o.hugepages ? { align: SZ_2M } : undefined);
    const c = (name: string): number => g[name] as number;
    g.ioctl(o.iommufd, c("IOMMU_IOAS_MAP"), {
      flags: c("IOMMU_IOAS_MAP_FIXED_IOVA") | c("IOMMU_IOAS_MAP_READABLE") | c("IOMMU_IOAS_MAP_WRITEABLE"),
      ioas_id: o.ioas, user_va: this.ram, length: size, iova: base,
    });
    this.nextTable = base + size;
    this.root = this.alloc();
  }

  /** A zeroed 4 KiB page of guest RAM for a page table (from the top down); returns its GPA. */
  alloc(): number {
    const gpa = this.nextTable - SZ_4K;
    if (gpa < this.base) throw new ScriptError("guest: out of guest RAM for page tables");
    this.nextTable = gpa;
    this.write(gpa, new Uint8Array(SZ_4K));
    return gpa;
  }

  /** The bytes of guest RAM at `gpa` (as the guest CPU reads them). */
  read(gpa: number, length: number): Uint8Array {
    return this.g.peek(this.va(intArg(gpa, "gpa"), intArg(length, "length")), length);
  }

  /** Write guest RAM at `gpa` (as the guest CPU does: no IOMMU invalidation happens). */
  write(gpa: number, bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array)) throw new ScriptError("guest.write: bytes must be a Uint8Array");
    this.g.poke(this.va(intArg(gpa, "gpa"), bytes.length), bytes);
    return this;
  }

  /** Read one 64-bit entry at `gpa`. */
  read64(gpa: number): bigint {
    const b = this.read(gpa, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  /** Write one 64-bit entry at `gpa`. */
  write64(gpa: number, value: bigint | number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
    return this.write(gpa, b);
  }

  private va(gpa: number, length: number): number {
    if (gpa < this.base || gpa + length > this.base + this.size)
      throw new ScriptError(`guest: GPA range [0x${gpa.toString(16)}, +0x${length.toString(16)}) is outside guest RAM [0x${this.base.toString(16)}, 0x${(this.base + this.size).toString(16)})`);
    return this.ram + (gpa - this.base);
  }

  /** The table holding level-`level` entries for `iova`, creating missing tables. */
  private tableFor(iova: number, level: number): number {
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const egpa = table + (Math.floor(iova / shiftOf(l)) % 512) * 8;
      const e = this.read64(egpa);
      if (!(e & P)) {
        const next = this.alloc();
        // pfn_to_dma_pte for a first-stage domain: DMA_PTE_READ | DMA_PTE_WRITE | DMA_FL_PTE_US | DMA_FL_PTE_ACCESS
        this.write64(egpa, BigInt(next) | P | RW | US | A);
        table = next;
      } else if (e & PS && l <= 3) {
        throw new ScriptError(`guest.map: IOVA 0x${iova.toString(16)} is inside a ${l === 3 ? "1 GiB" : "2 MiB"} page already`);
      } else table = Number(e & ADDR_MASK);
    }
    return table;
  }

  /**
   * Map [iova, iova + size) to [gpa, gpa + size) in the first-stage table: writes leaf entries
   * (and tables on the way). Entries already present are an error (Linux WARNs "PTE already set").
   */
  map(iova: number, gpa: number, size: number, opts: GuestMapOptions = {}): this {
    iova = intArg(iova, "iova");
    gpa = intArg(gpa, "gpa");
    size = intArg(size, "size");
    if (iova % SZ_4K || gpa % SZ_4K || !size || size % SZ_4K) throw new ScriptError("guest.map: iova, gpa and size must be 4 KiB aligned (and size non-zero)");
    if (iova + size > 2 ** (this.levels === 5 ? 56 : 47)) throw new ScriptError(`guest.map: IOVA range is beyond the ${this.levels}-level canonical lower half`);
    const write = opts.write ?? true;
    const user = opts.user ?? true;
    const preset = opts.presetAD ?? true;
    if (opts.pageSize !== undefined && ![SZ_4K, SZ_2M, SZ_1G].includes(opts.pageSize))
      throw new ScriptError(`guest.map: pageSize must be 4096, 2 MiB or 1 GiB, got ${String(opts.pageSize)}`);
    let done = 0;
    while (done < size) {
      const va = iova + done;
      const pa = gpa + done;
      let pg = opts.pageSize ?? SZ_4K;
      if (opts.pageSize === undefined) {
        for (const cand of [SZ_1G, SZ_2M]) {
          if (va % cand === 0 && pa % cand === 0 && size - done >= cand) {
            pg = cand;
            break;
          }
        }
      } else if (va % pg || pa % pg || size - done < pg) {
        throw new ScriptError(`guest.map: IOVA 0x${va.toString(16)} / GPA 0x${pa.toString(16)} / remaining size do not fit a 0x${pg.toString(16)} page`);
      }
      const level = pg === SZ_4K ? 1 : pg === SZ_2M ? 2 : 3;
      const table = this.tableFor(va, level);
      const egpa = table + (Math.floor(va / shiftOf(level)) % 512) * 8;
      if (this.read64(egpa) & P) throw new ScriptError(`guest.map: IOVA 0x${va.toString(16)} is already mapped`);
      let e = BigInt(pa) | P;
      if (write) e |= RW;
      if (user) e |= US;
      if (preset) e |= write ? A | D : A;
      if (level > 1) e |= PS;
      this.write64(egpa, e);
      done += pg;
    }
    return this;
  }

  /** Clear the leaf entries covering [iova, iova + size) (whole large pages). Tables stay. */
  unmap(iova: number, size: number): this {
    iova = intArg(iova, "iova");
    size = intArg(size, "size");
    let va = iova;
    while (va < iova + size) {
      const walk = this.pte(va);
      const last = walk[walk.length - 1];
      if (last && last.leaf) {
        this.write64(last.entryGpa, 0n);
        const pg = shiftOf(last.level);
        va = Math.floor(va / pg) * pg + pg;
      } else va = Math.floor(va / SZ_4K) * SZ_4K + SZ_4K;
    }
    return this;
  }

  /** The entries a walk of `iova` reads, root first, down to the leaf or the first non-present entry. */
  pte(iova: number): GuestPteLevel[] {
    iova = intArg(iova, "iova");
    const out: GuestPteLevel[] = [];
    let table = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const index = Math.floor(iova / shiftOf(level)) % 512;
      const entryGpa = table + index * 8;
      const entry = this.read64(entryGpa);
      const leaf = !!(entry & P) && (level === 1 || (!!(entry & PS) && level <= 3));
      out.push({ level, table, index, entryGpa, entry, bits: bitsOf(entry), leaf });
      if (!(entry & P) || leaf) break;
      table = Number(entry & ADDR_MASK);
      if (table < this.base || table >= this.base + this.size) break; // points outside guest RAM
    }
    return out;
  }

  /** The GPA `iova` translates to through the first stage, or -1. */
  translate(iova: number): number {
    const w = this.pte(iova);
    const last = w[w.length - 1];
    if (!last?.leaf) return -1;
    const size = shiftOf(last.level);
    const mask = last.level === 1 ? ADDR_MASK : last.level === 2 ? 0x000f_ffff_ffe0_0000n : 0x000f_ffff_c000_0000n;
    return Number(last.entry & mask) + (iova % size);
  }

  /** struct iommu_hwpt_vtd_s1 for IOMMU_HWPT_ALLOC's data_uptr: this table's root and width. */
  s1(flags: number = 0): { flags: number; pgtbl_addr: number; addr_width: number } {
    return { flags, pgtbl_addr: this.root, addr_width: this.levels === 5 ? 57 : 48 };
  }

  /**
   * IOMMU_HWPT_INVALIDATE of [iova, iova + size) on the nested HWPT (no range: everything, addr 0
   * and npages U64_MAX). Returns the ioctl's argument, entry_num written back.
   */
  invalidate(hwpt: number, iova?: number, size?: number, opts: { leaf?: boolean } = {}): unknown {
    const c = (name: string): number => this.g[name] as number;
    const all = iova === undefined;
    const addr = all ? 0 : intArg(iova, "iova");
    const npages = all ? (1n << 64n) - 1n : Math.ceil(intArg(size ?? SZ_4K, "size") / SZ_4K);
    const arg = {
      hwpt_id: hwpt, data_type: c("IOMMU_HWPT_INVALIDATE_DATA_VTD_S1"),
      data_uptr: [{ addr, npages, flags: opts.leaf ? c("IOMMU_VTD_INV_FLAGS_LEAF") : 0 }],
    };
    return this.g.ioctl(this.o.iommufd, c("IOMMU_HWPT_INVALIDATE"), arg);
  }
}

/** The `guest` global: `guest({ iommufd, ioas, size, base, levels, hugepages })`. */
export function makeGuestFactory(g: GuestGlobals): (o: GuestOptions) => Guest {
  return (o) => new Guest(g, o);
}
