/**
 * The script runtime: the globals of ../shared/SCRIPT-API.md (open, ioctl, mmap, hw, …, every
 * uAPI constant and errno) bound to one simulated kernel and machine, and the runner that
 * executes a script's JavaScript as an async function body (top-level await works).
 *
 * The same runtime serves the CLI (in process) and the browser worker: it needs no DOM and no
 * Node API. Time is simulated: DMA latency and sleep() advance the machine's clock; nothing
 * reads the wall clock, and Math.random inside scripts is a seeded generator.
 */
import { ERRNO, STRERROR, errnoName, isErr, type Err, type ErrnoName } from "../uapi/errno.ts";
import { ioctlByRequest, uapiConstants, type IoctlDef } from "../uapi/index.ts";
import { iommu_hwpt_page_response, iommu_hwpt_pgfault } from "../uapi/iommufd.ts";
import { decodeStruct } from "../uapi/struct.ts";
import { Machine, DEFAULT_DEVICES, type DeviceConfig } from "../machine.ts";
import { MODELS } from "../hw/index.ts";
import { dmaRead, dmaWrite, type DmaFaultInfo } from "../hw/dma.ts";
import type { SimDevice } from "../hw/model.ts";
import { EngineBug, Kernel } from "../kernel/kernel.ts";
import { IommufdFile } from "../kernel/main.ts";
import { VfioDeviceFile } from "../kernel/vfio.ts";
import { FaultFile } from "../kernel/eventq.ts";
import type { TraceEvent } from "../trace/events.ts";
import { encodeArg, encodeObject, ScriptError, toInteger, toScript, type Scratch } from "./marshal.ts";

/** The error a failed system call throws in a script. */
export class ErrnoError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  /** which kernel check failed, and why */
  readonly reason: string;
  /** the kernel function whose check failed */
  readonly where: string;
  constructor(call: string, e: Err) {
    super(`${call}: ${e.name} (${STRERROR[e.name]}): ${e.reason}`);
    this.name = "ErrnoError";
    this.code = e.name;
    this.errno = e.errno;
    this.reason = e.reason;
    this.where = e.where;
  }
}

/** A DMA the IOMMU could not translate (and that is not recoverable). */
export class DmaFault extends Error {
  readonly reason: number;
  readonly reasonName: string;
  readonly iova: number | bigint;
  readonly pasid: number | undefined;
  readonly rid: number;
  readonly write: boolean;
  constructor(f: DmaFaultInfo) {
    const pasid = f.pasid === undefined ? "" : ` PASID ${f.pasid}`;
    super(`DMA ${f.write ? "write" : "read"} of IOVA 0x${f.iova.toString(16)} by ${hex16(f.rid)}${pasid} faulted: reason 0x${f.reason.toString(16)} (${f.reasonName})`);
    this.name = "DmaFault";
    this.reason = f.reason;
    this.reasonName = f.reasonName;
    this.iova = f.iova;
    this.pasid = f.pasid;
    this.rid = f.rid;
    this.write = f.write;
  }
}

function hex16(rid: number): string {
  const bus = rid >> 8;
  const dev = (rid >> 3) & 0x1f;
  const fn = rid & 7;
  return `${bus.toString(16).padStart(2, "0")}:${dev.toString(16).padStart(2, "0")}.${fn}`;
}

export interface SessionConfig {
  /** IOMMU model name (MODELS): "vtd" */
  iommu?: string;
  devices?: DeviceConfig[];
  /** model knobs (cache sizes, …) */
  knobs?: Record<string, unknown>;
  /** seed for the script's Math.random */
  seed?: number;
}

/** One simulated system: machine + kernel + the runtime's scratch memory. */
export class Session {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly config: Required<Omit<SessionConfig, "knobs">> & { knobs: Record<string, unknown> };
  private scratchBase = 0;
  private scratchTop = 0;
  private scratchLen = 0;

  constructor(config: SessionConfig = {}, sink: ((e: TraceEvent) => void) | null = null) {
    const iommu = config.iommu ?? "vtd";
    const factory = MODELS[iommu];
    if (!factory) throw new ScriptError(`unknown IOMMU model '${iommu}' (known: ${Object.keys(MODELS).join(", ")})`);
    this.config = { iommu, devices: config.devices ?? DEFAULT_DEVICES, knobs: config.knobs ?? {}, seed: config.seed ?? 1 };
    this.machine = new Machine({ iommu, devices: this.config.devices, model: this.config.knobs }, factory, sink);
    this.kernel = new Kernel(this.machine);
  }

  /** Scratch user memory for marshalling ioctl arguments: a hidden 1 MiB mapping, reused per call. */
  scratch(): Scratch {
    if (!this.scratchBase) {
      const len = 1 << 20;
      const a = this.kernel.mm.mmap(len);
      if (isErr(a)) throw new Error("cannot map the runtime's scratch memory");
      this.scratchBase = a;
      this.scratchLen = len;
    }
    this.scratchTop = this.scratchBase;
    const mm = this.kernel.mm;
    return {
      alloc: (bytes, align = 8) => {
        const addr = Math.ceil(this.scratchTop / align) * align;
        if (addr + bytes > this.scratchBase + this.scratchLen) throw new ScriptError(`ioctl argument too large for the runtime's scratch memory (${bytes} bytes)`);
        this.scratchTop = addr + bytes;
        return addr;
      },
      write: (addr, bytes) => {
        const rc = mm.copyToUser(addr, bytes);
        if (rc) throw new Error("scratch write failed");
      },
      read: (addr, length) => {
        const r = mm.copyFromUser(addr, length);
        if (isErr(r)) throw new Error("scratch read failed");
        return r;
      },
    };
  }
}

/** Mulberry32: a small seeded PRNG so Math.random is deterministic inside scripts. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ConsoleSink {
  (level: string, text: string): void;
}

/** Render console.log arguments as Node would, briefly (bigints with n, objects as JSON). */
export function formatConsoleArgs(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === "string") return a;
      if (typeof a === "bigint") return `${a}n`;
      if (a instanceof Error) return `${a.name}: ${a.message}`;
      if (a instanceof Uint8Array) return `Uint8Array(${a.length}) [${[...a.subarray(0, 32)].map((x) => x.toString(16).padStart(2, "0")).join(" ")}${a.length > 32 ? " …" : ""}]`;
      if (typeof a === "object" && a !== null) {
        try {
          return JSON.stringify(a, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
        } catch {
          return String(a);
        }
      }
      return String(a);
    })
    .join(" ");
}

/**
 * Build the script's globals for a session.
 * @param lineOf returns the script line of the current call (from a stack trace), for events
 */
/**
 * A host hook awaited at the script's asynchronous points (DMA, sleep, poll): the browser worker
 * uses it to pace a run to a chosen event rate, so the UI can follow it. It returns undefined to
 * go on at once. It never changes what the engine does, only when the script continues.
 */
export type PaceHook = () => Promise<void> | undefined;

export function createGlobals(session: Session, opts: { console: ConsoleSink; lineOf: () => number | undefined; pace?: PaceHook }): Record<string, unknown> {
  const { kernel, machine } = session;
  const sys = <T>(r: T | Err, call: string): T => {
    if (isErr(r)) throw new ErrnoError(call, r);
    return r;
  };
  const withLine = <T>(fn: () => T): T => {
    kernel.line = opts.lineOf();
    try {
      return fn();
    } finally {
      kernel.line = undefined;
    }
  };
  const num = (v: unknown, what: string): number => {
    const x = toInteger(v, what);
    if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) throw new ScriptError(`${what}: ${x} is out of range`);
    return Number(x);
  };

  const ioctl = (fd: unknown, request: unknown, arg?: unknown): unknown =>
    withLine(() => {
      const fdn = num(fd, "ioctl fd");
      const req = num(request, "ioctl request");
      const file = kernel.fds.get(fdn);
      const def: IoctlDef | undefined =
        file instanceof IommufdFile ? ioctlByRequest(req, "iommufd") ?? ioctlByRequest(req, "vfio-container")
        : file instanceof VfioDeviceFile ? ioctlByRequest(req, "vfio-device") : undefined;
      const name = def?.name ?? `0x${req.toString(16)}`;
      if (arg === undefined || typeof arg === "number" || typeof arg === "bigint") {
        // an integer argument, or a raw user address
        const a = arg === undefined ? 0 : num(arg, `${name} argument`);
        return sys(kernel.ioctl(fdn, req, a), `ioctl(${fdn}, ${name})`);
      }
      if (arg === null) return sys(kernel.ioctl(fdn, req, 0), `ioctl(${fdn}, ${name})`);
      const scratch = session.scratch();
      if (arg instanceof Uint8Array) {
        const addr = scratch.alloc(Math.max(arg.length, 4), 8);
        scratch.write(addr, arg);
        const r = kernel.ioctl(fdn, req, addr);
        arg.set(scratch.read(addr, arg.length));
        sys(r, `ioctl(${fdn}, ${name})`);
        return arg;
      }
      if (typeof arg !== "object") throw new ScriptError(`${name}: the argument must be an object, a Uint8Array, a number or null`);
      if (!def?.struct) {
        if (!def) {
          // unknown request: pass a pointer to nothing in particular; the kernel answers ENOTTY
          return sys(kernel.ioctl(fdn, req, scratch.alloc(8)), `ioctl(${fdn}, ${name})`);
        }
        throw new ScriptError(`${name} takes an integer argument, not an object`);
      }
      const sizeField = def.struct.fields[0].name; // size (iommufd) or argsz (VFIO)
      const enc = encodeArg(def.struct, arg as Record<string, unknown>, scratch, sizeField);
      const r = kernel.ioctl(fdn, req, enc.addr);
      enc.finish();
      sys(r, `ioctl(${fdn}, ${name})`);
      return arg;
    });

  /** A DMA is a call of its own: its dma.request event's seq is the cmd_seq of what it causes. */
  const dmaCall = <T>(fn: () => T): T => {
    const trace = machine.trace;
    trace.line = opts.lineOf();
    try {
      return trace.within(trace.nextSeq, fn);
    } finally {
      trace.line = undefined;
    }
  };

  const devices = machine.devices.map((d) => Object.freeze({ name: d.name, path: d.path, rid: d.rid, pasidBits: d.pasidBits, pri: d.pri, ats: d.ats }));

  const deviceOf = (pathOrFd: unknown): SimDevice => {
    if (typeof pathOrFd === "string") {
      const d = machine.devices.find((x) => x.path === pathOrFd);
      if (!d) throw new ScriptError(`hw.device: no device at ${pathOrFd} (devices: ${machine.devices.map((x) => x.path).join(", ")})`);
      return d;
    }
    const f = kernel.fds.get(num(pathOrFd, "hw.device fd"));
    if (!(f instanceof VfioDeviceFile)) throw new ScriptError(`hw.device: fd ${String(pathOrFd)} is not an open VFIO device`);
    return f.dev;
  };

  const dmaOpts = (o: unknown): number => {
    if (o === undefined) return -1;
    if (typeof o !== "object" || o === null) throw new ScriptError("DMA options must be an object like { pasid: 1 }");
    const p = (o as { pasid?: unknown }).pasid;
    return p === undefined ? -1 : num(p, "pasid");
  };

  const dmaIova = (v: unknown): number => {
    const x = toInteger(v, "DMA iova");
    if (x < 0n || x > 0xffff_ffff_ffff_ffffn) throw new ScriptError(`DMA iova ${x} is not a 64-bit address`);
    // above 2^53 no IOMMU here can translate it; keep it exact enough to fault as out of range
    return x > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(x);
  };

  const hw = {
    get iommu() {
      return machine.iommu.kind;
    },
    devices,
    get now() {
      return machine.clock.now;
    },
    device(pathOrFd: unknown) {
      const dev = deviceOf(pathOrFd);
      return Object.freeze({
        name: dev.name,
        path: dev.path,
        rid: dev.rid,
        async read(iova: unknown, length: unknown, o?: unknown): Promise<Uint8Array> {
          await opts.pace?.();
          const r = dmaCall(() => dmaRead(machine, machine.iommu.hw, dev, dmaIova(iova), num(length, "DMA length"), dmaOpts(o)));
          machine.sched.runDue();
          if (!(r instanceof Uint8Array)) throw new DmaFault(r);
          return r;
        },
        async write(iova: unknown, bytes: unknown, o?: unknown): Promise<void> {
          await opts.pace?.();
          if (!(bytes instanceof Uint8Array)) throw new ScriptError("device.write: bytes must be a Uint8Array");
          const r = dmaCall(() => dmaWrite(machine, machine.iommu.hw, dev, dmaIova(iova), bytes, dmaOpts(o)));
          machine.sched.runDue();
          if (r) throw new DmaFault(r);
        },
        async pageRequest(): Promise<number | null> {
          if (!dev.pri) throw new ScriptError(`${dev.path} has no PRI: it cannot send page requests`);
          throw new ScriptError("page requests (PRI) are not modelled yet in this engine version");
        },
      });
    },
  };

  const readFault = (fd: unknown, count?: unknown): Uint8Array =>
    withLine(() => {
      const fdn = num(fd, "read fd");
      const f = kernel.fds.get(fdn);
      let n = count === undefined ? 0 : num(count, "read count");
      if (count === undefined && f instanceof FaultFile) n = 64 * iommu_hwpt_pgfault.size;
      return sys(kernel.read(fdn, n), `read(${fdn})`);
    });

  const constants = uapiConstants();
  const random = seededRandom(session.config.seed);
  const scriptMath = Object.create(Math) as Math;
  Object.defineProperty(scriptMath, "random", { value: random });

  const log = (level: string) => (...args: unknown[]) => {
    const text = formatConsoleArgs(args);
    if (machine.trace.on) machine.trace.emit("script.console", { level, text, line: opts.lineOf() });
    opts.console(level, text);
  };

  return {
    ...constants,
    ErrnoError,
    DmaFault,
    EngineBug,
    Math: scriptMath,
    console: { log: log("log"), info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug") },
    hw,
    open: (path: unknown) => withLine(() => {
      if (typeof path !== "string") throw new ScriptError("open: path must be a string");
      return sys(kernel.open(path), `open(${JSON.stringify(path)})`);
    }),
    close: (fd: unknown) => withLine(() => sys(kernel.close(num(fd, "close fd")), `close(${String(fd)})`)),
    ioctl,
    read: (fd: unknown, count?: unknown) => {
      const bytes = readFault(fd, count);
      const recs: Record<string, number | bigint>[] = [];
      for (let off = 0; off + iommu_hwpt_pgfault.size <= bytes.length; off += iommu_hwpt_pgfault.size) {
        const d = decodeStruct(iommu_hwpt_pgfault, bytes.subarray(off));
        recs.push(Object.fromEntries(Object.entries(d).map(([k, v]) => [k, toScript(v as number | bigint)])));
      }
      return recs;
    },
    readBytes: (fd: unknown, count: unknown) => readFault(fd, count),
    write: (fd: unknown, data: unknown) => withLine(() => {
      const fdn = num(fd, "write fd");
      let bytes: Uint8Array;
      if (data instanceof Uint8Array) bytes = data;
      else if (Array.isArray(data)) {
        bytes = new Uint8Array(data.length * iommu_hwpt_page_response.size);
        data.forEach((r, i) => bytes.set(encodeObject(iommu_hwpt_page_response, r as Record<string, unknown>, `write record ${i}`), i * iommu_hwpt_page_response.size));
      } else throw new ScriptError("write: data must be an array of iommu_hwpt_page_response objects or a Uint8Array");
      return sys(kernel.write(fdn, bytes), `write(${fdn})`);
    }),
    poll: async (fd: unknown, timeout_ns?: unknown) => {
      const fdn = num(fd, "poll fd");
      const f = kernel.fds.get(fdn);
      if (!f) throw new ErrnoError(`poll(${fdn})`, { name: "EBADF", errno: 9, where: "do_poll", why: "", reason: `do_poll: fd ${fdn} is not open` } as unknown as Err);
      if (timeout_ns === undefined) throw new ScriptError(`poll(${fdn}) would wait forever: nothing in this machine can make the fd readable`);
      machine.sched.runUntil(machine.clock.now + num(timeout_ns, "poll timeout"));
      return false;
    },
    mmap: (length: unknown, o?: { align?: unknown; fd?: unknown; offset?: unknown }) => withLine(() => {
      const opt = o ?? {};
      return sys(kernel.mmap(num(length, "mmap length"), {
        align: opt.align === undefined ? undefined : num(opt.align, "mmap align"),
        fd: opt.fd === undefined ? undefined : num(opt.fd, "mmap fd"),
        offset: opt.offset === undefined ? undefined : num(opt.offset, "mmap offset"),
      }), "mmap");
    }),
    munmap: (addr: unknown, length: unknown) => withLine(() => sys(kernel.munmap(num(addr, "munmap address"), num(length, "munmap length")), "munmap")),
    memfd_create: (name: unknown) => withLine(() => sys(kernel.memfdCreate(String(name)), "memfd_create")),
    ftruncate: (fd: unknown, length: unknown) => withLine(() => sys(kernel.ftruncate(num(fd, "ftruncate fd"), num(length, "ftruncate length")), "ftruncate")),
    peek: (addr: unknown, length: unknown) => {
      const r = kernel.peek(num(addr, "peek address"), num(length, "peek length"));
      if (isErr(r)) throw new ScriptError(`peek: segmentation fault: ${r.why}`);
      return r;
    },
    poke: (addr: unknown, bytes: unknown) => {
      if (!(bytes instanceof Uint8Array)) throw new ScriptError("poke: bytes must be a Uint8Array");
      const r = kernel.poke(num(addr, "poke address"), bytes);
      if (isErr(r)) throw new ScriptError(`poke: segmentation fault: ${r.why}`);
    },
    setrlimit: (resource: unknown, value: unknown) => {
      if (resource !== "RLIMIT_MEMLOCK") throw new ScriptError("setrlimit: only 'RLIMIT_MEMLOCK' is modelled");
      kernel.creds.rlimitMemlock = num(value, "RLIMIT_MEMLOCK");
    },
    sleep: async (ns: unknown) => {
      await opts.pace?.();
      machine.sched.runUntil(machine.clock.now + num(ns, "sleep ns"));
    },
    strerror: (e: unknown) => {
      const nm = typeof e === "number" ? errnoName(e) : (e as ErrnoName);
      return nm && nm in STRERROR ? STRERROR[nm] : `Unknown error ${String(e)}`;
    },
  };
}

export interface RunResult {
  ok: boolean;
  /** the thrown value's name and message */
  error?: { name: string; message: string; code?: string; line?: number; column?: number; engineBug?: boolean };
}

const SCRIPT_URL = "iommu-script.js";

/** Line/column of the innermost script frame in a stack trace. */
export function scriptPosition(stack: string | undefined, lineOffset: number): { line: number; column: number } | undefined {
  if (!stack) return undefined;
  const re = new RegExp(`${SCRIPT_URL.replace(".", "\\.")}:(\\d+):(\\d+)`);
  const m = re.exec(stack);
  if (!m) return undefined;
  return { line: Number(m[1]) - lineOffset, column: Number(m[2]) };
}

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;

/** How many lines `new Function` puts before the body (V8: 2). Measured, not assumed. */
const LINE_OFFSET: number = (() => {
  const stack = new Function(`return new Error().stack\n//# sourceURL=${SCRIPT_URL}`)() as string;
  const p = scriptPosition(stack, 0);
  return p ? p.line - 1 : 2;
})();

/**
 * Run a script (JavaScript, already transpiled) in `session`.
 * @param mapLine maps a generated line back to the source line (for TypeScript)
 */
export async function runScript(session: Session, code: string, opts: { name?: string; console: ConsoleSink; mapLine?: (line: number) => number; pace?: PaceHook }): Promise<RunResult> {
  const trace = session.machine.trace;
  const mapLine = opts.mapLine ?? ((l: number) => l);
  const lineOf = () => {
    const p = scriptPosition(new Error().stack, LINE_OFFSET);
    return p ? mapLine(p.line) : undefined;
  };
  const globals = createGlobals(session, { console: opts.console, lineOf, pace: opts.pace });
  const names = Object.keys(globals).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
  if (trace.on) trace.emit("script.start", { name: opts.name ?? "script" });
  let fn: (...a: unknown[]) => Promise<unknown>;
  try {
    fn = new AsyncFunction(...names, `"use strict";${code}\n//# sourceURL=${SCRIPT_URL}`);
  } catch (e) {
    const err = e as Error;
    // V8 does not say where a syntax error is for `new Function`; ask for it by name
    const result: RunResult = { ok: false, error: { name: err.name, message: err.message, line: syntaxErrorLine(code) } };
    if (trace.on) trace.emit("script.end", { ok: false, error: `${err.name}: ${err.message}`, line: result.error!.line });
    return result;
  }
  try {
    await fn(...names.map((n) => globals[n]));
    session.machine.sched.runDue();
    if (trace.on) trace.emit("script.end", { ok: true });
    return { ok: true };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const pos = scriptPosition(err.stack, LINE_OFFSET);
    const line = pos ? mapLine(pos.line) : undefined;
    const result: RunResult = {
      ok: false,
      error: { name: err.name, message: err.message, code: (err as Partial<ErrnoError>).code, line, column: pos?.column, engineBug: err instanceof EngineBug },
    };
    if (trace.on) trace.emit("script.end", { ok: false, error: `${err.name}: ${err.message}`, line });
    return result;
  }
}

/** Find the first line that does not parse, by growing the prefix (scripts are small). */
function syntaxErrorLine(code: string): number | undefined {
  const lines = code.split("\n");
  let lo = 1;
  let hi = lines.length;
  const parses = (n: number) => {
    try {
      new AsyncFunction(lines.slice(0, n).join("\n") + "\n}}}}}}}}}}".slice(0, 0));
      return true;
    } catch (e) {
      // an unterminated block is not the error we look for
      return !(e instanceof SyntaxError) || /Unexpected end of input/.test((e as Error).message);
    }
  };
  if (parses(hi)) return undefined;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (parses(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export { ScriptError, ERRNO };
