// engine/hw/vtd/nested.ts: the 2D walk — order of the memory references, the cached size, faults
// at either stage, A/D rules, the first-stage paging-structure cache.
import { describe, expect, it } from "vitest";
import { nestedMachine } from "./nested-helpers.ts";
import { VTD_FR } from "../../../../engine/hw/vtd/fault.ts";
import { pasidEntryDecode, pasidEntryDecodeFs, PGTT_NESTED } from "../../../../engine/hw/vtd/tables.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";

const SZ_2M = 2 * 1024 * 1024;
const SZ_1G = 1024 * 1024 * 1024;
const COLD = { pwcEntries: 0, fsPwcEntries: 0 };

/** "S<fsLevel>.<level>" for a second-stage read, "F<level>" for a first-stage one. */
function shape(steps: TraceEvent<"vtd.walk.level">[]): string[] {
  return steps.map((e) => (e.stage === "s1" ? `F${e.level}` : `S${e.fsLevel}.${e.level}`));
}

function expected(fsLevels: number[], ssLevels = [4, 3, 2, 1]): string[] {
  const out: string[] = [];
  for (const f of fsLevels) {
    for (const l of ssLevels) out.push(`S${f}.${l}`);
    out.push(`F${f}`);
  }
  for (const l of ssLevels) out.push(`S0.${l}`);
  return out;
}

describe("the 2D walk, nothing cached", () => {
  it("4-level over 4-level: 24 reads in order — SSSS F, four times, then SSSS for the page", () => {
    const t = nestedMachine({ knobs: COLD });
    const IOVA = 0x12_3456_7000;
    const GPA = 0x10_0000;
    t.guest.map(IOVA, GPA, 0x1000);
    const hpa = t.parentDomain.ops.iovaToPhys(GPA);
    t.record();
    const t0 = t.s.machine.clock.now;
    const r = t.tr(IOVA + 0x18);
    expect(r).toEqual({ ok: true, pa: hpa + 0x18, size: 0x1000 - 0x18, perm: 3 });
    const steps = t.of("vtd.walk.level");
    expect(steps).toHaveLength(24);
    expect(shape(steps)).toEqual(expected([4, 3, 2, 1]));
    // root, context, PASID dir, PASID entry + 24: 28 references of 90 ns
    expect(t.s.machine.clock.now - t0).toBe(28 * 90);
    expect(t.of("vtd.walk.done")[0]).toMatchObject({
      did: t.nestedDomain.id, pasid: 0, iova: IOVA + 0x18, pa: hpa + 0x18, size: 4096, reads: 28, gpa: GPA + 0x18, fsSize: 4096, ssSize: 4096,
    });
    // the first-stage entries are the guest's bytes, read from the tables' HPAs
    const ptes = t.guest.pte(IOVA);
    const s1 = steps.filter((e) => e.stage === "s1");
    expect(s1.map((e) => [e.level, e.index, Number(e.entry), e.tableGpa, e.leaf])).toEqual(
      ptes.map((p) => [p.level, p.index, Number(p.entry), p.table, p.leaf]),
    );
    for (const e of s1) expect(e.table).toBe(t.parentDomain.ops.iovaToPhys(e.tableGpa as number));
    // each second-stage walk translates one GPA from the parent's root: the tables, then the page
    const s2 = steps.filter((e) => e.stage === "s2");
    const gpas = [...new Set(s2.map((e) => e.gpa))];
    expect(gpas).toEqual([...ptes.map((p) => p.table), GPA + 0x18]);
    for (const e of s2.filter((x) => x.level === 4)) expect(e.table).toBe(t.parentDomain.pgd);
    for (const e of s2) expect(e).toMatchObject({ did: t.nestedDomain.id, iova: IOVA + 0x18 });
    // filled: one IOTLB entry tagged with the nested DID, PASID 0 (RID_PASID), PGTT 011
    const fill = t.hw.iotlb.entries();
    expect(fill).toHaveLength(1);
    expect(fill[0]).toMatchObject({ did: t.nestedDomain.id, pasid: 0, page: IOVA, size: 4096, pgtt: PGTT_NESTED, pa: hpa, perm: 3 });
    // the next access of the page: an IOTLB hit, 10 ns, no reference at all
    t.record();
    const t1 = t.s.machine.clock.now;
    expect(t.tr(IOVA + 0x800, true)).toMatchObject({ ok: true, pa: hpa + 0x800 });
    expect(t.s.machine.clock.now - t1).toBe(10);
    expect(t.of("vtd.walk.level")).toHaveLength(0);
  });

  it("5-level over 4-level (FLPM = 01): 29 reads", () => {
    const t = nestedMachine({ knobs: COLD, guest: { levels: 5 } });
    const pe = t.ops.pasidEntryAddr(t.s.machine.devices[0], 0);
    expect(pasidEntryDecodeFs(t.mem.read64n(pe + 16))).toMatchObject({ flpm: 1, fsptptr: t.guest.root });
    const IOVA = 0x1_2345_6789_a000; // bits above 47 in use: a 5-level address
    t.guest.map(IOVA, 0x20_0000, 0x1000);
    t.record();
    expect(t.tr(IOVA)).toMatchObject({ ok: true, pa: t.parentDomain.ops.iovaToPhys(0x20_0000) });
    expect(shape(t.of("vtd.walk.level"))).toEqual(expected([5, 4, 3, 2, 1]));
    // the same address is not canonical for a 4-level table
    const t4 = nestedMachine({ knobs: COLD });
    expect(t4.tr(IOVA)).toMatchObject({ ok: false, reason: VTD_FR.FS_NON_CANONICAL });
  });
});

describe("large pages: the cached size is the smaller leaf", () => {
  it("a guest 2 MiB page over 4 KiB host pages caches 4 KiB", () => {
    const t = nestedMachine({ knobs: COLD });
    t.guest.map(0x4000_0000, 0x20_0000, SZ_2M);
    expect(t.guest.pte(0x4000_0000).map((p) => p.bits)).toEqual(["P|RW|US|A", "P|RW|US|A", "P|RW|US|A|D|PS"]);
    t.record();
    const r = t.tr(0x4000_0000 + 0x12_3456);
    expect(r).toMatchObject({ ok: true, pa: t.parentDomain.ops.iovaToPhys(0x20_0000 + 0x12_3456), size: 0x1000 - 0x456 });
    expect(shape(t.of("vtd.walk.level"))).toEqual(expected([4, 3, 2]));
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ size: 4096, fsSize: SZ_2M, ssSize: 4096 });
    expect(t.of("vtd.iotlb.fill")[0]).toMatchObject({ size: 4096, page: 0x4012_3000 });
  });

  it("a guest 4 KiB page over a host 2 MiB page caches 4 KiB; 2 MiB over 2 MiB caches 2 MiB", () => {
    const t = nestedMachine({ knobs: COLD, guest: { hugepages: true } });
    t.guest.map(0x4000_0000, 0x20_0000, 0x1000, { pageSize: 4096 });
    t.guest.map(0x8000_0000, 0x40_0000, SZ_2M);
    t.record();
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(shape(t.of("vtd.walk.level"))).toEqual(expected([4, 3, 2, 1], [4, 3, 2]));
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ size: 4096, fsSize: 4096, ssSize: SZ_2M });
    t.record();
    expect(t.tr(0x8000_0000 + 0x1f_f000)).toMatchObject({ ok: true, pa: t.parentDomain.ops.iovaToPhys(0x40_0000) + 0x1f_f000 });
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ size: SZ_2M, fsSize: SZ_2M, ssSize: SZ_2M });
    expect(t.hw.iotlb.entries().find((e) => e.page === 0x8000_0000)).toMatchObject({ size: SZ_2M });
  });

  it("a guest 1 GiB page (CAP.FS1GP): the walk ends at the PDPTE; outside the host mapping is a second-stage fault", () => {
    const t = nestedMachine({ knobs: COLD });
    t.guest.map(0x4000_0000, 0, SZ_1G);
    expect(t.guest.pte(0x4000_0000).map((p) => [p.level, p.leaf])).toEqual([[4, false], [3, true]]);
    t.record();
    expect(t.tr(0x4010_0000)).toMatchObject({ ok: true, pa: t.parentDomain.ops.iovaToPhys(0x10_0000) });
    expect(shape(t.of("vtd.walk.level"))).toEqual(expected([4, 3]));
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ fsSize: SZ_1G, size: 4096 });
    // GPA 0x2000_0000 is inside the guest's 1 GiB page but the host never mapped it
    expect(t.tr(0x6000_0000)).toMatchObject({ ok: false, reason: VTD_FR.SS_RW });
  });
});

describe("faults at either stage", () => {
  it("first stage: not present 0x71, U/S = 0 0x81, read-only written 0x85, non-canonical 0x80", () => {
    const t = nestedMachine();
    t.guest.map(0x1000_0000, 0x10_0000, 0x1000, { user: false });
    t.guest.map(0x1000_1000, 0x10_1000, 0x1000, { write: false });
    expect(t.tr(0x2000_0000)).toMatchObject({ ok: false, reason: VTD_FR.FS_P, name: "SM: Present bit in first-level paging entry is clear" });
    expect(t.tr(0x1000_0000)).toMatchObject({ ok: false, reason: VTD_FR.FS_US, name: "SM: U/S set 0 for first-level translation with user privilege" });
    expect(t.tr(0x1000_1000, true)).toMatchObject({ ok: false, reason: 0x85 });
    expect(t.tr(0x1000_1000, false)).toMatchObject({ ok: true, perm: 1 });
    // the read filled a read-only entry: a write now faults from the cache, without a walk
    t.record();
    expect(t.tr(0x1000_1000, true)).toMatchObject({ ok: false, reason: 0x85 });
    expect(t.of("vtd.walk.level")).toHaveLength(0);
    expect(t.tr(2 ** 47)).toMatchObject({ ok: false, reason: VTD_FR.FS_NON_CANONICAL, name: "SM: Address in first-level translation is not canonical" });
    // faults are recorded with the request's address, as any translation fault
    expect(t.hw.fault.pending().map((p) => p.reason)).toContain(0x71);
  });

  it("first stage: reserved bits 0x72 (PS in a PML4E, address bits of a 2 MiB leaf), an address ≥ 2^48 0x74", () => {
    const t = nestedMachine({ knobs: COLD });
    t.guest.map(0x4000_0000, 0x20_0000, SZ_2M);
    t.guest.map(0x8000_0000, 0x10_0000, 0x1000);
    const [pml4e, , pde] = t.guest.pte(0x4000_0000);
    // bit 13 in a 2 MiB leaf (address bits 20:13 must be 0)
    t.guest.write64(pde.entryGpa, pde.entry | (1n << 13n));
    expect(t.tr(0x4000_0000)).toMatchObject({ ok: false, reason: VTD_FR.FS_RSVD });
    // PS in the PML4E
    t.guest.write64(pml4e.entryGpa, pml4e.entry | (1n << 7n));
    expect(t.tr(0x8000_0000)).toMatchObject({ ok: false, reason: VTD_FR.FS_RSVD });
    t.guest.write64(pml4e.entryGpa, pml4e.entry);
    // a PTE whose address has bit 48 set: beyond what the second stage can translate
    const pte = t.guest.pte(0x8000_0000)[3];
    t.guest.write64(pte.entryGpa, pte.entry | (1n << 48n));
    expect(t.tr(0x8000_0000)).toMatchObject({ ok: false, reason: VTD_FR.NESTED_BEYOND, name: "SM: First-level entry address beyond MGAW in Nested translation" });
    // garbage everywhere is the guest's problem, never the engine's
    for (let i = 0; i < 512; i++) t.guest.write64(t.guest.root + i * 8, 0xffff_ffff_ffff_ffffn - BigInt(i));
    for (const iova of [0, 0x8000_0000, 0x7fff_ffff_f000]) expect(t.tr(iova).ok).toBe(false);
  });

  it("FSPTPTR at or above 2^48 faults 0x74; a table GPA the host never mapped faults 0x79 (second stage)", () => {
    const t = nestedMachine({ knobs: COLD, noAttach: true });
    // Linux does not check pgtbl_addr: the allocation and the attach succeed, the walk faults
    const bad = t.g.ioctl(t.fd, t.g.IOMMU_HWPT_ALLOC, {
      dev_id: t.devId, pt_id: t.parent, data_type: t.g.IOMMU_HWPT_DATA_VTD_S1, data_uptr: { pgtbl_addr: 2n ** 48n, addr_width: 48 },
    }).out_hwpt_id;
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: bad });
    expect(t.tr(0x1000)).toMatchObject({ ok: false, reason: VTD_FR.NESTED_BEYOND });
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.nested });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    const pml4e = t.guest.pte(0x4000_0000)[0];
    // point the PML4E at GPA 0x8000_0000, outside guest RAM (not in the IOAS)
    t.guest.write64(pml4e.entryGpa, 0x8000_0000n | (pml4e.entry & 0xfffn));
    t.record();
    expect(t.tr(0x4000_0000)).toMatchObject({ ok: false, reason: VTD_FR.SS_RW });
    const last = t.of("vtd.walk.level").at(-1)!;
    expect(last).toMatchObject({ stage: "s2", gpa: 0x8000_0000, fsLevel: 3, bits: "-" });
  });

  it("a table page the second stage will not read: 0x75 for the root table, 0x76 below it; the final page 0x86", () => {
    const t = nestedMachine({ knobs: COLD, noAttach: true });
    // a write-only region of guest RAM (the errata forbids read-only on a nest parent; write-only is fine)
    const wo = t.g.mmap(0x10000);
    t.g.ioctl(t.fd, t.g.IOMMU_IOAS_MAP, { flags: t.g.IOMMU_IOAS_MAP_FIXED_IOVA | t.g.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: t.ioas, user_va: wo, length: 0x10000, iova: 0x4000_0000 });
    const rootInWo = t.g.ioctl(t.fd, t.g.IOMMU_HWPT_ALLOC, {
      dev_id: t.devId, pt_id: t.parent, data_type: t.g.IOMMU_HWPT_DATA_VTD_S1, data_uptr: { pgtbl_addr: 0x4000_0000, addr_width: 48 },
    }).out_hwpt_id;
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: rootInWo });
    expect(t.tr(0x1000)).toMatchObject({ ok: false, reason: VTD_FR.NESTED_READ_ROOT, name: "SM: Read permission error in FL-PML4 entry in Nested translation" });
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.nested });
    t.guest.map(0x1000_0000, 0x10_0000, 0x1000);
    t.guest.map(0x2000_0000, 0x4000_1000, 0x1000); // a guest page in the write-only region
    const pml4e = t.guest.pte(0x1000_0000)[0];
    t.guest.write64(pml4e.entryGpa, 0x4000_0000n | (pml4e.entry & 0xfffn)); // the PDPT in write-only RAM
    expect(t.tr(0x1000_0000)).toMatchObject({ ok: false, reason: VTD_FR.NESTED_READ, name: "SM: Read permission error in first-level paging entry in Nested translation" });
    t.guest.write64(pml4e.entryGpa, pml4e.entry);
    expect(t.tr(0x2000_0000, false)).toMatchObject({ ok: false, reason: 0x86 });
    expect(t.tr(0x2000_0000, true)).toMatchObject({ ok: true, perm: 2 });
  });

  it("an A/D update needs second-stage write on the table page (0x77)", () => {
    const t = nestedMachine({ knobs: COLD });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000, { presetAD: false });
    // take W away from the host's leaf for the guest's PT page (as only a host bug could)
    const ptGpa = t.guest.pte(0x4000_0000)[3].table;
    const leafPa = ssLeafEntry(t, ptGpa);
    const v = t.mem.read64n(leafPa);
    t.mem.write64n(leafPa, v & ~2n);
    expect(t.tr(0x4000_0000)).toMatchObject({ ok: false, reason: VTD_FR.NESTED_WRITE, name: "SM: Write permission error in first-level paging entry in Nested translation" });
  });
});

/** Physical address of the second-stage leaf entry mapping `gpa` in the parent. */
function ssLeafEntry(t: ReturnType<typeof nestedMachine>, gpa: number): number {
  let table = t.parentDomain.pgd;
  for (let level = 4; level >= 1; level--) {
    const epa = table + (Math.floor(gpa / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
    const e = t.mem.read64n(epa);
    if (level === 1 || e & 0x80n) return epa;
    table = Number(e & 0x000ffffffffff000n);
  }
  throw new Error("unreachable");
}

describe("accessed and dirty bits", () => {
  it("A in every entry walked, D in the leaf of a write — as locked read-modify-writes of guest RAM", () => {
    const t = nestedMachine({ knobs: COLD });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000, { presetAD: false });
    expect(t.guest.pte(0x4000_0000).map((p) => p.bits)).toEqual(["P|RW|US|A", "P|RW|US|A", "P|RW|US|A", "P|RW|US"]);
    t.record();
    expect(t.tr(0x4000_0000).ok).toBe(true);
    expect(t.of("vtd.walk.level").filter((e) => e.stage === "s1").map((e) => e.ad ?? "")).toEqual(["", "", "", "A"]);
    expect(t.guest.pte(0x4000_0000)[3].bits).toBe("P|RW|US|A");
    // the read-filled entry cannot prove D is set: a write walks again and sets it
    t.record();
    expect(t.tr(0x4000_0000, true).ok).toBe(true);
    expect(t.of("vtd.walk.level").filter((e) => e.stage === "s1").map((e) => e.ad ?? "")).toEqual(["", "", "", "D"]);
    expect(t.guest.pte(0x4000_0000)[3].bits).toBe("P|RW|US|A|D");
    expect(t.hw.stats.dirtyRewalks).toBe(1);
    // now dirty: later writes hit
    t.record();
    expect(t.tr(0x4000_0010, true).ok).toBe(true);
    expect(t.of("vtd.iotlb.hit")).toHaveLength(1);
  });

  it("with the parent tracking dirt, the guest table page the hardware wrote A into is dirty in the parent's bitmap", () => {
    const t = nestedMachine({ parentFlags: 2 /* IOMMU_HWPT_ALLOC_DIRTY_TRACKING */ });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000, { presetAD: false });
    const g = t.g;
    g.ioctl(t.fd, g.IOMMU_HWPT_SET_DIRTY_TRACKING, { hwpt_id: t.parent, flags: g.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    // the nested PASID entry follows the parent's SSADE
    const pe = t.ops.pasidEntryAddr(t.s.machine.devices[0], 0);
    expect(pasidEntryDecode(t.mem.read64n(pe), t.mem.read64n(pe + 8))).toMatchObject({ pgtt: PGTT_NESTED, ssade: true });
    expect(t.tr(0x4000_0000, false).ok).toBe(true); // a read: sets A in the guest's PT page
    const ptGpa = t.guest.pte(0x4000_0000)[3].table;
    const pages = 16 << 8; // 16 MiB of guest RAM in 4 KiB pages
    const bitmap = new BigUint64Array(pages / 64);
    g.ioctl(t.fd, g.IOMMU_HWPT_GET_DIRTY_BITMAP, { hwpt_id: t.parent, iova: 0, length: 16 << 20, page_size: 4096, data: bitmap });
    const dirty: number[] = [];
    for (let i = 0; i < pages; i++) if ((bitmap[i >> 6] >> BigInt(i & 63)) & 1n) dirty.push(i * 4096);
    expect(dirty).toEqual([ptGpa]); // the data page was only read
  });
});

describe("the first-stage paging-structure cache", () => {
  it("a neighbour page in the same guest PT skips every read above the PTE", () => {
    const t = nestedMachine({ knobs: { pwcEntries: 0 } });
    t.guest.map(0x4000_0000, 0x10_0000, 0x2000);
    expect(t.tr(0x4000_0000).ok).toBe(true);
    t.record();
    expect(t.tr(0x4000_1000).ok).toBe(true);
    expect(t.of("vtd.fspwc.hit")).toMatchObject([{ level: 2, did: t.nestedDomain.id, pasid: 0, tableGpa: t.guest.pte(0x4000_1000)[3].table }]);
    expect(shape(t.of("vtd.walk.level"))).toEqual(["F1", "S0.4", "S0.3", "S0.2", "S0.1"]);
    expect(t.of("vtd.walk.done")[0]).toMatchObject({ reads: 5 });
  });

  it("a PASID attachment tags the IOTLB and the PWC with that PASID", () => {
    const t = nestedMachine({ pasid: true, noAttach: true });
    t.g.ioctl(t.vfio, t.g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: t.nested, flags: t.g.VFIO_DEVICE_ATTACH_PASID, pasid: 7 });
    t.guest.map(0x4000_0000, 0x10_0000, 0x1000);
    expect(t.tr(0x4000_0000, false, 7)).toMatchObject({ ok: true });
    expect(t.hw.iotlb.entries()).toMatchObject([{ did: t.nestedDomain.id, pasid: 7, pgtt: PGTT_NESTED }]);
    // the RID itself is still blocked
    expect(t.tr(0x4000_0000)).toMatchObject({ ok: false, reason: 0x59 });
  });
});

describe("events of a nested run", () => {
  it("belong to documented families and carry flat payloads", async () => {
    const { EVENT_FAMILIES } = await import("../../../../engine/trace/events.ts");
    const t = nestedMachine();
    t.record();
    t.guest.map(0x4000_0000, 0x10_0000, 0x2000);
    t.tr(0x4000_0000);
    t.tr(0x4000_1000, true);
    const pte = t.guest.pte(0x4000_0000)[3];
    t.guest.write64(pte.entryGpa, pte.entry ^ 0x30_0000n);
    t.tr(0x4000_0000);
    t.guest.invalidate(t.nested);
    const kinds = new Set(t.events.map((e) => e.k));
    for (const k of ["vtd.walk.level", "vtd.walk.done", "vtd.fspwc.fill", "vtd.fspwc.hit", "vtd.stale.hit", "vtd.fspwc.inv", "vtd.qi.desc"]) expect(kinds.has(k as never), k).toBe(true);
    const families = Object.keys(EVENT_FAMILIES);
    for (const e of t.events) {
      expect(families.some((f) => e.k.startsWith(f)), e.k).toBe(true);
      if (e.k.startsWith("vtd.")) for (const v of Object.values(e)) expect(["number", "string", "boolean", "undefined"]).toContain(typeof v);
    }
  });
});
