/** A VT-d machine for the hardware tests: the default devices, events captured on demand. */
import { DEFAULT_DEVICES, Machine, type DeviceConfig } from "../../../../engine/machine.ts";
import { createVtd, type VtdModel } from "../../../../engine/hw/vtd/index.ts";
import { DmarDomain } from "../../../../engine/hw/vtd/driver.ts";
import { isErr } from "../../../../engine/uapi/errno.ts";
import { iommuMap, IOMMU_READ, IOMMU_WRITE } from "../../../../engine/hw/model.ts";
import type { EventKind, TraceEvent } from "../../../../engine/trace/events.ts";

export const RW = IOMMU_READ | IOMMU_WRITE;

export function vtdMachine(knobs: Record<string, unknown> = {}, devices: DeviceConfig[] = DEFAULT_DEVICES) {
  const m = new Machine({ iommu: "vtd", devices, model: knobs }, createVtd);
  const model = m.iommu as VtdModel;
  const events: TraceEvent[] = [];
  return {
    m,
    mem: m.mem,
    clock: m.clock,
    ops: model.ops,
    hw: model.hw,
    dev0: m.devices[0],
    dev1: m.devices[1],
    events,
    /** Start capturing events (from now on). */
    record(): void {
      events.length = 0;
      m.trace.setSink((e) => events.push(e));
    },
    stop(): void {
      m.trace.setSink(null);
    },
    of<K extends EventKind>(k: K): TraceEvent<K>[] {
      return events.filter((e) => e.k === k) as unknown as TraceEvent<K>[];
    },
    /** A paging domain (asserting success). */
    domain(flags = 0): DmarDomain {
      const d = model.ops.domainAllocPagingFlags(m.devices[0], flags, null);
      if (isErr(d)) throw new Error(d.toString());
      return d as DmarDomain;
    },
    /** Map [iova, iova + size) → pa (asserting success). */
    map(d: DmarDomain, iova: number, pa: number, size: number, prot = RW, maxPgsize = Infinity): void {
      const r = iommuMap(d, iova, pa, size, prot, maxPgsize);
      if (isErr(r)) throw new Error(r.toString());
    },
    /** A fresh user 4 KiB page's physical address. */
    page(): number {
      return m.mem.allocUserPage() * 4096;
    },
  };
}

/** Index of `iova` at `level` (9|9|9|9|12). */
export function idx(iova: number, level: number): number {
  return Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512;
}

/** Address bits 51:12 of a raw entry. */
export function addrOf(entry: bigint): number {
  return Number(entry & 0x000ffffffffff000n);
}
