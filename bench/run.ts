/**
 * npm run bench: engine throughput, each row against a baseline measured in the same run so the
 * ratio means something on any machine.
 *
 *   dma.translate.iotlb-hit   translations/s served from the IOTLB  vs  a bare Map lookup
 *   dma.translate.walk-miss   translations/s that miss every cache and walk 4 levels
 *                             vs  a raw loop doing the same 4 typed-array loads per translation
 *   ioas.map.16g-4k           seconds to IOAS_MAP 16 GiB of 4 KiB pages into an attached domain
 *   ioas.map.16g-4k.pt-bytes  page-table bytes allocated  vs  8 bytes per PTE
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

function fmt(x: number): string {
  if (x >= 1e6) return (x / 1e6).toFixed(2) + "M";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + "k";
  return x < 10 ? x.toFixed(3) : x.toFixed(1);
}

const rows: Row[] = [];
for (const [label, fn] of [
  ["IOTLB hit", () => [benchIotlbHit()]],
  ["4-level walk miss", () => [benchWalkMiss()]],
  ["IOAS_MAP 16 GiB in 4 KiB pages", benchMap16g],
] as [string, () => Row[]][]) {
  process.stderr.write(`bench: ${label}…\n`);
  rows.push(...fn());
}
const w = [28, 16, 12, 12, 8];
console.log(["name", "unit", "value", "baseline", "ratio"].map((h, i) => h.padEnd(w[i])).join(" "));
for (const r of rows) console.log([r.name, r.unit, fmt(r.value), fmt(r.baseline), r.ratio.toFixed(3)].map((c, i) => c.padEnd(w[i])).join(" "));
console.log(`
baselines: iotlb-hit = a bare Map lookup; walk-miss = a raw loop doing the same four 8-byte
loads from the same physical memory; map = a raw loop writing as many 8-byte PTEs;
pt-bytes = 8 bytes per 4 KiB PTE. ratio = value / baseline.`);
mkdirSync("bench", { recursive: true });
writeFileSync("bench/results.json", JSON.stringify(rows, null, 2) + "\n");
