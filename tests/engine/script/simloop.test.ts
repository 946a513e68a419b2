// engine/script/simloop.ts through runScript: simulated time moves only when the script is
// blocked; the same script gives the same events with or without host pacing; a deadlock and a
// foreign promise are script errors, not hangs.
import { describe, expect, it } from "vitest";
import { Session, runScript, type PaceHook } from "../../../engine/script/runtime.ts";
import type { TraceEvent } from "../../../engine/trace/events.ts";

const SETUP = `
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const { out_fault_id: fault_id, out_fault_fd: faultfd } = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id, pt_id: ioas, fault_id });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });
const dev = hw.device(vfio);
`;

/** A fault handler running concurrently with two DMAs that need it. */
const CONCURRENT = `${SETUP}
const buf = mmap(0x2000);
poke(buf, new Uint8Array([1, 2, 3, 4]));
poke(buf + 0x1000, new Uint8Array([5, 6, 7, 8]));
let served = 0;
async function serve() {
  while (served < 2) {
    await poll(faultfd);
    for (const r of read(faultfd)) {
      const off = r.addr - 0x400000;
      ioctl(iommufd, IOMMU_IOAS_MAP, { flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id: ioas, user_va: buf + off, length: 0x1000, iova: r.addr });
      write(faultfd, [{ cookie: r.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
      served++;
    }
  }
}
const handler = serve();
const [a, b] = await Promise.all([dev.read(0x400000, 4), dev.read(0x401000, 4)]);
await handler;
console.log([...a, ...b].join(","), hw.now);
`;

async function run(code: string, pace?: PaceHook) {
  const events: TraceEvent[] = [];
  const lines: string[] = [];
  const s = new Session({}, (e) => events.push(e));
  const r = await runScript(s, code, { console: (_l, t) => lines.push(t), pace });
  return { r, events, lines, s };
}

describe("the script's event loop in simulated time", () => {
  it("a handler serves page requests while DMAs wait for them", async () => {
    const { r, lines } = await run(CONCURRENT);
    expect(r).toEqual({ ok: true });
    expect(lines[0]).toMatch(/^1,2,3,4,5,6,7,8 \d+$/);
  });

  it("is deterministic: the same events, run after run, and with a host pace hook that holds the script in real time", async () => {
    const a = await run(CONCURRENT);
    const b = await run(CONCURRENT);
    expect(b.events).toEqual(a.events);
    // a browser-like pace hook: every asynchronous point waits a real-time macrotask
    let paused = 0;
    const pace: PaceHook = () => {
      paused++;
      return new Promise<void>((resolve) => setTimeout(resolve, 1));
    };
    const c = await run(CONCURRENT, pace);
    expect(paused).toBeGreaterThanOrEqual(3);
    expect(c.events).toEqual(a.events);
  });

  it("sleep and poll timeouts move time exactly; time never moves while the script runs", async () => {
    const { r, lines } = await run(`${SETUP}
const t0 = hw.now;
await sleep(1000);
const t1 = hw.now;
const got = await poll(faultfd, 5000);
const t2 = hw.now;
ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
console.log(t1 - t0, got, t2 - t1, hw.now - t2);
`);
    expect(r.ok).toBe(true);
    expect(lines).toEqual(["1000 false 5000 0"]);
  });

  it("a deadlock is a ScriptError naming what waits, at the line that waits", async () => {
    const { r } = await run(`${SETUP}
const p = dev.pageRequest({ iova: 0x1000, group: 1, last: true, read: true, write: false });
const ok = await poll(faultfd, 1e6);
await p; // nobody will answer: the script itself would have to
`);
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject({ name: "ScriptError", line: 11 }); // the pageRequest call
    expect(r.error!.message).toMatch(/^deadlock at t=\d+ ns: the script waits for the response to page request group 1 of \/dev\/vfio\/devices\/vfio0 \(line 11\)/);
  });

  it("a poll with no timeout on a queue nothing will fill is a deadlock too; on a non-queue fd it is refused at once", async () => {
    const a = await run(`${SETUP}\nawait poll(faultfd);\n`);
    expect(a.r.error?.message).toMatch(/deadlock .*poll\(5\) on anon_inode:\[iommufd-pgfault\]/);
    const b = await run(`${SETUP}\nawait poll(iommufd);\n`);
    expect(b.r.error?.message).toMatch(/poll\(3\) would wait forever: \/dev\/iommu never becomes readable/);
  });

  it("awaiting a promise the engine does not know is reported, not a hang", async () => {
    const { r } = await run(`await new Promise(() => {});`);
    expect(r.ok).toBe(false);
    expect(r.error!.message).toMatch(/waiting .* for a promise the simulation cannot settle/);
  });

  it("a DMA the script never awaits neither crashes the host nor moves time after the end", async () => {
    const { r, s, events } = await run(`${SETUP}
dev.read(0x1000, 4); // waits for a page response forever
hw.device("/dev/vfio/devices/vfio1").read(0x1000, 4); // faults: nobody looks
console.log("done");
`);
    expect(r).toEqual({ ok: true });
    const end = events.find((e) => e.k === "script.end")!;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(s.machine.clock.now).toBe(end.t);
  });
});
