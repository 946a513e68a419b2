/**
 * Share links and saved work. The URL hash carries the script and the machine settings,
 * compressed (lz-string, URL-safe) and versioned: `#v1/<data>`. A future format adds `v2` and a
 * migration from v1 here, so old links keep opening. Per-user preferences (theme, tab focus) stay
 * in localStorage and out of links.
 *
 * Saved work: the editor's text is written to localStorage as the user types; a shared link
 * never replaces saved work that differs from it without asking (the app shows a choice).
 */
import { compressToEncodedURIComponent, decompressFromEncodedURIComponent } from "lz-string";

export interface SharedState {
  code: string;
  machine: { iommu: string; knobs: Record<string, number> };
  title?: string;
}

const PREFIX = "v1/";

export function encodeShare(s: SharedState): string {
  const payload = { c: s.code, m: s.machine.iommu, k: s.machine.knobs, t: s.title ?? "" };
  return PREFIX + compressToEncodedURIComponent(JSON.stringify(payload));
}

export type DecodeResult = { ok: true; state: SharedState } | { ok: false; reason: string };

/** Parse a hash (with or without the leading #). */
export function decodeShare(hash: string): DecodeResult {
  const h = hash.replace(/^#/, "");
  if (!h) return { ok: false, reason: "empty" };
  const m = /^v(\d+)\/(.*)$/s.exec(h);
  if (!m) return { ok: false, reason: "not a playground link" };
  if (m[1] !== "1") return { ok: false, reason: `this link was made by a newer playground (format v${m[1]})` };
  const json = decompressFromEncodedURIComponent(m[2]);
  if (!json) return { ok: false, reason: "the link is damaged (it does not decompress)" };
  try {
    const p = JSON.parse(json) as { c?: unknown; m?: unknown; k?: unknown; t?: unknown };
    if (typeof p.c !== "string") return { ok: false, reason: "the link has no script" };
    const knobs: Record<string, number> = {};
    if (p.k && typeof p.k === "object") for (const [k, v] of Object.entries(p.k)) if (typeof v === "number") knobs[k] = v;
    return { ok: true, state: { code: p.c, machine: { iommu: typeof p.m === "string" ? p.m : "vtd", knobs }, title: typeof p.t === "string" ? p.t : "" } };
  } catch {
    return { ok: false, reason: "the link is damaged (bad JSON)" };
  }
}

const KEY = "iommu-playground:work";

export interface SavedWork {
  code: string;
  title: string;
  machine: SharedState["machine"];
  savedAt: number;
}

export function loadWork(storage: Pick<Storage, "getItem"> = localStorage): SavedWork | null {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return null;
    const w = JSON.parse(raw) as SavedWork;
    return typeof w.code === "string" ? w : null;
  } catch {
    return null;
  }
}

export function saveWork(w: Omit<SavedWork, "savedAt">, storage: Pick<Storage, "setItem"> = localStorage): void {
  try {
    storage.setItem(KEY, JSON.stringify({ ...w, savedAt: Date.now() }));
  } catch {
    // storage full or disabled: the editor keeps the text; nothing else to do
  }
}
