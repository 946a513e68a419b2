// Invalidation of nested translations: the descriptors Linux issues for IOMMU_HWPT_INVALIDATE and
// for a change of the nest parent, and what each one reaches in the hardware's caches.
import { describe, expect, it } from "vitest";
import { nestedMachine } from "./nested-helpers.ts";
import { calculatePsiAlignedAddress } from "../../../../engine/hw/vtd/driver.ts";
import { psiAligned64 } from "../../../../engine/hw/vtd/nested-driver.ts";
import { PGTT_NESTED, PGTT_SS } from "../../../../engine/hw/vtd/tables.ts";

const U64_MAX = (1n << 64n) - 1n;
const LEAF = 1;

function piotlb(did: number, pasid: number, addr: number, am: number, ih: number) {
  return { type: 6, qw0: pasid * 2 ** 32 + did * 65536 + (3 << 4) + 6, qw1: addr + ih * 64 + am };
}

function invalidate(t: ReturnType<typeof nestedMachine>, entries: { addr: number | bigint; npages: number | bigint; flags?: number }[], hwpt = t.nested) {
  const arg = { hwpt_id: hwpt, data_type: t.g.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, data_uptr: entries, entry_num: entries.length };
  t.g.ioctl(t.fd, t.g.IOMMU_HWPT_INVALIDATE, arg);
  return arg;
}

/** The invalidation descriptors (not the wait) executed since record(). */
function descs(t: ReturnType<typeof nestedMachine>) {
  return t.of("vtd.qi.desc").filter((d) => d.type !== 5).map((d) => ({ type: d.type, qw0: d.qw0, qw1: d.qw1 }));
}

describe("IOMMU_HWPT_INVALIDATE → PASID-based IOTLB invalidation (type 6)", () => {
  it("page-selective with the aligned mask of calculate_psi_aligned_address, IH = LEAF; everything is PASID-selective", () => {
    const t = nestedMachine();
    const did = t.nestedDomain.id;
    t.record();
    invalidate(t, [
      { addr: 0x4000_0000, npages: 1 },
      { addr: 0x4000_3000, npages: 2, flags: LEAF }, // pfns 3..4 share nothing below bit 3: AM 3 from 0x4000_0000
      { addr: 0x20_0000, npages: 0x200 }, // 2 MiB, aligned
      { addr: 0x10_0000, npages: 0x200 }, // 2 MiB at a 1 MiB boundary: pfns 0x100..0x2ff share nothing below bit 10
      { addr: 0, npages: U64_MAX }, // everything
      { addr: 0x1000, npages: 2n ** 40n }, // huge but not everything: page-selective, AM 41 > MAMV is fine for type 6
    ]);
    // vfio0 has ATS: each PASID-based IOTLB descriptor is followed by its device-TLB one (type 3
    // for the RID), for the same range — the whole device TLB for "everything"
    expect(descs(t).map((d) => d.type)).toEqual([6, 3, 6, 3, 6, 3, 6, 3, 6, 3, 6, 3]);
    const devtlb = descs(t).filter((d) => d.type === 3);
    expect(Number(devtlb[0].qw1)).toBe(0x4000_0000); // one page: S = 0
    expect(BigInt(devtlb[4].qw1)).toBe(0x7fff_ffff_ffff_f000n | 1n); // everything: S = 1, ones up to bit 62 (qi_desc_dev_iotlb, mask 52)
    expect(descs(t).filter((d) => d.type === 6)).toEqual([
      piotlb(did, 0, 0x4000_0000, 0, 0),
      piotlb(did, 0, 0x4000_0000, 3, 1),
      piotlb(did, 0, 0x20_0000, 9, 0),
      piotlb(did, 0, 0, 10, 0),
      { type: 6, qw0: did * 65536 + (2 << 4) + 6, qw1: 0 },
      piotlb(did, 0, 0, 41, 0),
    ]);
    // the same mask as the second-stage path's calculate_psi_aligned_address
    expect(calculatePsiAlignedAddress(0x4000_3000, 0x4000_4fff)).toMatchObject({ addr: 0x4000_0000, mask: 3 });
    expect(psiAligned64(0x4000_3000n, 0x4000_4fffn)).toEqual({ addr: 0x4000_0000n, mask: 3 });
    // each entry is one batch: descriptors, then a wait
    expect(t.of("vtd.qi.desc").map((d) => d.type)).toEqual([6, 3, 5, 6, 3, 5, 6, 3, 5, 6, 3, 5, 6, 3, 5, 6, 3, 5]);
  });

  it("one descriptor per PASID the nested domain is attached with", () => {
    const t = nestedMachine({ pasid: true });
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.nested, flags: t.g.VFIO_DEVICE_ATTACH_PASID, pasid: 5 });
    t.record();
    invalidate(t, [{ addr: 0x2000, npages: 1 }]);
    // per attachment in order: the IOTLB tag, then the device-TLB tag (type 3 for the RID, 8 for a PASID)
    expect(descs(t).map((d) => d.type)).toEqual([6, 3, 6, 8]);
    expect(descs(t).filter((d) => d.type === 6)).toEqual([piotlb(t.nestedDomain.id, 0, 0x2000, 0, 0), piotlb(t.nestedDomain.id, 5, 0x2000, 0, 0)]);
  });

  it("with ATS (vfio0), the invalidation reaches the device's TLB too: the next DMA sees the new page", async () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    t.guest.write(0x10_0000, new Uint8Array([1])).write(0x20_0000, new Uint8Array([2]));
    const dev = t.dev();
    expect([...(await dev.read(0x4000_0000, 1))]).toEqual([1]);
    t.guest.unmap(0x4000_0000, 0x1000).map(0x4000_0000, 0x20_0000, 0x1000);
    expect([...(await dev.read(0x4000_0000, 1))]).toEqual([1]); // cached (the device TLB or the IOTLB)
    t.guest.invalidate(t.nested, 0x4000_0000, 0x1000);
    expect([...(await dev.read(0x4000_0000, 1))]).toEqual([2]);
  });

  it("a nested HWPT attached nowhere has no cache tags: entries are handled, nothing is issued", () => {
    const t = nestedMachine({ noAttach: true });
    t.record();
    expect(invalidate(t, [{ addr: 0, npages: 1 }, { addr: 0x1000, npages: 1 }]).entry_num).toBe(2);
    expect(descs(t)).toEqual([]);
  });

  it("reaches the nested entries in range only — not the parent's second-stage entries, not other pages", () => {
    const t = nestedMachine();
    // vfio1 uses the parent directly (second stage only, the parent's own DID)
    const vfio1 = t.g.open("/dev/vfio/devices/vfio1");
    t.g.ioctl(vfio1, t.g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: t.fd });
    t.g.ioctl(vfio1, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.parent });
    const rid1 = t.s.machine.devices[1].rid;
    t.guest.map(0x4000_0000, 0x10_0000, 0x2000);
    expect(t.tr(0x4000_0000).ok && t.tr(0x4000_1000).ok).toBe(true);
    expect(t.hw.translate({ rid: rid1, pasid: -1, iova: 0x10_0000, write: false }).ok).toBe(true);
    const before = t.hw.iotlb.entries();
    expect(before.map((e) => [e.did, e.pgtt, e.page])).toEqual(
      expect.arrayContaining([[t.nestedDomain.id, PGTT_NESTED, 0x4000_0000], [t.nestedDomain.id, PGTT_NESTED, 0x4000_1000], [t.parentDomain.id, PGTT_SS, 0x10_0000]]),
    );
    t.record();
    invalidate(t, [{ addr: 0x4000_1000, npages: 1 }]);
    expect(t.of("vtd.iotlb.inv").map((e) => [e.did, e.page, e.by])).toEqual([[t.nestedDomain.id, 0x4000_1000, "piotlb-psi"]]);
    // PASID-selective: every nested entry of the PASID; the parent's entry survives (different DID)
    t.record();
    invalidate(t, [{ addr: 0, npages: U64_MAX }]);
    expect(t.of("vtd.iotlb.inv").map((e) => [e.did, e.page])).toEqual([[t.nestedDomain.id, 0x4000_0000]]);
    expect(t.hw.iotlb.entries().map((e) => e.did)).toEqual([t.parentDomain.id]);
  });

  it("LEAF (IH = 1) keeps the first-stage paging-structure cache; IH = 0 drops the entries over the range", () => {
    const t = nestedMachine();
    t.guest.map(0x4000_0000, 0x10_0000, 0x2000);
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(t.hw.fspwc.fills).toBe(3); // PML4E, PDPTE, PDE of the guest
    t.record();
    invalidate(t, [{ addr: 0x4000_0000, npages: 1, flags: LEAF }]);
    expect(t.of("vtd.fspwc.inv")).toHaveLength(0);
    t.record();
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(t.of("vtd.fspwc.hit")).toMatchObject([{ level: 2 }]);
    t.record();
    invalidate(t, [{ addr: 0x4000_0000, npages: 1 }]);
    expect(t.of("vtd.fspwc.inv").map((e) => e.level).sort()).toEqual([2, 3, 4]);
    expect(t.of("vtd.fspwc.inv").every((e) => e.by === "piotlb-psi")).toBe(true);
  });
});

describe("a change of the nest parent reaches the nested translations built on it", () => {
  it("IOAS_UNMAP: type-2 descriptors with each nested DID remove every nested entry of that DID, whatever its address", () => {
    const t = nestedMachine();
    const extra = t.g.mmap(0x1000);
    const MAP = t.g.IOMMU_IOAS_MAP_FIXED_IOVA | t.g.IOMMU_IOAS_MAP_READABLE | t.g.IOMMU_IOAS_MAP_WRITEABLE;
    t.g.ioctl(t.fd, t.g.IOMMU_IOAS_MAP, { flags: MAP, ioas_id: t.ioas, user_va: extra, length: 0x1000, iova: 0x8000_0000 });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    t.guest.map(0x5000_0000, 0x8000_0000, 0x1000);
    expect(t.tr(0x4000_0000).ok && t.tr(0x5000_0000).ok).toBe(true);
    t.record();
    t.g.ioctl(t.fd, t.g.IOMMU_IOAS_UNMAP, { ioas_id: t.ioas, iova: 0x8000_0000, length: 0x1000 });
    // the parent has no attachment of its own: only its NESTING tag, the nested DID, page-selective
    const did = t.nestedDomain.id;
    expect(descs(t)[0]).toEqual({ type: 2, qw0: did * 65536 + (1 << 7) + (1 << 6) + (3 << 4) + 2, qw1: 0x8000_0000 });
    // and NESTING_DEVTLB: vfio0's whole device TLB (S = 1, ones up to bit 62)
    expect(descs(t).slice(1)).toMatchObject([{ type: 3 }]);
    expect(BigInt(descs(t)[1].qw1)).toBe(0x7fff_ffff_ffff_f000n | 1n);
    // both nested entries are gone — 0x4000_0000 never used the unmapped GPA
    expect(t.of("vtd.iotlb.inv").map((e) => e.page).sort()).toEqual([0x4000_0000, 0x5000_0000]);
    expect(t.of("vtd.fspwc.inv").length).toBeGreaterThan(0);
    expect(t.hw.iotlb.entries()).toHaveLength(0);
    // and the guest's mapping of the unmapped GPA now faults in the second stage, no stale hit
    t.record();
    expect(t.tr(0x5000_0000)).toMatchObject({ ok: false, reason: 0x79 });
    expect(t.of("vtd.stale.hit")).toHaveLength(0);
    expect(t.tr(0x4000_0000).ok).toBe(true);
  });

  it("with a device on the parent too, its own tag and the nesting tag each get a descriptor", () => {
    const t = nestedMachine();
    const vfio1 = t.g.open("/dev/vfio/devices/vfio1");
    t.g.ioctl(vfio1, t.g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: t.fd });
    t.g.ioctl(vfio1, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.parent });
    const extra = t.g.mmap(0x1000);
    t.g.ioctl(t.fd, t.g.IOMMU_IOAS_MAP, { flags: t.g.IOMMU_IOAS_MAP_FIXED_IOVA | t.g.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: t.ioas, user_va: extra, length: 0x1000, iova: 0x8000_0000 });
    t.record();
    t.g.ioctl(t.fd, t.g.IOMMU_IOAS_UNMAP, { ioas_id: t.ioas, iova: 0x8000_0000, length: 0x1000 });
    expect(descs(t).filter((d) => d.type === 2).map((d) => Math.floor(Number(d.qw0) / 65536) & 0xffff)).toEqual([t.parentDomain.id, t.nestedDomain.id]);
    expect(descs(t).map((d) => d.type)).toEqual([2, 2, 3]); // vfio1 has no ATS; vfio0 (nested) has
  });

  it("a read-only mapping on a nest parent is refused (ERRATA_772415_SPR17), reported by GET_HW_INFO", () => {
    const t = nestedMachine();
    const buf = t.g.mmap(0x1000);
    const e = (() => {
      try {
        t.g.ioctl(t.fd, t.g.IOMMU_IOAS_MAP, { flags: t.g.IOMMU_IOAS_MAP_FIXED_IOVA | t.g.IOMMU_IOAS_MAP_READABLE, ioas_id: t.ioas, user_va: buf, length: 0x1000, iova: 0x8000_0000 });
      } catch (x) {
        return x as { code: string; reason: string };
      }
      return null;
    })();
    expect(e?.code).toBe("EINVAL");
    expect(e?.reason).toMatch(/ERRATA_772415_SPR17/);
    const info = new Uint8Array(24);
    t.g.ioctl(t.fd, t.g.IOMMU_GET_HW_INFO, { dev_id: t.devId, data_uptr: info });
    expect(info[0] & t.g.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17).toBeTruthy();
  });
});
