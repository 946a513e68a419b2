// app/views/walk/nested.ts: the 2D walk grid of nested translations, from the engine's own events.
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../../../../app/examples/index.ts";
import { createWalkModel, levelIndexAttr } from "../../../../app/views/walk/model.ts";
import { CACHE_SKIPS, gridAttr, gridWord } from "../../../../app/views/walk/nested.ts";
import { layoutWalk } from "../../../../app/views/walk/layout.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";
import { seqOf, trace } from "../helpers.ts";

const NESTED = EXAMPLES.find((e) => e.id === "nested")!.code;
const PAGE_FAULTS = EXAMPLES.find((e) => e.id === "page-faults")!.code;
/** No paging-structure caches: every DMA that misses the IOTLB walks all 24 entries. */
const COLD = { knobs: { pwcEntries: 0, fsPwcEntries: 0 } };

/** The events the n-th DMA caused, and the seq of its outcome. */
function dma(events: TraceEvent[], n: number) {
  const req = events.filter((e) => e.k === "dma.request")[n];
  const own = events.filter((e) => e.cmd_seq === req.seq);
  const end = own.find((e) => e.k === "dma.complete" || e.k === "dma.fault")!;
  return { req, own, end };
}

/** The read order the engine reported: its vtd.walk.level events, as data-grid words. */
function engineOrder(own: TraceEvent[]): string {
  return own.flatMap((e) => (e.k === "vtd.walk.level" ? [gridWord(e)] : [])).join(",");
}

describe("nested walk grid", () => {
  it("numbers the 24 reads of a cold 4 × 4 walk in the order the engine made them", async () => {
    const events = await trace(NESTED, COLD);
    const { own, end } = dma(events, 0);
    const s = createWalkModel().at(events, end.seq);
    const n = s.nested!;
    expect(n).not.toBeNull();
    expect(n.reads).toHaveLength(24);
    expect(gridAttr(n)).toBe(engineOrder(own));
    // the 2D order: for each guest level, its table's GPA through the 4 host levels, then the guest entry; then the final GPA
    const order = [4, 3, 2, 1].flatMap((f) => [4, 3, 2, 1].map((h) => `s2:${f}:${h}`).concat(`s1:${f}`)).concat([4, 3, 2, 1].map((h) => `s2:0:${h}`));
    expect(gridAttr(n)).toBe(order.join(","));
    // one read per cell, numbered 1..24 row by row: every cell of the grid was read
    const cells = n.rows.flatMap((r) => r.cells);
    expect(cells).toHaveLength(24);
    expect(cells.map((c) => c.reads.map((r) => r.n))).toEqual(cells.map((_, i) => [i + 1]));
    expect(cells.every((c) => c.status === "read" || c.status === "leaf")).toBe(true);
    // each cell holds the entry the engine read there
    const reads = own.filter((e) => e.k === "vtd.walk.level");
    expect(cells.map((c) => c.reads[0].step.entry)).toEqual(reads.map((e) => (e.k === "vtd.walk.level" ? e.entry : null)));
    // rows know the GPA they translate; the last one is the final GPA of the walk
    const done = own.find((e) => e.k === "vtd.walk.done")!;
    expect(done.k === "vtd.walk.done" && n.rows[4].gpa).toBe(done.k === "vtd.walk.done" ? done.gpa : -1);
    expect(n.done).toMatchObject({ size: 4096, fsSize: 4096, ssSize: 4096 });
    // the guest levels read, as the single-stage attributes describe them
    expect(levelIndexAttr(s)).toBe("4:0,3:1,2:0,1:0");
    const l = layoutWalk(s, { width: 900 });
    expect(l.grid!.cells).toHaveLength(24);
    expect(l.grid!.cells.map((c) => c.order)).toEqual(cells.map((_, i) => i + 1));
    expect(l.grid!.outcome[0].text).toContain("min(guest 4 KiB, host 4 KiB)");
    expect(l.grid!.outcome[0].text).toContain("24 memory reads");
  });

  it("draws the cells a cache answered as skipped: the second-stage PWC in a cold guest walk", async () => {
    const events = await trace(NESTED);
    const { own, end } = dma(events, 0);
    const n = createWalkModel().at(events, end.seq).nested!;
    expect(gridAttr(n)).toBe(engineOrder(own));
    expect(n.reads.length).toBeLessThan(24);
    // each second-stage walk that started below a PWC hit at level L skips host levels ≥ L of its row
    const rowsWithPwcHit = new Map<number, number>();
    let pending: number | null = null;
    for (const e of own) {
      if (e.k === "vtd.pwc.hit") pending = e.level;
      if (e.k === "vtd.walk.level" && e.stage === "s2") {
        if (pending !== null && !rowsWithPwcHit.has(e.fsLevel!)) rowsWithPwcHit.set(e.fsLevel!, pending);
        pending = null;
      }
    }
    expect(rowsWithPwcHit.size).toBeGreaterThan(0);
    for (const [row, level] of rowsWithPwcHit) {
      const cells = n.rows.find((r) => r.fsLevel === row)!.cells.filter((c) => c.stage === "s2");
      expect(cells.filter((c) => c.col >= level).map((c) => c.status)).toEqual(cells.filter((c) => c.col >= level).map(() => "pwc"));
      expect(cells.filter((c) => c.col < level).every((c) => c.reads.length === 1)).toBe(true);
    }
  });

  it("cuts the walk short after a first-stage PWC hit, and skips it all on an IOTLB hit", async () => {
    const events = await trace(NESTED);
    const second = dma(events, 1);
    const hit = second.own.find((e) => e.k === "vtd.fspwc.hit");
    expect(hit?.k).toBe("vtd.fspwc.hit");
    const level = hit!.k === "vtd.fspwc.hit" ? hit!.level : 0;
    const n = createWalkModel().at(events, second.end.seq).nested!;
    expect(n.fspwcHit?.level).toBe(level);
    expect(gridAttr(n)).toBe(engineOrder(second.own));
    // every row above the hit, and the host cells that fetched the table it holds, were skipped
    for (const row of n.rows) {
      for (const c of row.cells) {
        const skipped = row.fsLevel >= level || (row.fsLevel === level - 1 && c.stage === "s2");
        if (skipped) expect([c.row, c.col, c.status]).toEqual([c.row, c.col, "fspwc"]);
      }
    }
    const l = layoutWalk(createWalkModel().at(events, second.end.seq), { width: 900 });
    const fsSkipped = l.grid!.cells.filter((c) => c.status === "fspwc");
    expect(fsSkipped.length).toBe(n.rows.filter((r) => r.fsLevel >= level).length * 5 + 4);
    expect(fsSkipped.every((c) => c.lines.map((x) => x.text).slice(0, 3).join(" ") === "⚡ skipped (cache hit) first-stage PWC")).toBe(true);

    // the third DMA reads the first page again: an IOTLB hit on the nested domain, nothing read
    const third = dma(events, 2);
    expect(third.own.some((e) => e.k === "vtd.iotlb.hit")).toBe(true);
    const s3 = createWalkModel().at(events, third.end.seq);
    expect(s3.nested!.reads).toHaveLength(0);
    expect(s3.nested!.rows.flatMap((r) => r.cells).every((c) => CACHE_SKIPS.has(c.status) && c.status === "iotlb")).toBe(true);
  });

  it("marks the faulting cell with the reason, at either stage", async () => {
    const events = await trace(NESTED, COLD);
    const faults = events.filter((e) => e.k === "dma.fault");
    expect(faults.map((e) => (e.k === "dma.fault" ? e.reason : 0))).toEqual([0x85, 0x71]);
    const m = createWalkModel();
    for (const f of faults) {
      const n = m.at(events, f.seq).nested!;
      const own = events.filter((e) => e.cmd_seq === f.cmd_seq && e.k === "vtd.walk.level");
      const last = own[own.length - 1];
      expect(n.fault).toMatchObject({ reason: f.k === "dma.fault" ? f.reason : 0, row: last.k === "vtd.walk.level" ? last.level : 0, col: 0 });
      const cell = n.rows.flatMap((r) => r.cells).find((c) => c.status === "fault")!;
      expect(cell.reads[0].step.seq).toBe(last.seq);
      expect(n.rows.find((r) => r.fsLevel === 0)!.cells.every((c) => c.status === "unreached")).toBe(true);
    }
    const l = layoutWalk(m.at(events, faults[0].seq), { width: 900 });
    const bad = l.grid!.cells.find((c) => c.end)!;
    expect(bad.lines[0].text).toMatch(/#20 ✖ fault 0x85/);
    expect(l.grid!.outcome[0].text).toContain("0x85 SM: No write permission");
  });

  it("time travels: inside a walk the reads so far are numbered and the rest pending", async () => {
    const events = await trace(NESTED, COLD);
    const { req } = dma(events, 0);
    const tenth = seqOf(events, (e) => e.cmd_seq === req.seq && e.k === "vtd.walk.level", 9);
    const s = createWalkModel().at(events, tenth);
    expect(s.inProgress).toBe(true);
    const n = s.nested!;
    expect(n.reads).toHaveLength(10);
    const cells = n.rows.flatMap((r) => r.cells);
    expect(cells.filter((c) => c.reads.length).length).toBe(10);
    expect(cells.filter((c) => !c.reads.length).every((c) => c.status === "pending")).toBe(true);
    expect(createWalkModel().at(events.filter((e) => e.seq <= tenth), tenth)).toEqual(s);
  });

  it("keeps a page request round trip apart from the retry that follows it (ATS)", async () => {
    const events = await trace(PAGE_FAULTS);
    const m = createWalkModel();
    const pri = events.find((e) => e.k === "pri.request")!;
    const asked = m.at(events, pri.seq);
    expect(asked.nested).toBeNull();
    expect(asked.outcome).toMatchObject({ kind: "page-request", group: pri.k === "pri.request" ? pri.group : -1 });
    // the other DMA's events interleave; the cursor on this DMA's completion shows this DMA
    const done = events.find((e) => e.k === "dma.complete" && e.cmd_seq === pri.cmd_seq)!;
    const after = m.at(events, done.seq);
    expect(after.request?.seq).toBe(pri.cmd_seq);
    expect(after.page).toBe(2);
    expect(after.outcome).toMatchObject({ kind: "page", from: "walk" });
    expect(after.levels.map((r) => r.status)).toEqual(["read", "read", "read", "leaf"]);
  });
});
