/**
 * The command line: run a script headless on the same engine the browser uses.
 *
 *   npm run --silent cli -- run FILE [--machine NAME] [--json]
 *
 * Prints an strace-like log (or, with --json, one event per line), and exits 0 when the script
 * ran to its end, 1 when it threw (the error and FILE:LINE on stderr), 2 for a usage error or an
 * unreadable file. TypeScript scripts are transpiled with esbuild (types are erased, not checked).
 */
import { readFileSync } from "node:fs";
import { transformSync } from "esbuild";
import { Worker } from "node:worker_threads";
import { MODELS } from "./hw/index.ts";
import type { CliJob, CliMessage } from "./cli-worker.ts";

const USAGE = `usage: npm run --silent cli -- run FILE [--machine NAME] [--json] [--timeout SECONDS]
  FILE              a script (.js or .ts) written against the script API
  --machine NAME    IOMMU model: ${Object.keys(MODELS).join(", ")} (default vtd)
  --json            print every engine event as one JSON object per line
  --timeout SECONDS stop a script that runs longer than this (default 60; a runaway loop)`;

async function main(argv: string[]): Promise<number> {
  const args = argv.slice();
  if (args[0] !== "run") {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  args.shift();
  let file: string | undefined;
  let machine = "vtd";
  let json = false;
  let timeout = 60;
  while (args.length) {
    const a = args.shift()!;
    if (a === "--json") json = true;
    else if (a === "--timeout") {
      const t = Number(args.shift());
      if (!(t > 0)) {
        process.stderr.write(`--timeout needs a number of seconds\n${USAGE}\n`);
        return 2;
      }
      timeout = t;
    }
    else if (a === "--machine") {
      const m = args.shift();
      if (!m || !(m in MODELS)) {
        process.stderr.write(`unknown machine '${m ?? ""}' (known: ${Object.keys(MODELS).join(", ")})\n${USAGE}\n`);
        return 2;
      }
      machine = m;
    } else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    } else if (!file && !a.startsWith("--")) file = a;
    else {
      process.stderr.write(`unexpected argument '${a}'\n${USAGE}\n`);
      return 2;
    }
  }
  if (!file) {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    process.stderr.write(`cannot read ${file}: ${(e as Error).message}\n`);
    return 2;
  }
  let code = source;
  let mappings: string | undefined;
  if (/\.[cm]?ts$/.test(file)) {
    try {
      const out = transformSync(source, { loader: "ts", sourcemap: "external", sourcefile: file, format: "esm", target: "es2022" });
      code = out.code;
      mappings = (JSON.parse(out.map) as { mappings: string }).mappings;
    } catch (e) {
      const m = /:(\d+):(\d+):/.exec((e as Error).message);
      process.stderr.write(`${file}${m ? `:${m[1]}` : ""}: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}\n`);
      return 1;
    }
  }
  // The engine runs in a worker thread so a runaway script can be stopped (and the file is untouched).
  const job: CliJob = { code, mappings, machine, json, file };
  const worker = new Worker(new URL("./cli-thread.mjs", import.meta.url), { workerData: job });
  return await new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate().then(() => resolve(code));
    };
    const timer = setTimeout(() => {
      process.stderr.write(`${file}: stopped after ${timeout} s: the script did not finish (a runaway loop?). Use --timeout to allow longer.\n`);
      finish(1);
    }, timeout * 1000);
    worker.on("message", (m: CliMessage) => {
      if (m.type === "out") {
        process.stdout.write(m.text);
        return;
      }
      const r = m.result;
      if (!r.ok) {
        const e = r.error!;
        process.stderr.write(`${file}${e.line ? `:${e.line}` : ""}: ${e.engineBug ? "" : "uncaught "}${e.name}: ${e.message}\n`);
        finish(1);
      } else finish(0);
    });
    worker.on("error", (e) => {
      process.stderr.write(`internal error in the engine thread: ${e.stack ?? e}\n`);
      finish(1);
    });
    worker.on("exit", () => finish(1));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`internal error: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
