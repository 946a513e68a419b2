// engine/hw/ats.ts with the VT-d model: ATS enable at probe, Translation Requests and their
// no-fault "no access" completions, the device-TLB (ATC), device-TLB invalidation after the
// IOTLB, and the PRI round trip of a DMA that waits for a page response.
import { describe, expect, it } from "vitest";
import { vtdMachine, idx, addrOf } from "./vtd/helpers.ts";
import { ATS_TRANSLATION_NS, PCIE_MSG_NS, PRG_RESP_INVALID, PRI_MAX_ROUNDS, type AtsDevice, type AtsDmaOp, type AtsDmaResult } from "../../../engine/hw/ats.ts";
import { devTlbRange } from "../../../engine/hw/vtd/invq.ts";
import { PRQ_IRQ_DELAY_NS, QI_RESP_FAILURE, qiPgrpRespDesc } from "../../../engine/hw/vtd/driver-prq.ts";
import { DOMAIN_ALLOC_DIRTY_TRACKING, iommuUnmap, type IommuFaultCore, type IopfFault } from "../../../engine/hw/model.ts";
import type { DmarDomain } from "../../../engine/hw/vtd/driver.ts";

const D = 1n << 9n;

function setup(flags = 0, knobs: Record<string, unknown> = {}) {
  const t = vtdMachine(knobs);
  const d = t.domain(flags);
  expect(t.ops.attachDev(d, t.dev0, 0)).toBe(0);
  const ats = t.m.pcie.get(0x18)!;
  return { t, d, ats };
}

/** One DMA through vfio0's ATS engine; `res()` is its result once it ended. */
function dma(ats: AtsDevice, o: Partial<AtsDmaOp> & { iova: number }) {
  let result: AtsDmaResult | null = null;
  const op: AtsDmaOp = { length: 4, pasid: -1, write: false, usePri: false, ...o };
  if (op.write && !op.data) op.data = new Uint8Array(op.length).fill(0x5a);
  ats.dma(op, (r) => (result = r));
  return () => result;
}

function leaf(t: ReturnType<typeof vtdMachine>, d: DmarDomain, iova: number): bigint {
  let table = d.pgd;
  for (let l = 4; l > 1; l--) table = addrOf(t.mem.read64n(table + idx(iova, l) * 8));
  return t.mem.read64n(table + idx(iova, 1) * 8);
}

describe("ATS: enable, translation requests, completions", () => {
  it("the driver enables ATS and then PRI at probe for vfio0 (iommu_enable_pci_ats / _pri), and nothing for vfio1", () => {
    const t = vtdMachine();
    const ats = t.m.pcie.get(0x18)!;
    expect(ats).toMatchObject({ atsEnabled: true, stu: 0, priEnabled: true, priAlloc: 512, prgRespPasidRequired: true });
    expect(t.m.pcie.has(0x20)).toBe(false);
  });

  it("a mapped page completes with its address and only the access asked for (NW for reads); the IOTLB fills", () => {
    const { t, d } = setup();
    const pa = t.page();
    t.map(d, 0x10000, pa, 4096);
    t.record();
    const r = t.hw.translationRequest({ rid: 0x18, pasid: -1, iova: 0x10000, write: false });
    expect(r).toMatchObject({ ok: true, pa, size: 4096, perm: 1 });
    expect(t.of("vtd.iotlb.fill")).toHaveLength(1);
    expect(t.hw.translationRequest({ rid: 0x18, pasid: -1, iova: 0x10000, write: true })).toMatchObject({ ok: true, perm: 3 });
  });

  it("not present: a successful completion with R = W = 0 and no fault recorded; structural errors are UR and recorded", () => {
    const { t } = setup();
    expect(t.hw.translationRequest({ rid: 0x18, pasid: -1, iova: 0x40000, write: true })).toMatchObject({ ok: true, perm: 0 });
    expect(t.hw.fault.pending()).toEqual([]);
    expect(t.hw.stats).toMatchObject({ atsRequests: 1, atsNoAccess: 1, faultsRecorded: 0 });
    // PASID 9 has no entry: UR, fault 0x59 recorded as for any request
    expect(t.hw.translationRequest({ rid: 0x18, pasid: 9, iova: 0x40000, write: false })).toMatchObject({ ok: false, reason: 0x59 });
    expect(t.hw.fault.pending()).toMatchObject([{ reason: 0x59, rid: 0x18, pasid: 9 }]);
  });

  it("a translation request from a function whose context entry has no DTE is refused: fault 0x44", () => {
    const t = vtdMachine();
    const d = t.domain();
    t.ops.attachDev(d, t.dev1, 0);
    expect(t.hw.translationRequest({ rid: 0x20, pasid: -1, iova: 0, write: false })).toMatchObject({ ok: false, reason: 0x44 });
    expect(t.hw.fault.pending()).toMatchObject([{ reason: 0x44, rid: 0x20 }]);
  });
});

describe("the device-TLB (ATC)", () => {
  it("caches the completion: the repeat is a translated request the IOMMU neither looks up nor walks", () => {
    const { t, d, ats } = setup();
    const pa = t.page();
    t.mem.write(pa + 0x10, new Uint8Array([1, 2, 3, 4]));
    t.map(d, 0x10000, pa, 4096);
    t.record();
    const t0 = t.clock.now;
    const first = dma(ats, { iova: 0x10010 })();
    expect(first).toEqual({ ok: true, data: new Uint8Array([1, 2, 3, 4]) });
    expect(t.clock.now - t0).toBeGreaterThanOrEqual(ATS_TRANSLATION_NS);
    expect(t.of("ats.request")).toMatchObject([{ rid: 0x18, iova: 0x10000, write: false }]);
    expect(t.of("devtlb.fill")).toMatchObject([{ page: 0x10000, size: 4096, pa, perm: 1 }]);
    const translations = t.hw.stats.translations;
    t.record();
    const t1 = t.clock.now;
    expect(dma(ats, { iova: 0x10010 })()).toEqual({ ok: true, data: new Uint8Array([1, 2, 3, 4]) });
    expect(t.clock.now).toBe(t1);
    expect(t.hw.stats.translations).toBe(translations);
    expect(t.events.map((e) => e.k)).toEqual(["dma.request", "devtlb.hit", "dma.complete"]);
  });

  it("a 2 MiB page is one 2 MiB ATC entry", () => {
    const { t, d, ats } = setup();
    const folio = t.m.mem.allocUserFolio() * 4096;
    t.map(d, 0x200000, folio, 2 * 1024 * 1024);
    dma(ats, { iova: 0x200000 });
    t.record();
    expect(dma(ats, { iova: 0x3ff000 })()).toMatchObject({ ok: true });
    expect(t.of("devtlb.hit")).toMatchObject([{ page: 0x200000, size: 2 * 1024 * 1024 }]);
    expect(ats.atcEntries()).toEqual([{ pasid: -1, page: 0x200000, size: 2 * 1024 * 1024, pa: folio, perm: 1 }]);
  });

  it("unmap flushes the IOTLB, then the device-TLB: the device asks again and faults instead of using a stale page", () => {
    const { t, d, ats } = setup();
    t.map(d, 0x10000, t.page(), 4096);
    dma(ats, { iova: 0x10000 });
    t.record();
    iommuUnmap(d, 0x10000, 4096);
    expect(t.of("vtd.qi.desc").map((e) => e.name)).toEqual(["iotlb", "dev-iotlb", "wait"]);
    expect(t.of("vtd.qi.desc")[1].granularity).toBe("sid=0x18 addr=0x10000 size=0x1000");
    expect(t.of("devtlb.inv")).toMatchObject([{ rid: 0x18, pasid: -1, page: 0x10000, by: "dev-iotlb" }]);
    t.record();
    const r = dma(ats, { iova: 0x10000 })();
    expect(r).toMatchObject({ ok: false, fault: { reason: 0x79 } });
    expect(t.of("ats.completion")).toMatchObject([{ perm: 0, status: "success" }]); // no access, no record…
    expect(t.of("vtd.fault.record")).toMatchObject([{ reason: 0x79 }]); // …then the untranslated request is recorded
  });

  it("without the device-TLB invalidation the device keeps reaching the old page (why the driver sends it)", () => {
    const { t, d, ats } = setup();
    const old = t.page();
    t.mem.write(old, new Uint8Array([0xee]));
    t.map(d, 0x10000, old, 4096);
    dma(ats, { iova: 0x10000, length: 1 });
    // clear the PTE and invalidate only the IOTLB (type 2, domain-selective), as a buggy driver would
    let table = d.pgd;
    for (let l = 4; l > 1; l--) table = addrOf(t.mem.read64n(table + idx(0x10000, l) * 8));
    t.mem.write64n(table + idx(0x10000, 1) * 8, 0n);
    t.ops.qiSubmitSync([[(BigInt(d.id) << 16n) | (1n << 7n) | (1n << 6n) | (2n << 4n) | 2n, 0n]]);
    expect(t.hw.translationRequest({ rid: 0x18, pasid: -1, iova: 0x10000, write: false })).toMatchObject({ perm: 0 });
    expect(dma(ats, { iova: 0x10000, length: 1 })()).toEqual({ ok: true, data: new Uint8Array([0xee]) });
  });

  it("reads are granted R only, so a write translates again and its walk sets D (dirty tracking stays exact)", () => {
    const { t, d, ats } = setup(DOMAIN_ALLOC_DIRTY_TRACKING);
    expect(d.ops.setDirtyTracking!(true)).toBe(0);
    t.map(d, 0x10000, t.page(), 4096);
    dma(ats, { iova: 0x10000 });
    expect(leaf(t, d, 0x10000) & D).toBe(0n);
    t.record();
    expect(dma(ats, { iova: 0x10000, write: true })()).toMatchObject({ ok: true });
    expect(t.of("devtlb.miss")).toMatchObject([{ why: "cached without write permission" }]);
    expect(t.of("ats.request")).toMatchObject([{ write: true }]);
    expect(leaf(t, d, 0x10000) & D).toBe(D);
  });

  it("a PASID-based invalidation removes that PASID's entries only", () => {
    const t = vtdMachine();
    const a = t.domain();
    t.ops.attachDev(a, t.dev0, 0);
    t.ops.attachDev(a, t.dev0, 4);
    t.map(a, 0x10000, t.page(), 4096);
    const ats = t.m.pcie.get(0x18)!;
    dma(ats, { iova: 0x10000 });
    dma(ats, { iova: 0x10000, pasid: 4 });
    expect(ats.atcEntries().map((e) => e.pasid).sort()).toEqual([-1, 4]);
    t.record();
    t.ops.devtlbInvalidationWithPasid(t.dev0, 4);
    expect(t.of("vtd.qi.desc")[0]).toMatchObject({ type: 8, granularity: "sid=0x18 pasid=4 all" });
    expect(ats.atcEntries().map((e) => e.pasid)).toEqual([-1]);
  });

  it("decodes the device-TLB address/size encoding (S = 0 one page; S = 1 the lowest 0 bit above 12)", () => {
    expect(devTlbRange(0x5000, 0, false)).toEqual({ addr: 0x5000, size: 0x1000 });
    expect(devTlbRange(0x4000 | 0x0fff, 0, true)).toEqual({ addr: 0x4000, size: 0x2000 }); // bit 12 is 0: 8 KiB
    expect(devTlbRange(0x13000 | 0x0fff, 0, true)).toEqual({ addr: 0x10000, size: 0x8000 }); // bits 12, 13 set, 14 clear: 32 KiB
    expect(devTlbRange(0xffffffff, 0x7fffffff, true)).toEqual({ addr: 0, size: 2 ** 64 }); // everything
  });
});

describe("PRI: a DMA that waits for a page response", () => {
  function withCore(knobs: Record<string, unknown> = {}) {
    const s = setup(0, knobs);
    const faults: IopfFault[] = [];
    const core: IommuFaultCore = {
      iopfQueueAddDevice: () => 0,
      iopfQueueRemoveDevice: () => {},
      iopfQueueDiscardPartial: () => {},
      reportDeviceFault: (_dev, f) => {
        faults.push(f);
        return 0;
      },
    };
    s.t.ops.setFaultCore(core);
    return { ...s, faults };
  }

  it("no access → one-request page group → wait; Success → the device asks again and completes", () => {
    const { t, d, ats, faults } = withCore();
    t.record();
    const res = dma(ats, { iova: 0x30000, usePri: true });
    expect(res()).toBeNull(); // waiting
    expect(t.of("pri.request")).toMatchObject([{ rid: 0x18, pasid: -1, addr: 0x30000, group: 0x100, last: true, read: true, write: false }]);
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS + PRQ_IRQ_DELAY_NS);
    expect(faults).toEqual([{ flags: 2, pasid: 0, grpid: 0x100, perm: 1, addr: 0x30000 }]);
    // the handler maps the page and answers Success
    const pa = t.page();
    t.mem.write(pa, new Uint8Array([9, 8, 7, 6]));
    t.map(d, 0x30000, pa, 4096);
    t.ops.pageResponse(t.dev0, faults[0], 0);
    expect(res()).toBeNull();
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    expect(res()).toEqual({ ok: true, data: new Uint8Array([9, 8, 7, 6]) });
    expect(t.events.map((e) => e.k).filter((k) => /^(ats|pri|prq|devtlb|dma)\./.test(k) && k !== "prq.irq")).toEqual([
      "dma.request", "devtlb.miss", "ats.request", "ats.completion", "pri.request", "prq.request", "prq.handle",
      "prq.response", "pri.response", "devtlb.miss", "ats.request", "ats.completion", "devtlb.fill", "dma.complete",
    ]);
    // every event of the retry carries the DMA's seq
    const req = t.of("dma.request")[0];
    expect(t.of("dma.complete")[0].cmd_seq).toBe(req.seq);
    expect(ats.outstandingGroups).toBe(0);
  });

  it("Invalid Request ends the DMA with the response code; endless Success answers give up after PRI_MAX_ROUNDS", () => {
    const { t, ats, faults } = withCore();
    const res = dma(ats, { iova: 0x30000, usePri: true, write: true });
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS + PRQ_IRQ_DELAY_NS);
    t.ops.pageResponse(t.dev0, faults[0], PRG_RESP_INVALID);
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    expect(res()).toMatchObject({ ok: false, fault: { reason: 0, responseCode: 1, write: true, iova: 0x30000, reasonName: expect.stringMatching(/Invalid Request/) } });

    const res2 = dma(ats, { iova: 0x50000, usePri: true });
    for (let round = 0; round < PRI_MAX_ROUNDS; round++) {
      t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS + PRQ_IRQ_DELAY_NS);
      t.ops.pageResponse(t.dev0, faults.at(-1)!, 0); // "Success", but nothing was mapped
      t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    }
    expect(res2()).toMatchObject({ ok: false, fault: { reason: 0, reasonName: `no translation after ${PRI_MAX_ROUNDS} page requests answered Success` } });
  });

  it("a Response Failure (0xF, never sent by iommufd) stops the function's PRI: PCI_PRI_STATUS_RF", () => {
    const { t, ats } = withCore();
    t.ops.qiSubmitSync([qiPgrpRespDesc(0x18, 0, false, QI_RESP_FAILURE, 1, true)]);
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    expect(ats.priRf).toBe(true);
    // a miss now cannot ask: the request goes out untranslated and faults
    expect(dma(ats, { iova: 0x30000, usePri: true })()).toMatchObject({ ok: false, fault: { reason: 0x79 } });
  });

  it("a request the full queue drops fails the DMA at once: no response will ever come", () => {
    const { t, ats } = withCore({ prqOrder: 0 });
    t.hw.prq.onInterrupt = () => {}; // nobody drains the ring
    for (let i = 0; i < 127; i++) t.hw.pageRequest({ rid: 0x18, pasid: -1, addr: 0, prgi: 1, last: false, read: true, write: false, exec: false, priv: false });
    const res = dma(ats, { iova: 0x30000, usePri: true });
    t.m.sched.runUntil(t.clock.now + PCIE_MSG_NS);
    expect(res()).toMatchObject({ ok: false, fault: { reason: 0, reasonName: expect.stringMatching(/dropped by a full page request queue/) } });
  });
});
