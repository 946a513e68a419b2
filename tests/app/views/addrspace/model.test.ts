// app/views/addrspace: areas, reservations and pinning at the cursor, and the piecewise axis.
import { describe, expect, it } from "vitest";
import { createAddrSpaceModel, subtract, type AddrSpaceState } from "../../../../app/views/addrspace/model.ts";
import { piecewiseScale, U64_END } from "../../../../app/views/addrspace/scale.ts";
import { layoutAddrSpace } from "../../../../app/views/addrspace/layout.ts";
import { hex } from "../../../../app/views/common/events.ts";
import { PROLOGUE, seqOf, trace } from "../helpers.ts";

const SCRIPT = `${PROLOGUE}
map(0x100000, 0x4000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
ioctl(iommufd, IOMMU_IOAS_UNMAP, { ioas_id: ioas, iova: 0x100000, length: 0x4000 });
`;

const areas = (s: AddrSpaceState) => [...s.spaces.values()].flatMap((sp) => sp.areas.map((a) => `${sp.id}:${hex(a.start)}-${hex(a.last)}`));
const reserved = (s: AddrSpaceState) => [...s.spaces.values()].flatMap((sp) => sp.reserved.map((r) => `${hex(r.start)}-${hex(r.last)} ${r.owner}`));

describe("addrspace model", () => {
  it("reserves the MSI window once a device is attached", async () => {
    const events = await trace(SCRIPT);
    const m = createAddrSpaceModel();
    const before = m.at(events, seqOf(events, (e) => e.k === "sys.enter" && e.req === "VFIO_DEVICE_ATTACH_IOMMUFD_PT"));
    expect(areas(before)).toEqual(["1:0x100000-0x103fff"]);
    expect(reserved(before)).toEqual([]);
    expect(before.lockedVm).toBe(0);
    const after = m.at(events, seqOf(events, (e) => e.k === "sys.call" && e.req === "VFIO_DEVICE_ATTACH_IOMMUFD_PT"));
    expect(reserved(after)).toContain("0xfee00000-0xfeefffff device 2 MSI region");
    expect(reserved(after)).toContain("0x1000000000000-0xffffffffffffffff domain 2 aperture");
    expect(after.lockedVm).toBe(4);
  });

  it("removes the area and unpins on unmap; an earlier cursor equals its prefix", async () => {
    const events = await trace(SCRIPT);
    const m = createAddrSpaceModel();
    const end = m.at(events, events[events.length - 1].seq);
    expect(areas(end)).toEqual([]);
    expect(end.lockedVm).toBe(0);
    const mid = seqOf(events, (e) => e.k === "sys.enter" && e.req === "IOMMU_IOAS_UNMAP");
    const back = m.at(events, mid);
    expect(areas(back)).toEqual(["1:0x100000-0x103fff"]);
    const fresh = createAddrSpaceModel().at(events.filter((e) => e.seq <= mid), mid);
    expect({ a: areas(fresh), r: reserved(fresh), l: fresh.lockedVm }).toEqual({ a: areas(back), r: reserved(back), l: back.lockedVm });
  });

  it("cuts areas on a partial unmap", () => {
    const a = { start: 0x1000n, last: 0x4fffn, prot: 3, seq: 1 };
    expect(subtract([a], 0x2000n, 0x2fffn).map((x) => [x.start, x.last])).toEqual([[0x1000n, 0x1fffn], [0x3000n, 0x4fffn]]);
    expect(subtract([a], 0n, 0xffffn)).toEqual([]);
  });
});

describe("piecewise 64-bit scale", () => {
  it("is monotone over the whole u64 range and gives every piece a readable width", () => {
    const x = piecewiseScale([0x100000n, 0x104000n, 0xfee00000n, 0xfef00000n, 1n << 48n], 0, 1000);
    expect(x(0n)).toBe(0);
    expect(x(U64_END)).toBe(1000);
    const points = [0n, 0x100000n, 0x102000n, 0x104000n, 0xfee00000n, 0xfef00000n, 1n << 48n, 1n << 60n, U64_END];
    for (let i = 1; i < points.length; i++) expect(x(points[i])).toBeGreaterThan(x(points[i - 1]));
    // the 16 KiB area is at least 4% of the axis, though it is 2^-50 of the range
    expect(x(0x104000n) - x(0x100000n)).toBeGreaterThan(40);
  });

  it("labels ticks in hex without overlaps", async () => {
    const events = await trace(SCRIPT);
    const s = createAddrSpaceModel().at(events, seqOf(events, (e) => e.k === "sys.call" && e.req === "VFIO_DEVICE_ATTACH_IOMMUFD_PT"));
    const l = layoutAddrSpace(s, { width: 900 });
    const labelled = l.ticks.filter((t) => t.label);
    expect(labelled.map((t) => t.label)).toContain("0xfee00000");
    for (const row of [0, 1]) {
      const r = labelled.filter((t) => t.row === row);
      for (let i = 1; i < r.length; i++) expect(r[i].x - r[i - 1].x).toBeGreaterThan(((r[i].label.length + r[i - 1].label.length) * 7.2) / 2);
    }
  });
});
