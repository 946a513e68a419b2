import { describe, it, expect } from "vitest";
import { vtdMachine } from "./helpers.ts";
import { DMAR_FECTL_REG, DMAR_FRCD_REG_OFFSET, DMAR_FSTS_REG, FECTL_IM, FECTL_IP } from "../../../../engine/hw/vtd/regs.ts";

/** A request from a requester on bus 1 (no root entry): always fault 0x39, each RID its own source. */
function strayFault(t: ReturnType<typeof vtdMachine>, n: number, write = true): void {
  t.hw.translate({ rid: 0x100 + n, pasid: -1, iova: 0x5000 + n * 0x1000, write });
}

const fsts = (t: ReturnType<typeof vtdMachine>) => t.hw.readReg32(DMAR_FSTS_REG);
const PFO = 1;
const PPF = 2;

describe("fault recording", () => {
  it("writes a 128-bit record: page address, SID, reason, type, PASID", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.ops.attachDev(d, t.dev0, 4);
    t.hw.translate({ rid: t.dev0.rid, pasid: 4, iova: 0x12_3456_789a, write: false });
    const lo = t.hw.readReg64(DMAR_FRCD_REG_OFFSET);
    const hi = t.hw.readReg64(DMAR_FRCD_REG_OFFSET + 8);
    expect(lo).toBe(0x12_3456_7000n);
    expect(hi & 0xffffn).toBe(0x18n); // SID
    expect((hi >> 31n) & 1n).toBe(1n); // PP
    expect((hi >> 32n) & 0xffn).toBe(0x79n); // FR: not present in the SS table
    expect((hi >> 40n) & 0xfffffn).toBe(4n); // PV
    expect((hi >> 62n) & 1n).toBe(1n); // T = read
    expect(hi >> 63n).toBe(1n); // F
    expect(fsts(t)).toBe(PPF); // FRI = 0
  });

  it("fills the ring, then overflows: PFO set, further faults dropped; one interrupt for PPF 0 → 1", () => {
    const t = vtdMachine();
    t.record();
    for (let i = 0; i < 8; i++) strayFault(t, i);
    expect(t.of("vtd.fault.record").map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(t.of("vtd.fault.irq")).toHaveLength(1);
    expect(t.m.sched.pending).toBe(1);
    expect(fsts(t)).toBe(PPF);
    strayFault(t, 8); // record 0 still pending: dropped, PFO set
    strayFault(t, 9); // PFO set: dropped
    expect(t.of("vtd.fault.drop").map((e) => e.why)).toEqual([
      "record 0 still pending: PFO set",
      "PFO set: primary fault overflow",
    ]);
    expect(fsts(t)).toBe(PPF | PFO);
    expect(t.hw.fault.pending()).toHaveLength(8);
  });

  it("collapses a second fault from the same source while its record is pending", () => {
    const t = vtdMachine();
    t.record();
    t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0x1000, write: false });
    t.hw.translate({ rid: t.dev0.rid, pasid: -1, iova: 0x2000, write: true });
    t.hw.translate({ rid: t.dev1.rid, pasid: -1, iova: 0x3000, write: true });
    expect(t.of("vtd.fault.record").map((e) => e.rid)).toEqual([0x18, 0x20]);
    expect(t.of("vtd.fault.drop")).toEqual([expect.objectContaining({ rid: 0x18, why: expect.stringContaining("collapsed") })]);
  });

  it("the driver's handler runs 3 µs after the interrupt and clears every record and PFO", () => {
    const t = vtdMachine();
    t.record();
    const start = t.clock.now;
    for (let i = 0; i < 10; i++) strayFault(t, i, i % 2 === 0);
    expect(fsts(t)).toBe(PPF | PFO);
    // the interrupt fired at the first fault (after its 90 ns root-entry read)
    const irq = t.of("vtd.fault.irq")[0].t;
    expect(irq).toBe(start + 90);
    t.m.sched.runUntil(irq + 2999);
    expect(t.of("vtd.fault.clear")).toHaveLength(0);
    t.m.sched.runUntil(irq + 3000);
    const cleared = t.of("vtd.fault.clear");
    expect(cleared.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(cleared[0].t).toBe(irq + 3000);
    expect(cleared[0].text).toBe(
      "DMAR: [DMA Write NO_PASID] Request device [01:00.0] fault addr 0x5000 [fault reason 0x39] SM: Present bit in Root Entry is clear",
    );
    expect(cleared[1].text).toContain("[DMA Read NO_PASID] Request device [01:00.1] fault addr 0x6000");
    expect(fsts(t)).toBe(0);
    expect(t.hw.fault.pending()).toHaveLength(0);
    // the ring continues at the hardware's next slot (0 after a full lap); a new interrupt follows
    t.record();
    strayFault(t, 20);
    expect(t.of("vtd.fault.record")[0].index).toBe(0);
    expect(t.of("vtd.fault.irq")).toHaveLength(1);
    expect(fsts(t)).toBe(PPF | (0 << 8));
  });

  it("FRI names the record that turned PPF on", () => {
    const t = vtdMachine();
    strayFault(t, 0);
    strayFault(t, 1);
    t.m.sched.runUntil(t.clock.now + 3000);
    strayFault(t, 2); // recorded at index 2: FRI = 2
    expect(fsts(t)).toBe(PPF | (2 << 8));
    t.m.sched.runUntil(t.clock.now + 3000);
    expect(t.ops.log.filter((l) => l.startsWith("DMAR: [")).length).toBe(3);
  });

  it("faults while the handler is pending pile up without new interrupts", () => {
    const t = vtdMachine({ faultRecords: 2 });
    t.record();
    strayFault(t, 0);
    t.clock.advance(1000);
    strayFault(t, 1);
    t.clock.advance(1000);
    strayFault(t, 2); // both records pending: overflow
    expect(t.of("vtd.fault.irq")).toHaveLength(1);
    expect(t.of("vtd.fault.record")).toHaveLength(2);
    expect(fsts(t) & PFO).toBe(PFO);
    t.m.sched.runUntil(t.clock.now + 1000); // 3 µs after the first fault
    expect(t.of("vtd.fault.clear")).toHaveLength(2);
    expect(fsts(t)).toBe(0);
  });

  it("FPD in the context entry suppresses qualified faults only", () => {
    const t = vtdMachine();
    // set FPD in vfio1's context entry and invalidate its context-cache entry
    const ce = Number(t.mem.read64n(t.ops.layout.rootTable) & ~0xfffn) + 0x20 * 32;
    t.mem.write64n(ce, t.mem.read64n(ce) | 2n);
    t.ops.qiSubmitSync([[(0x20n << 32n) | (3n << 4n) | 1n, 0n]]);
    t.record();
    t.hw.translate({ rid: t.dev1.rid, pasid: -1, iova: 0x1000, write: false }); // blocked: 0x59, qualified
    expect(t.of("vtd.fault.record")).toHaveLength(0);
    expect(t.of("vtd.fault.drop")[0]).toMatchObject({ reason: 0x59, why: expect.stringContaining("FPD") });
    t.hw.translate({ rid: 0x300, pasid: -1, iova: 0x1000, write: false }); // root entry: never suppressed
    expect(t.of("vtd.fault.record")).toHaveLength(1);
  });

  it("with FECTL.IM set only IP is latched; unmasking delivers the interrupt", () => {
    const t = vtdMachine();
    t.hw.writeReg32(DMAR_FECTL_REG, FECTL_IM);
    t.record();
    strayFault(t, 0);
    expect(t.of("vtd.fault.irq")).toHaveLength(0);
    expect((t.hw.readReg32(DMAR_FECTL_REG) & FECTL_IP) !== 0).toBe(true);
    t.hw.writeReg32(DMAR_FECTL_REG, 0);
    expect(t.of("vtd.fault.irq")).toHaveLength(1);
    expect(t.m.sched.pending).toBe(1);
  });
});
