/**
 * Start-up and persistence, outside React: theme preference, restoring saved work or opening a
 * shared link (asking first if it would replace different saved work), saving as the user types,
 * and the global keyboard shortcuts.
 */
import { useSyncExternalStore } from "react";
import { COMMANDS } from "./commands/index.ts";
import { DEFAULT_EXAMPLE, EXAMPLES } from "./examples/index.ts";
import { decodeShare, loadWork, saveWork, type SharedState } from "./share.ts";
import { store, type ThemePref } from "./store/index.ts";

let pending: SharedState | null = null;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

export function pendingLink(): SharedState | null {
  return pending;
}

export function usePendingLink(): SharedState | null {
  return useSyncExternalStore((l) => (listeners.add(l), () => listeners.delete(l)), () => pending);
}

export function resolvePendingLink(open: boolean): void {
  if (open && pending) applyShared(pending);
  pending = null;
  emit();
}

function applyShared(s: SharedState): void {
  const st = store.getState();
  st.loadScript(s.code, s.title || "shared script");
  st.setMachine(s.machine);
}

function isExample(code: string): boolean {
  return EXAMPLES.some((e) => e.code === code);
}

export function boot(): void {
  // theme: the user's choice, else the system's, following it live
  const media = matchMedia("(prefers-color-scheme: dark)");
  const pref = (localStorage.getItem("iommu-playground:theme") as ThemePref | null) ?? "system";
  store.getState().setThemePref(pref, media.matches);
  media.addEventListener("change", () => {
    const s = store.getState();
    s.setThemePref(s.themePref, media.matches);
  });
  const applyTheme = () => (document.documentElement.dataset.theme = store.getState().theme);
  applyTheme();
  store.subscribe((s, prev) => {
    if (s.theme !== prev.theme) applyTheme();
  });

  // script: saved work, then a shared link on top of it (asking if they differ)
  const saved = loadWork();
  if (saved) {
    store.getState().loadScript(saved.code, saved.title);
    store.getState().setMachine(saved.machine);
  } else store.getState().loadScript(DEFAULT_EXAMPLE.code, DEFAULT_EXAMPLE.title);
  openHash(saved?.code);
  window.addEventListener("hashchange", () => openHash(store.getState().code));

  // save as the user types (debounced); also on pagehide so nothing is lost on reload
  let timer: ReturnType<typeof setTimeout> | undefined;
  const save = () => {
    const s = store.getState();
    saveWork({ code: s.code, title: s.title, machine: s.machine });
  };
  store.subscribe((s, prev) => {
    if (s.code === prev.code && s.machine === prev.machine) return;
    clearTimeout(timer);
    timer = setTimeout(save, 250);
  });
  window.addEventListener("pagehide", save);

  // toast timeout
  store.subscribe((s, prev) => {
    if (s.toast && s.toast !== prev.toast) setTimeout(() => store.getState().toast === s.toast && store.getState().showToast(null), 2500);
  });

  window.addEventListener("keydown", onKey);
}

function openHash(savedCode: string | undefined): void {
  if (!location.hash) return;
  const r = decodeShare(location.hash);
  if (!r.ok) {
    if (r.reason !== "empty") store.getState().showToast(`Could not open the link: ${r.reason}`);
    return;
  }
  const unsaved = savedCode !== undefined && savedCode !== r.state.code && !isExample(savedCode);
  if (unsaved) {
    pending = r.state;
    emit();
  } else applyShared(r.state);
}

function onKey(e: KeyboardEvent): void {
  const target = e.target as HTMLElement | null;
  const typing = !!target?.closest(".monaco-editor, input, select, textarea");
  const mod = e.ctrlKey || e.metaKey;
  // inside the editor, Monaco's own actions handle Ctrl+Enter and Ctrl+S
  if (mod && target?.closest(".monaco-editor") && (e.key === "Enter" || e.key === "s" || e.key === "S")) return;
  if (mod && e.key === "Enter") {
    e.preventDefault();
    void COMMANDS.run.perform();
  } else if (mod && (e.key === "s" || e.key === "S")) {
    e.preventDefault();
    void COMMANDS.share.perform();
  } else if (!typing && e.key === "?") {
    e.preventDefault();
    COMMANDS.help.perform();
  } else if (e.altKey && (e.key === "e" || e.code === "KeyE")) {
    e.preventDefault();
    COMMANDS.examples.perform();
  } else if (e.altKey && (e.key === "t" || e.code === "KeyT")) {
    e.preventDefault();
    COMMANDS.theme.perform();
  } else if (!typing && e.key === "Escape" && store.getState().status === "running") {
    COMMANDS.stop.perform();
  }
}
