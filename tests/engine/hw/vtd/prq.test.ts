// engine/hw/vtd/prq.ts (the page request queue ring) and driver-prq.ts (Linux intel/prq.c):
// descriptors, PPR/PRO, the interrupt rule, overflow, prq_event_thread and page group responses.
import { describe, expect, it } from "vitest";
import { vtdMachine } from "./helpers.ts";
import { DMAR_PECTL_REG, DMAR_PQA_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG, FECTL_IM, PRS_PPR, PRS_PRO } from "../../../../engine/hw/vtd/regs.ts";
import { PRQ_DESC_SIZE, prqDescDecode } from "../../../../engine/hw/vtd/prq.ts";
import { PRQ_IRQ_DELAY_NS, PRQ_ORDER } from "../../../../engine/hw/vtd/driver-prq.ts";
import { PCIE_MSG_NS, type PageRequestMsg } from "../../../../engine/hw/ats.ts";
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_FAULT_PERM_READ, IOMMU_FAULT_PERM_WRITE, type IommuFaultCore, type IopfFault, type SimDevice,
} from "../../../../engine/hw/model.ts";

const req = (o: Partial<PageRequestMsg> = {}): PageRequestMsg => ({
  rid: 0x18, pasid: -1, addr: 0x100000, prgi: 1, last: true, read: true, write: false, exec: false, priv: false, ...o,
});

/** An iommu core that records what the driver reports. */
function recordingCore() {
  const reported: { dev: SimDevice; fault: IopfFault }[] = [];
  let discards = 0;
  const core: IommuFaultCore = {
    iopfQueueAddDevice: () => 0,
    iopfQueueRemoveDevice: () => {},
    iopfQueueDiscardPartial: () => void discards++,
    reportDeviceFault: (dev, fault) => {
      reported.push({ dev, fault });
      return 0;
    },
  };
  return { core, reported, discards: () => discards };
}

/** A machine whose page request interrupt only counts (the driver's thread is not scheduled). */
function hwOnly(knobs: Record<string, unknown> = {}) {
  const t = vtdMachine(knobs);
  let irqs = 0;
  t.hw.prq.onInterrupt = () => void irqs++;
  return { t, irqs: () => irqs };
}

describe("page request queue: hardware", () => {
  it("the driver sets it up as intel_iommu_enable_prq does: 2^PRQ_ORDER pages, PQH = PQT = 0, event unmasked", () => {
    const t = vtdMachine();
    expect(Number(t.hw.readReg64(DMAR_PQA_REG) & 7n)).toBe(PRQ_ORDER);
    expect(t.hw.prq.entries).toBe(2048);
    expect(t.hw.prq.base % 4096).toBe(0);
    expect(t.hw.readReg64(DMAR_PQH_REG)).toBe(0n);
    expect(t.hw.readReg64(DMAR_PQT_REG)).toBe(0n);
    expect(t.hw.readReg32(DMAR_PECTL_REG) & FECTL_IM).toBe(0);
    // the knob prqOrder builds the driver with a smaller ring
    expect(vtdMachine({ prqOrder: 0 }).hw.prq.entries).toBe(128);
  });

  it("writes a 32-byte descriptor at PQT in Linux's page_req_dsc layout, moves PQT, sets PPR, raises one interrupt", () => {
    const { t, irqs } = hwOnly();
    t.record();
    expect(t.hw.pageRequest(req({ pasid: 5, addr: 0x12345000, prgi: 0x1a5, last: true, read: true, write: true }))).toBe("queued");
    const base = t.hw.prq.base;
    expect(t.mem.read64n(base)).toBe(1n | (1n << 8n) | (0x18n << 16n) | (5n << 32n));
    expect(t.mem.read64n(base + 8)).toBe(1n | 2n | 4n | (0x1a5n << 3n) | 0x12345000n);
    expect(t.mem.read64n(base + 16)).toBe(0n); // no private data
    expect(t.hw.readReg64(DMAR_PQT_REG)).toBe(BigInt(PRQ_DESC_SIZE));
    expect(t.hw.readReg32(DMAR_PRS_REG) & PRS_PPR).toBe(PRS_PPR);
    expect(irqs()).toBe(1);
    expect(t.of("prq.request")[0]).toMatchObject({ slot: 0, head: 0, tail: 1, rid: 0x18, pasid: 5, group: 0x1a5, last: true, read: true, write: true });
    expect(t.of("prq.irq")).toHaveLength(1);
    // PPR is still set: the next request raises nothing
    expect(t.hw.pageRequest(req({ addr: 0x5000, prgi: 2, last: false }))).toBe("queued");
    expect(irqs()).toBe(1);
    expect(t.hw.prq.pending().map((d) => [d.slot, d.pasid, d.prgi, d.last])).toEqual([[0, 5, 0x1a5, true], [1, -1, 2, false]]);
    // a request without PASID: PP = 0, PASID field 0
    const d1 = prqDescDecode(t.mem.read64n(base + 32), t.mem.read64n(base + 40));
    expect(d1).toMatchObject({ type: 1, pasid: -1, rid: 0x18, addr: 0x5000, read: true, write: false, last: false, prgi: 2 });
  });

  it("a full ring drops the request and sets PRO; every request is dropped until software clears PRO", () => {
    const { t, irqs } = hwOnly({ prqOrder: 0 }); // 128 slots, one always empty
    t.record();
    for (let i = 0; i < 127; i++) expect(t.hw.pageRequest(req({ prgi: i & 0x1ff, last: false }))).toBe("queued");
    expect(irqs()).toBe(1);
    expect(t.hw.pageRequest(req({ prgi: 200 }))).toBe("dropped");
    expect(t.hw.readReg32(DMAR_PRS_REG) & PRS_PRO).toBe(PRS_PRO);
    expect(t.hw.pageRequest(req({ prgi: 201 }))).toBe("dropped");
    expect(t.of("prq.overflow").map((e) => e.why)).toEqual([
      expect.stringMatching(/^queue full \(127 descriptors between PQH and PQT\): PRS\.PRO set/),
      expect.stringMatching(/^PRS\.PRO is set/),
    ]);
    expect(irqs()).toBe(1); // PPR was already set: no new event for the overflow
    expect(t.hw.stats).toMatchObject({ prqQueued: 127, prqDropped: 2 });
    // software consumes everything, clears PPR and PRO: requests are queued again, and interrupt again
    t.hw.writeReg64(DMAR_PQH_REG, t.hw.readReg64(DMAR_PQT_REG));
    t.hw.writeReg32(DMAR_PRS_REG, PRS_PPR | PRS_PRO);
    expect(t.hw.pageRequest(req({ prgi: 202 }))).toBe("queued");
    expect(irqs()).toBe(2);
    // the tail wrapped around the ring
    expect(t.hw.readReg64(DMAR_PQT_REG)).toBe(0n);
    expect(t.of("prq.request").at(-1)).toMatchObject({ slot: 127, tail: 0 });
  });

  it("PECTL.IM holds the event (IP latched) until software unmasks it", () => {
    const { t, irqs } = hwOnly();
    t.hw.writeReg32(DMAR_PECTL_REG, FECTL_IM);
    t.hw.pageRequest(req());
    expect(irqs()).toBe(0);
    t.hw.writeReg32(DMAR_PECTL_REG, 0);
    expect(irqs()).toBe(1);
  });

  it("a page request from a function whose context entry has no PRE is blocked and recorded (0x47)", () => {
    const { t } = hwOnly();
    expect(t.hw.pageRequest(req({ rid: 0x20 }))).toBe("blocked"); // vfio1: no PRI
    expect(t.hw.fault.pending()).toMatchObject([{ reason: 0x47, rid: 0x20, addr: 0x100000 }]);
    expect(t.hw.prq.pending()).toEqual([]);
  });
});

describe("prq_event_thread (Linux intel/prq.c)", () => {
  it("reports each request to the iommu core as a struct iopf_fault and moves PQH to the tail", () => {
    const t = vtdMachine();
    const rec = recordingCore();
    t.ops.setFaultCore(rec.core);
    t.hw.pageRequest(req({ pasid: 7, addr: 0x2000, prgi: 3, last: false, read: true, write: true }));
    t.hw.pageRequest(req({ pasid: 7, addr: 0x3000, prgi: 3, last: true, read: true }));
    expect(rec.reported).toHaveLength(0); // the threaded handler runs later
    t.m.sched.runUntil(t.clock.now + PRQ_IRQ_DELAY_NS);
    expect(rec.reported.map((r) => r.fault)).toEqual([
      { flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID, pasid: 7, grpid: 3, perm: IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE, addr: 0x2000 },
      { flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, pasid: 7, grpid: 3, perm: IOMMU_FAULT_PERM_READ, addr: 0x3000 },
    ]);
    expect(rec.reported[0].dev).toBe(t.dev0);
    expect(t.hw.readReg64(DMAR_PQH_REG)).toBe(t.hw.readReg64(DMAR_PQT_REG));
    expect(t.hw.readReg32(DMAR_PRS_REG) & PRS_PPR).toBe(0);
  });

  it("drops a Stop Marker silently and answers a bad request Invalid only when it is the last of its group", () => {
    const t = vtdMachine();
    const rec = recordingCore();
    t.ops.setFaultCore(rec.core);
    t.record();
    t.hw.pageRequest(req({ prgi: 9, last: true, read: false, write: false })); // Stop Marker
    t.hw.pageRequest(req({ prgi: 10, addr: 2 ** 47, last: false })); // not canonical, not last: logged only
    t.hw.pageRequest(req({ prgi: 11, addr: 2 ** 47, last: true })); // not canonical, last: Invalid Request
    t.hw.pageRequest(req({ prgi: 12, priv: true, read: true })); // privileged with read
    t.hw.pageRequest(req({ prgi: 13, exec: true, read: true })); // execute with read
    t.m.sched.runUntil(t.clock.now + PRQ_IRQ_DELAY_NS);
    expect(rec.reported).toHaveLength(0);
    expect(t.of("prq.handle").map((e) => [e.group, e.action, e.why])).toEqual([
      [9, "stop-marker", undefined],
      [10, "invalid", "Address is not canonical"],
      [11, "invalid", "Address is not canonical"],
      [12, "invalid", "Page request in Privilege Mode"],
      [13, "invalid", "Execution request not supported"],
    ]);
    // handle_bad_prq_event answers with QI_RESP_INVALID through a page group response (type 9)
    expect(t.of("prq.response").map((e) => [e.group, e.code, e.last])).toEqual([[11, 1, true], [12, 1, true], [13, 1, true]]);
    expect(t.of("vtd.qi.desc").filter((e) => e.type === 9)).toHaveLength(3);
    expect(t.ops.log.filter((l) => l.includes("Invalid page request"))).toHaveLength(4);
  });

  it("after an overflow, once the ring is empty, discards the partial groups and clears PRO", () => {
    const t = vtdMachine({ prqOrder: 0 });
    const rec = recordingCore();
    t.ops.setFaultCore(rec.core);
    t.record();
    for (let i = 0; i < 130; i++) t.hw.pageRequest(req({ prgi: 4, addr: i * 4096, last: false }));
    expect(t.of("prq.overflow")).toHaveLength(3);
    t.m.sched.runUntil(t.clock.now + PRQ_IRQ_DELAY_NS);
    expect(rec.reported).toHaveLength(127);
    expect(rec.discards()).toBe(1);
    expect(t.hw.readReg32(DMAR_PRS_REG) & PRS_PRO).toBe(0);
    expect(t.of("prq.recover")).toHaveLength(1);
    expect(t.ops.log).toContain("DMAR: IOMMU: dmar0: PRQ overflow detected");
    expect(t.hw.pageRequest(req({ prgi: 4, last: true }))).toBe("queued");
  });

  it("sends a page group response as QI type 9; the device receives it PCIE_MSG_NS later", () => {
    const t = vtdMachine();
    t.record();
    const fault: IopfFault = { flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, pasid: 3, grpid: 0x42, perm: 1, addr: 0x1000 };
    t.ops.pageResponse(t.dev0, fault, 0);
    const desc = t.of("vtd.qi.desc").find((e) => e.type === 9)!;
    // qw0: PASID 51:32, RID 31:16, RC 15:12, PP 4, type 9; qw1: PRGI 11:3, LPIG 2
    expect(BigInt(desc.qw0)).toBe((3n << 32n) | (0x18n << 16n) | (1n << 4n) | 9n);
    expect(BigInt(desc.qw1)).toBe((0x42n << 3n) | (1n << 2n));
    expect(desc.granularity).toBe("rid=0x18 pasid=3 prgi=66 lpig rc=0 (Success)");
    expect(t.of("prq.response")).toMatchObject([{ rid: 0x18, pasid: 3, group: 0x42, last: true, code: 0, name: "Success" }]);
    expect(t.of("pri.response")).toHaveLength(0);
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    // nothing was waiting for group 0x42: the function sets PRI status UPRGI
    expect(t.of("pri.response")).toMatchObject([{ rid: 0x18, pasid: 3, group: 0x42, code: 0, matched: false }]);
    expect(t.m.pcie.get(0x18)!.priUprgi).toBe(true);
  });
});
