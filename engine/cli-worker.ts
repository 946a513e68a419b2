/**
 * The CLI's engine thread: runs one script and streams its output lines to the main thread,
 * which owns stdout and the time budget. Running here (a worker_thread) is what lets the CLI stop
 * a runaway script (`while (true) {}`) instead of hanging with it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { Session, runScript } from "./script/runtime.ts";
import { lineMapFromSourceMap } from "./script/sourcemap.ts";
import { FdNames, formatEvent } from "./trace/format.ts";
import type { TraceEvent } from "./trace/events.ts";

export interface CliJob {
  code: string;
  mappings?: string;
  machine: string;
  json: boolean;
  file: string;
}

export type CliMessage = { type: "out"; text: string } | { type: "done"; result: Awaited<ReturnType<typeof runScript>> };

const job = workerData as CliJob;
const port = parentPort!;
const out: string[] = [];
let lastFlush = performance.now();
const flush = () => {
  if (out.length) port.postMessage({ type: "out", text: out.join("\n") + "\n" } satisfies CliMessage);
  out.length = 0;
  lastFlush = performance.now();
};
/** Batch lines, but never hold them long: a script that then loops forever still shows its output. */
const maybeFlush = (e: TraceEvent) => {
  if (out.length >= 512 || e.k === "script.console" || performance.now() - lastFlush > 50) flush();
};
const fds = new FdNames();
const sink = job.json
  ? (e: TraceEvent) => {
      out.push(JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? "0x" + v.toString(16) : v)));
      maybeFlush(e);
    }
  : (e: TraceEvent) => {
      fds.observe(e);
      const line = formatEvent(e, fds.paths);
      if (line !== null) out.push(line);
      maybeFlush(e);
    };

const session = new Session({ iommu: job.machine }, sink);
const mapLine = job.mappings ? lineMapFromSourceMap({ mappings: job.mappings }) : undefined;
const result = await runScript(session, job.code, { name: job.file, console: () => {}, mapLine });
flush();
port.postMessage({ type: "done", result } satisfies CliMessage);
