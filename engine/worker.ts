/**
 * The engine in a module Web Worker: runs one script per "run" request, streaming its events in
 * batches. A runaway script blocks this worker, never the page: the app terminates the worker
 * after its time budget and starts a new one.
 */
import { EVENT_BATCH, type EngineMessage, type EngineRequest } from "./protocol.ts";
import { Session, runScript } from "./script/runtime.ts";
import { lineMapFromSourceMap } from "./script/sourcemap.ts";
import type { TraceEvent } from "./trace/events.ts";

// The worker global, typed here so engine/ needs no DOM or WebWorker library.
declare const self: {
  postMessage(m: EngineMessage): void;
  onmessage: ((e: { data: EngineRequest }) => void) | null;
};
declare function setTimeout(fn: () => void, ms: number): unknown;
// Real time is the host's business (pacing), never the engine's: the engine sees simulated time only.
declare const performance: { now(): number };

self.onmessage = (e) => {
  const req = e.data;
  if (req.cmd === "ping") {
    self.postMessage({ type: "response", id: req.id, rc: 0, out: "pong" });
    return;
  }
  void run(req);
};

async function run(req: Extract<EngineRequest, { cmd: "run" }>): Promise<void> {
  let batch: TraceEvent[] = [];
  let flushQueued = false;
  let sent = 0;
  let pausedMs = 0;
  const flush = () => {
    flushQueued = false;
    if (!batch.length) return;
    sent += batch.length;
    self.postMessage({ type: "events", id: req.id, json: JSON.stringify(batch), pausedMs });
    batch = [];
  };
  // Pacing: at each asynchronous point of the script, wait until real time catches up with the
  // events already produced at the chosen rate.
  const rate = req.args.eventsPerSecond ?? 0;
  const start = performance.now();
  const pace = rate > 0
    ? () => {
        const due = start + ((sent + batch.length) / rate) * 1000;
        const wait = due - performance.now();
        if (wait < 4) return undefined;
        flush();
        return new Promise<void>((resolve) => setTimeout(() => {
          pausedMs += wait;
          resolve();
        }, wait));
      }
    : undefined;
  const sink = (ev: TraceEvent) => {
    batch.push(ev);
    if (batch.length >= EVENT_BATCH) flush();
    else if (!flushQueued) {
      // deliver what a slow script produced as soon as it yields to the event loop
      flushQueued = true;
      setTimeout(flush, 0);
    }
  };
  try {
    const session = new Session(req.args.config, sink);
    const mapLine = req.args.mappings ? lineMapFromSourceMap({ mappings: req.args.mappings }) : undefined;
    const out = await runScript(session, req.args.code, { name: req.args.name, console: () => {}, mapLine, pace });
    flush();
    self.postMessage({ type: "response", id: req.id, rc: 0, out });
  } catch (err) {
    flush();
    self.postMessage({ type: "response", id: req.id, rc: -1, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
}
