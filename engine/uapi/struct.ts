/**
 * C structs as data. Each uAPI struct is declared once, as a list of fields with their C type,
 * direction, documentation and the kernel release that added them; byte offsets and sizes follow
 * from the C layout rules of x86-64/arm64 (natural alignment; __aligned_u64 is 8-aligned). The
 * codec turns little-endian bytes into plain objects and back: u8…u32 and s32 fields as numbers,
 * u64 fields as bigints (the kernel half's representation; scripts get numbers when exact).
 *
 * Nothing in here knows a particular ioctl: the tables in iommufd.ts and vfio.ts do.
 */
export type CType = "__u8" | "__u16" | "__u32" | "__s32" | "__u64" | "__aligned_u64" | "__aligned_le64";

/** A kernel release tag, "v6.2" … */
export type Release = `v${number}.${number}`;

const CTYPE_SIZE: Record<CType, number> = {
  __u8: 1, __u16: 2, __u32: 4, __s32: 4, __u64: 8, __aligned_u64: 8, __aligned_le64: 8,
};

export type Dir = "in" | "out" | "inout";

/** What a pointer field points at, so scripts can pass JS values for it. */
export interface PtrSpec {
  /** element struct name, or "bytes" for a raw buffer */
  to: string;
  /** field holding the element count (num_iovas, entry_num, …) */
  count?: string;
  /** field holding the length in bytes (data_len) */
  len?: string;
  /** field holding the element size in bytes (entry_len) */
  elemLen?: string;
  /** element struct chosen by the value of another field: {field: "data_type", map: {1: "iommu_hwpt_vtd_s1"}} */
  byType?: { field: string; map: Record<number, string> };
  /** the kernel writes through this pointer (outputs to decode back) */
  out?: boolean;
}

export interface FieldOpts {
  since?: Release;
  /** name of the flag set whose bits this field holds */
  flags?: string;
  /** name of the enum whose values this field holds */
  enum?: string;
  ptr?: PtrSpec;
  /** other names of the same bytes (a C union): in_data_type / out_data_type */
  alias?: string[];
  /** documented as "must be 0"; whether the kernel checks it is the handler's business */
  reserved?: boolean;
}

export interface Field extends FieldOpts {
  readonly name: string;
  readonly type: CType;
  /** element count for arrays (`__u8 __reserved[3]`), else 1 */
  readonly count: number;
  readonly dir: Dir;
  readonly doc: string;
  readonly offset: number;
  /** total bytes, count × element size */
  readonly size: number;
  readonly elemSize: number;
  readonly signed: boolean;
  readonly wide: boolean; // 64-bit
}

export interface StructDef {
  readonly name: string;
  readonly doc: string;
  readonly since: Release;
  readonly fields: readonly Field[];
  readonly size: number;
  readonly field: Readonly<Record<string, Field>>;
}

/** [name, C type (optionally with [N]), direction, doc, options] */
export type FieldDecl = [string, string, Dir, string, FieldOpts?];

export function defineStruct(name: string, since: Release, doc: string, decls: FieldDecl[]): StructDef {
  const fields: Field[] = [];
  const byName: Record<string, Field> = {};
  let offset = 0;
  let maxAlign = 1;
  for (const [fname, ctype, dir, fdoc, opts] of decls) {
    const m = /^(\w+)(?:\[(\d+)\])?$/.exec(ctype);
    if (!m || !(m[1] in CTYPE_SIZE)) throw new Error(`${name}.${fname}: unknown C type ${ctype}`);
    const type = m[1] as CType;
    const count = m[2] ? Number(m[2]) : 1;
    const elemSize = CTYPE_SIZE[type];
    offset = Math.ceil(offset / elemSize) * elemSize;
    maxAlign = Math.max(maxAlign, elemSize);
    const f: Field = {
      name: fname, type, count, dir, doc: fdoc, offset, size: elemSize * count, elemSize,
      signed: type === "__s32", wide: elemSize === 8,
      reserved: fname.startsWith("__reserved"),
      ...opts,
    };
    fields.push(f);
    byName[fname] = f;
    for (const a of opts?.alias ?? []) byName[a] = f;
    offset += f.size;
  }
  const size = Math.ceil(offset / maxAlign) * maxAlign;
  return { name, doc, since, fields, size, field: byName };
}

export type FieldValue = number | bigint | (number | bigint)[];
export type Decoded = Record<string, FieldValue>;

function readElem(dv: DataView, off: number, f: Field): number | bigint {
  switch (f.elemSize) {
    case 1: return dv.getUint8(off);
    case 2: return dv.getUint16(off, true);
    case 4: return f.signed ? dv.getInt32(off, true) : dv.getUint32(off, true);
    default: return dv.getBigUint64(off, true);
  }
}

function writeElem(dv: DataView, off: number, f: Field, v: number | bigint): void {
  switch (f.elemSize) {
    case 1: dv.setUint8(off, Number(BigInt.asUintN(8, BigInt(v)))); break;
    case 2: dv.setUint16(off, Number(BigInt.asUintN(16, BigInt(v))), true); break;
    case 4:
      if (f.signed) dv.setInt32(off, Number(BigInt.asIntN(32, BigInt(v))), true);
      else dv.setUint32(off, Number(BigInt.asUintN(32, BigInt(v))), true);
      break;
    default: dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
  }
}

/** Decode `def` from `bytes` at `base`. Bytes past the end of `bytes` read as zero (zero-extension). */
export function decodeStruct(def: StructDef, bytes: Uint8Array, base = 0): Decoded {
  const buf = new Uint8Array(def.size);
  buf.set(bytes.subarray(base, Math.min(bytes.length, base + def.size)));
  const dv = new DataView(buf.buffer);
  const out: Decoded = {};
  for (const f of def.fields) {
    if (f.count === 1) out[f.name] = readElem(dv, f.offset, f);
    else {
      const arr: (number | bigint)[] = [];
      for (let i = 0; i < f.count; i++) arr.push(readElem(dv, f.offset + i * f.elemSize, f));
      out[f.name] = arr;
    }
  }
  return out;
}

/** Encode `obj` as `def` into a new byte array of def.size (or `into` at `base`). Missing fields are 0. */
export function encodeStruct(def: StructDef, obj: Partial<Decoded>, into?: Uint8Array, base = 0): Uint8Array {
  const out = into ?? new Uint8Array(def.size);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const f of def.fields) {
    let v: FieldValue | undefined = obj[f.name];
    if (v === undefined) for (const a of f.alias ?? []) if (obj[a] !== undefined) v = obj[a];
    if (v === undefined) v = 0;
    if (f.count === 1) writeElem(dv, base + f.offset, f, Array.isArray(v) ? v[0] ?? 0 : v);
    else {
      const arr = Array.isArray(v) ? v : [v];
      for (let i = 0; i < f.count; i++) writeElem(dv, base + f.offset + i * f.elemSize, f, arr[i] ?? 0);
    }
  }
  return out;
}

/** Offset of the end of field `name`: the kernel's offsetofend(), used for min_size. */
export function offsetofend(def: StructDef, name: string): number {
  const f = def.field[name];
  if (!f) throw new Error(`${def.name} has no field ${name}`);
  return f.offset + f.size;
}
