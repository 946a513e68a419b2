// app/views/log: the strace-style lines, notices between them, and virtualization over 100k events.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { LogModel, LogRows, rowSeq } from "../../../../app/views/log/model.ts";
import { layoutLog, ROW_H } from "../../../../app/views/log/layout.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";
import { trace } from "../helpers.ts";

const FIRST = readFileSync("tests/scenarios/first-ioas.js", "utf8");

describe("log model", () => {
  it("formats the CLI's lines, marks errors with their errno and keeps the script line", async () => {
    const events = await trace(FIRST);
    const log = new LogModel().update(events);
    const texts = log.lines.map((l) => l.text);
    expect(texts[0]).toBe('open("/dev/iommu") = 3');
    expect(texts).toContain("ioctl(3</dev/iommu>, IOMMU_IOAS_ALLOC, {size=12, flags=0, out_ioas_id=1}) = 0");
    const busy = log.lines.find((l) => l.text.includes("IOMMU_DESTROY"))!;
    expect(busy).toMatchObject({ severity: "error", badge: "EBUSY", line: 16 });
    expect(log.errors).toBe(1);
    expect(texts.some((t) => t.startsWith("dma 00:03.0 read  iova=0x100000"))).toBe(true);
  });

  it("interleaves notices after the event that was last when they were posted", async () => {
    const events = await trace(FIRST);
    const log = new LogModel().update(events);
    const after = log.lines[2].seq;
    const rows = new LogRows(log, [{ seq: after, text: "worker restarted" }, { seq: 1e9, text: "the end" }]);
    expect(rows.count).toBe(log.lines.length + 2);
    expect(rows.at(3)).toMatchObject({ kind: "notice", notice: { text: "worker restarted" } });
    expect(rows.at(4)).toMatchObject({ kind: "event", line: log.lines[3] });
    expect(rows.at(rows.count - 1)).toMatchObject({ kind: "notice", notice: { text: "the end" } });
    expect(rows.rowOfSeq(log.lines[3].seq)).toBe(4);
    expect(rows.rowOfSeq(log.lines[1].seq)).toBe(1);
    expect(rows.text().split("\n")[3]).toBe("-- worker restarted");
  });

  it("renders only the visible rows of 100k events, quickly", () => {
    const events: TraceEvent[] = Array.from({ length: 100_000 }, (_, i) => ({ seq: i + 1, t: i, cmd_seq: 0, k: "script.console", level: "log", text: `line ${i}` }));
    const log = new LogModel();
    const t0 = performance.now();
    log.update(events);
    const rows = new LogRows(log, []);
    const t1 = performance.now();
    const l = layoutLog(rows, { top: 50_000 * ROW_H, height: 400 }, { cursor: 50_010, selectedSeq: 50_005, activeRow: null });
    const t2 = performance.now();
    expect(l.height).toBe(100_000 * ROW_H);
    expect(l.rows.length).toBeLessThan(50);
    expect(l.rows.find((r) => r.current)?.seq).toBe(50_010);
    expect(l.rows.find((r) => r.selected)?.seq).toBe(50_005);
    expect(l.rows.filter((r) => r.future).every((r) => r.seq > 50_010)).toBe(true);
    expect(t1 - t0).toBeLessThan(1000);
    expect(t2 - t1).toBeLessThan(20);
    // appending is incremental: only the new events are formatted
    events.push({ seq: 100_001, t: 0, cmd_seq: 0, k: "script.console", level: "error", text: "late" });
    const t3 = performance.now();
    expect(log.update(events).lines).toHaveLength(100_001);
    expect(performance.now() - t3).toBeLessThan(20);
    expect(rowSeq(new LogRows(log, []).at(100_000))).toBe(100_001);
  });
});
