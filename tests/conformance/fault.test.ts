/**
 * The fault queue with real page requests: IOMMU_FAULT_QUEUE_ALLOC, a HWPT allocated with
 * IOMMU_HWPT_FAULT_ID_VALID, read() of iommu_hwpt_pgfault groups and write() of
 * iommu_hwpt_page_response, the kernel's automatic answers. Reference: iommufd-uapi.md §4.16, §6,
 * quirks 12 and 15; iommu-hardware.md §5.
 *
 * The kernel selftest's page-fault tests (tools/testing/selftests/iommu/iommufd.c,
 * iommufd_utils.h) trigger a fault with IOMMU_TEST_OP_TRIGGER_IOPF (grpid 2, perm R|W, addr
 * 0xdeadbeaf, LAST_PAGE), read one record and answer its cookie (_test_cmd_trigger_iopf). Here
 * the device itself sends that page request (hw.device(vfio0).pageRequest), which reaches the
 * fault queue through the VT-d page request queue and io-pgfault exactly as a PCIe page request
 * does; the test then also sees the response arrive at the device.
 */
import { afterEach, describe, expect, it } from "vitest";
import { C, expectDmaFault, expectErrno, ioasFixture, type IommufdFixture } from "../harness/iommufd.ts";
import type { TraceEvent } from "../../engine/trace/events.ts";

const MAP_RW = C.IOMMU_IOAS_MAP_READABLE | C.IOMMU_IOAS_MAP_WRITEABLE;

interface Iopf {
  f: IommufdFixture;
  faultFd: number;
  faultId: number;
  hwpt: number;
  events: TraceEvent[];
}

let fx: IommufdFixture | null = null;
afterEach(() => {
  fx?.teardown();
  fx = null;
});

/** vfio0 bound and attached to a HWPT with a fault queue (the selftest's iopf_hwpt), events recorded. */
function iopfFixture(o: { hwptFlags?: number; knobs?: Record<string, unknown> } = {}): Iopf {
  const f = (fx = ioasFixture("vtd", o.knobs ? { knobs: o.knobs } : {}));
  const events: TraceEvent[] = [];
  f.s.machine.trace.setSink((e) => events.push(e));
  const r = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
  const faultFd = f.track(r.out_fault_fd);
  const hwpt = f.hwptAlloc(f.devId, f.ioasId, C.IOMMU_HWPT_FAULT_ID_VALID | (o.hwptFlags ?? 0), { fault_id: r.out_fault_id });
  f.attach(f.devFd, hwpt);
  return { f, faultFd, faultId: r.out_fault_id, hwpt, events };
}

const of = <K extends TraceEvent["k"]>(events: TraceEvent[], k: K) => events.filter((e) => e.k === k) as unknown as TraceEvent<K>[];

describe("fault queue: allocation and HWPT_ALLOC with FAULT_ID_VALID (selftest viommu_alloc_nested_iopf, hwpt_alloc_iopf)", () => {
  it("a bad fault_id → ENOENT; an unknown flag → EOPNOTSUPP; attached, the HWPT is busy; the trigger round trip; teardown", async () => {
    const f = (fx = ioasFixture("vtd"));
    const { out_fault_id: faultId, out_fault_fd: faultFd } = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
    expect(faultId).not.toBe(0);
    expect(faultFd).not.toBe(0);
    expect(f.s.kernel.fds.get(faultFd)?.path).toBe("anon_inode:[iommufd-pgfault]");
    expectErrno("ENOENT", () => f.hwptAlloc(f.devId, f.ioasId, C.IOMMU_HWPT_FAULT_ID_VALID, { fault_id: 0xffffffff }));
    expectErrno("EOPNOTSUPP", () => f.hwptAlloc(f.devId, f.ioasId, C.IOMMU_HWPT_FAULT_ID_VALID | 2 ** 31, { fault_id: faultId }));
    const iopfHwpt = f.hwptAlloc(f.devId, f.ioasId, C.IOMMU_HWPT_FAULT_ID_VALID, { fault_id: faultId });
    f.attach(f.devFd, iopfHwpt); // test_cmd_mock_domain_replace
    expectErrno("EBUSY", () => f.destroy(iopfHwpt));

    // test_cmd_trigger_iopf: grpid 2, perm READ | WRITE, addr 0xdeadbeaf, the last page of its group
    const dev = f.dev();
    const resp = dev.pageRequest({ iova: 0xdeadbeaf, group: 2, last: true, read: true, write: true });
    expect(await f.g.poll(faultFd)).toBe(true);
    const [rec, ...more] = f.g.read(faultFd, 40);
    expect(more).toEqual([]);
    expect(rec).toEqual({
      flags: C.IOMMU_PGFAULT_FLAGS_LAST_PAGE, dev_id: f.devId, pasid: 0, grpid: 2,
      perm: C.IOMMU_PGFAULT_PERM_READ | C.IOMMU_PGFAULT_PERM_WRITE, __reserved: 0, addr: 0xdeadb000, length: 0, cookie: 1,
    });
    expect(f.g.write(faultFd, [{ cookie: rec.cookie, code: C.IOMMUFD_PAGE_RESP_SUCCESS }])).toBe(8);
    expect(await resp).toBe(0); // the device receives PCI "Success"

    f.attach(f.devFd, f.ioasId);
    f.destroy(iopfHwpt);
    f.g.close(faultFd);
    f.destroy(faultId);
  });

  it("IOMMU_FAULT_QUEUE_ALLOC with flags → EOPNOTSUPP; the FAULT is busy while its fd is open", () => {
    const f = (fx = ioasFixture("vtd"));
    expectErrno("EOPNOTSUPP", () => f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", { flags: 1 }));
    const r = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
    f.track(r.out_fault_fd);
    const e = expectErrno("EBUSY", () => f.destroy(r.out_fault_id));
    expect(e.reason).toMatch(/open fault fd/);
  });
});

describe("fault delivery and response", () => {
  it("on a PASID (selftest pasid_iopf): the record has PASID_VALID, and VT-d's NEEDS_PASID bit (1 << 2) leaks into flags", async () => {
    const x = iopfFixture({ hwptFlags: C.IOMMU_HWPT_ALLOC_PASID });
    const { f, faultFd, hwpt } = x;
    const r = f.g.ioctl(f.devFd, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { flags: C.VFIO_DEVICE_ATTACH_PASID, pasid: 0x1, pt_id: hwpt });
    expect(r.pt_id).toBe(hwpt);
    const resp = f.dev().pageRequest({ iova: 0x7000, pasid: 0x1, group: 2, last: true, read: true, write: false });
    expect(await f.g.poll(faultFd)).toBe(true);
    const [rec] = f.g.read(faultFd);
    // iommufd_compose_fault_message copies prm.flags as is: PASID_VALID | LAST_PAGE | RESPONSE_NEEDS_PASID
    expect(rec).toMatchObject({ flags: C.IOMMU_PGFAULT_FLAGS_PASID_VALID | C.IOMMU_PGFAULT_FLAGS_LAST_PAGE | (1 << 2), pasid: 1, grpid: 2, perm: C.IOMMU_PGFAULT_PERM_READ, addr: 0x7000 });
    f.g.write(faultFd, [{ cookie: rec.cookie, code: C.IOMMUFD_PAGE_RESP_INVALID }]);
    expect(await resp).toBe(C.IOMMUFD_PAGE_RESP_INVALID); // PCI "Invalid Request" is 1 too
    // the page group response carried the PASID (PRG Response PASID Required)
    expect(of(x.events, "prq.response")).toMatchObject([{ rid: 0x18, pasid: 1, group: 2, last: true, code: 1 }]);
  });

  it("a group is delivered whole, after its last request, under one cookie, and answered once", async () => {
    const x = iopfFixture();
    const { f, faultFd } = x;
    const dev = f.dev();
    const p1 = dev.pageRequest({ iova: 0x1000, group: 7, last: false, read: true, write: false });
    const p2 = dev.pageRequest({ iova: 0x2000, group: 7, last: false, read: true, write: true });
    expect(await p1).toBeNull(); // a request that does not close its group resolves once queued
    expect(await p2).toBeNull();
    expect(await f.g.poll(faultFd, 1_000_000)).toBe(false); // no group yet: only partial requests
    expect(of(x.events, "iopf.partial")).toHaveLength(2);
    const p3 = dev.pageRequest({ iova: 0x3000, group: 7, last: true, read: false, write: true });
    expect(await f.g.poll(faultFd)).toBe(true);
    // quirk 12: the group (3 records) does not fit in 80 bytes: 0 bytes, and it stays queued
    expect(f.g.readBytes(faultFd, 80)).toHaveLength(0);
    const recs = f.g.read(faultFd, 3 * 40);
    expect(recs.map((r) => [r.addr, r.flags, r.cookie, r.grpid])).toEqual([
      [0x1000, 0, 1, 7],
      [0x2000, 0, 1, 7],
      [0x3000, C.IOMMU_PGFAULT_FLAGS_LAST_PAGE, 1, 7],
    ]);
    expect(recs.map((r) => r.perm)).toEqual([1, 3, 2]);
    expect(f.g.write(faultFd, [{ cookie: 1, code: C.IOMMUFD_PAGE_RESP_SUCCESS }])).toBe(8);
    expect(await p3).toBe(0);
    expect(of(x.events, "prq.response")).toHaveLength(1); // one response for the group
    expect(of(x.events, "iopf.group")).toMatchObject([{ group: 7, faults: 3, dev_id: f.devId, hwpt_id: x.hwpt, fault_id: x.faultId }]);
  });

  it("cookies are the lowest free number from 1, reused after the response", async () => {
    const { f, faultFd } = iopfFixture();
    const dev = f.dev();
    const a = dev.pageRequest({ iova: 0x1000, group: 1, last: true, read: true, write: false });
    const b = dev.pageRequest({ iova: 0x2000, group: 2, last: true, read: true, write: false });
    await f.g.sleep(100_000);
    expect(f.g.read(faultFd).map((r) => [r.grpid, r.cookie])).toEqual([[1, 1], [2, 2]]);
    f.g.write(faultFd, [{ cookie: 1, code: C.IOMMUFD_PAGE_RESP_SUCCESS }]);
    expect(await a).toBe(0);
    const c = dev.pageRequest({ iova: 0x3000, group: 3, last: true, read: true, write: false });
    await f.g.poll(faultFd);
    expect(f.g.read(faultFd).map((r) => [r.grpid, r.cookie])).toEqual([[3, 1]]);
    f.g.write(faultFd, [{ cookie: 2, code: 0 }, { cookie: 1, code: 0 }]);
    expect([await b, await c]).toEqual([0, 0]);
  });

  it("a user-space handler maps the page on demand; the device's DMA waits and then completes", async () => {
    const { f, faultFd } = iopfFixture();
    const buf = f.g.mmap(0x1000);
    f.g.poke(buf, new TextEncoder().encode("demand"));
    const t0 = f.g.hw.now;
    const dma = f.dev().read(0x9000000, 6);
    expect(await f.g.poll(faultFd)).toBe(true);
    const [rec] = f.g.read(faultFd);
    expect(rec).toMatchObject({ addr: 0x9000000, perm: C.IOMMU_PGFAULT_PERM_READ, flags: C.IOMMU_PGFAULT_FLAGS_LAST_PAGE });
    f.ioctl("IOMMU_IOAS_MAP", { flags: MAP_RW | C.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: f.ioasId, user_va: buf, length: 0x1000, iova: 0x9000000 });
    f.g.write(faultFd, [{ cookie: rec.cookie, code: C.IOMMUFD_PAGE_RESP_SUCCESS }]);
    expect(new TextDecoder().decode(await dma)).toBe("demand");
    const dt = f.g.hw.now - t0;
    expect(dt).toBeGreaterThan(20_000); // reference §6: a minor fault's round trip, 20-50 µs
    expect(dt).toBeLessThan(50_000);
  });

  it("an INVALID answer fails the waiting DMA with a DmaFault that carries the response code", async () => {
    const { f, faultFd } = iopfFixture();
    const dma = f.dev().write(0x9000000, new Uint8Array(4));
    await f.g.poll(faultFd);
    const [rec] = f.g.read(faultFd);
    f.g.write(faultFd, [{ cookie: rec.cookie, code: C.IOMMUFD_PAGE_RESP_INVALID }]);
    const e = await expectDmaFault(dma);
    expect(e).toMatchObject({ reason: 0, responseCode: 1, write: true, iova: 0x9000000, rid: 0x18 });
    expect(e.message).toMatch(/page request answered Invalid Request/);
  });

  it("without a fault queue the kernel answers Invalid Request at once (iopf_error_response); a Stop Marker gets nothing", async () => {
    const f = (fx = ioasFixture("vtd"));
    const dev = f.dev();
    expect(await dev.pageRequest({ iova: 0x1000, group: 4, last: true, read: true, write: false })).toBe(1);
    // a Stop Marker (last, neither read nor write) is dropped by prq_event_thread: no response
    expect(await dev.pageRequest({ iova: 0, group: 5, last: true, read: false, write: false })).toBeNull();
    // not the last of its group and no handler: answered anyway, which the device did not expect (UPRGI)
    expect(await dev.pageRequest({ iova: 0x1000, group: 6, last: false, read: true, write: false })).toBeNull();
    await f.g.sleep(100_000);
    expect(f.s.machine.pcie.get(0x18)!.priUprgi).toBe(true);
    // DMA misses of a context without a fault queue are not recoverable: recorded faults
    const e = await expectDmaFault(dev.read(0x1000, 4));
    expect(e.reason).toBe(0x79);
  });

  it("a device without PRI cannot send page requests (a script error)", async () => {
    const f = (fx = ioasFixture("vtd"));
    const nic = f.bind(1);
    await expect(f.dev(nic.fd).pageRequest({ iova: 0, group: 1, last: true, read: true, write: false })).rejects.toThrow(/has no PRI/);
    await expect(f.dev().pageRequest({ iova: 0, group: 512, last: true, read: true, write: false })).rejects.toThrow(/9-bit/);
  });
});

describe("bad writes and reads get the kernel's errno, and lose nothing", () => {
  async function pending(x: Iopf, n: number) {
    const dev = x.f.dev();
    const ps = Array.from({ length: n }, (_, i) => dev.pageRequest({ iova: 0x1000 * (i + 1), group: i + 1, last: true, read: true, write: false }));
    await x.f.g.poll(x.faultFd);
    await x.f.g.sleep(10_000);
    return { ps, recs: x.f.g.read(x.faultFd) };
  }

  it("count % 40 → ESPIPE; count % 8 → ESPIPE; an empty queue reads 0 bytes", () => {
    const { f, faultFd } = iopfFixture();
    expectErrno("ESPIPE", () => f.g.readBytes(faultFd, 39));
    expectErrno("ESPIPE", () => f.g.write(faultFd, new Uint8Array(7)));
    expect(f.g.readBytes(faultFd, 40)).toHaveLength(0);
    expect(f.g.read(faultFd)).toEqual([]);
  });

  it("code > 1 → EINVAL (checked before the cookie); an unknown cookie → EINVAL; nothing is answered", async () => {
    const x = iopfFixture();
    const { recs, ps } = await pending(x, 1);
    const e = expectErrno("EINVAL", () => x.f.g.write(x.faultFd, [{ cookie: 999, code: 2 }]));
    expect(e.reason).toMatch(/code 2/);
    expect(e.where).toBe("iommufd_fault_fops_write");
    expect(expectErrno("EINVAL", () => x.f.g.write(x.faultFd, [{ cookie: 999, code: 0 }])).reason).toMatch(/cookie 999/);
    expect(of(x.events, "prq.response")).toHaveLength(0);
    x.f.g.write(x.faultFd, [{ cookie: recs[0].cookie, code: 0 }]);
    expect(await ps[0]).toBe(0);
  });

  it("stops at the first bad record and returns the bytes consumed; the good ones are answered exactly once", async () => {
    const x = iopfFixture();
    const { recs, ps } = await pending(x, 3);
    expect(recs.map((r) => r.cookie)).toEqual([1, 2, 3]);
    // [good, bad code, good]: 8 bytes consumed, only cookie 1 answered
    expect(x.f.g.write(x.faultFd, [{ cookie: 1, code: 0 }, { cookie: 2, code: 7 }, { cookie: 3, code: 0 }])).toBe(8);
    expect(await ps[0]).toBe(0);
    // cookie 1 is gone: answering it again → EINVAL; a bad first record → the error, nothing consumed
    expectErrno("EINVAL", () => x.f.g.write(x.faultFd, [{ cookie: 1, code: 0 }, { cookie: 2, code: 0 }]));
    // a short raw write of one good record and half of another: ESPIPE, nothing consumed
    const raw = new Uint8Array(12);
    new DataView(raw.buffer).setUint32(0, 2, true);
    expectErrno("ESPIPE", () => x.f.g.write(x.faultFd, raw));
    expect(x.f.g.write(x.faultFd, [{ cookie: 2, code: 1 }, { cookie: 3, code: 0 }])).toBe(16);
    expect([await ps[1], await ps[2]]).toEqual([1, 0]);
    expect(of(x.events, "prq.response").map((e) => e.group)).toEqual([1, 2, 3]);
  });

  it("a write to a closed fault fd → EBADF", () => {
    const { f, faultFd } = iopfFixture();
    f.g.close(faultFd);
    expectErrno("EBADF", () => f.g.write(faultFd, [{ cookie: 1, code: 0 }]));
    expectErrno("EBADF", () => f.g.read(faultFd));
  });
});

describe("automatic responses (iommufd_auto_response_faults, iommufd_fault_destroy) and close (quirk 15)", () => {
  it("detach answers INVALID every group of the attachment, queued or awaiting; the cookies die with them", async () => {
    const x = iopfFixture();
    const { f, faultFd } = x;
    const dev = f.dev();
    const read = dev.pageRequest({ iova: 0x1000, group: 1, last: true, read: true, write: false });
    await f.g.poll(faultFd);
    const [rec] = f.g.read(faultFd);
    const queued = dev.pageRequest({ iova: 0x2000, group: 2, last: true, read: true, write: false });
    const dma = dev.read(0x5000000, 4);
    await f.g.sleep(100_000); // group 2 and the DMA's group are queued, unread
    f.detach(f.devFd);
    expect([await read, await queued]).toEqual([1, 1]);
    expect((await expectDmaFault(dma)).responseCode).toBe(1);
    expect(f.g.read(faultFd)).toEqual([]);
    expectErrno("EINVAL", () => f.g.write(faultFd, [{ cookie: rec.cookie, code: 0 }]));
    const auto = of(x.events, "fault.response").filter((e) => e.auto);
    expect(auto).toHaveLength(3);
    expect(auto.every((e) => e.code === 1)).toBe(true);
    expect(of(x.events, "prq.response")).toHaveLength(3); // one each, never twice
  });

  it("replace answers the old HWPT's groups INVALID", async () => {
    const { f, faultFd } = iopfFixture();
    const p = f.dev().pageRequest({ iova: 0x1000, group: 1, last: true, read: true, write: false });
    await f.g.poll(faultFd);
    f.attach(f.devFd, f.ioasId);
    expect(await p).toBe(1);
    expect(f.g.read(faultFd)).toEqual([]);
  });

  it("closing the fault fd answers nothing; later faults still queue; detach answers them", async () => {
    const { f, faultFd, faultId } = iopfFixture();
    const dev = f.dev();
    let settled = false;
    const before = dev.pageRequest({ iova: 0x1000, group: 1, last: true, read: true, write: false }).finally(() => (settled = true));
    await f.g.sleep(100_000);
    f.g.close(faultFd);
    const after = dev.pageRequest({ iova: 0x2000, group: 2, last: true, read: true, write: false }).finally(() => (settled = true));
    await f.g.sleep(1_000_000);
    expect(settled).toBe(false);
    const fault = f.s.kernel.contexts()[0].objects.get(faultId) as unknown as { deliver: unknown[] };
    expect(fault.deliver).toHaveLength(2);
    expectErrno("EBUSY", () => f.destroy(faultId)); // the HWPT still holds it
    f.detach(f.devFd);
    expect([await before, await after]).toEqual([1, 1]);
  });
});

describe("the page request queue overflows", () => {
  it("requests beyond the ring are dropped (PRS.PRO); the driver then discards the partial groups", async () => {
    const x = iopfFixture({ knobs: { prqOrder: 0 } }); // a 128-entry ring
    const { f, faultFd } = x;
    const dev = f.dev();
    // 130 requests of group 3 arrive together: 127 fit, 3 are dropped
    const all = Array.from({ length: 130 }, (_, i) => dev.pageRequest({ iova: 0x1000 * i, group: 3, last: false, read: true, write: false }));
    expect(await Promise.all(all)).toEqual(Array(130).fill(null));
    expect(of(x.events, "prq.overflow")).toHaveLength(3);
    await f.g.sleep(100_000); // prq_event_thread: reports 127 partials, empties the ring, discards them, clears PRO
    expect(of(x.events, "iopf.partial")).toHaveLength(127);
    expect(of(x.events, "iopf.discard")).toMatchObject([{ rid: 0x18, count: 127 }]);
    expect(of(x.events, "prq.recover")).toHaveLength(1);
    // the group's last request now forms a group of one: the partial requests are gone
    const last = dev.pageRequest({ iova: 0xff000, group: 3, last: true, read: true, write: false });
    await f.g.poll(faultFd);
    const recs = f.g.read(faultFd);
    expect(recs).toHaveLength(1);
    f.g.write(faultFd, [{ cookie: recs[0].cookie, code: 0 }]);
    expect(await last).toBe(0);
  });
});
