import { describe, it, expect } from "vitest";
import { vtdMachine, idx } from "./helpers.ts";
import { dmaRead, dmaWrite, type DmaFaultInfo } from "../../../../engine/hw/dma.ts";
import { IOMMU_READ, IOMMU_WRITE, iommuUnmap } from "../../../../engine/hw/model.ts";
import { VTD_FR } from "../../../../engine/hw/vtd/fault.ts";

function attached() {
  const t = vtdMachine();
  const d = t.domain();
  expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
  return { t, d };
}

function fault(r: Uint8Array | DmaFaultInfo | null): DmaFaultInfo {
  if (!r || r instanceof Uint8Array) throw new Error("expected a fault");
  return r;
}

describe("the second-stage walk", () => {
  it("a miss reads root, context, PASID dir, PASID entry and four levels, 90 ns each; a repeat hits the IOTLB in 10 ns", () => {
    const { t, d } = attached();
    const iova = 0x12_3456_7000;
    const pa = t.page();
    t.map(d, iova, pa, 4096);
    t.record();
    const t0 = t.clock.now;
    const tr = t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: iova + 8, write: false });
    expect(tr).toMatchObject({ ok: true, pa: pa + 8, size: 4096 - 8, perm: 3 });
    expect(t.of("vtd.ctx.read").map((e) => e.what)).toEqual(["root", "context", "pasid-dir", "pasid"]);
    const levels = t.of("vtd.walk.level");
    expect(levels.map((e) => [e.level, e.index, e.leaf])).toEqual([
      [4, idx(iova, 4), false],
      [3, idx(iova, 3), false],
      [2, idx(iova, 2), false],
      [1, idx(iova, 1), true],
    ]);
    expect(levels[0].table).toBe(d.pgd);
    expect(levels[3].entry).toBe(pa + 3);
    expect(levels[3].bits).toBe("R|W");
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ did: d.id, pasid: 0, pa: pa + 8, size: 4096, reads: 8 });
    expect(t.clock.now - t0).toBe(8 * 90);
    expect(t.of("vtd.iotlb.miss")).toHaveLength(1);
    expect(t.of("vtd.iotlb.fill")).toHaveLength(1);
    // second access: context and PASID caches and the IOTLB hit; no memory reference
    t.record();
    const t1 = t.clock.now;
    const tr2 = t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: iova + 16, write: true });
    expect(tr2).toMatchObject({ ok: true, pa: pa + 16 });
    expect(t.clock.now - t1).toBe(10);
    expect(t.of("vtd.ctx.read")).toHaveLength(0);
    expect(t.of("vtd.walk.level")).toHaveLength(0);
    expect(t.of("vtd.iotlb.hit")).toHaveLength(1);
    expect(t.hw.stats).toMatchObject({ iotlbHits: 1, iotlbMisses: 1, walks: 1 });
  });

  it("a 2 MiB leaf ends the walk at level 2 and is cached as one 2 MiB IOTLB entry", () => {
    const { t, d } = attached();
    const pa = t.mem.allocUserFolio() * 4096;
    t.map(d, 0x20_0000, pa, 0x20_0000);
    t.record();
    dmaRead(t.m, t.hw, t.dev0, 0x20_0000, 4);
    expect(t.of("vtd.walk.level").map((e) => e.bits)).toEqual(["R|W", "R|W", "R|W|PS"]);
    expect(t.of("vtd.iotlb.fill")[0]).toMatchObject({ page: 0x20_0000, size: 0x20_0000 });
    t.record();
    dmaRead(t.m, t.hw, t.dev0, 0x3f_f000, 4);
    expect(t.of("vtd.iotlb.hit")[0]).toMatchObject({ size: 0x20_0000 });
  });

  it("faults: not present (0x79), no write (0x85), no read (0x86), beyond 48 bits (0x83)", () => {
    const { t, d } = attached();
    t.map(d, 0x1000, t.page(), 4096, IOMMU_READ);
    t.map(d, 0x2000, t.page(), 4096, IOMMU_WRITE);
    const tr = (iova: number, write: boolean) => t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova, write });
    expect(tr(0x5000, false)).toMatchObject({ ok: false, reason: VTD_FR.SS_RW, name: "SM: Read/Write permission error in second-level paging entry" });
    expect(tr(0x1000, true)).toMatchObject({ ok: false, reason: 0x85, name: "SM: No write permission for Write/AtomicOp request" });
    expect(tr(0x2000, false)).toMatchObject({ ok: false, reason: 0x86 });
    expect(tr(0x1000, false).ok).toBe(true);
    expect(tr(0x2000, true).ok).toBe(true);
    expect(tr(2 ** 48, false)).toMatchObject({ ok: false, reason: 0x83, name: "SM: Address beyond the DMA hardware max" });
    const f = fault(dmaRead(t.m, t.hw, t.dev0, 2 ** 48 + 0x1000, 16));
    expect(f).toMatchObject({ reason: 0x83, reasonName: "SM: Address beyond the DMA hardware max", iova: 2 ** 48 + 0x1000, pasid: undefined, rid: 0x18, write: false });
  });

  it("the not-present level is reported with bits '-' and nothing is cached", () => {
    const { t, d } = attached();
    t.map(d, 0x1000, t.page(), 4096);
    t.record();
    t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0x4000_0000, write: false });
    const lv = t.of("vtd.walk.level");
    expect(lv.map((e) => [e.level, e.bits])).toEqual([[4, "R|W"], [3, "-"]]);
    expect(t.of("vtd.iotlb.fill")).toHaveLength(0);
    expect(t.of("vtd.walk.done")).toHaveLength(0);
  });

  it("structure faults: blocked device (0x59), PASID on a device without PASID (0x45), unknown bus (0x39)", () => {
    const t = vtdMachine();
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x59 });
    expect(t.hw.translate({ rid: t.dev1.rid, pasid: 3, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x45 });
    expect(t.hw.translate({ rid: 0x0100, pasid: -1, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x39 });
    // a devfn the root entry covers but whose context entry was never written
    expect(t.hw.translate({ rid: 0x0028, pasid: -1, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x41 });
    // a PASID attached on vfio0 (directory entry allocated) but not this one: 0x59; a directory slot never used: 0x51
    const d = t.domain();
    t.ops.attachDev(d, t.dev0, 7);
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: 8, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x59 });
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: 64 * 5, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x51 });
  });

  it("a request with PASID uses that PASID's entry and tags the IOTLB with it", () => {
    const t = vtdMachine();
    const a = t.domain();
    const b = t.domain();
    t.ops.attachDev(a, t.dev0, 0);
    t.ops.attachDev(b, t.dev0, 9);
    const pa = t.page();
    const pb = t.page();
    t.map(a, 0x1000, pa, 4096);
    t.map(b, 0x1000, pb, 4096);
    t.record();
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0x1000, write: false })).toMatchObject({ pa });
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: 9, iova: 0x1000, write: false })).toMatchObject({ pa: pb });
    expect(t.of("vtd.iotlb.fill").map((e) => [e.did, e.pasid])).toEqual([[a.id, 0], [b.id, 9]]);
  });

  it("DMA after unmap faults: the unmap invalidated the IOTLB instead of serving the stale entry", () => {
    const { t, d } = attached();
    const pa = t.page();
    t.map(d, 0x7000, pa, 4096);
    t.mem.write(pa, new Uint8Array([1, 2, 3, 4]));
    expect(dmaRead(t.m, t.hw, t.dev0, 0x7000, 4)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(t.hw.iotlb.entries()).toHaveLength(1);
    t.record();
    iommuUnmap(d, 0x7000, 4096);
    expect(t.of("vtd.iotlb.inv")).toHaveLength(1);
    expect(t.hw.iotlb.entries()).toHaveLength(0);
    const f = fault(dmaRead(t.m, t.hw, t.dev0, 0x7000, 4));
    expect(f.reason).toBe(0x79);
    expect(t.of("vtd.iotlb.hit")).toHaveLength(0);
  });

  it("without the flush a stale IOTLB entry keeps translating (what the invalidation is for)", () => {
    const { t, d } = attached();
    const pa = t.page();
    t.map(d, 0x7000, pa, 4096);
    dmaRead(t.m, t.hw, t.dev0, 0x7000, 4);
    // unmap without iotlbSync: the PTE is gone, the IOTLB entry is not
    expect(d.ops.unmapPages(0x7000, 4096, 1)).toBe(4096);
    expect(dmaRead(t.m, t.hw, t.dev0, 0x7000, 4)).toBeInstanceOf(Uint8Array);
    d.ops.iotlbSync(0x7000, 4096);
    expect(fault(dmaRead(t.m, t.hw, t.dev0, 0x7000, 4)).reason).toBe(0x79);
  });

  it("a translation landing in the interrupt range is blocked (0x87)", () => {
    const { t, d } = attached();
    t.map(d, 0x9000, 0xfee0_0000, 4096);
    expect(t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0x9000, write: true })).toMatchObject({ ok: false, reason: 0x87 });
  });

  it("writes land page by page; a fault stops the transfer after the earlier pages landed", () => {
    const { t, d } = attached();
    const p0 = t.page();
    t.map(d, 0x10000, p0, 4096);
    const data = new Uint8Array(6000).map((_, i) => i & 0xff);
    const f = fault(dmaWrite(t.m, t.hw, t.dev0, 0x10000, data));
    expect(f).toMatchObject({ reason: 0x79, iova: 0x11000, write: true, done: 4096 });
    expect(t.mem.read(p0, 4096)).toEqual(data.subarray(0, 4096));
  });
});
