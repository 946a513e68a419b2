/**
 * Small helpers over the trace shared by every view: finding the event at a cursor, and reading
 * the u64 payload fields (numbers when exact, "0x…" strings otherwise) as exact bigints or hex.
 */
import type { TraceEvent, U64 } from "../../../engine/trace/events.ts";

export type { TraceEvent, U64 };

/** Index of the last event with seq ≤ `seq`, or -1. Binary search: seq strictly increases. */
export function indexAtOrBefore(events: readonly TraceEvent[], seq: number): number {
  let lo = 0;
  let hi = events.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid].seq <= seq) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Index of the first element of a sorted array that is ≥ `v` within [lo, hi) (hi if none). */
export function lowerBound(sorted: ArrayLike<number>, v: number, lo = 0, hi = sorted.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A u64 payload field as an exact bigint. */
export function big(v: U64 | bigint): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

/** `0x…` of a u64, optionally zero-padded to `digits` hex digits. */
export function hex(v: U64 | bigint, digits = 0): string {
  const b = big(v);
  return "0x" + (b < 0n ? "-" + (-b).toString(16) : b.toString(16).padStart(digits, "0"));
}

/** A requester id as PCI bus:device.function, the way the log and the kernel print it. */
export function bdf(rid: number): string {
  const h = (n: number) => n.toString(16).padStart(2, "0");
  return `${h(rid >> 8)}:${h((rid >> 3) & 0x1f)}.${rid & 7}`;
}

/** "16 KiB", "2 MiB": a size in binary units, exact when it is a whole number of the unit, else "≈". */
export function sizeText(bytes: number | bigint): string {
  const v = big(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let u = 0;
  while (u < units.length - 1 && v >= 1n << BigInt(10 * (u + 1))) u++;
  const unit = 1n << BigInt(10 * u);
  return v % unit === 0n ? `${v / unit} ${units[u]}` : `≈${(Number(v) / Number(unit)).toFixed(1)} ${units[u]}`;
}

/** Second-stage permissions (bit 0 = R, bit 1 = W) as "R/W", "R", "W" or "none". */
export function permText(perm: number): string {
  const p = [perm & 1 ? "R" : "", perm & 2 ? "W" : ""].filter(Boolean);
  return p.length ? p.join("/") : "none";
}
