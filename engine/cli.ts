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
import { Session, runScript } from "./script/runtime.ts";
import { MODELS } from "./hw/index.ts";
import { FdNames, formatEvent } from "./trace/format.ts";
import { lineMapFromSourceMap } from "./script/sourcemap.ts";
import type { TraceEvent } from "./trace/events.ts";

const USAGE = `usage: npm run --silent cli -- run FILE [--machine NAME] [--json]
  FILE            a script (.js or .ts) written against the script API
  --machine NAME  IOMMU model: ${Object.keys(MODELS).join(", ")} (default vtd)
  --json          print every engine event as one JSON object per line`;

function jsonLine(e: TraceEvent): string {
  return JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? "0x" + v.toString(16) : v));
}

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
  while (args.length) {
    const a = args.shift()!;
    if (a === "--json") json = true;
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
  let mapLine: ((l: number) => number) | undefined;
  if (/\.[cm]?ts$/.test(file)) {
    try {
      const out = transformSync(source, { loader: "ts", sourcemap: "external", sourcefile: file, format: "esm", target: "es2022" });
      code = out.code;
      mapLine = lineMapFromSourceMap(JSON.parse(out.map));
    } catch (e) {
      const m = /:(\d+):(\d+):/.exec((e as Error).message);
      process.stderr.write(`${file}${m ? `:${m[1]}` : ""}: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}\n`);
      return 1;
    }
  }
  const fds = new FdNames();
  const out: string[] = [];
  const flush = () => {
    if (out.length) process.stdout.write(out.join("\n") + "\n");
    out.length = 0;
  };
  const sink = json
    ? (e: TraceEvent) => {
        out.push(jsonLine(e));
        if (out.length > 512) flush();
      }
    : (e: TraceEvent) => {
        fds.observe(e);
        const line = formatEvent(e, fds.paths);
        if (line !== null) out.push(line);
        if (out.length > 512) flush();
      };
  const session = new Session({ iommu: machine }, sink);
  const result = await runScript(session, code, { name: file, console: () => {}, mapLine });
  flush();
  if (!result.ok) {
    const e = result.error!;
    process.stderr.write(`${file}${e.line ? `:${e.line}` : ""}: ${e.engineBug ? "" : "uncaught "}${e.name}: ${e.message}\n`);
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`internal error: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
