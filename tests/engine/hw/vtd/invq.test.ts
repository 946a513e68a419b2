import { describe, it, expect } from "vitest";
import { vtdMachine } from "./helpers.ts";
import { DMAR_FSTS_REG, DMAR_IQH_REG, DMAR_IQT_REG, DMAR_ICS_REG, FSTS_IQE } from "../../../../engine/hw/vtd/regs.ts";

describe("queued invalidation", () => {
  it("each submission is the descriptors plus a wait descriptor whose status write completes it", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.ops.attachDev(d, t.dev1, 0); // vfio1: no ATS, so no device-TLB descriptor follows
    t.record();
    const before = t.clock.now;
    d.ops.flushIotlbAll();
    expect(t.of("vtd.qi.desc").map((e) => [e.type, e.name])).toEqual([[2, "iotlb"], [5, "wait"]]);
    expect(t.of("vtd.qi.desc")[1].granularity).toMatch(/^wait sw status=0x2@0x/);
    expect(t.clock.now - before).toBe(2 * 500);
    // the hardware consumed everything: IQH caught up with IQT
    expect(t.hw.readReg64(DMAR_IQH_REG)).toBe(t.hw.readReg64(DMAR_IQT_REG));
    expect(t.of("vtd.reg.write").map((e) => e.reg)).toEqual(["IQT_REG"]);
  });

  it("an unknown descriptor type sets FSTS.IQE and stops the queue at it until software clears IQE", () => {
    const t = vtdMachine();
    const { qiDesc } = t.ops.layout;
    const head = Number(t.hw.readReg64(DMAR_IQH_REG)) >> 5;
    // write a type-0xf descriptor, then a wait descriptor with IF, and move IQT past both
    t.mem.write64n(qiDesc + head * 32, 0xfn);
    t.mem.write64n(qiDesc + head * 32 + 8, 0n);
    t.mem.write64n(qiDesc + (head + 1) * 32, (1n << 4n) | 5n);
    t.mem.write64n(qiDesc + (head + 1) * 32 + 8, 0n);
    t.record();
    t.hw.writeReg32(DMAR_IQT_REG, (head + 2) << 5);
    expect(t.hw.readReg32(DMAR_FSTS_REG) & FSTS_IQE).toBe(FSTS_IQE);
    expect(Number(t.hw.readReg64(DMAR_IQH_REG)) >> 5).toBe(head);
    expect(t.of("vtd.qi.error")[0]).toMatchObject({ head, type: 0xf, why: "unknown descriptor type 15" });
    expect(t.of("vtd.qi.desc")).toHaveLength(0);
    // what Linux's qi_check_fault does: overwrite the bad descriptor with the wait, clear IQE
    t.mem.write64n(qiDesc + head * 32, (1n << 4n) | 5n);
    t.hw.writeReg32(DMAR_FSTS_REG, FSTS_IQE);
    expect(t.hw.readReg32(DMAR_FSTS_REG) & FSTS_IQE).toBe(0);
    expect(t.of("vtd.qi.desc").map((e) => e.type)).toEqual([5, 5]);
    expect(t.hw.readReg32(DMAR_ICS_REG) & 1).toBe(1);
    expect(Number(t.hw.readReg64(DMAR_IQH_REG)) >> 5).toBe(head + 2);
  });

  it("rejects reserved granularities and AM above MAMV", () => {
    const t = vtdMachine();
    expect(() => t.ops.qiSubmitSync([[(0n << 4n) | 2n, 0n]])).toThrow(/IQE/);
    const t2 = vtdMachine();
    expect(() => t2.ops.qiSubmitSync([[(2n << 16n) | (3n << 4n) | 2n, 19n]])).toThrow(/IQE/);
    const t3 = vtdMachine();
    expect(() => t3.ops.qiSubmitSync([[(2n << 4n) | 7n, 0n]])).toThrow(/IQE/);
  });

  it("device-TLB descriptors reach the device's ATC; an interrupt-entry-cache descriptor is accepted as not modelled", () => {
    const t = vtdMachine();
    t.record();
    t.ops.qiSubmitSync([[(0x18n << 32n) | 3n, 0n], [4n, 0n], [(0x18n << 16n) | (7n << 32n) | 8n, 0n]]);
    expect(t.of("vtd.qi.desc").map((e) => [e.type, e.granularity])).toEqual([
      [3, "sid=0x18 addr=0x0 size=0x1000"],
      [4, "not modelled (no interrupt remapping)"],
      [8, "sid=0x18 pasid=7 addr=0x0 size=0x1000"],
      [5, expect.stringMatching(/^wait/)],
    ]);
    // a device without ATS: nothing is cached, nothing to do
    t.record();
    t.ops.qiSubmitSync([[(0x20n << 32n) | 3n, 0n]]);
    expect(t.of("vtd.qi.desc")[0].granularity).toMatch(/no ATS endpoint/);
  });
});
