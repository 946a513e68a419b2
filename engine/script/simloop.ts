/**
 * The script's event loop in simulated time: how `await device.read()`, `await poll()`,
 * `await sleep()` and `await device.pageRequest()` wait while the rest of the script (and the
 * machine) goes on, deterministically, in the browser worker and on the command line alike.
 *
 * The design in four rules
 *  1. Engine work happens at the call. A DMA starts (and, when nothing needs to wait, finishes)
 *     inside the call, at the current simulated time; sleep() and poll() register their timers
 *     or wake-ups there. What waits is a *waiter*: a promise the engine settles from a timer or
 *     an engine event (a page response reaching the device, a fault queue becoming readable).
 *  2. Simulated time moves only when every piece of script code is blocked. The loop finds that
 *     moment with one host macrotask: a macrotask runs only after the microtask queue is empty,
 *     i.e. after every `await` that could go on has gone on. At that moment, with waiters
 *     pending, it fires the scheduler's next timer(s) (Scheduler.runUntil(nextAt)) and looks
 *     again after the next macrotask. Microtask order is fixed by the language, and the
 *     decisions are taken only at those quiet points, so the interleaving of script and
 *     machine is the same on every host and every run; which macrotask primitive the host has
 *     (setImmediate, MessageChannel, setTimeout) changes only how fast it goes.
 *  3. Pacing is not waiting: while the browser's pace hook holds the script back (`pacing` > 0)
 *     the loop lets real time pass but not simulated time, so a paced run produces the same
 *     events as an unpaced one.
 *  4. A deadlock is an error, not a hang. When everything is blocked on waiters and no timer is
 *     pending, nothing can ever settle them (only the script could, and it is blocked): every
 *     waiter rejects with a ScriptError naming what each one waits for. When the script itself
 *     is blocked on a promise that is not the engine's (`await new Promise(() => {})`), runScript
 *     reports that too (watch()).
 *
 * After the script ends the loop is closed: time stops, and waiters still pending (a DMA the
 * script never awaited) simply stay pending.
 */
import type { Machine } from "../machine.ts";
import { ScriptError } from "./marshal.ts";

/** Queue `fn` as a host macrotask (it runs after every pending microtask). */
export type Macrotask = (fn: () => void) => void;

interface HostTimers {
  setImmediate?: (fn: () => void) => unknown;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  MessageChannel?: new () => { port1: { onmessage: ((e: unknown) => void) | null }; port2: { postMessage(m: unknown): void } };
}

/**
 * The host's cheapest macrotask: setImmediate (Node), a MessageChannel (Web Workers: no 4 ms
 * clamp), else setTimeout(0). Without any of them, a long chain of microtasks stands in (an
 * approximation: code that needs more microtask turns than that would see time move early).
 */
export function hostMacrotask(): Macrotask {
  const g = globalThis as unknown as HostTimers;
  if (typeof g.setImmediate === "function") {
    const si = g.setImmediate;
    return (fn) => void si(fn);
  }
  if (typeof g.MessageChannel === "function") {
    const ch = new g.MessageChannel();
    const queue: (() => void)[] = [];
    ch.port1.onmessage = () => queue.shift()?.();
    return (fn) => {
      queue.push(fn);
      ch.port2.postMessage(0);
    };
  }
  if (typeof g.setTimeout === "function") {
    const st = g.setTimeout;
    return (fn) => void st(fn, 0);
  }
  return (fn) => {
    let n = 0;
    const spin = (): void => void (++n < 10_000 ? Promise.resolve().then(spin) : fn());
    spin();
  };
}

interface Waiter {
  readonly what: string;
  /** the script line that made the call, when known */
  readonly line: number | undefined;
  reject(e: unknown): void;
}

export class SimLoop {
  private readonly waiters = new Set<Waiter>();
  private pumping = false;
  /** host pace hooks in progress (rule 3) */
  pacing = 0;
  /** the script has ended: time stops */
  private closed = false;
  /** runScript's watch on the script itself (rule 4) */
  private main: { pending: boolean; stuck: (e: ScriptError) => void } | null = null;
  /** quiet points at which the loop moved time, for tests and benchmarks */
  steps = 0;

  constructor(
    private readonly machine: Machine,
    private readonly macrotask: Macrotask = hostMacrotask(),
  ) {}

  /**
   * A waiter: `start` runs now (engine work at the call, rule 1) with functions that settle the
   * promise; it may return a function that cancels its timers and registrations, called when the
   * waiter is rejected. `what` names it in a deadlock error ("device.read of 0x1000 by vfio0").
   */
  wait<T>(what: string, line: number | undefined, start: (resolve: (v: T) => void, reject: (e: unknown) => void) => (() => void) | void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let cancel: (() => void) | void = undefined;
      const w: Waiter = {
        what,
        line,
        reject: (e) => {
          if (done) return;
          done = true;
          this.waiters.delete(w);
          if (cancel) cancel();
          reject(e);
        },
      };
      this.waiters.add(w);
      try {
        cancel = start((v) => {
          if (done) return;
          done = true;
          this.waiters.delete(w);
          resolve(v);
        }, w.reject);
      } catch (e) {
        w.reject(e);
        return;
      }
      if (!done) this.pump();
    });
  }

  /** Waiters not yet settled. */
  get pending(): number {
    return this.waiters.size;
  }

  /** Run `p` (a host pace hook's promise) without letting simulated time move meanwhile. */
  async paced(p: Promise<void> | undefined): Promise<void> {
    if (!p) return;
    this.pacing++;
    try {
      await p;
    } finally {
      this.pacing--;
    }
  }

  /**
   * Watch the script's own promise: the result rejects with a ScriptError if the script ever
   * waits at a quiet point with no engine waiter pending (it awaits something the simulation
   * cannot provide); it never resolves.
   */
  watch(script: Promise<unknown>): Promise<never> {
    return new Promise<never>((_resolve, reject) => {
      const main = { pending: true, stuck: (e: ScriptError) => reject(e) };
      this.main = main;
      const done = () => {
        main.pending = false;
        if (this.main === main) this.main = null;
      };
      script.then(done, done);
      this.pump();
    });
  }

  /** The script ended: stop moving time. */
  close(): void {
    this.closed = true;
    this.main = null;
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    const step = (): void => {
      const main = this.main;
      if (this.closed || (!this.waiters.size && !main?.pending)) {
        this.pumping = false;
        return;
      }
      if (this.pacing) {
        this.macrotask(step);
        return;
      }
      const { sched, clock } = this.machine;
      if (!this.waiters.size) {
        // the script is blocked, but on nothing the engine knows about
        this.pumping = false;
        this.main = null;
        main!.stuck(new ScriptError(
          `the script is waiting (t=${clock.now} ns) for a promise the simulation cannot settle: ` +
          "only promises from device.read/write/pageRequest, poll and sleep move simulated time",
        ));
        return;
      }
      const next = sched.nextAt;
      if (next === undefined) {
        this.pumping = false;
        this.deadlock();
        return;
      }
      this.steps++;
      sched.runUntil(next);
      this.macrotask(step);
    };
    this.macrotask(step);
  }

  /** Rule 4: everything waits and nothing is scheduled. */
  private deadlock(): void {
    const list = [...this.waiters];
    const what = list.map((w) => (w.line === undefined ? w.what : `${w.what} (line ${w.line})`));
    const text =
      `deadlock at t=${this.machine.clock.now} ns: the script waits for ${what.join("; ")}, ` +
      "and nothing can happen any more (no device, timer or interrupt is pending; only the script could act, and it is waiting)";
    for (const w of list) {
      const e = new ScriptError(text);
      (e as ScriptError & { line?: number }).line = w.line;
      w.reject(e);
    }
  }
}
