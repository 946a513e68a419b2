import { describe, it, expect } from "vitest";
import { vtdMachine } from "./vtd/helpers.ts";
import { dmaRead, dmaWrite } from "../../../engine/hw/dma.ts";

function attached() {
  const t = vtdMachine();
  const d = t.domain();
  expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
  return { t, d };
}

describe("device DMA", () => {
  it("round trip: bytes written by the device are read back, and land at the mapped physical pages", () => {
    const { t, d } = attached();
    const pages = [t.page(), t.page(), t.page()];
    pages.forEach((pa, i) => t.map(d, 0x10_0000 + i * 4096, pa, 4096));
    const data = new Uint8Array(3 * 4096).map((_, i) => (i * 7) & 0xff);
    expect(dmaWrite(t.m, t.hw, t.dev0, 0x10_0000, data)).toBeNull();
    pages.forEach((pa, i) => expect(t.mem.read(pa, 4096)).toEqual(data.subarray(i * 4096, (i + 1) * 4096)));
    expect(dmaRead(t.m, t.hw, t.dev0, 0x10_0000, data.length)).toEqual(data);
  });

  it("a misaligned transfer crossing a page boundary is split at it, each half translated", () => {
    const { t, d } = attached();
    const p0 = t.page();
    const p1 = t.page();
    expect(p1).not.toBe(p0 + 4096); // user pages are allocated downwards: the halves are not contiguous
    t.map(d, 0x5000, p0, 4096);
    t.map(d, 0x6000, p1, 4096);
    t.record();
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(dmaWrite(t.m, t.hw, t.dev0, 0x5ffb, data)).toBeNull();
    const done = t.of("dma.complete");
    expect(done.map((e) => [e.iova, e.pa, e.len])).toEqual([[0x5ffb, p0 + 0xffb, 5], [0x6000, p1, 5]]);
    expect(t.mem.read(p0 + 0xffb, 5)).toEqual(data.subarray(0, 5));
    expect(t.mem.read(p1, 5)).toEqual(data.subarray(5));
    expect(dmaRead(t.m, t.hw, t.dev0, 0x5ffb, 10)).toEqual(data);
    expect(t.of("dma.request")[0]).toMatchObject({ rid: 0x18, pasid: -1, iova: 0x5ffb, len: 10, write: true });
  });

  it("a fault returns the fault object and emits dma.fault", () => {
    const { t } = attached();
    t.record();
    const f = dmaRead(t.m, t.hw, t.dev0, 0x9000, 8, 3);
    expect(f).toEqual({ reason: 0x59, reasonName: "SM: Present bit in PASID Table Entry is clear", iova: 0x9000, pasid: 3, rid: 0x18, write: false, done: 0 });
    expect(t.of("dma.fault")[0]).toMatchObject({ rid: 0x18, pasid: 3, iova: 0x9000, reason: 0x59 });
  });

  it("interrupt window: a write without PASID to 0xFEEx_xxxx is an MSI, a read returns zeros; neither is translated", () => {
    const { t, d } = attached();
    t.record();
    expect(dmaWrite(t.m, t.hw, t.dev0, 0xfee0_0000, new Uint8Array([0x41, 0x00, 0x00, 0x00]))).toBeNull();
    expect(t.of("vtd.intr.msi")).toEqual([expect.objectContaining({ rid: 0x18, addr: 0xfee0_0000, data: 0x41 })]);
    expect(dmaRead(t.m, t.hw, t.dev0, 0xfeef_fff0, 16)).toEqual(new Uint8Array(16));
    expect(t.of("vtd.intr.read")).toHaveLength(1);
    expect(t.of("vtd.iotlb.miss")).toHaveLength(0);
    expect(t.of("vtd.ctx.read")).toHaveLength(0);
    expect(t.of("vtd.fault.record")).toHaveLength(0);
    // with a PASID the same address is ordinary DMA: translated (and here, unmapped → fault)
    t.ops.attachDev(d, t.dev0, 2);
    const f = dmaWrite(t.m, t.hw, t.dev0, 0xfee0_0000, new Uint8Array(4), 2);
    expect(f).toMatchObject({ reason: 0x79, pasid: 2 });
  });

  it("rejects a negative or fractional iova/length as a caller bug", () => {
    const { t } = attached();
    expect(() => dmaRead(t.m, t.hw, t.dev0, -1, 4)).toThrow();
    expect(() => dmaRead(t.m, t.hw, t.dev0, 0, 1.5)).toThrow();
    expect(dmaRead(t.m, t.hw, t.dev0, 0x1000, 0)).toEqual(new Uint8Array(0));
  });
});
