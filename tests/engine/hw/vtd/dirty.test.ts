import { describe, it, expect } from "vitest";
import { vtdMachine, idx, addrOf } from "./helpers.ts";
import { dmaRead, dmaWrite } from "../../../../engine/hw/dma.ts";
import { DOMAIN_ALLOC_DIRTY_TRACKING } from "../../../../engine/hw/model.ts";
import { isErr } from "../../../../engine/uapi/errno.ts";
import type { DmarDomain } from "../../../../engine/hw/vtd/driver.ts";

const A = 1n << 8n;
const D = 1n << 9n;

function setup() {
  const t = vtdMachine();
  const d = t.domain(DOMAIN_ALLOC_DIRTY_TRACKING);
  expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
  for (let i = 0; i < 4; i++) t.map(d, 0x1000 * (i + 1), t.page(), 4096);
  return { t, d };
}

/** The raw entry at `level` for `iova`. */
function entry(t: ReturnType<typeof vtdMachine>, d: DmarDomain, iova: number, level = 1): bigint {
  let table = d.pgd;
  for (let l = 4; l > level; l--) table = addrOf(t.mem.read64n(table + idx(iova, l) * 8));
  return t.mem.read64n(table + idx(iova, level) * 8);
}

function dirty(d: DmarDomain, iova: number, size: number, noClear = false): [number, number][] {
  const out: [number, number][] = [];
  const rc = d.ops.readAndClearDirty!(iova, size, noClear, (a, l) => out.push([a, l]));
  if (isErr(rc)) throw new Error(rc.toString());
  return out;
}

const w = (t: ReturnType<typeof vtdMachine>, iova: number) => dmaWrite(t.m, t.hw, t.dev0, iova, new Uint8Array([0xaa]));
const r = (t: ReturnType<typeof vtdMachine>, iova: number) => dmaRead(t.m, t.hw, t.dev0, iova, 1);

describe("second-stage dirty tracking", () => {
  it("hardware sets no A/D while SSADE = 0", () => {
    const { t, d } = setup();
    expect(w(t, 0x1000)).toBeNull();
    expect(entry(t, d, 0x1000) & (A | D)).toBe(0n);
    expect(entry(t, d, 0x1000, 4) & A).toBe(0n);
  });

  it("enabling sets SSADE (PASID cache + IOTLB + device-TLB invalidation); writes then set A on every level and D on the leaf", () => {
    const { t, d } = setup();
    t.record();
    expect(d.ops.setDirtyTracking!(true)).toBe(0);
    const pe = t.ops.pasidEntryAddr(t.dev0, 0);
    expect(t.mem.read64n(pe) & (1n << 9n)).toBe(1n << 9n);
    // PASID cache, IOTLB, then vfio0's device-TLB (intel_pasid_setup_dirty_tracking, ATS enabled)
    expect(t.of("vtd.qi.desc").filter((e) => e.type !== 5).map((e) => e.type)).toEqual([7, 2, 3]);
    t.record();
    expect(w(t, 0x2000)).toBeNull();
    for (const level of [4, 3, 2]) expect(entry(t, d, 0x2000, level) & (A | D)).toBe(A);
    expect(entry(t, d, 0x2000) & (A | D)).toBe(A | D);
    expect(t.of("vtd.walk.level").map((e) => e.ad)).toEqual(["A", "A", "A", "A|D"]);
    // a read sets A only
    expect(r(t, 0x3000)).toBeInstanceOf(Uint8Array);
    expect(entry(t, d, 0x3000) & (A | D)).toBe(A);
  });

  it("readAndClearDirty reports written pages, NO_CLEAR keeps D, clearing flushes so the next write sets D again", () => {
    const { t, d } = setup();
    d.ops.setDirtyTracking!(true);
    w(t, 0x1000);
    w(t, 0x3000);
    r(t, 0x2000);
    expect(dirty(d, 0, 0x10000, true)).toEqual([[0x1000, 4096], [0x3000, 4096]]);
    expect(entry(t, d, 0x1000) & D).toBe(D); // NO_CLEAR
    t.record();
    expect(dirty(d, 0, 0x10000)).toEqual([[0x1000, 4096], [0x3000, 4096]]);
    expect(entry(t, d, 0x1000) & D).toBe(0n);
    expect(t.of("vtd.qi.desc").filter((e) => e.type === 2).map((e) => e.granularity)).toEqual([`page did=${d.id} addr=0x0 am=2 ih=1`]);
    expect(dirty(d, 0, 0x10000)).toEqual([]);
    // the IOTLB entry that knew "already dirty" was flushed: the write walks and sets D again
    w(t, 0x1000);
    expect(entry(t, d, 0x1000) & D).toBe(D);
    expect(dirty(d, 0x1000, 0x1000)).toEqual([[0x1000, 4096]]);
  });

  it("a write hitting an IOTLB entry filled by a read re-walks so D lands in memory", () => {
    const { t, d } = setup();
    d.ops.setDirtyTracking!(true);
    r(t, 0x4000);
    expect(entry(t, d, 0x4000) & D).toBe(0n);
    t.record();
    w(t, 0x4000);
    expect(t.of("vtd.iotlb.hit")).toHaveLength(1);
    expect(t.of("vtd.walk.level").at(-1)).toMatchObject({ level: 1, ad: "D" });
    expect(entry(t, d, 0x4000) & D).toBe(D);
    expect(t.hw.stats.dirtyRewalks).toBe(1);
    // now the entry is known dirty: the next write is a plain hit
    t.record();
    w(t, 0x4000);
    expect(t.of("vtd.walk.level")).toHaveLength(0);
  });

  it("enabling clears D bits left from before; disabling clears SSADE; reading while off is EINVAL", () => {
    const { t, d } = setup();
    d.ops.setDirtyTracking!(true);
    w(t, 0x1000);
    d.ops.setDirtyTracking!(false);
    expect(t.mem.read64n(t.ops.pasidEntryAddr(t.dev0, 0)) & (1n << 9n)).toBe(0n);
    const rc = d.ops.readAndClearDirty!(0, 0x10000, false, () => {});
    expect(isErr(rc) && rc.name).toBe("EINVAL");
    w(t, 0x2000); // SSADE off: no D
    expect(entry(t, d, 0x2000) & D).toBe(0n);
    expect(entry(t, d, 0x1000) & D).toBe(D); // stale dirt from the last cycle
    d.ops.setDirtyTracking!(true);
    expect(entry(t, d, 0x1000) & D).toBe(0n);
    expect(dirty(d, 0, 0x10000)).toEqual([]);
  });

  it("reports a 2 MiB leaf clipped to the asked range", () => {
    const t = vtdMachine();
    const d = t.domain(DOMAIN_ALLOC_DIRTY_TRACKING);
    t.ops.attachDev(d, t.dev0, 0);
    t.map(d, 0x20_0000, t.mem.allocUserFolio() * 4096, 0x20_0000);
    d.ops.setDirtyTracking!(true);
    w(t, 0x20_1000);
    expect(dirty(d, 0x20_0000, 0x1000, true)).toEqual([[0x20_0000, 0x1000]]);
    expect(dirty(d, 0, 0x100_0000)).toEqual([[0x20_0000, 0x20_0000]]);
  });
});
