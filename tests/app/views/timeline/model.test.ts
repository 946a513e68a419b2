// app/views/timeline: lanes, the growing histogram, nearest-event scrubbing and playback steps.
import { describe, expect, it } from "vitest";
import { BINS, LANES, nearestIndex, TimelineModel } from "../../../../app/views/timeline/model.ts";
import { layoutPlayhead, layoutTimeline } from "../../../../app/views/timeline/layout.ts";
import { playFrom, step } from "../../../../app/views/timeline/playback.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";
import { PROLOGUE_NO_ATS, trace } from "../helpers.ts";

const SCRIPT = `${PROLOGUE_NO_ATS}
map(0x100000, 0x4000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const d = hw.device(vfio);
for (let i = 0; i < 4; i++) await d.read(0x100000 + i * 0x1000, 8);
await sleep(5000);
await d.read(0x100000, 8);
`;

const sum = (a: Uint32Array) => a.reduce((x, y) => x + y, 0);

describe("timeline model", () => {
  it("puts every event in the lane of its longest family prefix, and counts them all", async () => {
    const events = await trace(SCRIPT);
    const m = new TimelineModel().update(events);
    const lane = (k: string) => LANES[m.laneOf(k)];
    expect(lane("vtd.walk.level")).toBe("vtd.walk.");
    expect(lane("vtd.iotlb.hit")).toBe("vtd.iotlb.");
    expect(lane("vtd.ctxcache.miss")).toBe("vtd.ctxcache.");
    expect(lane("sys.call")).toBe("sys.");
    expect(m.totals.reduce((a, b) => a + b)).toBe(events.length);
    for (const axis of ["time", "seq"] as const) {
      m.hist[axis].counts.forEach((c, i) => expect(sum(c)).toBe(m.totals[i]));
      expect(m.end[axis]).toBeLessThan(m.hist[axis].width * BINS);
    }
    expect(m.hist.seq.width).toBeGreaterThanOrEqual(1);
  });

  it("keeps counts exact when the histogram widens", () => {
    const events: TraceEvent[] = Array.from({ length: 5000 }, (_, i) => ({ seq: i + 1, t: i * 37, cmd_seq: 0, k: "script.console", level: "log", text: "" }));
    const m = new TimelineModel().update(events.slice(0, 100)).update(events);
    const lane = m.laneOf("script.console");
    expect(sum(m.hist.time.counts[lane])).toBe(5000);
    expect(m.hist.time.width).toBe(256); // 5000 × 37 ns needs 1024 bins of 256 ns
    // bin j holds the events with t in [j × width, (j + 1) × width)
    const j = 100;
    expect(m.hist.time.counts[lane][j]).toBe(events.filter((e) => Math.floor(e.t / 256) === j).length);
  });

  it("scrubs to the nearest event; on the time axis, to the last event of an instant", async () => {
    const events = await trace(SCRIPT);
    const slept = events.findIndex((e, i) => i > 0 && e.t - events[i - 1].t >= 5000);
    const before = slept - 1;
    const gapMid = (events[before].t + events[slept].t) / 2;
    expect(nearestIndex(events, gapMid - 1, "time")).toBe(before);
    const after = nearestIndex(events, gapMid + 1, "time");
    expect(events[after].t).toBe(events[slept].t);
    expect(events[after + 1]?.t ?? Infinity).toBeGreaterThan(events[slept].t);
    expect(nearestIndex(events, 7.4, "seq")).toBe(7);
    expect(nearestIndex(events, -5, "time")).toBe(0);
    expect(nearestIndex(events, 1e12, "seq")).toBe(events.length - 1);
  });

  it("lays out bars within the plot and the playhead at the cursor's event", async () => {
    const events = await trace(SCRIPT);
    const m = new TimelineModel().update(events);
    const l = layoutTimeline(m, "seq", { width: 600, height: 300 });
    expect(l.lanes.map((x) => x.label)).toEqual(LANES.filter((_, i) => m.totals[i] > 0).map((k) => k.slice(0, -1)));
    for (const b of l.bars) {
      expect(b.x).toBeGreaterThanOrEqual(l.x0);
      expect(b.x).toBeLessThanOrEqual(l.x1);
    }
    const p = layoutPlayhead(l, events, events.length - 1, 0, true);
    expect(p.cursor?.x).toBeCloseTo(l.x1, 0);
    expect(p.cursor?.text).toMatch(/^live · #\d+ /);
    expect(p.selected?.x).toBe(l.x0);
  });
});

describe("playback", () => {
  const events: TraceEvent[] = Array.from({ length: 10 }, (_, i) => ({ seq: i + 1, t: i, cmd_seq: 0, k: "script.console", level: "log", text: "" }));

  it("advances speed × time events, carrying the fraction", () => {
    let r = step(events, 1, 10, 150, 0); // 1.5 events
    expect(r).toEqual({ cursor: 2, carry: 0.5, done: false });
    r = step(events, r.cursor, 10, 50, r.carry); // 0.5 + 0.5
    expect(r.cursor).toBe(3);
    expect(step(events, 3, 1000, 100_000, 0)).toMatchObject({ cursor: 10, done: true }); // capped frame, clamped end
  });

  it("starts from the cursor, or from the first event when live or at the end", () => {
    expect(playFrom(events, null)).toBe(1);
    expect(playFrom(events, 10)).toBe(1);
    expect(playFrom(events, 4)).toBe(4);
  });
});
