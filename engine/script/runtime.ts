/**
 * The script runtime: the globals of ../shared/SCRIPT-API.md (open, ioctl, mmap, hw, …, every
 * uAPI constant and errno) bound to one simulated kernel and machine, and the runner that
 * executes a script's JavaScript as an async function body (top-level await works).
 *
 * The same runtime serves the CLI (in process) and the browser worker: it needs no DOM and no
 * Node API. Time is simulated: DMA latency and sleep() advance the machine's clock; nothing
 * reads the wall clock, and Math.random inside scripts is a seeded generator.
 *
 * Asynchronous calls (device.read/write/pageRequest, poll, sleep) start their engine work at the
 * call and return waiters of the session's SimLoop (simloop.ts), which moves simulated time only
 * when all script code is blocked, and reports a deadlock as a ScriptError.
 */
import { ERRNO, STRERROR, err, errnoName, isErr, type Err, type ErrnoName } from "../uapi/errno.ts";
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
import type { AtsFaultInfo } from "../hw/ats.ts";
import { SimLoop } from "./simloop.ts";
import type { TraceEvent } from "../trace/events.ts";
import { encodeArg, encodeObject, ScriptError, toInteger, toScript, type Scratch } from "./marshal.ts";
import { makeGuestFactory, type GuestGlobals } from "./guest.ts";

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

/**
 * A DMA the IOMMU could not translate (and that is not recoverable), or whose page request was
 * answered with other than Success: then `reason` is 0 and `responseCode` is the PRG response
 * code the device received (1 Invalid Request, 0xF Response Failure).
 */
export class DmaFault extends Error {
  readonly reason: number;
  readonly reasonName: string;
  readonly iova: number | bigint;
  readonly pasid: number | undefined;
  readonly rid: number;
  readonly write: boolean;
  /** the PRG response code that ended the DMA (ATS + PRI devices), else undefined */
  readonly responseCode: number | undefined;
  constructor(f: DmaFaultInfo & { responseCode?: number }) {
    const pasid = f.pasid === undefined ? "" : ` PASID ${f.pasid}`;
    const what = f.reason ? `faulted: reason 0x${f.reason.toString(16)} (${f.reasonName})` : `failed: ${f.reasonName}`;
    super(`DMA ${f.write ? "write" : "read"} of IOVA 0x${f.iova.toString(16)} by ${hex16(f.rid)}${pasid} ${what}`);
    this.name = "DmaFault";
    this.responseCode = f.responseCode;
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
  /** the script's event loop in simulated time (simloop.ts) */
  readonly loop: SimLoop;
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
    this.loop = new SimLoop(this.machine);
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

  const loop = session.loop;
  /**
   * An asynchronous call: `op` (started at the call) settles later; the script continues after
   * the host's pace hook (which never moves simulated time). The returned promise is marked
   * handled, so a call the script never awaits cannot crash the host with an unhandled rejection.
   */
  const settle = <T>(op: Promise<T>): Promise<T> => {
    op.catch(() => {});
    const p = (async () => {
      await loop.paced(opts.pace?.());
      return op;
    })();
    p.catch(() => {});
    return p;
  };
  const hex = (v: number) => `0x${v.toString(16)}`;

  /** One DMA of `dev`: through its ATS engine when the driver enabled ATS, else untranslated-only (dma.ts). */
  const dma = (dev: SimDevice, iova: number, length: number, pasid: number, data: Uint8Array | null): Promise<Uint8Array | null> => {
    const fn = machine.pcie.get(dev.rid);
    const write = data !== null;
    if (!fn || !fn.atsEnabled) {
      const r = dmaCall(() => (write ? dmaWrite(machine, machine.iommu.hw, dev, iova, data, pasid) : dmaRead(machine, machine.iommu.hw, dev, iova, length, pasid)));
      machine.sched.runDue();
      if (r !== null && !(r instanceof Uint8Array)) return Promise.reject(new DmaFault(r));
      return Promise.resolve(r);
    }
    // ATS (+ PRI when the device's context is in recoverable-fault mode: its domain has a fault queue)
    const usePri = kernel.iopf.hasHandler(dev, pasid);
    const what = `device.${write ? "write" : "read"} of ${hex(iova)}${pasid >= 0 ? ` PASID ${pasid}` : ""} by ${dev.path} (waiting for a page response)`;
    const p = loop.wait<Uint8Array | null>(what, opts.lineOf(), (resolve, reject) => {
      dmaCall(() => fn.dma({ iova, length, pasid, write, data: data ?? undefined, usePri }, (r) => {
        if (r.ok) resolve(r.data);
        else reject(new DmaFault(r.fault as AtsFaultInfo));
      }));
    });
    machine.sched.runDue();
    return p;
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
        read(iova: unknown, length: unknown, o?: unknown): Promise<Uint8Array> {
          const op = (() => {
            try {
              return dma(dev, dmaIova(iova), num(length, "DMA length"), dmaOpts(o), null) as Promise<Uint8Array>;
            } catch (e) {
              return Promise.reject(e);
            }
          })();
          return settle(op);
        },
        write(iova: unknown, bytes: unknown, o?: unknown): Promise<void> {
          const op = (() => {
            try {
              if (!(bytes instanceof Uint8Array)) throw new ScriptError("device.write: bytes must be a Uint8Array");
              return dma(dev, dmaIova(iova), bytes.length, dmaOpts(o), bytes).then(() => undefined);
            } catch (e) {
              return Promise.reject(e);
            }
          })();
          return settle(op);
        },
        /**
         * A raw PCIe page request (SCRIPT-API.md): resolves with the PRG response code the device
         * receives for a request that closes its group, or null (a request that does not close
         * its group, once it reached the IOMMU; a Stop Marker; a request the IOMMU dropped or
         * blocked). Extensions: `exec`, `priv` (the request's Execute / Privileged bits).
         */
        pageRequest(req: unknown): Promise<number | null> {
          const op = (() => {
            try {
              return pageRequest(dev, req);
            } catch (e) {
              return Promise.reject(e);
            }
          })();
          return settle(op);
        },
      });
    },
  };

  const pageRequest = (dev: SimDevice, req: unknown): Promise<number | null> => {
    if (!dev.pri) throw new ScriptError(`${dev.path} has no PRI: it cannot send page requests`);
    const fn = machine.pcie.get(dev.rid);
    if (!fn || !fn.priEnabled) throw new ScriptError(`${dev.path}: PRI is not enabled in its config space (the IOMMU driver enables it at probe, with ATS)`);
    if (fn.priRf) throw new ScriptError(`${dev.path}: PRI is stopped: a Response Failure was received (PCI_PRI_STATUS_RF)`);
    if (typeof req !== "object" || req === null) throw new ScriptError("device.pageRequest: the argument must be an object like { iova, group, last, read, write }");
    const r = req as Record<string, unknown>;
    const known = new Set(["iova", "pasid", "group", "last", "read", "write", "exec", "priv"]);
    for (const k of Object.keys(r)) if (!known.has(k)) throw new ScriptError(`device.pageRequest: unknown field '${k}' (fields: ${[...known].join(", ")})`);
    const bool = (k: string, required: boolean): boolean => {
      const v = r[k];
      if (v === undefined && !required) return false;
      if (typeof v !== "boolean") throw new ScriptError(`device.pageRequest: '${k}' must be true or false, got ${String(v)}`);
      return v;
    };
    const addr = dmaIova(r.iova);
    const group = num(r.group, "device.pageRequest group");
    if (group < 0 || group > 0x1ff) throw new ScriptError(`device.pageRequest: group ${group} is not a 9-bit Page Request Group Index (0..511)`);
    const pasid = r.pasid === undefined ? -1 : num(r.pasid, "device.pageRequest pasid");
    if (pasid >= 0 && pasid >= 2 ** dev.pasidBits) throw new ScriptError(`device.pageRequest: PASID ${pasid} is beyond ${dev.path}'s ${dev.pasidBits}-bit PASID width`);
    const last = bool("last", true);
    const read = bool("read", true);
    const write = bool("write", true);
    const exec = bool("exec", false);
    const priv = bool("priv", false);
    const closes = last && (read || write);
    const page = addr - (addr % 4096); // the message carries address bits 63:12
    const what = `the response to page request group ${group}${pasid >= 0 ? ` PASID ${pasid}` : ""} of ${dev.path}`;
    const p = loop.wait<number | null>(what, opts.lineOf(), (resolve) => {
      const trace = machine.trace;
      trace.line = opts.lineOf();
      try {
        const seq = trace.nextSeq; // the pri.request event: the cmd_seq of everything it causes
        trace.within(seq, () =>
          fn.sendPageRequest(
            { addr: page, pasid, prgi: group, last, read, write, exec, priv },
            seq,
            (fate) => {
              if (!closes || fate !== "queued") resolve(null);
            },
            (code) => resolve(code),
          ),
        );
      } finally {
        trace.line = undefined;
      }
    });
    return p;
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

  const globals: Record<string, unknown> = {
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
    poll: (fd: unknown, timeout_ns?: unknown): Promise<boolean> => {
      const op = (() => {
        try {
          const fdn = num(fd, "poll fd");
          const f = kernel.fds.get(fdn);
          if (!f) throw new ErrnoError(`poll(${fdn})`, err("EBADF", "do_poll", `fd ${fdn} is not open`));
          const timeout = timeout_ns === undefined ? undefined : num(timeout_ns, "poll timeout");
          if (timeout !== undefined && timeout < 0) throw new ScriptError(`poll(${fdn}): a negative timeout (${timeout}) means "forever" in poll(2); leave it out instead`);
          if (!(f instanceof FaultFile)) {
            if (timeout === undefined) throw new ScriptError(`poll(${fdn}) would wait forever: ${f.path} never becomes readable`);
          } else if (f.readable()) return Promise.resolve(true);
          return loop.wait<boolean>(`poll(${fdn}${timeout === undefined ? "" : `, ${timeout}`}) on ${f.path}`, opts.lineOf(), (resolve) => {
            const stopTimer = timeout === undefined ? undefined : machine.sched.after(timeout, () => {
              stopWait?.();
              resolve(false);
            });
            const stopWait = f instanceof FaultFile ? f.pollWait(() => {
              stopTimer?.();
              resolve(true);
            }) : undefined;
            return () => {
              stopTimer?.();
              stopWait?.();
            };
          });
        } catch (e) {
          return Promise.reject(e);
        }
      })();
      return settle(op);
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
    sleep: (ns: unknown): Promise<void> => {
      const op = (() => {
        try {
          const t = num(ns, "sleep ns");
          if (t < 0) throw new ScriptError(`sleep(${t}): time cannot go backwards`);
          return loop.wait<void>(`sleep(${t})`, opts.lineOf(), (resolve) => machine.sched.after(t, () => resolve()));
        } catch (e) {
          return Promise.reject(e);
        }
      })();
      return settle(op);
    },
    strerror: (e: unknown) => {
      const nm = typeof e === "number" ? errnoName(e) : (e as ErrnoName);
      return nm && nm in STRERROR ? STRERROR[nm] : `Unknown error ${String(e)}`;
    },
  };
  // guest({ iommufd, ioas, size, … }): a guest's RAM and first-stage page table, built only from
  // the globals above (engine/script/guest.ts)
  globals.guest = makeGuestFactory(globals as unknown as GuestGlobals);
  return globals;
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
  let names = Object.keys(globals).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
  if (trace.on) trace.emit("script.start", { name: opts.name ?? "script" });
  let fn: (...a: unknown[]) => Promise<unknown>;
  try {
    // A script's own top-level `const guest = …` (or any other global's name) wins over the
    // global, as a declaration in a module would: drop that parameter and compile again.
    for (;;) {
      try {
        fn = new AsyncFunction(...names, `"use strict";${code}\n//# sourceURL=${SCRIPT_URL}`);
        break;
      } catch (e) {
        const m = e instanceof SyntaxError ? /(?:Identifier '([\w$]+)' has already been declared|redeclaration of (?:formal parameter |let |const )?([\w$]+))/.exec(e.message) : null;
        const dup = m?.[1] ?? m?.[2];
        if (!dup || !names.includes(dup)) throw e;
        names = names.filter((n) => n !== dup);
      }
    }
  } catch (e) {
    const err = e as Error;
    // V8 does not say where a syntax error is for `new Function`; ask for it by name
    const result: RunResult = { ok: false, error: { name: err.name, message: err.message, line: syntaxErrorLine(code) } };
    if (trace.on) trace.emit("script.end", { ok: false, error: `${err.name}: ${err.message}`, line: result.error!.line });
    return result;
  }
  const loop = session.loop;
  try {
    const main = fn(...names.map((n) => globals[n]));
    // the script's end, or a ScriptError if it waits for something the simulation cannot settle
    await Promise.race([main, loop.watch(main)]);
    loop.close();
    session.machine.sched.runDue();
    if (trace.on) trace.emit("script.end", { ok: true });
    return { ok: true };
  } catch (e) {
    loop.close();
    const err = e instanceof Error ? e : new Error(String(e));
    const pos = scriptPosition(err.stack, LINE_OFFSET);
    // a deadlock's error is made by the loop, outside the script: it carries its waiter's line
    const line = pos ? mapLine(pos.line) : (err as { line?: number }).line;
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
