/**
 * Events as text a kernel developer reads: strace-style lines for system calls
 * (`ioctl(3</dev/iommu>, IOMMU_IOAS_MAP, {size=40, flags=…|…, iova=0x100000}) = 0`, or
 * `= -1 EINVAL (Invalid argument: iopt_check_iova: …)`), one line per DMA, and the script's own
 * console output. Addresses, IOVAs and lengths in hex; flags as A|B; the uAPI's own names.
 */
import { IOCTL_BY_NAME, CONST_SETS } from "../uapi/index.ts";
import { formatConst } from "../uapi/consts.ts";
import { STRERROR, type ErrnoName } from "../uapi/errno.ts";
import type { TraceEvent, U64 } from "./events.ts";

function hex(v: U64): string {
  return typeof v === "number" ? "0x" + v.toString(16) : v;
}

function rid(r: number): string {
  return `${(r >> 8).toString(16).padStart(2, "0")}:${((r >> 3) & 0x1f).toString(16).padStart(2, "0")}.${r & 7}`;
}

/** `{size=40, flags=A|B, …}` for a decoded ioctl argument. */
export function formatIoctlArg(req: string | undefined, arg: Record<string, U64> | undefined): string {
  if (!arg) return "?";
  const def = req ? IOCTL_BY_NAME.get(req) : undefined;
  if (!def?.struct) {
    if ("arg" in arg) return String(arg.arg);
    if ("ptr" in arg) return arg.ptr === 0 ? "NULL" : hex(arg.ptr);
    return Object.entries(arg).map(([k, v]) => `${k}=${v}`).join(", ");
  }
  if ("ptr" in arg) return arg.ptr === 0 ? "NULL" : hex(arg.ptr);
  const parts: string[] = [];
  for (const f of def.struct.fields) {
    const v = arg[f.name];
    if (v === undefined) continue;
    let text: string;
    const set = f.flags ? CONST_SETS.get(f.flags) : f.enum ? CONST_SETS.get(f.enum) : undefined;
    if (set && typeof v === "number") text = formatConst(set, v);
    else if (typeof v === "string") text = v.startsWith("0x") ? v : `[${v}]`;
    else if (f.wide && (f.ptr || /iova|addr|va|length|size|start|last|alignment|uptr|data/.test(f.name))) text = v === 0 && f.ptr ? "NULL" : hex(v);
    else text = String(v);
    parts.push(`${f.name}=${text}`);
  }
  return `{${parts.join(", ")}}`;
}

function result(e: Extract<TraceEvent, { k: "sys.call" }>): string {
  if (e.errno) return `= -1 ${e.errno} (${STRERROR[e.errno as ErrnoName] ?? e.errno}: ${e.reason})`;
  return `= ${typeof e.ret === "number" ? e.ret : e.ret}`;
}

/** One line of text for an event, or null for events the text log leaves out. */
export function formatEvent(e: TraceEvent, fdPaths?: Map<number, string>): string | null {
  switch (e.k) {
    case "sys.call": {
      const fd = e.fd >= 0 ? `${e.fd}${fdPaths?.get(e.fd) ? `<${fdPaths.get(e.fd)}>` : ""}` : "";
      if (e.call === "ioctl") return `ioctl(${fd}, ${e.req}, ${formatIoctlArg(e.req, e.arg)}) ${result(e)}`;
      const args = [fd, e.text].filter((x) => x).join(", ");
      const ret = e.call === "mmap" && !e.errno && typeof e.ret === "number" ? `= 0x${e.ret.toString(16)}` : result(e);
      return `${e.call}(${args}) ${ret}`;
    }
    case "dma.complete":
      return `dma ${rid(e.rid)}${e.pasid >= 0 ? ` pasid=${e.pasid}` : ""} ${e.write ? "write" : "read "} iova=${hex(e.iova)} len=0x${e.len.toString(16)} -> pa=${hex(e.pa)}`;
    case "dma.fault":
      return `dma ${rid(e.rid)}${e.pasid >= 0 ? ` pasid=${e.pasid}` : ""} ${e.write ? "write" : "read "} iova=${hex(e.iova)} FAULT reason=0x${e.reason.toString(16)} (${e.name})`;
    case "vtd.fault.record":
      return `  vtd: fault recorded in FRCD[${e.index}]: reason 0x${e.reason.toString(16)} (${e.name}) sid=${rid(e.rid)} addr=${hex(e.addr)}`;
    case "ats.completion":
      // only the interesting completions: no access (the cue for a page request) and UR
      if (e.status === "success" && e.perm) return null;
      return `ats ${rid(e.rid)}${e.pasid >= 0 ? ` pasid=${e.pasid}` : ""} translate iova=${hex(e.iova)} -> ${e.status === "UR" ? `UR (fault 0x${(e.reason ?? 0).toString(16)})` : "no access (R=W=0)"}`;
    case "pri.request":
      return `pri ${rid(e.rid)}${e.pasid >= 0 ? ` pasid=${e.pasid}` : ""} page request addr=${hex(e.addr)} group=${e.group}${e.stop ? " STOP MARKER" : `${e.read ? " R" : ""}${e.write ? " W" : ""}${e.last ? " last" : ""}`}`;
    case "prq.overflow":
      return `  vtd: page request dropped (group ${e.group}): ${e.why}`;
    case "pri.response":
      return `pri ${rid(e.rid)}${e.pasid >= 0 ? ` pasid=${e.pasid}` : ""} page response group=${e.group}: ${e.name}${e.matched ? "" : " (no request was waiting: UPRGI)"}`;
    case "script.console":
      return e.text;
    case "engine.bug":
      return `ENGINE BUG: ${e.message} (${e.where})`;
    default:
      return null;
  }
}

/** Keeps fd → path for `-y`-style annotation, from open/close events. */
export class FdNames {
  readonly paths = new Map<number, string>();
  observe(e: TraceEvent): void {
    if (e.k !== "sys.call" || e.errno) return;
    if ((e.call === "open" || e.call === "memfd_create") && typeof e.ret === "number" && e.text) this.paths.set(e.ret, JSON.parse(e.text) as string);
    else if (e.call === "close") this.paths.delete(e.fd);
    else if (e.call === "ioctl" && e.req === "IOMMU_FAULT_QUEUE_ALLOC" && e.arg && typeof e.arg.out_fault_fd === "number")
      this.paths.set(e.arg.out_fault_fd, "anon_inode:[iommufd-pgfault]");
  }
}
