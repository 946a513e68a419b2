/**
 * The nested (2D) walk of one translation as a grid (engine/hw/vtd/nested.ts): rows are the
 * guest's first-stage levels — the table FSPTPTR points to (PML4, or PML5 with a 5-level guest)
 * down to the PT, then the final GPA — and columns are the host's second-stage levels PML4…PT
 * that translate each row's GPA, plus the guest entry read from the table once it is translated.
 * A cold 4 × 4 walk fills every cell: 4 s2 reads then 1 s1 read per guest level, and 4 s2 reads
 * for the final GPA, 24 in all.
 *
 *   row (fsLevel)  | host PML4 | PDPT | PD | PT | guest entry
 *   4  PML4 table  |     1     |   2  |  3 |  4 |     5
 *   3  PDPT        |     6     |   7  |  8 |  9 |    10
 *   2  PD          |    11     |  12  | 13 | 14 |    15
 *   1  PT          |    16     |  17  | 18 | 19 |    20
 *   0  final GPA   |    21     |  22  | 23 | 24 |
 *
 * Cells are numbered in the order the engine's `vtd.walk.level` events report the reads; cells no
 * read reached say why: a cache had the answer (the IOTLB: everything; the first-stage PWC: every
 * row above the level it hit, and the second-stage walk of the table it points to; the
 * second-stage PWC: the host levels above its hit in that row), a large page made them
 * unnecessary, the walk faulted before them, or (at the cursor) they are still to come.
 * Pure: derived from a Translation's trail, no DOM.
 */
import type { U64 } from "../common/events.ts";
import type { LevelStep, PwcProbe, Translation } from "./model.ts";

export type CellStatus =
  | "read" // its entry was read and the walk went on
  | "leaf" // its entry was read and ended its stage's walk (PTE or a large page)
  | "fault" // its entry was read and the walk faulted on it
  | "fspwc" // skipped: the first-stage PWC had the translated next table
  | "pwc" // skipped: the second-stage PWC had this host level's entry
  | "iotlb" // skipped: the IOTLB had the whole translation
  | "large" // not needed: a large page (guest or host) above ended that walk
  | "pending" // not read yet: the cursor is inside the walk
  | "unreached"; // not read: the translation ended before it

/** Statuses of cells skipped because a cache had the answer. */
export const CACHE_SKIPS: ReadonlySet<CellStatus> = new Set(["fspwc", "pwc", "iotlb"]);

export interface NestedRead {
  /** 1-based position among the walk's memory reads */
  n: number;
  step: LevelStep;
}

export interface GridCell {
  /** the guest level whose table this row fetches (5..1), 0 for the final GPA */
  row: number;
  /** host level 4..1 for second-stage cells, 0 for the guest (first-stage) entry */
  col: number;
  stage: "s1" | "s2";
  status: CellStatus;
  /** the reads made in this cell: usually one; an A/D update may translate a table twice */
  reads: NestedRead[];
  /** the entry index this cell uses, when known (from the read, or from the row's address) */
  index: number | null;
}

export interface GridRow {
  fsLevel: number;
  /** "PML4 table", …, "final page" */
  name: string;
  /** the GPA this row's second-stage walk translates, when known */
  gpa: U64 | null;
  cells: GridCell[];
}

export interface NestedWalk {
  /** first-stage levels (4, or 5 with FLPM = 01) */
  fsLevels: number;
  /** second-stage levels */
  ssLevels: number;
  rows: GridRow[];
  /** every memory read of the walk, in order */
  reads: NestedRead[];
  /** the deepest first-stage PWC hit (it skipped everything above it) */
  fspwcHit: PwcProbe | null;
  /** a fault: its reason, and the cell of the read it faulted on (null: before any read of its row) */
  fault: { reason: number; name: string; row: number | null; col: number | null } | null;
  /** the translation's result: GPA, HPA, sizes */
  done: { gpa: U64 | null; pa: U64; size: number; fsSize: number | null; ssSize: number | null } | null;
}

const FS_TABLE_NAMES: Record<number, string> = { 5: "PML5 table", 4: "PML4 table", 3: "PDPT", 2: "PD", 1: "PT", 0: "final page" };

/** `data-grid` word of a read: "s2:fsLevel:level" or "s1:level". */
export function gridWord(s: LevelStep): string {
  return s.stage === "s2" ? `s2:${s.fsLevel ?? 0}:${s.level}` : `s1:${s.level}`;
}

/** The 9-bit index of `addr` at page-table `level` (1 = PT). */
function indexAt(addr: bigint, level: number): number {
  return Number((addr >> BigInt(12 + 9 * (level - 1))) & 511n);
}

/** The grid of a nested translation. `inProgress`: the cursor is inside it (unread cells are pending). */
export function nestedWalk(t: Translation, inProgress: boolean): NestedWalk {
  const steps = t.levels;
  const s1 = steps.filter((s) => s.stage === "s1");
  const s2 = steps.filter((s) => s.stage === "s2");
  // a 5-level guest probes (and reads) level 5; 4 otherwise
  const fsLevels = Math.max(4, ...s1.map((s) => s.level), ...s2.map((s) => s.fsLevel ?? 0), ...t.fspwc.map((p) => p.level));
  const ssLevels = Math.max(4, ...s2.map((s) => s.level));
  const reads: NestedRead[] = steps.map((step, i) => ({ n: i + 1, step }));

  // second-stage PWC probes belong to the row of the s2 read that follows them
  const pwcHitOfRow = new Map<number, PwcProbe>();
  let probes: PwcProbe[] = [];
  for (const item of t.trail) {
    if (item.kind === "pwc") probes.push(item.probe);
    else if (item.kind === "step" && item.step.stage === "s2") {
      const row = item.step.fsLevel ?? 0;
      const hit = probes.find((p) => p.hit);
      if (hit && !pwcHitOfRow.has(row)) pwcHitOfRow.set(row, hit);
      probes = [];
    }
  }
  const fspwcHit = t.fspwc.find((p) => p.hit) ?? null;
  const last = steps[steps.length - 1];
  const failed = !!t.fault || (!!t.atsDone && t.atsDone.status === "success" && t.atsDone.perm === 0);
  const ended = !inProgress;
  const s1Leaf = s1.find((s) => s.leaf && !(failed && s === last));
  const iova = t.iova;

  const rows: GridRow[] = [];
  for (let fsLevel = fsLevels; fsLevel >= 0; fsLevel--) {
    const rowS2 = s2.filter((s) => (s.fsLevel ?? 0) === fsLevel);
    const rowS1 = s1.filter((s) => s.level === fsLevel);
    let gpaVal: U64 | null = rowS2[0]?.gpa ?? rowS1[0]?.tableGpa ?? null;
    if (gpaVal === null && fspwcHit && fsLevel === fspwcHit.level - 1) gpaVal = fspwcHit.tableGpa ?? null;
    if (gpaVal === null && fsLevel === 0) gpaVal = t.done?.gpa ?? null;
    const gpa = gpaVal === null ? null : BigInt(gpaVal);
    const pwcHit = pwcHitOfRow.get(fsLevel);
    const s2Leaf = rowS2.find((s) => s.leaf);
    /** why a cell of this row without a read was not read */
    const skipped = (stage: "s1" | "s2", col: number): CellStatus => {
      if (t.iotlb?.hit && !steps.length) return "iotlb";
      if (fspwcHit && (fsLevel >= fspwcHit.level || (fsLevel === fspwcHit.level - 1 && stage === "s2"))) return "fspwc";
      if (s1Leaf && fsLevel >= 1 && fsLevel < s1Leaf.level) return "large";
      if (stage === "s2" && s2Leaf && col < s2Leaf.level) return "large";
      if (stage === "s2" && pwcHit && col >= pwcHit.level && rowS2.length) return "pwc";
      return ended || failed ? "unreached" : "pending";
    };
    const cells: GridCell[] = [];
    for (let col = ssLevels; col >= 1; col--) {
      const cr = reads.filter((r) => r.step.stage === "s2" && (r.step.fsLevel ?? 0) === fsLevel && r.step.level === col);
      cells.push({
        row: fsLevel, col, stage: "s2", reads: cr,
        status: cr.length ? statusOfRead(cr, last, failed) : skipped("s2", col),
        index: cr.length ? cr[0].step.index : gpa !== null ? indexAt(gpa, col) : null,
      });
    }
    if (fsLevel >= 1) {
      const cr = reads.filter((r) => r.step.stage === "s1" && r.step.level === fsLevel);
      cells.push({
        row: fsLevel, col: 0, stage: "s1", reads: cr,
        status: cr.length ? statusOfRead(cr, last, failed) : skipped("s1", 0),
        index: cr.length ? cr[0].step.index : indexAt(iova, fsLevel),
      });
    }
    rows.push({ fsLevel, name: FS_TABLE_NAMES[fsLevel] ?? `level ${fsLevel}`, gpa: gpaVal, cells });
  }

  let fault: NestedWalk["fault"] = null;
  if (t.fault) {
    const faultCell = last ? rows.flatMap((r) => r.cells).find((c) => c.reads.some((r) => r.step === last)) : undefined;
    fault = { reason: t.fault.reason, name: t.fault.name, row: faultCell?.row ?? null, col: faultCell?.col ?? null };
  }
  const done = t.done
    ? { gpa: t.done.gpa ?? null, pa: t.done.pa, size: t.done.size, fsSize: t.done.fsSize ?? null, ssSize: t.done.ssSize ?? null }
    : t.iotlb?.hit && t.complete ? { gpa: null, pa: t.complete.pa, size: t.iotlb.size, fsSize: null, ssSize: null } : null;
  return { fsLevels, ssLevels, rows, reads, fspwcHit, fault, done };
}

function statusOfRead(cr: NestedRead[], last: LevelStep | undefined, failed: boolean): CellStatus {
  const step = cr[cr.length - 1].step;
  if (failed && step === last) return "fault";
  return step.leaf ? "leaf" : "read";
}

/** `data-grid`: every read of the walk in order. */
export function gridAttr(n: NestedWalk | null): string {
  return n ? n.reads.map((r) => gridWord(r.step)).join(",") : "";
}
