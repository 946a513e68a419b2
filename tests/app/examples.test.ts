// Every example in the Examples menu runs to its end on the engine and says what it promises.
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../../app/examples/index.ts";
import { Session, runScript } from "../../engine/script/runtime.ts";
import { EVENT_FAMILIES, type TraceEvent } from "../../engine/trace/events.ts";

async function run(code: string) {
  const lines: string[] = [];
  const events: TraceEvent[] = [];
  const s = new Session({}, (e) => events.push(e));
  const r = await runScript(s, code, { console: (_l, t) => lines.push(t) });
  return { r, lines, events };
}

describe("examples", () => {
  it("has at least six, with unique ids", () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(6);
    expect(new Set(EXAMPLES.map((e) => e.id)).size).toBe(EXAMPLES.length);
  });

  it.each(EXAMPLES.map((e) => [e.id, e] as const))("%s runs without error", async (_id, ex) => {
    const { r } = await run(ex.code);
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
  });

  it("first-ioas: the device reads the CPU's bytes and its write lands", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "first-ioas")!.code);
    expect(lines).toContain("hello from the CPU");
    expect(lines.at(-1)).toContain("ca");
  });

  it("destroy-ebusy: EBUSY for each holder, then everything goes in reverse order", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "destroy-ebusy")!.code);
    expect(lines.filter((l) => l.includes("EBUSY"))).toHaveLength(3);
    expect(lines.some((l) => /^destroyed HWPT/.test(l))).toBe(true);
    expect(lines.some((l) => /^destroyed IOAS/.test(l))).toBe(true);
    expect(lines.at(-1)).toContain("ENOENT");
  });

  it("size-rules: each rule gives its errno", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "size-rules")!.code);
    const text = lines.join("\n");
    for (const e of ["EINVAL", "E2BIG", "EOPNOTSUPP", "ENOTTY", "EFAULT"]) expect(text).toContain(e);
    expect(text).toContain("longer, zero tail: ok");
    expect(text).toContain("out_capabilities untouched = dead");
  });

  it("dirty-tracking: writes, not reads, show up; NO_CLEAR keeps them", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "dirty-tracking")!.code);
    expect(lines).toEqual(["round 1 dirty pages: [3,9]", "round 2 dirty pages: [9]", "still dirty (NO_CLEAR): [9]"]);
  });

  it("nested: the device reaches the guest's buffer through a 2D walk; stage-1 faults", async () => {
    const { lines, events } = await run(EXAMPLES.find((e) => e.id === "nested")!.code);
    expect(lines[0]).toBe("guest PTEs: L4 P|RW|US|A, L3 P|RW|US|A, L2 P|RW|US|A, L1 P|RW|US|A|D");
    expect(lines).toContain("guest buffer, page 0");
    expect(lines).toContain("guest sees: written by the device");
    expect(lines).toContain("IOTLB hit: 10 ns");
    expect(lines.some((l) => l.startsWith("DMA write 0x40002000: fault 0x85"))).toBe(true);
    expect(lines.some((l) => l.startsWith("DMA read 0x40005000: fault 0x71"))).toBe(true);
    // the first DMA's walk: four first-stage reads (PML4 … PT), each behind a second-stage walk
    const firstDma = events.find((e) => e.k === "dma.request")!;
    const steps = events.filter((e) => e.k === "vtd.walk.level" && e.cmd_seq === firstDma.seq) as TraceEvent<"vtd.walk.level">[];
    expect(steps.filter((e) => e.stage === "s1").map((e) => e.level)).toEqual([4, 3, 2, 1]);
    expect(steps.filter((e) => e.stage === "s2").length).toBeGreaterThanOrEqual(5); // ≥ one per table + the final page
    expect(steps[0]).toMatchObject({ stage: "s2", fsLevel: 4 });
    expect(steps.at(-1)).toMatchObject({ stage: "s2", fsLevel: 0, leaf: true });
    expect(events.some((e) => e.k === "vtd.stale.hit")).toBe(false);
  });

  it("forgotten-invalidation: the old page until HWPT_INVALIDATE, flagged by the detector", async () => {
    const { lines, events } = await run(EXAMPLES.find((e) => e.id === "forgotten-invalidation")!.code);
    expect(lines.slice(0, 4)).toEqual(["before: old page", "forgot to invalidate: old page", "entries handled: 1", "after invalidation: new page"]);
    expect(lines[4]).toMatch(/^bad entry: EINVAL, entry_num = 1 - intel_nested_cache_invalidate_user: entry 1: addr 0x40000800 is not 4 KiB aligned/);
    const stale = events.filter((e) => e.k === "vtd.stale.hit") as TraceEvent<"vtd.stale.hit">[];
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ cache: "iotlb", stage: "s1", level: 1, iova: 0x40000000 });
    expect(Number(stale[0].cached) & ~0xfff).toBe(0x100000); // the old GPA was cached
    expect(Number(stale[0].memory) & ~0xfff).toBe(0x200000); // memory already says NEW
    // the invalidation the kernel issued for the good entry: PASID-based IOTLB, page-selective
    expect(events.some((e) => e.k === "vtd.qi.desc" && e.type === 6 && e.granularity.startsWith("page"))).toBe(true);
  });

  it("page-faults: both DMAs wait for the handler, which maps on demand; INVALID fails the third", async () => {
    const { lines, events } = await run(EXAMPLES.find((e) => e.id === "page-faults")!.code);
    expect(lines.slice(0, 2)).toEqual(["fault: read 0x40000000, group 256, cookie 1", "fault: read 0x40002000, group 257, cookie 2"]);
    const m = /^device read "page 0" and "page 2" after (\d+) ns$/.exec(lines[2]);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(20_000); // a minor fault's round trip (reference §6: 20-50 µs)
    expect(Number(m![1])).toBeLessThan(50_000);
    expect(lines[3]).toBe("again: 0 ns (a device-TLB hit)");
    expect(lines[4]).toBe("fault: write 0x80000000, group 258, cookie 1"); // cookie 1 is free again
    expect(lines[5]).toMatch(/^DMA to 0x80000000 failed: response code 1 \(page request answered Invalid Request/);
    // the path of a page request, each step an event: device → PRQ → kernel → fault queue → back
    const kinds = new Set(events.map((e) => e.k));
    for (const k of ["ats.completion", "pri.request", "prq.request", "prq.irq", "prq.handle", "iopf.group", "fault.read", "fault.response", "prq.response", "pri.response", "devtlb.fill", "devtlb.hit"])
      expect(kinds.has(k as TraceEvent["k"]), k).toBe(true);
    // every kind belongs to a documented family, and payloads stay flat
    const families = Object.keys(EVENT_FAMILIES);
    for (const k of kinds) expect(families.some((f) => k.startsWith(f)), k).toBe(true);
    const flat = (v: unknown) => ["number", "string", "boolean", "undefined"].includes(typeof v);
    for (const e of events)
      for (const v of Object.values(e)) expect(flat(v) || (typeof v === "object" && v !== null && Object.values(v).every(flat))).toBe(true);
    // one page group response per group, SUCCESS twice then INVALID
    expect(events.filter((e) => e.k === "prq.response").map((e) => (e as TraceEvent<"prq.response">).code)).toEqual([0, 0, 1]);
  });

  it("auto-iova: the kernel's choices and ENOSPC", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "auto-iova")!.code);
    const text = lines.join("\n");
    expect(text).toContain("length 0x1000 -> iova 0x1000");
    expect(text).toContain("no room: ENOSPC");
  });
});
