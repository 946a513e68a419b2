/**
 * The VFIO calls that touch iommufd, per ../shared/reference/iommufd-uapi.md §12 and the kernel
 * code it cites (drivers/vfio/device_cdev.c, drivers/vfio/iommufd.c,
 * drivers/iommu/iommufd/vfio_compat.c):
 *   §12.1 VFIO_DEVICE_BIND_IOMMUFD on a /dev/vfio/devices/vfioN cdev fd
 *   §12.2 VFIO_DEVICE_ATTACH_IOMMUFD_PT / DETACH_IOMMUFD_PT (RID and PASID), replace
 *   §12.3 the legacy type1 container ioctls iommufd answers on its own fd
 * The selftest's own VFIO-compat tests (iommufd.simple_ioctls … vfio_compat_mock_domain.*) are
 * ported in iommufd.test.ts; this file covers the rest of §12.
 *
 * Left out: PASID attach on a device without PASID (errno not verified in the reference, §12.2),
 * VF tokens (no SR-IOV in the simulated machine), VFIO_GROUP_SET_CONTAINER (no group fds), §12.4
 * device ioctls (VFIO_DEVICE_GET_INFO, hot reset: not modelled).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BUFFER_SIZE, C, PAGE_SIZE, U64_MAX, VTD, expectErrno, expectDmaFault, getU32, getU64, ioasFixture,
  newSession, rawStruct, setU32, setU64, type IommufdFixture,
} from "../harness/iommufd.ts";
import { DEFAULT_DEVICES } from "../../engine/machine.ts";

const VFIO = (n: number) => (C.VFIO_TYPE << 8) | (C.VFIO_BASE + n);

describe("§12.1 VFIO_DEVICE_BIND_IOMMUFD", () => {
  let f: IommufdFixture;
  let dev: number;
  beforeEach(() => {
    f = ioasFixture("no_domain");
    dev = f.track(f.g.open("/dev/vfio/devices/vfio0"));
  });
  afterEach(() => f.teardown());

  const bind = (arg: unknown) => f.g.ioctl(dev, C.VFIO_DEVICE_BIND_IOMMUFD, arg);

  it("returns the DEVICE ID, the lowest free ID of the iommufd", () => {
    const r = bind({ iommufd: f.fd });
    expect(r.out_devid).toBe(f.ioasId + 1);
    expect(f.objectIds()).toEqual([f.ioasId, r.out_devid]);
    // the VFIO driver holds the DEVICE: it cannot be destroyed
    expectErrno("EBUSY", () => f.destroy(r.out_devid));
  });

  it("argsz below 16 → EINVAL; 16 (v6.6 layout) and 20 (zero-extended) work", () => {
    expectErrno("EINVAL", () => bind({ argsz: 15, iommufd: f.fd }));
    expectErrno("EINVAL", () => bind({ argsz: 0, iommufd: f.fd }));
    const old = rawStruct(16, 16);
    setU32(old, 8, f.fd);
    bind(old);
    expect(getU32(old, 12)).toBeGreaterThan(0);
  });

  it("argsz 20 is zero-extended to the 24-byte struct", () => {
    const b = rawStruct(20, 20);
    setU32(b, 8, f.fd);
    bind(b);
    expect(getU32(b, 12)).toBeGreaterThan(0);
  });

  it("a longer struct with a non-zero tail → E2BIG (copy_struct_from_user); a zero tail works", () => {
    const b = rawStruct(40, 40);
    setU32(b, 8, f.fd);
    b[39] = 1;
    expectErrno("E2BIG", () => bind(b));
    b[39] = 0;
    bind(b);
  });

  it("v6.18: token_uuid_ptr within argsz 24 is read but ignored without FLAG_TOKEN (v6.17 gave E2BIG)", () => {
    const b = rawStruct(24, 24);
    setU32(b, 8, f.fd);
    setU64(b, 16, 0x1234_5678);
    bind(b);
  });

  it("iommufd < 0 or unknown flags → EINVAL; FLAG_TOKEN without a VF token → EINVAL", () => {
    expectErrno("EINVAL", () => bind({ iommufd: -1 }));
    expectErrno("EINVAL", () => bind({ iommufd: f.fd, flags: 2 }));
    expectErrno("EINVAL", () => bind({ iommufd: f.fd, flags: C.VFIO_DEVICE_BIND_FLAG_TOKEN, token_uuid_ptr: new Uint8Array(16) }));
  });

  it("iommufd not open → EBADF; not an iommufd → EBADFD", () => {
    expectErrno("EBADF", () => bind({ iommufd: 999 }));
    expectErrno("EBADFD", () => bind({ iommufd: dev }));
    const mfd = f.track(f.g.memfd_create("x"));
    expectErrno("EBADFD", () => bind({ iommufd: mfd }));
  });

  it("bound twice through one fd → EINVAL; through a second fd of the same device → EINVAL", () => {
    bind({ iommufd: f.fd });
    expectErrno("EINVAL", () => bind({ iommufd: f.fd }));
    const dev2 = f.track(f.g.open("/dev/vfio/devices/vfio0"));
    const fd2 = f.track(f.g.open("/dev/iommu"));
    expectErrno("EINVAL", () => f.g.ioctl(dev2, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd2 }));
    // the iommufd lookup comes before the single-open check
    expectErrno("EBADF", () => f.g.ioctl(dev2, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: 999 }));
  });

  it("closing the device fd unbinds: the DEVICE is destroyed and the device can be bound elsewhere", () => {
    bind({ iommufd: f.fd });
    f.g.close(dev);
    // unbound: the DEVICE is gone from the first iommufd, and the device can go elsewhere
    expect(f.objectIds()).toEqual([f.ioasId]);
    const dev2 = f.track(f.g.open("/dev/vfio/devices/vfio0"));
    const fd2 = f.track(f.g.open("/dev/iommu"));
    expect(f.g.ioctl(dev2, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd2 }).out_devid).toBe(1);
  });

  it("only BIND works before binding: other device ioctls → EINVAL; after it, unknown ones → ENOTTY", () => {
    expectErrno("EINVAL", () => f.g.ioctl(dev, C.VFIO_DEVICE_DETACH_IOMMUFD_PT, {}));
    expectErrno("EINVAL", () => f.g.ioctl(dev, VFIO(60), rawStruct(16, 16)));
    bind({ iommufd: f.fd });
    expectErrno("ENOTTY", () => f.g.ioctl(dev, VFIO(60), rawStruct(16, 16)));
  });

  it("a bound device holds the iommufd open: closing /dev/iommu first destroys nothing", () => {
    const r = bind({ iommufd: f.fd });
    f.attach(dev, f.ioasId);
    f.g.close(f.fd);
    const ctx = f.s.kernel.contexts();
    expect(ctx).toHaveLength(1);
    expect(ctx[0].list().map((o) => o.id)).toContain(r.out_devid);
    f.g.close(dev); // the last reference: everything goes (teardown checks)
    expect(f.s.kernel.contexts()).toHaveLength(0);
  });
});

describe("§12.2 VFIO_DEVICE_ATTACH_IOMMUFD_PT / DETACH_IOMMUFD_PT", () => {
  let f: IommufdFixture;
  let dev: { fd: number; devId: number };
  beforeEach(() => {
    f = ioasFixture("no_domain");
    dev = f.bind(0);
    f.mapFixed(f.buffer, BUFFER_SIZE, VTD.BASE_IOVA);
  });
  afterEach(() => f.teardown());

  const attach = (arg: unknown) => f.g.ioctl(dev.fd, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg);
  const detach = (arg: unknown) => f.g.ioctl(dev.fd, C.VFIO_DEVICE_DETACH_IOMMUFD_PT, arg);

  it("attach to an IOAS: pt_id is rewritten to the automatic HWPT, which mirrors the IOAS", async () => {
    const a = attach({ pt_id: f.ioasId });
    expect(a.pt_id).not.toBe(f.ioasId);
    expect(f.objectIds()).toContain(a.pt_id);
    const got = await f.dev(dev.fd).read(VTD.BASE_IOVA, PAGE_SIZE);
    expect([...got]).toEqual([...f.g.peek(f.buffer, PAGE_SIZE)]);
    // the automatic HWPT dies with its last attachment
    detach({});
    expectErrno("ENOENT", () => f.destroy(a.pt_id));
  });

  it("argsz below 12 → EINVAL; 12 works; the tail beyond minsz is ignored", () => {
    expectErrno("EINVAL", () => attach({ argsz: 11, pt_id: f.ioasId }));
    const a = rawStruct(12, 12);
    setU32(a, 8, f.ioasId);
    attach(a);
    const hwpt = getU32(a, 8);
    const big = rawStruct(64, 64);
    setU32(big, 8, hwpt);
    big.fill(0xee, 16);
    attach(big); // a replace with the same HWPT: a no-op
    expect(getU32(big, 8)).toBe(hwpt);
  });

  it("unknown flags → EINVAL; ATTACH_PASID with argsz 12 → EINVAL", () => {
    expectErrno("EINVAL", () => attach({ flags: 2, pt_id: f.ioasId }));
    expectErrno("EINVAL", () => attach({ argsz: 12, flags: C.VFIO_DEVICE_ATTACH_PASID, pt_id: f.ioasId, pasid: 1 }));
  });

  it("a bad pt_id → ENOENT; an object that is no IOAS or HWPT → EINVAL", () => {
    expectErrno("ENOENT", () => attach({ pt_id: 12345 }));
    expectErrno("EINVAL", () => attach({ pt_id: dev.devId }));
    const fault = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
    f.track(fault.out_fault_fd);
    expectErrno("EINVAL", () => attach({ pt_id: fault.out_fault_id }));
  });

  it("attach while attached is a replace; a failed replace keeps the old attachment", async () => {
    const first = attach({ pt_id: f.ioasId }).pt_id;
    const ioas2 = f.ioasAlloc();
    f.mapFixed(f.buffer + PAGE_SIZE, PAGE_SIZE, VTD.BASE_IOVA, { ioasId: ioas2 });
    const second = attach({ pt_id: ioas2 }).pt_id;
    expect(second).not.toBe(first);
    expectErrno("ENOENT", () => f.destroy(first)); // the old automatic HWPT is gone
    let got = await f.dev(dev.fd).read(VTD.BASE_IOVA, 8);
    expect([...got]).toEqual([...f.g.peek(f.buffer + PAGE_SIZE, 8)]);

    // a replace into an IOAS whose allowed ranges cover the MSI window fails: nothing changes
    const ioas3 = f.ioasAlloc();
    f.allowIovas([{ start: VTD.MSI_START, last: VTD.MSI_LAST }], ioas3);
    expectErrno("EADDRINUSE", () => attach({ pt_id: ioas3 }));
    got = await f.dev(dev.fd).read(VTD.BASE_IOVA, 8);
    expect([...got]).toEqual([...f.g.peek(f.buffer + PAGE_SIZE, 8)]);
    expect(f.objectIds()).toContain(second);
    // and ioas3 gained no reservation
    expect(f.iovaRanges(4, ioas3).num).toBe(1);
  });

  it("detach: argsz below 8 → EINVAL; unknown flags → EINVAL; DETACH_PASID with argsz 8 → EINVAL", () => {
    attach({ pt_id: f.ioasId });
    expectErrno("EINVAL", () => detach({ argsz: 7 }));
    expectErrno("EINVAL", () => detach({ flags: 2 }));
    expectErrno("EINVAL", () => detach({ argsz: 8, flags: C.VFIO_DEVICE_DETACH_PASID, pasid: 1 }));
  });

  it("detach puts the device back to blocking DMA and drops its reserved regions; detaching again is a no-op", async () => {
    attach({ pt_id: f.ioasId });
    expect(f.iovaRanges().num).toBe(2);
    const d = rawStruct(32, 32);
    d.fill(0x77, 8); // ignored tail
    detach(d);
    await expectDmaFault(f.dev(dev.fd).read(VTD.BASE_IOVA, 8));
    expect(f.iovaRanges().num).toBe(1);
    expect(f.iovaRanges().alignment).toBe(1);
    detach({});
  });

  it("a manually allocated HWPT survives its last detach and must be destroyed", () => {
    const hwpt = f.hwptAlloc(dev.devId, f.ioasId);
    expect(attach({ pt_id: hwpt }).pt_id).toBe(hwpt);
    expectErrno("EBUSY", () => f.destroy(hwpt));
    detach({});
    f.destroy(hwpt);
  });

  it("a HWPT with a fault queue attaches only to a device with PRI: vfio1 → ENODEV (intel_iommu_enable_iopf)", () => {
    const fault = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
    f.track(fault.out_fault_fd);
    const iopf = f.hwptAlloc(dev.devId, f.ioasId, C.IOMMU_HWPT_FAULT_ID_VALID, { fault_id: fault.out_fault_id });
    const noPri = f.bind(1);
    expectErrno("ENODEV", () => f.attach(noPri.fd, iopf));
    expect(attach({ pt_id: iopf }).pt_id).toBe(iopf); // vfio0 has PRI
    // the HWPT holds the FAULT, the attachment holds the HWPT
    expectErrno("EBUSY", () => f.destroy(fault.out_fault_id));
    expectErrno("EBUSY", () => f.destroy(iopf));
    detach({});
    f.destroy(iopf);
    f.g.close(fault.out_fault_fd);
    f.destroy(fault.out_fault_id);
  });

  it("PASID: needs a HWPT allocated with IOMMU_HWPT_ALLOC_PASID, and a PASID-compatible RID HWPT", async () => {
    const plain = f.hwptAlloc(dev.devId, f.ioasId);
    const pasidHwpt = f.hwptAlloc(dev.devId, f.ioasId, C.IOMMU_HWPT_ALLOC_PASID);
    const attachPasid = (pasid: number, pt: number) => attach({ flags: C.VFIO_DEVICE_ATTACH_PASID, pasid, pt_id: pt });
    // a HWPT not allocated with ALLOC_PASID
    expectErrno("EINVAL", () => attachPasid(1, plain));
    // the RID on a non-PASID-compatible HWPT blocks PASID attaches
    attach({ pt_id: plain });
    expectErrno("EINVAL", () => attachPasid(1, pasidHwpt));
    attach({ pt_id: pasidHwpt });
    expect(attachPasid(1, pasidHwpt).pt_id).toBe(pasidHwpt);
    // a PASID is attached: the RID cannot move to a non-PASID-compatible HWPT
    expectErrno("EINVAL", () => attach({ pt_id: plain }));
    // PASID beyond the device's 20-bit width
    expectErrno("EINVAL", () => attachPasid(1 << 20, pasidHwpt));
    // DMA with PASID 1 translates through the same table
    const got = await f.dev(dev.fd).read(VTD.BASE_IOVA, 8, { pasid: 1 });
    expect([...got]).toEqual([...f.g.peek(f.buffer, 8)]);
    // the HWPT is held by both attachments
    expectErrno("EBUSY", () => f.destroy(pasidHwpt));
    detach({ flags: C.VFIO_DEVICE_DETACH_PASID, pasid: 1 });
    await expectDmaFault(f.dev(dev.fd).read(VTD.BASE_IOVA, 8, { pasid: 1 }));
    detach({});
    f.destroy(pasidHwpt);
    f.destroy(plain);
  });
});

describe("§12.2 IOMMU groups: devices of one group share one HWPT", () => {
  it("a second device of the group attaching another HWPT → EINVAL; the same HWPT works", () => {
    const { s, g } = newSession({ devices: DEFAULT_DEVICES.map((d) => ({ ...d, group: 7 })) });
    const fd = g.open("/dev/iommu");
    const ioas = g.ioctl(fd, C.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
    const d0 = g.open("/dev/vfio/devices/vfio0");
    const d1 = g.open("/dev/vfio/devices/vfio1");
    g.ioctl(d0, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd });
    const id1 = g.ioctl(d1, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd }).out_devid;
    const hwpt = g.ioctl(d0, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas }).pt_id;
    const other = g.ioctl(fd, C.IOMMU_HWPT_ALLOC, { dev_id: id1, pt_id: ioas }).out_hwpt_id;
    expectErrno("EINVAL", () => g.ioctl(d1, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: other }));
    // attaching to the IOAS finds the group's automatic HWPT compatible
    expect(g.ioctl(d1, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas }).pt_id).toBe(hwpt);
    g.close(d1);
    g.close(d0);
    g.close(fd);
    expect(s.kernel.contexts()).toHaveLength(0);
  });

  it("a group whose DMA one iommufd owns cannot be bound into another → EBUSY (iommu_device_claim_dma_owner)", () => {
    const { s, g } = newSession({ devices: DEFAULT_DEVICES.map((d) => ({ ...d, group: 7 })) });
    const fdA = g.open("/dev/iommu");
    const fdB = g.open("/dev/iommu");
    const d0 = g.open("/dev/vfio/devices/vfio0");
    const d1 = g.open("/dev/vfio/devices/vfio1");
    g.ioctl(d0, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fdA });
    expectErrno("EBUSY", () => g.ioctl(d1, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fdB }));
    // nothing was created in B
    expect(s.kernel.contexts().map((c) => c.list().length)).toEqual([1, 0]);
    // the same iommufd shares the ownership
    g.ioctl(d1, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fdA });
    g.close(d0);
    g.close(d1);
    g.close(fdA);
    // once the group is released, B can have it
    const d2 = g.open("/dev/vfio/devices/vfio1");
    expect(g.ioctl(d2, C.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fdB }).out_devid).toBe(1);
    g.close(d2);
    g.close(fdB);
    expect(s.kernel.contexts()).toHaveLength(0);
  });
});

describe("§12.3 legacy VFIO container ioctls on an iommufd", () => {
  let f: IommufdFixture;
  beforeEach(() => {
    f = ioasFixture("vtd");
  });
  afterEach(() => f.teardown());

  const setCompat = () => f.ioctl("IOMMU_VFIO_IOAS", { op: C.IOMMU_VFIO_IOAS_SET, ioas_id: f.ioasId });
  const mapDma = (o: Record<string, unknown>) =>
    f.ioctl("VFIO_IOMMU_MAP_DMA", { argsz: 32, flags: C.VFIO_DMA_MAP_FLAG_READ | C.VFIO_DMA_MAP_FLAG_WRITE, vaddr: f.buffer, size: PAGE_SIZE, iova: VTD.BASE_IOVA, ...o });
  const unmapDma = (o: Record<string, unknown>) => {
    const arg = { argsz: 24, flags: 0, iova: VTD.BASE_IOVA, size: PAGE_SIZE, ...o };
    f.ioctl("VFIO_IOMMU_UNMAP_DMA", arg);
    return arg;
  };

  it("VFIO_GET_API_VERSION returns 0", () => {
    expect(f.ioctl("VFIO_GET_API_VERSION")).toBe(0);
  });

  it("VFIO_CHECK_EXTENSION answers per iommufd_vfio_check_extension", () => {
    const ext = (t: number) => f.ioctl("VFIO_CHECK_EXTENSION", t);
    expect(ext(C.VFIO_TYPE1_IOMMU)).toBe(1);
    expect(ext(C.VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(ext(C.VFIO_UNMAP_ALL)).toBe(1);
    expect(ext(C.VFIO_NOIOMMU_IOMMU)).toBe(0); // CONFIG_VFIO_NOIOMMU off
    expect(ext(C.VFIO_TYPE1_NESTING_IOMMU)).toBe(0);
    expect(ext(C.VFIO_UPDATE_VADDR)).toBe(0);
    expect(ext(C.VFIO_SPAPR_TCE_IOMMU)).toBe(0);
    expect(ext(12345)).toBe(0);
    // DMA_CC_IOMMU asks the compat IOAS: none yet → the lookup's ENODEV
    expectErrno("ENODEV", () => ext(C.VFIO_DMA_CC_IOMMU));
    setCompat();
    // VT-d has ECAP.SC: every HWPT of the IOAS enforces cache coherency
    expect(ext(C.VFIO_DMA_CC_IOMMU)).toBe(1);
  });

  it("VFIO_SET_IOMMU: an unknown type → EINVAL before the compat lookup; no compat IOAS → ENODEV", () => {
    expectErrno("EINVAL", () => f.ioctl("VFIO_SET_IOMMU", C.VFIO_SPAPR_TCE_IOMMU));
    expectErrno("ENODEV", () => f.ioctl("VFIO_SET_IOMMU", C.VFIO_TYPE1v2_IOMMU));
    setCompat();
    expect(f.ioctl("VFIO_SET_IOMMU", C.VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(f.option("IOMMU_OPTION_HUGE_PAGES", "GET", f.ioasId)).toBe(1);
  });

  it("VFIO_SET_IOMMU TYPE1 disables huge pages, which is refused once a domain holds mappings", () => {
    setCompat();
    mapDma({});
    expectErrno("EINVAL", () => f.ioctl("VFIO_SET_IOMMU", C.VFIO_TYPE1_IOMMU));
    unmapDma({});
    expect(f.ioctl("VFIO_SET_IOMMU", C.VFIO_TYPE1_IOMMU)).toBe(0);
    expect(f.option("IOMMU_OPTION_HUGE_PAGES", "GET", f.ioasId)).toBe(0);
  });

  it("VFIO_IOMMU_GET_INFO: argsz < 16 → EINVAL; page sizes of the VT-d domain; caps written as far as they fit", () => {
    expectErrno("EINVAL", () => f.ioctl("VFIO_IOMMU_GET_INFO", { argsz: 15 }));
    expectErrno("ENODEV", () => f.ioctl("VFIO_IOMMU_GET_INFO", { argsz: 24 }));
    setCompat();
    const info = f.ioctl("VFIO_IOMMU_GET_INFO", { argsz: 24 });
    expect(info.flags).toBe(C.VFIO_IOMMU_INFO_PGSIZES | C.VFIO_IOMMU_INFO_CAPS);
    expect(info.iova_pgsizes).toBe(0x1000 | 0x200000 | 0x40000000); // 4 KiB, 2 MiB, 1 GiB
    expect(info.cap_offset).toBe(0);
    expect(info.argsz).toBe(88); // 24 + DMA_AVAIL 16 + IOVA_RANGE (16 + 2 × 16)

    // argsz 72: DMA_AVAIL fits, of IOVA_RANGE only the first range does (no header)
    const buf = rawStruct(88, 72);
    buf.fill(0xaa, 24);
    f.ioctl("VFIO_IOMMU_GET_INFO", buf);
    expect(getU32(buf, 0)).toBe(88);
    expect(getU32(buf, 16)).toBe(0); // cap_offset: not everything fit
    expect(buf[24] | (buf[25] << 8)).toBe(C.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
    expect(getU32(buf, 28)).toBe(40); // next: argsz reaches the IOVA_RANGE cap's start
    expect(getU32(buf, 32)).toBe(0xffffffff);
    expect([...buf.subarray(40, 56)]).toEqual(new Array(16).fill(0xaa)); // no IOVA_RANGE header
    expect(getU64(buf, 56)).toBe(0n); // range 0 start
    expect(getU64(buf, 64)).toBe(BigInt(VTD.MSI_START - 1)); // range 0 last
    expect([...buf.subarray(72)]).toEqual(new Array(16).fill(0xaa)); // nothing past argsz
  });

  it("VFIO_IOMMU_MAP_DMA: argsz, flags, compat lookup, then iopt_map_user_pages", async () => {
    expectErrno("EINVAL", () => mapDma({ argsz: 31 }));
    expectErrno("EINVAL", () => mapDma({ flags: C.VFIO_DMA_MAP_FLAG_VADDR }));
    expectErrno("ENODEV", () => mapDma({}));
    setCompat();
    mapDma({});
    const got = await f.dev().read(VTD.BASE_IOVA, PAGE_SIZE);
    expect([...got]).toEqual([...f.g.peek(f.buffer, PAGE_SIZE)]);
    expectErrno("EEXIST", () => mapDma({}));
    expectErrno("EINVAL", () => mapDma({ iova: VTD.BASE_IOVA + PAGE_SIZE, size: 0 }));
    expectErrno("EOVERFLOW", () => mapDma({ iova: VTD.BASE_IOVA + PAGE_SIZE, vaddr: U64_MAX - 10n }));
    expectErrno("EINVAL", () => mapDma({ iova: VTD.MSI_START })); // reserved IOVA
    // no READ and no WRITE is accepted by iommufd, but the VT-d driver refuses a no-access PTE
    // (__domain_mapping: -EINVAL)
    expectErrno("EINVAL", () => mapDma({ iova: VTD.BASE_IOVA + PAGE_SIZE, flags: 0 }));
  });

  it("VFIO_IOMMU_MAP_DMA with no READ/WRITE succeeds while no domain is attached", () => {
    f.detach(f.devFd);
    setCompat();
    mapDma({ flags: 0 });
    expect(unmapDma({}).size).toBe(PAGE_SIZE);
  });

  it("VFIO_IOMMU_UNMAP_DMA: argsz, flags, FLAG_ALL, and size written back even on failure", () => {
    expectErrno("EINVAL", () => unmapDma({ argsz: 23 }));
    expectErrno("EINVAL", () => unmapDma({ flags: C.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP }));
    expectErrno("EINVAL", () => unmapDma({ flags: C.VFIO_DMA_UNMAP_FLAG_VADDR }));
    expectErrno("ENODEV", () => unmapDma({}));
    setCompat();

    // v6.18: nothing mapped there → success, size 0 (IOMMU_IOAS_UNMAP says ENOENT)
    expect(unmapDma({}).size).toBe(0);

    // length 0 → EINVAL, size written back as 0
    const zero = { argsz: 24, flags: 0, iova: VTD.BASE_IOVA, size: 0 };
    expectErrno("EINVAL", () => f.ioctl("VFIO_IOMMU_UNMAP_DMA", zero));
    expect(zero.size).toBe(0);

    // two mappings; a range holding the first whole and half the second: ENOENT, the first is
    // gone and its length is what the kernel writes back
    mapDma({});
    mapDma({ iova: VTD.BASE_IOVA + PAGE_SIZE, size: 2 * PAGE_SIZE });
    const partial = { argsz: 24, flags: 0, iova: VTD.BASE_IOVA, size: 2 * PAGE_SIZE };
    expectErrno("ENOENT", () => f.ioctl("VFIO_IOMMU_UNMAP_DMA", partial));
    expect(partial.size).toBe(PAGE_SIZE);

    // FLAG_ALL needs iova = size = 0, and is then refused without touching the struct
    const all = { argsz: 24, flags: C.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0, size: 1 };
    expectErrno("EINVAL", () => f.ioctl("VFIO_IOMMU_UNMAP_DMA", all));
    expect(all.size).toBe(1);
    all.size = 0;
    f.ioctl("VFIO_IOMMU_UNMAP_DMA", all);
    expect(all.size).toBe(2 * PAGE_SIZE);
    expect(unmapDma({ flags: C.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0, size: 0 }).size).toBe(0);
  });

  it("VFIO_IOMMU_DIRTY_PAGES and unknown container ioctls → ENOTTY", () => {
    setCompat();
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, VFIO(17), rawStruct(24, 24))); // VFIO_IOMMU_DIRTY_PAGES
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, VFIO(3), rawStruct(24, 24)));
  });

  it("destroying the compat IOAS clears it", () => {
    setCompat();
    f.detach(f.devFd);
    f.destroy(f.ioasId);
    expectErrno("ENODEV", () => f.ioctl("IOMMU_VFIO_IOAS", { op: C.IOMMU_VFIO_IOAS_GET }));
    expectErrno("ENODEV", () => mapDma({}));
  });
});

describe("/dev/vfio/vfio provided by iommufd", () => {
  it("defaults to per-process (mm) pinned-page accounting: RLIMIT_MODE GET = 1", () => {
    const { s, g } = newSession();
    const fd = g.open("/dev/vfio/vfio");
    expect(g.ioctl(fd, C.IOMMU_OPTION, { option_id: C.IOMMU_OPTION_RLIMIT_MODE, op: C.IOMMU_OPTION_OP_GET }).val64).toBe(1);
    expect(g.ioctl(fd, C.VFIO_GET_API_VERSION)).toBe(0);
    g.close(fd);
    expect(s.kernel.contexts()).toHaveLength(0);
  });
});
