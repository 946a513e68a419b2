// app/views/iotlb/model.ts: cache contents and counters at the cursor, from real engine traces.
import { describe, expect, it } from "vitest";
import { createIotlbModel, geometryOf } from "../../../../app/views/iotlb/model.ts";
import { layoutIotlb } from "../../../../app/views/iotlb/layout.ts";
import { indexAtOrBefore } from "../../../../app/views/common/events.ts";
import { PROLOGUE_NO_ATS, seqOf, trace } from "../helpers.ts";

const SCRIPT = `${PROLOGUE_NO_ATS}
map(0x100000, 0x4000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const d = hw.device(vfio);
await d.read(0x100000, 8);
await d.read(0x100008, 8);
await d.read(0x101000, 8);
ioctl(iommufd, IOMMU_IOAS_UNMAP, { ioas_id: ioas, iova: 0x100000, length: 0x4000 });
`;

const at = (events: Parameters<ReturnType<typeof createIotlbModel>["atIndex"]>[0], seq: number, m = createIotlbModel()) =>
  m.atIndex(events, indexAtOrBefore(events, seq));

describe("iotlb model", () => {
  it("fills on the first read and hits on the second read of the same page", async () => {
    const events = await trace(SCRIPT);
    const first = at(events, seqOf(events, (e) => e.k === "dma.complete", 0));
    expect(first.counts).toMatchObject({ hit: 0, miss: 1, fill: 1 });
    expect(first.last?.kind).toBe("fill");
    const [entry] = first.iotlb.values();
    expect(entry).toMatchObject({ page: 0x100000, size: 4096, did: expect.any(Number) });
    // the PWC holds the three non-leaf levels the walk read
    expect([...first.pwc.values()].map((p) => p.level).sort()).toEqual([2, 3, 4]);

    const second = at(events, seqOf(events, (e) => e.k === "dma.complete", 1));
    expect(second.counts).toMatchObject({ hit: 1, miss: 1, fill: 1 });
    expect(second.last).toMatchObject({ kind: "hit", set: entry.set, way: entry.way });
  });

  it("removes entries on invalidation and records who invalidated them", async () => {
    const events = await trace(SCRIPT);
    const end = at(events, events[events.length - 1].seq);
    expect(end.iotlb.size).toBe(0);
    expect(end.counts.inv).toBe(2);
    expect(end.last).toMatchObject({ kind: "inv", by: expect.stringContaining("iotlb") });
    expect(end.pwc.size).toBe(0);
  });

  it("evicts when a set is full, with the geometry of the machine's knobs", async () => {
    const knobs = { iotlbSets: 1, iotlbWays: 1 };
    const events = await trace(SCRIPT, { knobs });
    const m = createIotlbModel(geometryOf(knobs));
    const s = m.atIndex(events, indexAtOrBefore(events, seqOf(events, (e) => e.k === "vtd.iotlb.evict")));
    expect(s.last).toMatchObject({ kind: "evict", set: 0, way: 0, page: 0x100000 });
    expect(s.geometry).toMatchObject({ sets: 1, ways: 1 });
    const layout = layoutIotlb(s, [], s.last!.seq, { width: 600 });
    expect(layout.entries.some((e) => e.ghost)).toBe(true);
    expect(layout.badges[0]).toMatchObject({ kind: "evict", current: true });
  });

  it("time travels: an earlier cursor equals the state of the prefix, and differs from the end", async () => {
    const events = await trace(SCRIPT);
    const mid = seqOf(events, (e) => e.k === "vtd.iotlb.hit");
    const m = createIotlbModel();
    at(events, events[events.length - 1].seq, m); // move the head to the end first
    const back = structuredClone(at(events, mid, m));
    const prefix = events.filter((e) => e.seq <= mid);
    expect(back).toEqual(structuredClone(at(prefix, mid)));
    expect(back.iotlb.size).toBe(1);
    expect(at(events, events[events.length - 1].seq, m).iotlb.size).toBe(0);
  });

  it("keeps checkpoints correct over a long trace", async () => {
    // many DMAs over more pages than the IOTLB holds: evictions, hits and misses mixed
    const events = await trace(`${PROLOGUE_NO_ATS}
map(0x100000, 0x80000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const d = hw.device(vfio);
for (let i = 0; i < 300; i++) await d.read(0x100000 + ((i * 7) % 128) * 0x1000, 4);
`);
    expect(events.length).toBeGreaterThan(3000);
    const m = createIotlbModel();
    for (const k of [events.length - 1, 1500, 2900, 10, 2048, 2047]) {
      const fresh = createIotlbModel().atIndex(events.slice(0, k + 1), k);
      expect(structuredClone(m.atIndex(events, k))).toEqual(structuredClone(fresh));
    }
  });

  it("gives the hit rate per window of simulated time", async () => {
    const events = await trace(SCRIPT);
    const m = createIotlbModel();
    const w = m.rates(events, events.length - 1, 4);
    expect(w).toHaveLength(4);
    expect(w.reduce((a, x) => a + x.lookups, 0)).toBe(3);
    expect(w.reduce((a, x) => a + x.hits, 0)).toBe(1);
    expect(m.rates(events, indexAtOrBefore(events, seqOf(events, (e) => e.k === "dma.request")), 4)).toEqual([]);
  });
});
