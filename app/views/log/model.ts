/**
 * The strace-style log: one line per event that engine/trace/format.ts formats (system calls,
 * DMA completions and faults, recorded faults, console output, engine bugs), exactly the text
 * the CLI prints, built incrementally as the trace grows. The app's own notices (timeouts, worker
 * restarts) are interleaved after the event that was last when they were posted.
 */
import { FdNames, formatEvent } from "../../../engine/trace/format.ts";
import type { AppState } from "../../store/index.ts";
import { Incremental } from "../common/incremental.ts";
import { lowerBound, type TraceEvent } from "../common/events.ts";

export type Notice = AppState["notices"][number];

export interface LogLine {
  seq: number;
  text: string;
  /** script line of the call, when the event carries one */
  line?: number;
  severity: "error" | "warn" | null;
  /** the word shown beside the icon: the errno, "FAULT", "BUG", … */
  badge: string;
}

/** Severity and badge of an event's line: never colour alone. */
function classify(e: TraceEvent): Pick<LogLine, "severity" | "badge"> {
  switch (e.k) {
    case "sys.call":
      return e.errno ? { severity: "error", badge: e.errno } : { severity: null, badge: "" };
    case "dma.fault":
      return { severity: "error", badge: "FAULT" };
    case "vtd.fault.record":
      return { severity: "warn", badge: "FRCD" };
    case "engine.bug":
      return { severity: "error", badge: "BUG" };
    case "script.console":
      return e.level === "error" ? { severity: "error", badge: "error" } : e.level === "warn" ? { severity: "warn", badge: "warn" } : { severity: null, badge: "" };
    default:
      return { severity: null, badge: "" };
  }
}

export class LogModel extends Incremental {
  lines: LogLine[] = [];
  /** lines with severity "error" */
  errors = 0;
  /** seq of each line, for binary search */
  private seqs: number[] = [];
  private fds = new FdNames();

  protected reset(): void {
    this.lines = [];
    this.errors = 0;
    this.seqs = [];
    this.fds = new FdNames();
  }

  protected add(e: TraceEvent): void {
    // observe first, as the CLI does: close(3) then prints without the path it closed
    this.fds.observe(e);
    const text = formatEvent(e, this.fds.paths);
    if (text === null) return;
    const line = "line" in e && typeof e.line === "number" ? e.line : undefined;
    const l: LogLine = { seq: e.seq, text, line, ...classify(e) };
    this.lines.push(l);
    this.seqs.push(e.seq);
    if (l.severity === "error") this.errors++;
  }

  /** How many lines have seq ≤ `seq`. */
  countUpTo(seq: number): number {
    return lowerBound(this.seqs, seq + 1);
  }
}

export type LogRow =
  | { kind: "event"; row: number; line: LogLine }
  | { kind: "notice"; row: number; notice: Notice; n: number };

/**
 * Lines and notices merged into rows without building the merged array: notice k sits after the
 * lines with seq ≤ its seq, so row numbers follow from counting (notices are few).
 */
export class LogRows {
  /** lines before notice k */
  private before: number[];
  readonly count: number;

  constructor(
    private readonly log: LogModel,
    private readonly notices: readonly Notice[],
  ) {
    this.before = notices.map((n) => log.countUpTo(n.seq));
    this.count = log.lines.length + notices.length;
  }

  at(row: number): LogRow {
    let passed = 0;
    for (let k = 0; k < this.notices.length; k++) {
      const r = this.before[k] + k;
      if (r === row) return { kind: "notice", row, notice: this.notices[k], n: k };
      if (r < row) passed++;
      else break;
    }
    return { kind: "event", row, line: this.log.lines[row - passed] };
  }

  /** The row of the last line with seq ≤ `seq` (-1: none). */
  rowOfSeq(seq: number): number {
    const li = this.log.countUpTo(seq) - 1;
    if (li < 0) return -1;
    let n = 0;
    while (n < this.before.length && this.before[n] <= li) n++;
    return li + n;
  }

  /** Every row as text, as the CLI would print it (notices marked). */
  text(): string {
    const out: string[] = [];
    for (let r = 0; r < this.count; r++) {
      const row = this.at(r);
      out.push(row.kind === "event" ? row.line.text : `-- ${row.notice.text}`);
    }
    return out.join("\n");
  }
}

/** The seq a row stands for: its event's, or for a notice the event it follows. */
export function rowSeq(row: LogRow): number {
  return row.kind === "event" ? row.line.seq : row.notice.seq;
}
