/**
 * npm run bench: engine throughput, each row against a baseline measured in the same run so the
 * ratio means something on any machine.
 *
 *   dma.translate.iotlb-hit   translations/s served from the IOTLB  vs  a bare Map lookup
 *   dma.translate.walk-miss   translations/s that miss every cache and walk 4 levels
 *                             vs  a raw loop doing the same 4 typed-array loads per translation
 *   dma.translate.nested-walk-miss   translations/s of a nested (PGTT 011) 4×4 walk missing every
 *                             cache: 24 page-table reads  vs  a raw loop doing the same 24 loads
 *   ioas.map.16g-4k           seconds to IOAS_MAP 16 GiB of 4 KiB pages into an attached domain
 *   ioas.map.16g-4k.pt-bytes  page-table bytes allocated  vs  8 bytes per PTE
 *   pri.page-request.round-trip  page requests/s answered end to end (device → PRQ → prq_event_thread
 *                             → io-pgfault → fault queue read() → write() → QI page response →
 *                             device)  vs  a raw loop moving the same bytes (the 32-byte descriptor
 *                             through a ring, the 40-byte record, the 8-byte response, the QI
 *                             descriptor) with no model around them
 *
 * Prints a table and writes bench/results.json ({name, unit, value, baseline, ratio} per row).
 * Timing uses performance.now(): benchmarks are the one place the wall clock is the point.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Session, createGlobals } from "../engine/script/runtime.ts";
import { PhysMem } from "../engine/hw/memory.ts";
import type { DmarDomain, VtdModel } from "../engine/hw/vtd/index.ts";
import type { DmaRequest } from "../engine/hw/model.ts";

interface Row {
  name: string;
  unit: string;
  value: number;
  baseline: number;
  /** value / baseline */
  ratio: number;
}

/** Run `fn(n)` with n growing until it takes at least `minMs`; return ops per second (best of 3). */
function opsPerSecond(fn: (n: number) => void, minMs = 300): number {
  let n = 1000;
  for (;;) {
    const t0 = performance.now();
    fn(n);
    const dt = performance.now() - t0;
    if (dt >= minMs) break;
    n *= dt < minMs / 10 ? 10 : 2;
  }
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fn(n);
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** A machine with vfio0 attached to an IOAS mapping `bytes` at 0x100000; no trace listener. */
function setup(bytes: number, knobs: Record<string, unknown> = {}) {
  const s = new Session({ knobs });
  const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Record<string, any>;
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
  const dev = g.open("/dev/vfio/devices/vfio0");
  g.ioctl(dev, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd });
  g.ioctl(dev, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
  const buf = g.mmap(bytes);
  g.ioctl(fd, g.IOMMU_IOAS_MAP, {
    flags: g.IOMMU_IOAS_MAP_FIXED_IOVA | g.IOMMU_IOAS_MAP_READABLE | g.IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas, user_va: buf, length: bytes, iova: 0x100000,
  });
  const model = s.machine.iommu as VtdModel;
  return { s, g, fd, ioas, model, rid: s.machine.devices[0].rid };
}

function benchIotlbHit(): Row {
  const { model, rid } = setup(4096);
  const req: DmaRequest = { rid, pasid: -1, iova: 0x100000, write: false };
  const hw = model.hw;
  hw.translate(req); // fill
  let sink = 0;
  const value = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const t = hw.translate(req);
      if (t.ok) sink += t.pa;
    }
  });
  const map = new Map<number, number>([[0x100, 0x12345000]]);
  const baseline = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += map.get(0x100000 >>> 12) ?? 0;
  });
  if (sink === 42) console.log("");
  if (hw.stats.iotlbHits < 1000) throw new Error("the IOTLB-hit benchmark did not hit the IOTLB");
  return { name: "dma.translate.iotlb-hit", unit: "translations/s", value, baseline, ratio: value / baseline };
}

function benchWalkMiss(): Row {
  const pages = 4096;
  // 1×1 IOTLB and no paging-structure caches: every translation of a new page walks 4 levels
  const { model, rid, s } = setup(pages * 4096, { iotlbSets: 1, iotlbWays: 1, pwcEntries: 0 });
  const hw = model.hw;
  const req: DmaRequest = { rid, pasid: -1, iova: 0, write: false };
  let sink = 0;
  const value = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      req.iova = 0x100000 + (i % pages) * 4096;
      const t = hw.translate(req);
      if (t.ok) sink += t.pa;
    }
  });
  // The same four 8-byte loads per translation, straight from the same physical memory,
  // starting at the domain's second-stage root.
  const mem = s.machine.mem;
  const hwpt = s.kernel.contexts()[0].list().find((o) => o.type === "HWPT_PAGING") as unknown as { domain: DmarDomain };
  const pml4 = hwpt.domain.pgd;
  const w = { lo: 0, hi: 0 };
  const shift = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39];
  const baseline = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const iova = 0x100000 + (i % pages) * 4096;
      let table = pml4;
      for (let level = 4; level >= 1; level--) {
        mem.read64(table + (Math.floor(iova / shift[level]) & 511) * 8, w);
        table = (w.hi & 0xfffff) * 4294967296 + (w.lo & 0xfffff000) + (w.lo < 0 ? 4294967296 : 0);
      }
      sink += table;
    }
  });
  if (sink === 42) console.log("");
  if (hw.stats.walks < 1000) throw new Error("the walk benchmark did not walk");
  return { name: "dma.translate.walk-miss", unit: "translations/s", value, baseline, ratio: value / baseline };
}

function benchNestedWalkMiss(): Row {
  const pages = 4096;
  // a one-entry IOTLB and no paging-structure caches: every new page walks 4 × 4 (24 reads)
  const s = new Session({ knobs: { iotlbSets: 1, iotlbWays: 1, pwcEntries: 0, fsPwcEntries: 0 } });
  const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Record<string, any>;
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
  const dev = g.open("/dev/vfio/devices/vfio0");
  const devId = g.ioctl(dev, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd }).out_devid;
  const parent = g.ioctl(fd, g.IOMMU_HWPT_ALLOC, { flags: g.IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: devId, pt_id: ioas }).out_hwpt_id;
  const guest = g.guest({ iommufd: fd, ioas, size: 32 << 20 });
  const IOVA = 0x4000_0000;
  guest.map(IOVA, 0x10_0000, pages * 4096, { pageSize: 4096 });
  const nested = g.ioctl(fd, g.IOMMU_HWPT_ALLOC, { dev_id: devId, pt_id: parent, data_type: g.IOMMU_HWPT_DATA_VTD_S1, data_uptr: guest.s1() }).out_hwpt_id;
  g.ioctl(dev, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: nested });
  const hw = (s.machine.iommu as VtdModel).hw;
  const req: DmaRequest = { rid: s.machine.devices[0].rid, pasid: -1, iova: 0, write: false };
  let sink = 0;
  const value = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      req.iova = IOVA + (i % pages) * 4096;
      const t = hw.translate(req);
      if (t.ok) sink += t.pa;
    }
  });
  // The same 24 8-byte loads: each guest table's GPA and the final GPA through the parent's four
  // levels, and the guest's four entries from the HPAs found.
  const mem = s.machine.mem;
  const hwpt = s.kernel.contexts()[0].list().find((o) => o.id === parent) as unknown as { domain: DmarDomain };
  const pml4 = hwpt.domain.pgd;
  const w = { lo: 0, hi: 0 };
  const shift = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39];
  const addr = () => (w.hi & 0xfffff) * 4294967296 + ((w.lo & 0xfffff000) >>> 0);
  const ss = (gpa: number): number => {
    let table = pml4;
    for (let level = 4; level >= 1; level--) {
      mem.read64(table + (Math.floor(gpa / shift[level]) & 511) * 8, w);
      table = addr();
    }
    return table + (gpa & 0xfff);
  };
  const root = guest.root as number;
  const baseline = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const iova = IOVA + (i % pages) * 4096;
      let gpa = root;
      for (let level = 4; level >= 1; level--) {
        mem.read64(ss(gpa) + (Math.floor(iova / shift[level]) & 511) * 8, w);
        gpa = addr();
      }
      sink += ss(gpa);
    }
  });
  if (sink === 42) console.log("");
  if (hw.stats.nestedWalks < 1000) throw new Error("the nested walk benchmark did not walk");
  return { name: "dma.translate.nested-walk-miss", unit: "translations/s", value, baseline, ratio: value / baseline };
}

function benchMap16g(): Row[] {
  const GiB = 2 ** 30;
  const s = new Session({});
  const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Record<string, any>;
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
  const dev = g.open("/dev/vfio/devices/vfio1");
  g.ioctl(dev, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd });
  g.ioctl(dev, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
  const length = 16 * GiB;
  const buf = g.mmap(length); // no 2 MiB alignment: 4 KiB pages, never physically contiguous
  const before = s.machine.mem.kernelPages;
  const t0 = performance.now();
  g.ioctl(fd, g.IOMMU_IOAS_MAP, {
    flags: g.IOMMU_IOAS_MAP_FIXED_IOVA | g.IOMMU_IOAS_MAP_READABLE | g.IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas, user_va: buf, length, iova: 0x1_0000_0000, // above the MSI window
  });
  const seconds = (performance.now() - t0) / 1000;
  const ptBytes = (s.machine.mem.kernelPages - before) * 4096;
  const ptes = length / 4096;
  // Baseline: the floor of the same work, a raw loop writing as many 8-byte entries into fresh frames.
  const raw = new PhysMem();
  const t1 = performance.now();
  for (let i = 0; i < ptes; i++) raw.write64(0x1000_0000 + i * 8, 0x1003 + (i & 0xfffff) * 4096, 0);
  const rawSeconds = (performance.now() - t1) / 1000;
  return [
    { name: "ioas.map.16g-4k", unit: "s", value: seconds, baseline: rawSeconds, ratio: seconds / rawSeconds },
    { name: "ioas.map.16g-4k.pt-bytes", unit: "bytes", value: ptBytes, baseline: ptes * 8, ratio: ptBytes / (ptes * 8) },
  ];
}

function benchPageRequest(): Row {
  const s = new Session({});
  const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Record<string, any>;
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id;
  const dev = g.open("/dev/vfio/devices/vfio0");
  const devId = g.ioctl(dev, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd }).out_devid;
  const q = g.ioctl(fd, g.IOMMU_FAULT_QUEUE_ALLOC, {});
  const hwpt = g.ioctl(fd, g.IOMMU_HWPT_ALLOC, { flags: g.IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: ioas, fault_id: q.out_fault_id }).out_hwpt_id;
  g.ioctl(dev, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });
  const { kernel, machine } = s;
  const sched = machine.sched;
  const faultFd: number = q.out_fault_fd;
  const ats = machine.pcie.get(machine.devices[0].rid)!;
  const resp = new Uint8Array(8);
  const rv = new DataView(resp.buffer);
  let answered = 0;
  // The engine itself, driven by its scheduler (no script, no host event loop): one page request
  // from the device, the driver's thread after the interrupt, read() the group, write() the answer,
  // until the PRG response reaches the device.
  const value = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const want = answered + 1;
      ats.sendPageRequest({ addr: 0x10000, pasid: -1, prgi: 1, last: true, read: true, write: false }, 0, () => {}, () => answered++);
      let rec = kernel.read(faultFd, 40);
      while (!(rec instanceof Uint8Array) || !rec.length) {
        sched.runUntil(sched.nextAt!);
        rec = kernel.read(faultFd, 40);
      }
      rv.setUint32(0, new DataView(rec.buffer).getUint32(36, true), true);
      kernel.write(faultFd, resp);
      while (answered < want) sched.runUntil(sched.nextAt!);
    }
  }, 200);
  // The floor: the same bytes moved with no model around them.
  const mem = new PhysMem();
  const ring = 0x1000_0000;
  const qi = 0x2000_0000;
  let sink = 0;
  const baseline = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const pa = ring + (i % 2048) * 32;
      mem.write64n(pa, 1n | (0x18n << 16n));
      mem.write64n(pa + 8, 0x10000n | (1n << 3n) | 5n);
      const q0 = mem.read64n(pa);
      const q1 = mem.read64n(pa + 8);
      const rec = new Uint8Array(40);
      const dv = new DataView(rec.buffer);
      dv.setUint32(0, Number(q1 & 4n) ? 2 : 0, true);
      dv.setUint32(12, Number((q1 >> 3n) & 0x1ffn), true);
      dv.setBigUint64(24, (q1 >> 12n) << 12n, true);
      dv.setUint32(36, 1, true);
      const r = new DataView(new Uint8Array(8).buffer);
      r.setUint32(0, dv.getUint32(36, true), true);
      mem.write64n(qi, (q0 & 0xffff0000n) | 0x9n);
      mem.write64n(qi + 8, ((q1 >> 3n) & 0x1ffn) << 3n);
      sink += Number(mem.read64n(qi) & 0xffn) + r.getUint32(0, true);
    }
  });
  if (sink === 42) console.log("");
  if (answered < 100) throw new Error("the page request benchmark got no responses");
  return { name: "pri.page-request.round-trip", unit: "round trips/s", value, baseline, ratio: value / baseline };
}

function fmt(x: number): string {
  if (x >= 1e6) return (x / 1e6).toFixed(2) + "M";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + "k";
  return x < 10 ? x.toFixed(3) : x.toFixed(1);
}

const rows: Row[] = [];
for (const [label, fn] of [
  ["IOTLB hit", () => [benchIotlbHit()]],
  ["4-level walk miss", () => [benchWalkMiss()]],
  ["4×4 nested walk miss", () => [benchNestedWalkMiss()]],
  ["IOAS_MAP 16 GiB in 4 KiB pages", benchMap16g],
  ["page request round trip", () => [benchPageRequest()]],
] as [string, () => Row[]][]) {
  process.stderr.write(`bench: ${label}…\n`);
  rows.push(...fn());
}
const w = [32, 16, 12, 12, 8];
console.log(["name", "unit", "value", "baseline", "ratio"].map((h, i) => h.padEnd(w[i])).join(" "));
for (const r of rows) console.log([r.name, r.unit, fmt(r.value), fmt(r.baseline), r.ratio.toFixed(3)].map((c, i) => c.padEnd(w[i])).join(" "));
console.log(`
baselines: iotlb-hit = a bare Map lookup; walk-miss = a raw loop doing the same four 8-byte
loads from the same physical memory; nested-walk-miss = the same 24 loads of a 4×4 2D walk;
map = a raw loop writing as many 8-byte PTEs; page-request = the same descriptor, record,
response and QI bytes moved by a raw loop;
pt-bytes = 8 bytes per 4 KiB PTE. ratio = value / baseline.`);
mkdirSync("bench", { recursive: true });
writeFileSync("bench/results.json", JSON.stringify(rows, null, 2) + "\n");
