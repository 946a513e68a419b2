// app/views/walk/model.ts: the walk at the cursor, from real engine traces.
import { describe, expect, it } from "vitest";
import { createWalkModel, iovaFields, levelIndexAttr } from "../../../../app/views/walk/model.ts";
import { layoutWalk } from "../../../../app/views/walk/layout.ts";
import { PROLOGUE_NO_ATS, seqOf, trace } from "../helpers.ts";

const SCRIPT = `${PROLOGUE_NO_ATS}
map(0x40201000, 0x4000);
map(0x80000000, 0x400000, { align: 2 * 1024 * 1024 });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const d = hw.device(vfio);
await d.read(0x40201000, 8);
await d.read(0x40201010, 8);
await d.read(0x80001000, 8);
try { await d.read(0x9000000, 8); } catch {}
`;

/** level:index of the 4-level walk of `iova`, computed from the VT-d index fields. */
function expectedIndices(iova: number): string {
  return [4, 3, 2, 1].map((l) => `${l}:${Math.floor(iova / 2 ** (12 + 9 * (l - 1))) % 512}`).join(",");
}

describe("walk model", () => {
  it("slices the IOVA into 9|9|9|9|12", () => {
    const f = iovaFields(0x40201abcn);
    expect(f.map((x) => [x.name, x.hi, x.lo])).toEqual([["PML4", 47, 39], ["PDPT", 38, 30], ["PD", 29, 21], ["PT", 20, 12], ["offset", 11, 0]]);
    expect(f.map((x) => x.value)).toEqual([0, 1, 1, 1, 0xabc]);
  });

  it("shows the four levels read for a first access, with the index used at each", async () => {
    const events = await trace(SCRIPT);
    const done = seqOf(events, (e) => e.k === "vtd.walk.done");
    const s = createWalkModel().at(events, done);
    expect(levelIndexAttr(s)).toBe(expectedIndices(0x40201000));
    expect(s.translation?.iotlb?.hit).toBe(false);
    expect(s.levels.map((r) => r.status)).toEqual(["read", "read", "read", "leaf"]);
    expect(s.outcome).toMatchObject({ kind: "page", size: 4096, from: "walk" });
    // each level's entry is the one the engine read
    const reads = events.filter((e) => e.k === "vtd.walk.level" && e.seq < done);
    expect(s.levels.map((r) => r.step?.entry)).toEqual(reads.map((e) => (e.k === "vtd.walk.level" ? e.entry : null)));
  });

  it("skips the walk on an IOTLB hit", async () => {
    const events = await trace(SCRIPT);
    const second = seqOf(events, (e) => e.k === "dma.complete", 1);
    const s = createWalkModel().at(events, second);
    expect(s.translation?.iotlb?.hit).toBe(true);
    expect(s.translation?.levels).toEqual([]);
    // the cached 4 KiB translation went through every level, at the same indices
    expect(levelIndexAttr(s)).toBe(expectedIndices(0x40201010));
    expect(s.levels.every((r) => r.status === "iotlb")).toBe(true);
    expect(s.outcome).toMatchObject({ kind: "page", from: "iotlb" });
  });

  it("ends a 2 MiB walk at the PD and takes the upper levels from the PWC", async () => {
    const events = await trace(SCRIPT);
    const s = createWalkModel().at(events, seqOf(events, (e) => e.k === "dma.complete", 2));
    const status = Object.fromEntries(s.levels.map((r) => [r.level, r.status]));
    expect(status).toEqual({ 4: "pwc", 3: "read", 2: "leaf", 1: "large" });
    expect(levelIndexAttr(s)).toBe(expectedIndices(0x80001000).split(",").slice(0, 3).join(","));
    expect(s.outcome).toMatchObject({ kind: "page", size: 2 * 1024 * 1024 });
    expect(s.levels.find((r) => r.level === 2)?.index).toBe(iovaFields(0x80001000n)[2].value);
    const l = layoutWalk(s, { width: 900 });
    expect(l.boxes.find((b) => b.level === 2)?.end).toBe(true);
  });

  it("shows where a walk faults, with the reason", async () => {
    const events = await trace(SCRIPT);
    const fault = events.find((e) => e.k === "dma.fault")!;
    const s = createWalkModel().at(events, fault.seq);
    expect(s.outcome).toMatchObject({ kind: "fault", reason: 0x79 });
    const faulted = s.levels.find((r) => r.status === "fault")!;
    expect(faulted.step?.bits).toBe("-");
    expect(s.outcome?.kind === "fault" && s.outcome.level).toBe(faulted.level);
    expect(s.levels.filter((r) => r.level < faulted.level).every((r) => r.status === "unreached")).toBe(true);
  });

  it("time travels: mid-walk state is partial and equals the state of the prefix", async () => {
    const events = await trace(SCRIPT);
    const mid = seqOf(events, (e) => e.k === "vtd.walk.level", 1); // PDPT of the first walk
    const model = createWalkModel();
    const s = model.at(events, mid);
    expect(s.inProgress).toBe(true);
    expect(s.levels.map((r) => r.status)).toEqual(["read", "read", "pending", "pending"]);
    expect(s.outcome).toEqual({ kind: "pending" });
    const prefix = events.filter((e) => e.seq <= mid);
    expect(createWalkModel().at(prefix, mid)).toEqual(s);
    expect(model.at(events, events[events.length - 1].seq)).not.toEqual(s);
    // before the first DMA there is nothing to show
    expect(model.at(events, seqOf(events, (e) => e.k === "dma.request") - 1).request).toBeNull();
  });
});
