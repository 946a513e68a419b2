// engine/trace: the catalogue covers what the engine emits, and events keep their invariants.
import { describe, expect, it } from "vitest";
import { Session, runScript } from "../../../engine/script/runtime.ts";
import { EVENT_FAMILIES, type TraceEvent } from "../../../engine/trace/events.ts";
import { readFileSync } from "node:fs";

describe("trace", () => {
  it("gives every emitted event a documented family, increasing seq and plain payloads", async () => {
    const events: TraceEvent[] = [];
    const s = new Session({}, (e) => events.push(e));
    const r = await runScript(s, readFileSync("tests/scenarios/first-ioas.js", "utf8"), { console: () => {} });
    expect(r.ok).toBe(true);
    const families = Object.keys(EVENT_FAMILIES);
    for (const e of events) expect(families.some((f) => e.k.startsWith(f)), e.k).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i].seq).toBeGreaterThan(events[i - 1].seq);
    for (const e of events) expect(() => structuredClone(e)).not.toThrow();
    const flat = (v: unknown) => ["number", "string", "boolean", "undefined"].includes(typeof v);
    for (const e of events)
      for (const v of Object.values(e)) expect(flat(v) || (typeof v === "object" && v !== null && Object.values(v).every(flat))).toBe(true);
    const kinds = new Set(events.map((e) => e.k));
    for (const k of ["sys.enter", "sys.call", "vtd.walk.level", "vtd.iotlb.miss", "vtd.iotlb.fill", "dma.request", "dma.complete", "iommufd.obj.alloc"])
      expect(kinds.has(k as TraceEvent["k"]), k).toBe(true);
  });

  it("links every event of a call to the call by cmd_seq", async () => {
    const events: TraceEvent[] = [];
    const s = new Session({}, (e) => events.push(e));
    await runScript(s, readFileSync("tests/scenarios/first-ioas.js", "utf8"), { console: () => {} });
    const attach = events.find((e) => e.k === "sys.enter" && e.req === "VFIO_DEVICE_ATTACH_IOMMUFD_PT")!;
    const inside = events.filter((e) => e.cmd_seq === attach.seq).map((e) => e.k);
    expect(inside).toContain("iommufd.obj.alloc");
    expect(inside).toContain("iommu.map");
    expect(inside[inside.length - 1]).toBe("sys.call");
  });
});

describe("DMA as a call", () => {
  it("gives a DMA's events the dma.request's seq as cmd_seq, and the request its script line", async () => {
    const events: TraceEvent[] = [];
    const s = new Session({}, (e) => events.push(e));
    await runScript(s, readFileSync("tests/scenarios/first-ioas.js", "utf8"), { console: () => {} });
    const req = events.find((e) => e.k === "dma.request")!;
    expect(req.cmd_seq).toBe(req.seq);
    expect((req as { line?: number }).line).toBe(13); // `const bytes = await hw.device(vfio).read(…)`
    const caused = events.filter((e) => e.cmd_seq === req.seq).map((e) => e.k);
    expect(caused).toContain("vtd.walk.level");
    expect(caused).toContain("dma.complete");
  });
});

describe("object links in iommufd.obj.alloc", () => {
  it("names the IOAS of an automatic HWPT, so views need not infer it", async () => {
    const events: TraceEvent[] = [];
    const s = new Session({}, (e) => events.push(e));
    await runScript(s, readFileSync("tests/scenarios/first-ioas.js", "utf8"), { console: () => {} });
    const allocs = events.filter((e) => e.k === "iommufd.obj.alloc") as Extract<TraceEvent, { k: "iommufd.obj.alloc" }>[];
    const ioas = allocs.find((e) => e.type === "IOAS")!;
    const hwpt = allocs.find((e) => e.type === "HWPT_PAGING")!;
    expect(hwpt.ioas_id).toBe(ioas.id);
    expect(hwpt.auto).toBe(true);
    expect(ioas.ioas_id).toBeUndefined();
  });
});
