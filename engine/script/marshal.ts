/**
 * Moving script values across the syscall boundary, as a C program's stack would: an ioctl
 * argument object is encoded in its C layout into scratch user memory, pointer fields given as
 * JS values are copied into scratch memory too (and their count/length fields filled in), the
 * kernel works on those bytes, and whatever it wrote is decoded back into the script's objects.
 *
 * Numbers: u64 fields accept numbers or bigints and come back as numbers when exact (< 2^53),
 * bigints otherwise. An inexact number (not a safe integer) or a value too wide for its field is
 * refused with a ScriptError naming the field: nothing is silently rounded or truncated.
 */
import { STRUCTS, type Field, type StructDef } from "../uapi/index.ts";
import { encodeStruct, decodeStruct, type Decoded, type FieldValue } from "../uapi/struct.ts";

/** A mistake in how the script called the API (not a kernel errno): wrong type, unknown field. */
export class ScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScriptError";
  }
}

/** A bump allocator over a region of user memory the runtime owns (the script's "stack"). */
export interface Scratch {
  alloc(bytes: number, align?: number): number;
  write(addr: number, bytes: Uint8Array): void;
  read(addr: number, length: number): Uint8Array;
}

export type JsValue = unknown;

/** Convert a script value for a field to a bigint, refusing inexact or out-of-range values. */
export function toInteger(v: unknown, what: string, f?: Pick<Field, "elemSize" | "signed">): bigint {
  let x: bigint;
  if (typeof v === "bigint") x = v;
  else if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new ScriptError(`${what}: ${v} is not an integer`);
    if (!Number.isSafeInteger(v))
      throw new ScriptError(`${what}: ${v} is beyond 2^53, where a number may already have been rounded: pass a bigint (e.g. ${BigInt(v)}n)`);
    x = BigInt(v);
  } else if (typeof v === "boolean") x = v ? 1n : 0n;
  else throw new ScriptError(`${what}: expected a number or bigint, got ${v === null ? "null" : typeof v}`);
  if (f) {
    const bits = BigInt(f.elemSize * 8);
    const min = f.signed ? -(1n << (bits - 1n)) : -(1n << bits) + 1n;
    const max = (1n << bits) - 1n;
    if (x < min || x > max) throw new ScriptError(`${what}: ${x} does not fit a ${f.elemSize * 8}-bit field`);
  }
  return x;
}

/** A kernel value as a script sees it: a number when exact, else a bigint. */
export function toScript(v: number | bigint): number | bigint {
  if (typeof v === "number") return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

interface PendingPtr {
  /** element type decided by an output field (GET_HW_INFO's out_data_type): resolved after the call */
  late?: { def: StructDef; obj: Record<string, unknown> };
  field: Field;
  value: JsValue;
  addr: number;
  elem: StructDef | null;
  elemLen: number;
  count: number;
}

/** What encodeArg produced: where the struct is, and how to decode the kernel's writes back. */
export interface Encoded {
  addr: number;
  size: number;
  finish(): void;
}

function elemStruct(def: StructDef, field: Field, obj: Record<string, unknown>): StructDef | null {
  const p = field.ptr!;
  if (p.to !== "bytes") return STRUCTS.get(p.to) ?? null;
  if (p.byType) {
    const t = obj[p.byType.field] ?? obj[def.field[p.byType.field]?.alias?.[0] ?? ""];
    const name = p.byType.map[Number(t ?? 0)];
    return name ? STRUCTS.get(name) ?? null : null;
  }
  return null;
}

/** Encode a JS value for a pointer field into scratch memory. Returns the pending decode-back. */
function encodePointee(def: StructDef, field: Field, value: JsValue, obj: Record<string, unknown>, scratch: Scratch): PendingPtr {
  const what = `${def.name}.${field.name}`;
  if (value instanceof Uint8Array || value instanceof BigUint64Array || value instanceof Uint32Array || value instanceof ArrayBuffer) {
    const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const addr = scratch.alloc(Math.max(bytes.length, 1), 8);
    scratch.write(addr, bytes);
    return { field, value, addr, elem: null, elemLen: bytes.length, count: 1 };
  }
  const elem = elemStruct(def, field, obj);
  const bt = field.ptr!.byType;
  if (!elem && bt && def.field[bt.field]?.dir !== "in" && typeof value === "object" && value !== null && !Array.isArray(value)) {
    const len = 256; // room for any info struct; the kernel zero-fills what it does not use
    const addr = scratch.alloc(len, 8);
    scratch.write(addr, new Uint8Array(len));
    return { field, value, addr, elem: null, elemLen: len, count: 1, late: { def, obj } };
  }
  if (!elem) throw new ScriptError(`${what}: pass a user address or a Uint8Array (the element type is not known for this data_type)`);
  const items = Array.isArray(value) ? value : [value];
  const elemLen = field.ptr!.elemLen ? Number(obj[field.ptr!.elemLen] ?? 0) || elem.size : elem.size;
  // an output array (IOVA_RANGES): room for the count the caller asked for, even if the array is shorter
  const ptr = field.ptr!;
  const cap = ptr.out && ptr.count && Array.isArray(value) ? Math.max(items.length, Number(obj[ptr.count] ?? 0)) : items.length;
  const addr = scratch.alloc(Math.max(cap * elemLen, 1), 8);
  scratch.write(addr, new Uint8Array(cap * elemLen));
  items.forEach((it, i) => {
    if (typeof it !== "object" || it === null) throw new ScriptError(`${what}[${i}]: expected an object with the fields of struct ${elem.name}`);
    const bytes = encodeObject(elem, it as Record<string, unknown>, `${what}[${i}]`);
    scratch.write(addr + i * elemLen, bytes.subarray(0, Math.min(elemLen, bytes.length)));
  });
  return { field, value, addr, elem, elemLen, count: cap };
}

/** Encode a plain object as `def`; unknown field names are refused (they are almost always typos). */
export function encodeObject(def: StructDef, obj: Record<string, unknown>, what = def.name): Uint8Array {
  const vals: Partial<Decoded> = {};
  for (const [k, v] of Object.entries(obj)) {
    const f = def.field[k];
    if (!f) throw new ScriptError(`struct ${def.name} has no field '${k}' (fields: ${def.fields.map((x) => x.name).join(", ")})`);
    if (v === undefined) continue;
    if (f.count > 1) {
      if (!Array.isArray(v)) throw new ScriptError(`${what}.${k}: expected an array of ${f.count}`);
      vals[f.name] = v.map((x, i) => toInteger(x, `${what}.${k}[${i}]`, f));
    } else vals[f.name] = toInteger(v, `${what}.${k}`, f);
  }
  return encodeStruct(def, vals);
}

/**
 * Lay out an ioctl argument object in scratch memory. Pointer fields holding JS values are
 * marshalled first, so the struct carries their addresses; count and length fields left 0 are
 * filled in; `sizeField` (size/argsz) defaults to the struct's size.
 */
export function encodeArg(def: StructDef, obj: Record<string, unknown>, scratch: Scratch, sizeField: string): Encoded {
  const work: Record<string, unknown> = { ...obj };
  const pending: PendingPtr[] = [];
  for (const f of def.fields) {
    if (!f.ptr) continue;
    const v = obj[f.name];
    if (v === undefined || v === null || typeof v === "number" || typeof v === "bigint") continue;
    const p = encodePointee(def, f, v, obj, scratch);
    pending.push(p);
    work[f.name] = p.addr;
    const ptr = f.ptr;
    if (ptr.count && !obj[ptr.count]) work[ptr.count] = p.elem ? p.count : 0;
    if (ptr.len && !obj[ptr.len]) work[ptr.len] = p.elem ? p.count * p.elemLen : p.elemLen;
    if (ptr.count && !obj[ptr.count] && !p.elem && ptr.out && p.late === undefined) work[ptr.count] = 0;
    if (ptr.elemLen && !obj[ptr.elemLen] && p.elem) work[ptr.elemLen] = p.elemLen;
  }
  if (work[sizeField] === undefined) work[sizeField] = def.size;
  const declared = Number(toInteger(work[sizeField], `${def.name}.${sizeField}`));
  const bytes = encodeObject(def, work);
  // The buffer is as large as the caller says the struct is (zero tail), at least the C struct.
  const len = Math.max(def.size, Math.min(declared, 1 << 20));
  const addr = scratch.alloc(len, 8);
  const buf = new Uint8Array(len);
  buf.set(bytes);
  scratch.write(addr, buf);
  return {
    addr,
    size: len,
    finish() {
      const out = decodeStruct(def, scratch.read(addr, def.size));
      for (const f of def.fields) {
        if (f.dir === "in" && !(f.name in obj)) continue;
        const v = out[f.name];
        const sv = Array.isArray(v) ? v.map(toScript) : toScript(v as number | bigint);
        // pointer fields given as JS values keep the JS value; the count/len fields show the kernel's
        if (f.ptr && pending.some((p) => p.field === f)) continue;
        if (f.dir !== "in" || f.name in obj) obj[f.name] = sv;
      }
      for (const p of pending) decodePointee(p, scratch, out);
    },
  };
}

function decodePointee(p: PendingPtr, scratch: Scratch, out: Decoded): void {
  const v = p.value;
  if (p.late) {
    const bt = p.field.ptr!.byType!;
    const name = bt.map[Number(out[bt.field])];
    const elem = name ? STRUCTS.get(name) : undefined;
    if (elem) p = { ...p, elem, elemLen: elem.size };
  }
  if (!p.elem) {
    if (v instanceof Uint8Array || v instanceof BigUint64Array || v instanceof Uint32Array) {
      const bytes = scratch.read(p.addr, p.elemLen);
      new Uint8Array(v.buffer, v.byteOffset, v.byteLength).set(bytes);
    }
    return;
  }
  const ptr = p.field.ptr!;
  if (ptr.out && ptr.count && Array.isArray(v)) {
    // the kernel reports how many exist; show the ones it wrote
    const n = Math.min(Number(out[ptr.count]), p.count);
    v.length = n;
    for (let i = 0; i < n; i++) if (typeof v[i] !== "object" || v[i] === null) v[i] = {};
  }
  const items = Array.isArray(v) ? v : [v];
  items.forEach((it, i) => {
    const d = decodeStruct(p.elem!, scratch.read(p.addr + i * p.elemLen, Math.min(p.elemLen, p.elem!.size)));
    for (const f of p.elem!.fields) {
      const x = d[f.name];
      (it as Record<string, unknown>)[f.name] = Array.isArray(x) ? x.map(toScript) : toScript(x as number | bigint);
    }
  });
}
