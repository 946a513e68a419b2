// Every example in the Examples menu runs to its end on the engine and says what it promises.
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../../app/examples/index.ts";
import { Session, runScript } from "../../engine/script/runtime.ts";

async function run(code: string) {
  const lines: string[] = [];
  const s = new Session({});
  const r = await runScript(s, code, { console: (_l, t) => lines.push(t) });
  return { r, lines };
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

  it("auto-iova: the kernel's choices and ENOSPC", async () => {
    const { lines } = await run(EXAMPLES.find((e) => e.id === "auto-iova")!.code);
    const text = lines.join("\n");
    expect(text).toContain("length 0x1000 -> iova 0x1000");
    expect(text).toContain("no room: ENOSPC");
  });
});
