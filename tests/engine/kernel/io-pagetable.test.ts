// engine/kernel/io-pagetable.ts: IOVA allocation, reservations and the allowed list, in isolation.
import { describe, expect, it } from "vitest";
import { IoPagetable, ULONG_MAX } from "../../../engine/kernel/io-pagetable.ts";
import { Trace } from "../../../engine/trace/events.ts";
import { isErr } from "../../../engine/uapi/errno.ts";

const iopt = () => new IoPagetable(new Trace({ now: 0 }), 1);
const owner = {};

describe("IoPagetable", () => {
  it("allocates from PAGE_SIZE upward, aligned to the length up to 2 MiB (iopt_alloc_iova)", () => {
    const t = iopt();
    expect(t.allocIova(0x1000n, 0x7f0000000000n)).toBe(0x1000n);
    expect(t.allocIova(0x10000n, 0x7f0000000000n)).toBe(0x10000n);
    expect(t.allocIova(0x40000000n, 0x7f0000000000n)).toBe(0x200000n); // 1 GiB length: capped at 2 MiB alignment
  });

  it("keeps the source's offset inside its page", () => {
    const t = iopt();
    expect(t.allocIova(0x1000n, 0x7f0000000234n)).toBe(0x1234n);
  });

  it("refuses an alignment below the IOAS's with EINVAL, and reports ENOSPC when full", () => {
    const t = iopt();
    t.iovaAlignment = 4096n;
    const e = t.allocIova(0x1000n, 0x7f0000000800n);
    expect(isErr(e) && e.name).toBe("EINVAL");
    t.allowed = [{ start: 0x1000n, last: 0x1fffn }];
    const f = t.allocIova(0x2000n, 0n);
    expect(isErr(f) && f.name).toBe("ENOSPC");
  });

  it("skips reserved ranges and stays inside the allowed ranges", () => {
    const t = iopt();
    expect(t.reserveIova(0x1000n, 0xffffn, owner, "test")).toBe(0);
    expect(t.allocIova(0x1000n, 0n)).toBe(0x10000n);
    expect(t.setAllowIova([{ start: 0x100000n, last: 0x1fffffn }])).toBe(0);
    expect(t.allocIova(0x1000n, 0n)).toBe(0x100000n);
  });

  it("refuses reservations over allowed ranges and allowed ranges over reservations (EADDRINUSE)", () => {
    const t = iopt();
    expect(t.setAllowIova([{ start: 0x100000n, last: 0x1fffffn }])).toBe(0);
    const e = t.reserveIova(0x180000n, 0x180fffn, owner, "test");
    expect(isErr(e) && e.name).toBe("EADDRINUSE");
    const t2 = iopt();
    t2.reserveIova(0xfee00000n, 0xfeefffffn, owner, "msi");
    const f = t2.setAllowIova([{ start: 0xfe000000n, last: 0xfeffffffn }]);
    expect(isErr(f) && f.name).toBe("EADDRINUSE");
  });

  it("reports the holes of the reserved set as IOVA ranges", () => {
    const t = iopt();
    expect(t.iovaRanges()).toEqual([{ start: 0n, last: ULONG_MAX }]);
    t.reserveIova(0xfee00000n, 0xfeefffffn, owner, "msi");
    t.reserveIova(1n << 48n, ULONG_MAX, owner, "aperture");
    expect(t.iovaRanges()).toEqual([
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: (1n << 48n) - 1n },
    ]);
    t.removeReservedIova(owner);
    expect(t.iovaRanges()).toHaveLength(1);
  });

  it("checks FIXED_IOVA ranges in the kernel's order: alignment, overflow, reserved, existing", () => {
    const t = iopt();
    t.iovaAlignment = 4096n;
    const a = t.checkIova(0x1800n, 0x1000n);
    expect(isErr(a) && a.name).toBe("EINVAL");
    const b = t.checkIova(ULONG_MAX - 0xfffn, 0x2000n);
    expect(isErr(b) && b.name).toBe("EOVERFLOW");
    t.reserveIova(0x5000n, 0x5fffn, owner, "x");
    const c = t.checkIova(0x4000n, 0x2000n);
    expect(isErr(c) && c.name).toBe("EINVAL");
  });
});

describe("large mappings cost what they touch", () => {
  it("maps 1 TiB into an IOAS without a domain without pinning or allocating per page, and refuses to pin it past RLIMIT_MEMLOCK", async () => {
    const { Session, createGlobals } = await import("../../../engine/script/runtime.ts");
    const s = new Session({});
    const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Record<string, any>;
    const fd = g.open("/dev/iommu");
    const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
    const TiB = 2 ** 40;
    const buf = g.mmap(TiB);
    g.ioctl(fd, g.IOMMU_IOAS_MAP, { flags: g.IOMMU_IOAS_MAP_FIXED_IOVA | g.IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, user_va: buf, length: TiB, iova: 2 ** 41 });
    expect(s.kernel.mm.lockedVm + s.kernel.user.lockedVm).toBe(0);
    const dev = g.open("/dev/vfio/devices/vfio1");
    g.ioctl(dev, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd });
    let code = "";
    try {
      g.ioctl(dev, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
    } catch (e) {
      code = (e as { code: string }).code;
    }
    expect(code).toBe("ENOMEM"); // 1 TiB > the 64 GiB RLIMIT_MEMLOCK: refused before anything is mapped
    expect(s.kernel.user.lockedVm).toBe(0);
  });
});
