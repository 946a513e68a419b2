import { describe, it, expect } from "vitest";
import { vtdMachine, idx, addrOf, RW } from "./helpers.ts";
import { isErr } from "../../../../engine/uapi/errno.ts";
import {
  DOMAIN_ALLOC_DIRTY_TRACKING, DOMAIN_ALLOC_NEST_PARENT, DOMAIN_ALLOC_PASID, IOMMU_READ, iommuUnmap,
} from "../../../../engine/hw/model.ts";
import { DmarDomain, calculatePsiAlignedAddress } from "../../../../engine/hw/vtd/driver.ts";
import { createVtd } from "../../../../engine/hw/vtd/index.ts";
import { Machine, DEFAULT_DEVICES } from "../../../../engine/machine.ts";
import { pasidEntryDecode } from "../../../../engine/hw/vtd/tables.ts";

const SZ_2M = 2 * 1024 * 1024;
const SZ_1G = 1024 * 1024 * 1024;

/** Walk a table by hand: the raw entry at `level` for `iova`, and the table it sits in. */
function entryAt(t: ReturnType<typeof vtdMachine>, d: DmarDomain, iova: number, level: number): { table: number; entry: bigint } {
  let table = d.pgd;
  for (let l = 4; l > level; l--) table = addrOf(t.mem.read64n(table + idx(iova, l) * 8));
  return { table, entry: t.mem.read64n(table + idx(iova, level) * 8) };
}

describe("second-stage page tables, byte-exact", () => {
  it("maps a 4 KiB page: non-leaf entries are table|R|W, the PTE is pa|R|W", () => {
    const t = vtdMachine();
    const d = t.domain();
    const iova = 0x7f12_3456_7000;
    const pa = t.page();
    t.map(d, iova, pa, 4096);
    // level by level from the PML4, indices from the 9|9|9|9|12 split
    const pml4e = t.mem.read64n(d.pgd + idx(iova, 4) * 8);
    expect(pml4e & 0xfffn).toBe(0x3n);
    const pdpte = t.mem.read64n(addrOf(pml4e) + idx(iova, 3) * 8);
    expect(pdpte & 0xfffn).toBe(0x3n);
    const pde = t.mem.read64n(addrOf(pdpte) + idx(iova, 2) * 8);
    expect(pde & 0xfffn).toBe(0x3n);
    const pte = t.mem.read64n(addrOf(pde) + idx(iova, 1) * 8);
    expect(pte).toBe(BigInt(pa) | 0x3n);
    expect(d.ops.iovaToPhys(iova + 0x123)).toBe(pa + 0x123);
    expect(d.ops.iovaToPhys(iova + 4096)).toBe(-1);
  });

  it("maps read-only and write-only pages with only R or only W", () => {
    const t = vtdMachine();
    const d = t.domain();
    const pa = t.page();
    t.map(d, 0x1000, pa, 4096, IOMMU_READ);
    expect(entryAt(t, d, 0x1000, 1).entry).toBe(BigInt(pa) | 0x1n);
    const pa2 = t.page();
    t.map(d, 0x2000, pa2, 4096, 2 /* IOMMU_WRITE */);
    expect(entryAt(t, d, 0x2000, 1).entry).toBe(BigInt(pa2) | 0x2n);
  });

  it("writes a 2 MiB leaf (PS) in the PD when iommu_map picks 2 MiB, and no PT below it", () => {
    const t = vtdMachine();
    const d = t.domain();
    const pa = t.mem.allocUserFolio() * 4096;
    const iova = 0x4020_0000;
    const before = t.mem.kernelPages;
    t.map(d, iova, pa, SZ_2M);
    expect(entryAt(t, d, iova, 2).entry).toBe(BigInt(pa) | 0x83n); // PS | W | R
    expect(t.mem.kernelPages - before).toBe(2); // PDPT + PD only
    expect(d.ops.iovaToPhys(iova + 0x1234_5)).toBe(pa + 0x1234_5);
  });

  it("writes 4 KiB leaves for the same range when the maximum page size is 4 KiB", () => {
    const t = vtdMachine();
    const d = t.domain();
    const pa = t.mem.allocUserFolio() * 4096;
    const iova = 0x4020_0000;
    t.map(d, iova, pa, SZ_2M, RW, 4096);
    const pde = entryAt(t, d, iova, 2).entry;
    expect(pde & 0x80n).toBe(0n);
    for (const off of [0, 0x1000, 0x1ff000]) expect(entryAt(t, d, iova + off, 1).entry).toBe(BigInt(pa + off) | 0x3n);
  });

  it("writes a 1 GiB leaf (PS) in the PDPT", () => {
    const t = vtdMachine();
    const d = t.domain();
    const pa = 0x200_0000_0000; // 2 TiB, 1 GiB aligned, below the 46-bit host width
    const iova = 0x80_4000_0000; // PML4 index 1, PDPT index 1
    t.map(d, iova, pa, SZ_1G);
    const { entry } = entryAt(t, d, iova, 3);
    expect(entry).toBe(BigInt(pa) | 0x83n);
    expect(idx(iova, 4)).toBe(1);
    expect(d.ops.iovaToPhys(iova + 0x3fff_ffff)).toBe(pa + 0x3fff_ffff);
  });

  it("splits a mixed range into the largest leaves the alignment allows", () => {
    const t = vtdMachine();
    const d = t.domain();
    const base = 0x300_0000_0000; // 1 GiB aligned physical
    // [1G - 4K, 1G + 2M + 4K): one 4K, then a 2M, then a 4K
    const iova = SZ_1G - 4096;
    t.map(d, iova, base + iova, 4096 + SZ_2M + 4096);
    expect(entryAt(t, d, iova, 1).entry & 0x80n).toBe(0n);
    expect(entryAt(t, d, SZ_1G, 2).entry).toBe(BigInt(base + SZ_1G) | 0x83n);
    expect(entryAt(t, d, SZ_1G + SZ_2M, 1).entry).toBe(BigInt(base + SZ_1G + SZ_2M) | 0x3n);
  });

  it("refuses a mapping over an existing one, and beyond the 48-bit aperture", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.map(d, 0x1000, t.page(), 4096);
    const r = d.ops.mapPages(0x1000, t.page(), 4096, 1, RW);
    expect(isErr(r) && r.name).toBe("EBUSY");
    const r2 = d.ops.mapPages(2 ** 48 - 4096, t.page(), 4096, 2, RW);
    expect(isErr(r2) && r2.name).toBe("EFAULT");
    const r3 = d.ops.mapPages(0x5000, t.page(), 4096, 1, 0);
    expect(isErr(r3) && r3.name).toBe("EINVAL");
  });

  it("a failed multi-page map leaves nothing behind", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.map(d, 0x3000, t.page(), 4096);
    const r = d.ops.mapPages(0x1000, 0x100_0000, 4096, 3, RW); // 0x1000, 0x2000 ok, 0x3000 busy
    expect(isErr(r)).toBe(true);
    expect(d.ops.iovaToPhys(0x1000)).toBe(-1);
    expect(d.ops.iovaToPhys(0x2000)).toBe(-1);
    expect(d.ops.iovaToPhys(0x3000)).not.toBe(-1);
  });
});

describe("unmap", () => {
  it("unmapping inside a 2 MiB leaf removes the whole leaf and reports its size", () => {
    const t = vtdMachine();
    const d = t.domain();
    const pa = t.mem.allocUserFolio() * 4096;
    t.map(d, SZ_2M, pa, SZ_2M);
    expect(d.ops.unmapPages(SZ_2M, 4096, 1)).toBe(SZ_2M);
    expect(d.ops.iovaToPhys(SZ_2M + 0x5000)).toBe(-1);
  });

  it("frees page-table pages that become empty and flushes with IH=0; IH=1 when none were freed", () => {
    const t = vtdMachine();
    const d = t.domain();
    expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
    const before = t.mem.kernelPages;
    t.map(d, 0x1000, t.page(), 4096);
    t.map(d, 0x2000, t.page(), 4096);
    expect(t.mem.kernelPages - before).toBe(3); // PDPT, PD, PT
    t.record();
    iommuUnmap(d, 0x1000, 4096);
    // the PT still holds 0x2000: nothing freed, IH = 1
    let iotlb = t.of("vtd.qi.desc").filter((e) => e.type === 2);
    expect(iotlb).toHaveLength(1);
    expect(iotlb[0].granularity).toBe(`page did=${d.id} addr=0x1000 am=0 ih=1`);
    expect(t.mem.kernelPages - before).toBe(3);
    t.record();
    iommuUnmap(d, 0x2000, 4096);
    iotlb = t.of("vtd.qi.desc").filter((e) => e.type === 2);
    expect(iotlb[0].granularity).toContain("ih=0");
    expect(t.mem.kernelPages - before).toBe(0); // PT, PD, PDPT all freed after the flush
    expect(t.mem.read64n(d.pgd + idx(0x2000, 4) * 8)).toBe(0n);
  });

  it("a domain that is not attached gets no invalidation at all (no cache tags)", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.map(d, 0x1000, t.page(), 4096);
    t.record();
    iommuUnmap(d, 0x1000, 4096);
    expect(t.of("vtd.qi.desc")).toHaveLength(0);
  });

  it("PSI address/mask follow calculate_psi_aligned_address", () => {
    expect(calculatePsiAlignedAddress(0x1000, 0x1fff)).toEqual({ addr: 0x1000, mask: 0, pages: 1 });
    expect(calculatePsiAlignedAddress(0x0, 0x3fff)).toEqual({ addr: 0, mask: 2, pages: 4 });
    // 2 pages starting at an odd pfn: 0x3000..0x4fff share bits above bit 2 → mask 3
    expect(calculatePsiAlignedAddress(0x3000, 0x4fff)).toEqual({ addr: 0, mask: 3, pages: 8 });
  });
});

describe("domain lifetime", () => {
  it("allocates DIDs from 2 upward and reuses a freed one", () => {
    const t = vtdMachine();
    const a = t.domain();
    const b = t.domain();
    expect([a.id, b.id]).toEqual([2, 3]);
    t.ops.domainFree(a);
    expect(t.domain().id).toBe(2);
  });

  it("domain free returns every page-table page", () => {
    const t = vtdMachine();
    const before = t.mem.kernelPages;
    const d = t.domain();
    t.map(d, 0x1000, t.page(), 4096);
    t.map(d, 0x80_0000_0000, t.page(), 4096);
    t.map(d, 0x4000_0000, t.mem.allocUserFolio() * 4096, SZ_2M);
    expect(t.mem.kernelPages).toBeGreaterThan(before);
    t.ops.domainFree(d);
    expect(t.mem.kernelPages).toBe(before);
  });

  it("validates allocation flags", () => {
    const t = vtdMachine();
    for (const f of [0, DOMAIN_ALLOC_NEST_PARENT, DOMAIN_ALLOC_DIRTY_TRACKING, DOMAIN_ALLOC_PASID, 0b1011]) {
      expect(isErr(t.ops.domainAllocPagingFlags(t.dev0, f, null))).toBe(false);
    }
    const bad = t.ops.domainAllocPagingFlags(t.dev0, 1 << 2, null);
    expect(isErr(bad) && bad.name).toBe("EOPNOTSUPP");
    const ud = t.ops.domainAllocPagingFlags(t.dev0, 0, {} as unknown as null);
    expect(isErr(ud) && ud.name).toBe("EOPNOTSUPP");
    const d = t.domain(DOMAIN_ALLOC_DIRTY_TRACKING);
    expect(d.dirtyTracking && typeof d.ops.setDirtyTracking).toBe("function");
    expect(t.domain().ops.setDirtyTracking).toBeUndefined();
    expect(d.pgsizeBitmap).toBe(0x1000 | 0x200000 | 0x40000000);
    expect([d.apertureStart, d.apertureEnd]).toEqual([0, 2 ** 48 - 1]);
  });
});

describe("context and PASID entries", () => {
  it("probe writes the scalable-mode root and context entries", () => {
    const t = vtdMachine();
    const { rootTable } = t.ops.layout;
    // vfio0: 00:03.0 (rid 0x18) with PASID, PRI, ATS; 20-bit PASIDs → 32-page directory, PDTS 7
    const root = t.mem.read64n(rootTable + 0 * 16);
    expect(root & 0xfffn).toBe(1n);
    const ce0 = addrOf(root) + 0x18 * 32;
    const dir0 = t.ops.pasidTableOf(t.dev0);
    expect(dir0.pages).toBe(32);
    expect(t.mem.read64n(ce0)).toBe(BigInt(dir0.dir) | (7n << 9n) | 0x1dn); // P, DTE, PASIDE, PRE
    expect(t.mem.read64n(ce0 + 8)).toBe(0n); // RID_PASID = 0
    // vfio1: 00:04.0 without PASID: one page of directory, PDTS 2, only P
    const ce1 = addrOf(root) + 0x20 * 32;
    const dir1 = t.ops.pasidTableOf(t.dev1);
    expect(t.mem.read64n(ce1)).toBe(BigInt(dir1.dir) | (2n << 9n) | 0x1n);
  });

  it("attach programs PGTT=010, AW=010, DID, SSPTPTR, PWSNP; no invalidation for not-present → present", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.record();
    expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
    const pe = t.ops.pasidEntryAddr(t.dev0, 0);
    expect(t.mem.read64n(pe)).toBe(BigInt(d.pgd) | 0x89n);
    expect(t.mem.read64n(pe + 8)).toBe(BigInt(d.id) | (1n << 23n));
    const dec = pasidEntryDecode(t.mem.read64n(pe), t.mem.read64n(pe + 8));
    expect(dec).toMatchObject({ present: true, pgtt: 2, aw: 2, did: d.id, ssptptr: d.pgd, ssade: false, pgsnp: false, pwsnp: true });
    expect(t.of("vtd.qi.desc")).toHaveLength(0); // CM = 0: nothing to invalidate
    expect(t.of("iommu.attach")[0]).toMatchObject({ rid: 0x18, pasid: 0, did: d.id, pgtt: 2 });
  });

  it("re-attaching the RID tears down first: PASID cache, domain-selective IOTLB, device-TLB (ATS), then the PRQ drain (PRI)", () => {
    const t = vtdMachine();
    const a = t.domain();
    const b = t.domain();
    t.ops.attachDev(a, t.dev0, 0);
    t.record();
    t.ops.attachDev(b, t.dev0, 0);
    const descs = t.of("vtd.qi.desc").filter((e) => e.type !== 5);
    expect(descs.map((e) => [e.type, e.granularity])).toEqual([
      [7, `pasid did=${a.id} pasid=0`],
      [2, `domain did=${a.id}`],
      // devtlb_invalidation_with_pasid: vfio0 has ATS, so its own TLB goes after the IOTLB
      [3, "sid=0x18 all"],
      // intel_iommu_drain_pasid_prq: vfio0 has PRI (a fenced wait, IOTLB, device-TLB, wait with PD)
      [2, `domain did=${a.id}`],
      [3, "sid=0x18 all"],
    ]);
    const waits = t.of("vtd.qi.desc").filter((e) => e.type === 5).map((e) => e.granularity);
    expect(waits.some((g) => g.includes("fn"))).toBe(true);
    expect(waits.at(-1)).toMatch(/ pd$/);
    expect(pasidEntryDecode(t.mem.read64n(t.ops.pasidEntryAddr(t.dev0, 0)), t.mem.read64n(t.ops.pasidEntryAddr(t.dev0, 0) + 8)).did).toBe(b.id);
  });

  it("blockDev clears the PASID entry and invalidates PASID cache, IOTLB, device-TLB, then drains page requests", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.ops.attachDev(d, t.dev0, 0);
    t.record();
    t.ops.blockDev(t.dev0, 0);
    const pe = t.ops.pasidEntryAddr(t.dev0, 0);
    for (let i = 0; i < 8; i++) expect(t.mem.read64n(pe + 8 * i)).toBe(0n);
    const kinds = t.of("vtd.qi.desc").map((e) => e.name);
    expect(kinds).toEqual([
      "pasid-cache", "wait", "iotlb", "wait", "dev-iotlb", "wait",
      "wait", "iotlb", "dev-iotlb", "wait", // intel_iommu_drain_pasid_prq
    ]);
    expect(t.of("iommu.detach")).toHaveLength(1);
  });

  it("attaching a PASID: setup, then replace flushes with the old DID (PASID cache, PASID-IOTLB, PASID device-TLB)", () => {
    const t = vtdMachine();
    const a = t.domain();
    const b = t.domain();
    expect(t.ops.attachDev(a, t.dev0, 5)).toBe(0);
    t.record();
    expect(t.ops.attachDev(b, t.dev0, 5)).toBe(0);
    expect(t.of("vtd.qi.desc").filter((e) => e.type !== 5).map((e) => e.granularity)).toEqual([
      `pasid did=${a.id} pasid=5`,
      `pasid did=${a.id} pasid=5`,
      "sid=0x18 pasid=5 all",
    ]);
    expect(t.of("vtd.qi.desc").filter((e) => e.type !== 5).map((e) => e.type)).toEqual([7, 6, 8]);
    // a device without PASID capability cannot
    const r = t.ops.attachDev(a, t.dev1, 5);
    expect(isErr(r) && r.name).toBe("EOPNOTSUPP");
    expect(t.ops.maxPasids(t.dev0)).toBe(2 ** 20);
    expect(t.ops.maxPasids(t.dev1)).toBe(0);
  });

  it("a domain of another machine's IOMMU is refused", () => {
    const t = vtdMachine();
    const other = new Machine({ iommu: "vtd", devices: DEFAULT_DEVICES }, createVtd);
    const foreign = other.iommu.ops.domainAllocPagingFlags(other.devices[0], 0, null);
    if (isErr(foreign)) throw new Error("alloc");
    const r = t.ops.attachDev(foreign, t.dev0, 0);
    expect(isErr(r) && r.name).toBe("EINVAL");
  });
});

describe("capabilities and info", () => {
  it("hwInfo returns struct iommu_hw_info_vtd with CAP and ECAP, little-endian", () => {
    const t = vtdMachine();
    for (const type of [0, 1]) {
      const r = t.ops.hwInfo(t.dev0, type);
      if (isErr(r)) throw new Error(r.toString());
      expect(r.type).toBe(1);
      expect(r.data.length).toBe(24);
      const v = new DataView(r.data.buffer, r.data.byteOffset);
      expect(v.getUint32(0, true)).toBe(1); // IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, set unconditionally by Linux
      expect(v.getUint32(4, true)).toBe(0);
      expect(v.getBigUint64(8, true)).toBe(t.hw.cap);
      expect(v.getBigUint64(16, true)).toBe(t.hw.ecap);
      // byte-exact: the low byte of CAP is ND = 6 (CM = 0, RWBF = 0)
      expect(r.data[8]).toBe(0x06);
    }
    const bad = t.ops.hwInfo(t.dev0, 2);
    expect(isErr(bad) && bad.name).toBe("EOPNOTSUPP");
  });

  it("capable, reserved regions", () => {
    const t = vtdMachine();
    expect(t.ops.capable(t.dev0, "CACHE_COHERENCY")).toBe(true);
    expect(t.ops.capable(t.dev0, "ENFORCE_CACHE_COHERENCY")).toBe(true);
    expect(t.ops.capable(t.dev0, "DIRTY_TRACKING")).toBe(true);
    expect(t.ops.getResvRegions(t.dev0)).toEqual([{ start: 0xfee00000, length: 0x100000, type: "MSI" }]);
  });

  it("enforce cache coherency: SNP in new leaves and PGSNP in the entry; refused once mapped", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.ops.attachDev(d, t.dev0, 0);
    expect(d.ops.enforceCacheCoherency()).toBe(true);
    const pe = t.ops.pasidEntryAddr(t.dev0, 0);
    expect(t.mem.read64n(pe + 8) & (1n << 24n)).toBe(1n << 24n);
    const pa = t.page();
    t.map(d, 0x1000, pa, 4096);
    expect(entryAt(t, d, 0x1000, 1).entry).toBe(BigInt(pa) | 0x803n); // SNP | W | R
    const e = t.domain();
    t.map(e, 0x1000, t.page(), 4096);
    expect(e.ops.enforceCacheCoherency()).toBe(false);
  });

  it("rejects nonsense knobs", () => {
    const mk = (knobs: Record<string, unknown>) => () => new Machine({ iommu: "vtd", devices: DEFAULT_DEVICES, model: knobs }, createVtd);
    expect(mk({ iotlbSets: 0 })).toThrow(/iotlbSets/);
    expect(mk({ iotlbWays: 2.5 })).toThrow(/iotlbWays/);
    expect(mk({ faultRecords: 257 })).toThrow(/faultRecords/);
    expect(mk({ pwcEntrys: 4 })).toThrow(/unknown knob/);
    expect(mk({ iotlbSets: 2, iotlbWays: 3, pwcEntries: 0, faultRecords: 1 })).not.toThrow();
  });
});
