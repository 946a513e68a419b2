/**
 * Named constants of a uAPI header, as data: each enum or flag set lists its values with the
 * release that added them, so the design lab can answer "does v6.6 know IOMMU_HWPT_ALLOC_PASID?".
 */
import type { Release } from "./struct.ts";

export interface ConstDef {
  readonly name: string;
  readonly value: number;
  readonly since: Release;
  readonly doc: string;
}

export interface ConstSet {
  readonly name: string;
  readonly kind: "flags" | "enum";
  readonly values: readonly ConstDef[];
}

/** [name, value, since, doc] */
export type ConstDecl = [string, number, Release, string];

export function defineConsts(name: string, kind: "flags" | "enum", decls: ConstDecl[]): ConstSet {
  return { name, kind, values: decls.map(([n, value, since, doc]) => ({ name: n, value, since, doc })) };
}

/** Bits of `value` not covered by the flag set (what the kernel refuses with EOPNOTSUPP). */
export function unknownBits(set: ConstSet, value: number): number {
  let known = 0;
  for (const c of set.values) known |= c.value;
  return (value & ~known) >>> 0;
}

/** `A|B|0x40` for a flags value; the enum name, or the number, for an enum value. */
export function formatConst(set: ConstSet, value: number): string {
  if (set.kind === "enum") {
    const names = set.values.filter((c) => c.value === value).map((c) => c.name);
    return names[0] ?? String(value);
  }
  if (value === 0) return "0";
  const parts: string[] = [];
  let rest = value >>> 0;
  for (const c of set.values) {
    if (c.value && (rest & c.value) === c.value) {
      parts.push(c.name);
      rest = (rest & ~c.value) >>> 0;
    }
  }
  if (rest) parts.push("0x" + rest.toString(16));
  return parts.join("|");
}
