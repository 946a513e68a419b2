/**
 * The bridge between the store and the engine worker: starts runs, streams event batches into
 * the trace slice (outside React), and enforces the runaway budget. A script that does not finish
 * within the budget (`while (true) {}`) has its worker terminated and replaced; the page stays
 * responsive, the editor's text is untouched, and the log says what happened.
 */
import type { EngineMessage, EngineRequest } from "../../engine/protocol.ts";
import type { RunResult } from "../../engine/script/runtime.ts";
import type { TraceEvent } from "../../engine/trace/events.ts";
import { store, type AppState } from "../store/index.ts";

type StoreApi = { getState(): AppState };

export class EngineClient {
  private worker: Worker | null = null;
  private nextId = 1;
  /**
   * The run in flight: request id, the store's run id, its budget timer, when it started and how
   * long the worker has waited for pacing (waiting is not work: the budget is extended by it).
   */
  private current: { id: number; runId: number; timer: ReturnType<typeof setTimeout>; started: number; pausedMs: number; budget: number } | null = null;

  constructor(
    private readonly app: StoreApi = store,
    private readonly spawn: () => Worker = () => new Worker(new URL("../../engine/worker.ts", import.meta.url), { type: "module", name: "iommu-engine" }),
  ) {}

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = this.spawn();
    w.onmessage = (e: MessageEvent<EngineMessage>) => this.onMessage(e.data);
    w.onerror = (e) => {
      // a crash of the worker itself (not a script error): report it and start afresh next time
      this.app.getState().notice(`The engine worker crashed: ${e.message || "unknown error"}. It will be restarted on the next run.`);
      this.finish("error", { name: "EngineBug", message: e.message || "the engine worker crashed", engineBug: true });
      this.kill();
    };
    this.worker = w;
    return w;
  }

  private kill(): void {
    this.worker?.terminate();
    this.worker = null;
  }

  /** Run JavaScript (already transpiled). Any run in flight is stopped first. */
  run(code: string, mappings?: string): void {
    if (this.current) this.stop("Previous run stopped: a new run started.");
    const s = this.app.getState();
    const runId = s.startRun();
    const id = this.nextId++;
    const budget = s.budgetMs;
    this.current = { id, runId, timer: setTimeout(() => this.checkBudget(id), budget), started: performance.now(), pausedMs: 0, budget };
    const req: EngineRequest = {
      id, cmd: "run",
      args: { code, mappings, config: { iommu: s.machine.iommu, knobs: s.machine.knobs }, name: s.title || "script", eventsPerSecond: s.pace },
    };
    this.ensureWorker().postMessage(req);
  }

  /** The budget timer: stop a run whose engine work (elapsed minus pacing waits) exceeds it. */
  private checkBudget(id: number): void {
    const cur = this.current;
    if (!cur || cur.id !== id) return;
    const left = cur.started + cur.budget + cur.pausedMs - performance.now();
    if (left > 1) {
      cur.timer = setTimeout(() => this.checkBudget(id), left);
      return;
    }
    this.kill();
    this.current = null;
    const st = this.app.getState();
    const secs = (cur.budget / 1000).toFixed(1);
    st.notice(`Stopped after ${secs} s: the script did not finish within the time budget (a runaway loop?). The engine was restarted; your script is unchanged.`);
    st.finishRun("timeout", { name: "Timeout", message: `the script ran longer than the ${secs} s budget` });
  }

  /** Stop the run in flight (the Stop button): the worker is replaced. */
  stop(why = "Stopped by the user."): void {
    if (!this.current) return;
    clearTimeout(this.current.timer);
    this.current = null;
    this.kill();
    const st = this.app.getState();
    st.notice(why);
    st.finishRun("stopped");
  }

  get running(): boolean {
    return this.current !== null;
  }

  private finish(status: AppState["status"], error: AppState["error"]): void {
    if (this.current) clearTimeout(this.current.timer);
    this.current = null;
    this.app.getState().finishRun(status, error);
  }

  private onMessage(m: EngineMessage): void {
    if (!this.current || m.id !== this.current.id) return; // a stale run's leftovers
    if (m.type === "events") {
      this.current.pausedMs = m.pausedMs;
      this.app.getState().appendEvents(JSON.parse(m.json) as TraceEvent[]);
      return;
    }
    if (m.rc !== 0) {
      this.finish("error", { name: "EngineBug", message: m.error, engineBug: true });
      return;
    }
    const out = m.out as RunResult;
    this.finish(out.ok ? "done" : "error", out.ok ? null : out.error ?? null);
  }
}

export const engine = new EngineClient();
