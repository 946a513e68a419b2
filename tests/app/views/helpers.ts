// Shared by the view tests: real event logs from the engine, and SVG text for snapshots.
import { Session, runScript, type SessionConfig } from "../../../engine/script/runtime.ts";
import type { TraceEvent } from "../../../engine/trace/events.ts";

/** Run a script on a fresh simulated machine and return every event it caused. */
export async function trace(code: string, config: SessionConfig = {}): Promise<TraceEvent[]> {
  const events: TraceEvent[] = [];
  const s = new Session(config, (e) => events.push(e));
  const r = await runScript(s, code, { console: () => {} });
  if (!r.ok) throw new Error(`script failed: ${JSON.stringify(r)}`);
  return events;
}

/** The seq of the n-th (0-based) event matching `pred`. */
export function seqOf(events: TraceEvent[], pred: (e: TraceEvent) => boolean, n = 0): number {
  const found = events.filter(pred);
  if (found.length <= n) throw new Error(`no event #${n} matching`);
  return found[n].seq;
}

/** The prologue most tests share: an iommufd, one IOAS, vfio0 bound (not attached). */
export const PROLOGUE = `
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid: dev } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
function map(iova, length, opts) {
  const va = mmap(length, opts);
  ioctl(iommufd, IOMMU_IOAS_MAP, { flags: RW, ioas_id: ioas, user_va: va, length, iova });
}
`;

/**
 * The same prologue with vfio1, a device without ATS: every DMA is translated by the IOMMU, so
 * the IOMMU's caches see the repeat accesses (vfio0 would serve them from its own device-TLB).
 */
export const PROLOGUE_NO_ATS = PROLOGUE.replace("/dev/vfio/devices/vfio0", "/dev/vfio/devices/vfio1").replace("vfio0 bound", "vfio1 bound");

/**
 * An SVG (or HTML) tree as stable text for a snapshot: one tag per line, and the ids a render
 * generates (those matching `generated`) renumbered in order of appearance with the references
 * to them, as Plot's test harness does.
 */
export function snapshotText(el: Element, generated?: RegExp): string {
  let html = el.outerHTML;
  if (generated) {
    const ids = new Map<string, string>();
    for (const m of html.matchAll(/\sid="([^"]+)"/g)) if (generated.test(m[1]) && !ids.has(m[1])) ids.set(m[1], `generated-${ids.size + 1}`);
    for (const [from, to] of ids) html = html.replace(new RegExp(`(["#])${from}(?=[")])`, "g"), `$1${to}`);
  }
  return html.replace(/></g, ">\n<") + "\n";
}
