// engine/cli.ts as a user runs it: exit codes, the strace-like log, --json, TypeScript line numbers.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "engine/cli.ts", ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function script(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "iommu-cli-"));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("cli", () => {
  it("passes the script contract's smoke test", () => {
    const r = cli("run", "../shared/contract/smoke.js");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^smoke ok: devid \d+, ioas \d+$/m);
  });

  it("prints the README example's strace lines", () => {
    const r = cli("run", "tests/scenarios/first-ioas.js");
    expect(r.code).toBe(0);
    expect(r.out).toContain('open("/dev/iommu") = 3');
    expect(r.out).toContain("ioctl(3</dev/iommu>, IOMMU_IOAS_ALLOC, {size=12, flags=0, out_ioas_id=1}) = 0");
    expect(r.out).toContain("flags=IOMMU_IOAS_MAP_FIXED_IOVA|IOMMU_IOAS_MAP_WRITEABLE|IOMMU_IOAS_MAP_READABLE");
    expect(r.out).toMatch(/dma 00:03\.0 read  iova=0x100000 len=0xd -> pa=0x[0-9a-f]+/);
    expect(r.out).toContain("hello, device");
    expect(r.out).toContain("= -1 EBUSY (Device or resource busy: iommufd_object_remove: IOAS 1 is still referenced by HWPT_PAGING 3)");
  });

  it("exits 1 with FILE:LINE on stderr when the script throws", () => {
    const p = script("bad.js", 'const fd = open("/dev/iommu");\n\nioctl(fd, IOMMU_IOAS_ALLOC, { flags: 1 });\n');
    const r = cli("run", p);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${p}:3: uncaught ErrnoError`);
    expect(r.err).toContain("EOPNOTSUPP");
    expect(r.out).toContain("= -1 EOPNOTSUPP");
  });

  it("reports a deadlock (awaiting what nothing can bring) as an error at its line, not a hang", () => {
    const p = script("stuck.js", 'const iommufd = open("/dev/iommu");\nconst q = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});\n\nawait poll(q.out_fault_fd);\n');
    const r = cli("run", p);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${p}:4: uncaught ScriptError: deadlock at t=`);
  });

  it("maps TypeScript lines back to the source", () => {
    const p = script("bad.ts", 'interface X {\n  a: number;\n}\nconst x: X = { a: 1 };\nconst fd: number = open("/dev/iommu");\nioctl(fd, IOMMU_DESTROY, { id: 77 + x.a });\n');
    const r = cli("run", p);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${p}:6: uncaught ErrnoError`);
    expect(r.err).toContain("ENOENT");
  });

  it("prints one JSON event per line with --json", () => {
    const r = cli("run", "tests/scenarios/first-ioas.js", "--json");
    expect(r.code).toBe(0);
    const events = r.out.trim().split("\n").map((l) => JSON.parse(l));
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(events.some((e) => e.k === "vtd.walk.level")).toBe(true);
    const map = events.find((e) => e.k === "sys.call" && e.req === "IOMMU_IOAS_MAP");
    expect(map.arg.iova).toBe(0x100000);
    expect(events.filter((e) => e.cmd_seq === map.cmd_seq).length).toBeGreaterThan(1);
  });

  it("is deterministic: the same script gives the same events", () => {
    const a = cli("run", "tests/scenarios/first-ioas.js", "--json");
    const b = cli("run", "tests/scenarios/first-ioas.js", "--json");
    expect(a.out).toBe(b.out);
  });

  it("exits 2 for usage errors and unreadable files", () => {
    expect(cli().code).toBe(2);
    expect(cli("run").code).toBe(2);
    expect(cli("run", "/nonexistent/script.js").code).toBe(2);
    expect(cli("run", "tests/scenarios/first-ioas.js", "--machine", "nope").code).toBe(2);
  });

  it("marks the line of a syntax error", () => {
    const p = script("syntax.js", 'const a = 1;\nconst b = ;\n');
    const r = cli("run", p);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${p}:2:`);
    expect(r.err).toContain("SyntaxError");
  });
});

describe("cli runaway scripts", () => {
  it("stops a script that never ends, after --timeout, keeping what it printed", () => {
    const p = script("runaway.js", 'console.log("before the loop");\nlet i = 0;\nwhile (true) { i++; }\n');
    const r = cli("run", p, "--timeout", "1");
    expect(r.code).toBe(1);
    expect(r.out).toContain("before the loop");
    expect(r.err).toContain(`${p}: stopped after 1 s`);
  });
});
