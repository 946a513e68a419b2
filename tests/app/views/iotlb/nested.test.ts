// app/views/iotlb: nested IOTLB entries, the first-stage PWC and the stale-translation mark, from real traces.
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../../../../app/examples/index.ts";
import { indexAtOrBefore } from "../../../../app/views/common/events.ts";
import { createIotlbModel, staleKey } from "../../../../app/views/iotlb/model.ts";
import { layoutIotlb } from "../../../../app/views/iotlb/layout.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";
import { trace } from "../helpers.ts";

const code = (id: string) => EXAMPLES.find((e) => e.id === id)!.code;
const at = (events: TraceEvent[], seq: number, m = createIotlbModel()) => m.atIndex(events, indexAtOrBefore(events, seq));

describe("iotlb view, nested translation", () => {
  it("tags nested entries with DID, PASID, page and size = min(first-stage, second-stage leaf)", async () => {
    const events = await trace(code("nested"));
    const fill = events.find((e) => e.k === "vtd.iotlb.fill")!;
    const done = events.find((e) => e.k === "vtd.walk.done" && e.cmd_seq === fill.cmd_seq)!;
    if (fill.k !== "vtd.iotlb.fill" || done.k !== "vtd.walk.done") throw new Error("unexpected trace");
    const s = at(events, done.seq);
    const entry = s.iotlb.get(`${fill.set}/${fill.way}`)!;
    expect(entry).toMatchObject({ did: fill.did, pasid: fill.pasid, page: fill.page, size: fill.size });
    expect(entry.nested).toEqual({ gpa: done.gpa, fsSize: done.fsSize, ssSize: done.ssSize });
    expect(entry.size).toBe(Math.min(done.fsSize!, done.ssSize!));
    // the domain is nested by its attach (PGTT 011), before the walk says anything
    const attach = events.find((e) => e.k === "iommu.attach" && e.did === fill.did)!;
    expect(attach.k === "iommu.attach" && attach.pgtt).toBe(3);
    expect(at(events, fill.seq).iotlb.get(`${fill.set}/${fill.way}`)?.nested).toEqual({ gpa: null, fsSize: null, ssSize: null });
    const l = layoutIotlb(s, [], done.seq, { width: 700 });
    const mark = l.entries.find((e) => e.cache === "iotlb" && e.set === fill.set && e.way === fill.way)!;
    expect(mark.nested).toBe(true);
    expect(mark.lines.map((x) => x.text)).toEqual([`DID ${fill.did} PASID ${fill.pasid}`, "0x40000000 4K R/W", "◇ nested FS4K SS4K"]);
    expect(mark.title).toContain("size min(FS 4K, SS 4K)");
  });

  it("keeps the first-stage (nested) PWC next to the second-stage one", async () => {
    const events = await trace(code("nested"));
    const fills = events.filter((e) => e.k === "vtd.fspwc.fill");
    expect(fills.length).toBeGreaterThan(0);
    const last = fills[fills.length - 1];
    const s = at(events, last.seq);
    expect([...s.fspwc.values()].map((e) => e.level).sort()).toEqual(fills.map((e) => (e.k === "vtd.fspwc.fill" ? e.level : 0)).sort());
    for (const f of fills) {
      if (f.k !== "vtd.fspwc.fill") continue;
      expect(s.fspwc.get(`${f.level}/${f.way}`)).toMatchObject({ did: f.did, pasid: f.pasid, tag: f.tag, table: f.table, tableGpa: f.tableGpa });
    }
    const hit = events.find((e) => e.k === "vtd.fspwc.hit")!;
    const sh = at(events, hit.seq);
    expect(sh.lastFspwc).toMatchObject({ kind: "hit", level: hit.k === "vtd.fspwc.hit" ? hit.level : 0 });
    const l = layoutIotlb(sh, [], hit.seq, { width: 700 });
    expect(l.text.some((t) => t.text.startsWith("First-stage (nested) paging-structure caches"))).toBe(true);
    expect(l.entries.filter((e) => e.cache === "fspwc")).toHaveLength(sh.fspwc.size);
    expect(l.badges.find((b) => b.key.startsWith("fspwc:"))).toMatchObject({ kind: "hit", current: true, text: "FS-PWC ✓ hit" });
  });

  it("marks the entry that served a stale translation, with what it cached and what memory holds now", async () => {
    const events = await trace(code("forgotten-invalidation"));
    const stale = events.filter((e) => e.k === "vtd.stale.hit");
    expect(stale).toHaveLength(1);
    const e = stale[0];
    if (e.k !== "vtd.stale.hit") throw new Error("unexpected trace");
    // the hit that served it is the IOTLB hit just before it
    const hit = events.filter((x) => x.k === "vtd.iotlb.hit" && x.seq < e.seq).pop()!;
    if (hit.k !== "vtd.iotlb.hit") throw new Error("unexpected trace");
    const m = createIotlbModel();
    const s = at(events, e.seq, m);
    expect(s.staleCount).toBe(1);
    expect(s.stale.get(staleKey("iotlb", hit.set, hit.way))).toMatchObject({ cached: e.cached, memory: e.memory, entryPa: e.entryPa, stage: e.stage, level: e.level });
    const l = layoutIotlb(s, [], e.seq, { width: 700 });
    const mark = l.entries.find((x) => x.stale)!;
    expect([mark.set, mark.way]).toEqual([hit.set, hit.way]);
    expect(mark.lines.map((x) => x.text)).toContain("⚠ STALE · ◇ nested");
    expect(l.badges.find((b) => b.kind === "stale")).toMatchObject({ text: "⚠ STALE", current: true });
    const line = l.text.filter((t) => t.key.startsWith("stale")).map((t) => t.text).join(" ");
    expect(line).toMatch(/^⚠ STALE: IOTLB set \d+ way \d+ served iova 0x40000000/);
    expect(line).toContain(`cached 0x${BigInt(e.cached).toString(16)}, memory now 0x${BigInt(e.memory).toString(16)}`);
    // the invalidation removes the stale entry; the count stays
    const inv = events.find((x) => x.k === "vtd.iotlb.inv" && x.seq > e.seq)!;
    const after = at(events, inv.seq, m);
    expect(after.staleCount).toBe(1);
    expect(after.stale.size).toBe(0);
    expect(layoutIotlb(after, [], inv.seq, { width: 700 }).badges.some((b) => b.kind === "stale")).toBe(false);
    // and back: time travel restores the mark
    expect(at(events, e.seq, m).stale.size).toBe(1);
    expect(at(events, e.seq - 1, m).staleCount).toBe(0);
  });
});
