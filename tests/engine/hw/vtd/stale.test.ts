// engine/hw/vtd/stale.ts: a DMA served from a cached translation whose page-table entries changed
// without an invalidation is flagged; A/D updates are not staleness; the knob turns it off.
import { describe, expect, it } from "vitest";
import { nestedMachine } from "./nested-helpers.ts";
import { vtdMachine } from "./helpers.ts";
import { dmaRead } from "../../../../engine/hw/dma.ts";

describe("the stale-translation detector", () => {
  it("the forgotten invalidation: an IOTLB hit on a changed guest PTE is reported on every such DMA, until invalidated", () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    const old = t.tr(0x4000_0000);
    const pte = t.guest.pte(0x4000_0000)[3];
    t.guest.write64(pte.entryGpa, (pte.entry & ~0x000f_ffff_ffff_f000n) | 0x20_0000n);
    t.record();
    expect(t.tr(0x4000_0000)).toEqual(old); // the hardware still uses the cached translation
    expect(t.of("vtd.stale.hit")).toEqual([
      expect.objectContaining({
        cache: "iotlb", did: t.nestedDomain.id, pasid: 0, iova: 0x4000_0000, stage: "s1", level: 1,
        entryPa: t.parentDomain.ops.iovaToPhys(pte.entryGpa), cached: Number(pte.entry), memory: Number(pte.entry) - 0x10_0000 + 0x20_0000,
      }),
    ]);
    expect(t.tr(0x4000_0800).ok).toBe(true);
    expect(t.hw.stats.staleHits).toBe(2);
    // the invalidation the guest forgot: the entry goes, the next DMA walks and finds the new page
    t.g.ioctl(t.fd, t.g.IOMMU_HWPT_INVALIDATE, { hwpt_id: t.nested, data_type: 0, data_uptr: [{ addr: 0x4000_0000, npages: 1 }] });
    t.record();
    expect(t.tr(0x4000_0000)).toMatchObject({ ok: true, pa: t.parentDomain.ops.iovaToPhys(0x20_0000) });
    expect(t.of("vtd.stale.hit")).toHaveLength(0);
    expect(t.hw.stats.staleHits).toBe(2);
  });

  it("accessed/dirty bits are the hardware's own updates, not staleness; a rewrite of the same value is not either", () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000, { presetAD: false });
    expect(t.tr(0x4000_0000).ok).toBe(true); // sets A
    const pte = t.guest.pte(0x4000_0000)[3];
    t.guest.write64(pte.entryGpa, pte.entry | (1n << 6n)); // the guest sets D itself
    t.guest.write64(t.guest.pte(0x4000_0000)[2].entryGpa, t.guest.pte(0x4000_0000)[2].entry); // same value again
    t.record();
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(t.of("vtd.iotlb.hit")).toHaveLength(1);
    expect(t.of("vtd.stale.hit")).toHaveLength(0);
  });

  it("a first-stage PWC entry whose upper-level guest entry changed is reported as cache fspwc", () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x2000);
    expect(t.tr(0x4000_0000).ok).toBe(true);
    // the guest swaps its page table (PDE → a copy of the PT), invalidating nothing
    const [, , pde] = t.guest.pte(0x4000_0000);
    const copy = t.guest.alloc();
    t.guest.write(copy, t.guest.read(Number(pde.entry & 0x000f_ffff_ffff_f000n), 4096));
    t.guest.write64(pde.entryGpa, (pde.entry & 0xfffn) | BigInt(copy));
    t.record();
    expect(t.tr(0x4000_1000).ok).toBe(true); // an IOTLB miss that resumes below the cached PDE
    expect(t.of("vtd.fspwc.hit")).toHaveLength(1);
    expect(t.of("vtd.stale.hit")).toEqual([expect.objectContaining({ cache: "fspwc", stage: "s1", level: 2, iova: 0x4000_1000 })]);
  });

  it("second-stage-only translations are watched too: a host PTE changed behind the IOMMU's back", () => {
    const t = vtdMachine();
    const d = t.domain();
    expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
    t.map(d, 0x10_0000, t.page(), 0x1000);
    dmaRead(t.m, t.hw, t.dev0, 0x10_0000, 4);
    // find the leaf and point it elsewhere without an invalidation (what a driver bug would do)
    let table = d.pgd;
    for (let level = 4; level > 1; level--) table = Number(t.mem.read64n(table + (Math.floor(0x10_0000 / 2 ** (12 + 9 * (level - 1))) % 512) * 8) & 0x000ffffffffff000n);
    const leaf = table + 0x100 * 8;
    const before = t.mem.read64n(leaf);
    t.mem.write64n(leaf, (before & 0xfffn) | BigInt(t.page()));
    t.record();
    dmaRead(t.m, t.hw, t.dev0, 0x10_0000, 4);
    expect(t.of("vtd.stale.hit")).toEqual([expect.objectContaining({ cache: "iotlb", stage: "s2", level: 1, entryPa: leaf, cached: Number(before) })]);
  });

  it("a second-stage PWC hit on a changed upper-level host entry is reported as cache pwc", () => {
    const t = vtdMachine({ iotlbSets: 1, iotlbWays: 1 });
    const d = t.domain();
    expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
    t.map(d, 0x10_0000, t.page(), 0x2000);
    dmaRead(t.m, t.hw, t.dev0, 0x10_0000, 4);
    const pml4e = d.pgd; // index 0
    t.mem.write64n(pml4e, t.mem.read64n(pml4e) ^ (1n << 12n)); // a different PDPT
    t.record();
    dmaRead(t.m, t.hw, t.dev0, 0x10_1000, 4); // IOTLB miss (one-entry IOTLB), PWC hit at the PDE level
    expect(t.of("vtd.stale.hit")).toEqual([expect.objectContaining({ cache: "pwc", stage: "s2", level: 4, entryPa: pml4e })]);
  });

  it("off with the knob staleDetector: false — nothing is watched or reported", () => {
    const t = nestedMachine({ knobs: { staleDetector: false } });
    expect(t.hw.stale).toBeNull();
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    t.tr(0x4000_0000);
    const pte = t.guest.pte(0x4000_0000)[3];
    t.guest.write64(pte.entryGpa, pte.entry ^ 0x10_0000n);
    t.record();
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(t.of("vtd.stale.hit")).toHaveLength(0);
    expect(t.hw.stats.staleHits).toBe(0);
    expect(t.mem.watchedWrites).toBe(0);
    expect(() => vtdMachine({ staleDetector: 1 })).toThrow(/true or false/);
  });

  it("a hit after no table write compares one number: no entry is re-read", () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    t.tr(0x4000_0000);
    const stamp = t.hw.stale!.iotlb.stamp;
    const slot = t.hw.iotlb.entries()[0].slot;
    expect(stamp[slot]).toBe(t.mem.watchedWrites);
    const reads = t.mem.read64.bind(t.mem);
    let n = 0;
    t.mem.read64 = (pa, out) => {
      n++;
      reads(pa, out);
    };
    for (let i = 0; i < 100; i++) t.tr(0x4000_0000 + i * 8);
    expect(n).toBe(0);
  });
});
