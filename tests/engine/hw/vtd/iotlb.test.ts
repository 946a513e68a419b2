import { describe, it, expect } from "vitest";
import { vtdMachine } from "./helpers.ts";
import { dmaRead } from "../../../../engine/hw/dma.ts";
import { PGTT_FS, PGTT_SS } from "../../../../engine/hw/vtd/tables.ts";

/** A domain attached to vfio0's RID with `n` 4 KiB pages mapped at 0x1000 · i. */
function setup(knobs: Record<string, unknown>, n = 4) {
  const t = vtdMachine(knobs);
  const d = t.domain();
  t.ops.attachDev(d, t.dev0, 0);
  for (let i = 1; i <= n; i++) t.map(d, 0x1000 * i, t.page(), 4096);
  return { t, d };
}

const read = (t: ReturnType<typeof vtdMachine>, iova: number) => dmaRead(t.m, t.hw, t.dev0, iova, 1);

// descriptors as the driver would build them
const iotlbPsi = (did: number, addr: number, am: number, ih = 0): [bigint, bigint] => [
  (BigInt(did) << 16n) | (3n << 4n) | 2n,
  BigInt(addr) | (BigInt(ih) << 6n) | BigInt(am),
];
const piotlbPsi = (did: number, pasid: number, addr: number, am: number): [bigint, bigint] => [
  (BigInt(pasid) << 32n) | (BigInt(did) << 16n) | (3n << 4n) | 6n,
  BigInt(addr) | BigInt(am),
];
const piotlbAll = (did: number, pasid: number): [bigint, bigint] => [(BigInt(pasid) << 32n) | (BigInt(did) << 16n) | (2n << 4n) | 6n, 0n];

describe("IOTLB", () => {
  it("hits on the second access to a page, with its set and way", () => {
    const { t } = setup({});
    t.record();
    read(t, 0x1000);
    read(t, 0x1800);
    const fill = t.of("vtd.iotlb.fill")[0];
    const hit = t.of("vtd.iotlb.hit")[0];
    expect(fill).toMatchObject({ page: 0x1000, size: 4096 });
    expect([hit.set, hit.way]).toEqual([fill.set, fill.way]);
    expect(hit.set).toBe(1); // page number 1 mod 16 sets
  });

  it("evicts the least recently used way of a 1 × 2 IOTLB", () => {
    const { t } = setup({ iotlbSets: 1, iotlbWays: 2 });
    t.record();
    read(t, 0x1000); // A → way 0
    read(t, 0x2000); // B → way 1
    read(t, 0x1000); // touch A: B is now LRU
    read(t, 0x3000); // C evicts B
    expect(t.of("vtd.iotlb.evict").map((e) => [e.page, e.way])).toEqual([[0x2000, 1]]);
    expect(t.of("vtd.iotlb.fill").map((e) => [e.page, e.way])).toEqual([[0x1000, 0], [0x2000, 1], [0x3000, 1]]);
    t.record();
    read(t, 0x1000); // A still cached
    read(t, 0x2000); // B was evicted: miss, evicts the LRU, which is now C
    expect(t.of("vtd.iotlb.hit").map((e) => e.page)).toEqual([0x1000]);
    expect(t.of("vtd.iotlb.miss").map((e) => e.page)).toEqual([0x2000]);
    expect(t.of("vtd.iotlb.evict").map((e) => e.page)).toEqual([0x3000]);
    expect(t.hw.stats.iotlbEvictions).toBe(2);
  });

  it("scope: a page-selective PASID-IOTLB invalidation leaves second-stage entries alone", () => {
    const { t, d } = setup({});
    read(t, 0x1000);
    t.record();
    t.ops.qiSubmitSync([piotlbPsi(d.id, 0, 0x1000, 0)]);
    expect(t.of("vtd.iotlb.inv")).toHaveLength(0);
    expect(t.hw.iotlb.entries().map((e) => e.page)).toEqual([0x1000]);
    // the PASID-selective form removes every entry of (DID, PASID), second-stage ones included
    t.ops.qiSubmitSync([piotlbAll(d.id, 0)]);
    expect(t.of("vtd.iotlb.inv").map((e) => e.by)).toEqual(["piotlb-pasid"]);
  });

  it("scope: a page-selective IOTLB invalidation of a DID removes its first-stage entries at any address", () => {
    const { t, d } = setup({});
    read(t, 0x1000);
    read(t, 0x2000);
    // a first-stage entry of the same DID (the FS walker is not modelled: fill it directly)
    t.hw.iotlb.fill(d.id, 0, 0x7777_0000, 1, PGTT_FS, 0x1234_0000, 3, 0);
    // and a second-stage entry of another DID at the same address
    t.hw.iotlb.fill(d.id + 1, 0, 0x1000, 1, PGTT_SS, 0x5555_0000, 3, 0);
    t.record();
    t.ops.qiSubmitSync([iotlbPsi(d.id, 0x1000, 0)]);
    expect(t.of("vtd.iotlb.inv").map((e) => [e.did, e.page]).sort()).toEqual([[d.id, 0x1000], [d.id, 0x7777_0000]].sort());
    expect(t.hw.iotlb.entries().map((e) => [e.did, e.page]).sort()).toEqual([[d.id, 0x2000], [d.id + 1, 0x1000]].sort());
    // and a page-selective PASID-IOTLB invalidation does remove first-stage entries in range
    t.hw.iotlb.fill(d.id, 0, 0x7777_0000, 1, PGTT_FS, 0x1234_0000, 3, 0);
    t.ops.qiSubmitSync([piotlbPsi(d.id, 0, 0x7777_0000, 0)]);
    expect(t.hw.iotlb.entries().some((e) => e.page === 0x7777_0000)).toBe(false);
  });

  it("scope: AM widens a page-selective invalidation to 2^AM aligned pages", () => {
    const { t, d } = setup({});
    for (const a of [0x1000, 0x2000, 0x3000, 0x4000]) read(t, a);
    t.ops.qiSubmitSync([iotlbPsi(d.id, 0x0, 2)]); // pages 0..3
    expect(t.hw.iotlb.entries().map((e) => e.page)).toEqual([0x4000]);
  });
});

describe("paging-structure caches", () => {
  it("a second page under the same PDE is walked from the PT: one memory reference", () => {
    const { t } = setup({});
    read(t, 0x1000);
    t.record();
    const t0 = t.clock.now;
    read(t, 0x2000);
    expect(t.of("vtd.pwc.hit")).toEqual([expect.objectContaining({ level: 2, tag: 0 })]);
    expect(t.of("vtd.walk.level").map((e) => e.level)).toEqual([1]);
    expect(t.of("vtd.walk.done")[0].reads).toBe(1);
    expect(t.clock.now - t0).toBe(90);
  });

  it("with the PWCs disabled every miss walks all four levels", () => {
    const { t } = setup({ pwcEntries: 0 });
    read(t, 0x1000);
    t.record();
    read(t, 0x2000);
    expect(t.of("vtd.pwc.hit")).toHaveLength(0);
    expect(t.of("vtd.walk.level").map((e) => e.level)).toEqual([4, 3, 2, 1]);
  });

  it("a PDE miss under a cached PDPTE starts the walk at the PD", () => {
    const { t, d } = setup({});
    t.map(d, 0x20_0000, t.page(), 4096); // same PDPT, next PD entry
    read(t, 0x1000);
    t.record();
    read(t, 0x20_0000);
    expect(t.of("vtd.pwc.miss").map((e) => e.level)).toEqual([2]);
    expect(t.of("vtd.pwc.hit").map((e) => e.level)).toEqual([3]);
    expect(t.of("vtd.walk.level").map((e) => e.level)).toEqual([2, 1]);
  });

  it("IH = 1 keeps the PWCs; IH = 0 drops the entries on the invalidated path", () => {
    const { t, d } = setup({});
    read(t, 0x1000);
    t.record();
    t.ops.qiSubmitSync([iotlbPsi(d.id, 0x1000, 0, 1)]);
    expect(t.of("vtd.pwc.inv")).toHaveLength(0);
    t.ops.qiSubmitSync([iotlbPsi(d.id, 0x1000, 0, 0)]);
    expect(t.of("vtd.pwc.inv").map((e) => e.level).sort()).toEqual([2, 3, 4]);
  });
});

describe("context and PASID caches", () => {
  it("a PASID entry cleared in memory without invalidation keeps translating until the PASID cache is invalidated", () => {
    const { t, d } = setup({});
    read(t, 0x1000);
    const pe = t.ops.pasidEntryAddr(t.dev0, 0);
    t.mem.write64n(pe, 0n); // P = 0, behind the hardware's back
    t.ops.qiSubmitSync([[(BigInt(d.id) << 16n) | (2n << 4n) | 2n, 0n]]); // IOTLB DSI only
    expect(read(t, 0x1000)).toBeInstanceOf(Uint8Array); // the PASID cache still holds the entry
    t.ops.qiSubmitSync([[(BigInt(d.id) << 16n) | (1n << 4n) | 7n, 0n]]); // PASID-selective, PASID 0
    expect(read(t, 0x1000)).toMatchObject({ reason: 0x59 });
  });

  it("context cache: device-selective invalidation with a function mask", () => {
    const { t } = setup({});
    read(t, 0x1000);
    t.record();
    // SID 0x1c with FM = 11 (mask function bits 2:0) covers 00:03.0 = 0x18
    t.ops.qiSubmitSync([[(3n << 48n) | (0x1cn << 32n) | (3n << 4n) | 1n, 0n]]);
    expect(t.of("vtd.ctxcache.inv").map((e) => e.rid)).toEqual([0x18]);
    t.record();
    read(t, 0x1000);
    expect(t.of("vtd.ctx.read").map((e) => e.what)).toEqual(["root", "context"]);
  });
});
