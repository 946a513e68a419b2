/**
 * Registered commands (excalidraw's actions): each has a name, a label, its keyboard shortcut and
 * a perform function, so the toolbar, the keyboard, the editor and the shortcuts dialog all run
 * the same code. Commands read and write the store; none lives in a React component.
 */
import type * as Monaco from "monaco-editor/editor/editor.api";
import { engine } from "../bridge/engine-client.ts";
import { EXAMPLES } from "../examples/index.ts";
import { encodeShare } from "../share.ts";
import { store } from "../store/index.ts";

export type CommandName = "run" | "stop" | "share" | "download" | "upload" | "examples" | "theme" | "help" | "live";

export interface Command {
  name: CommandName;
  label: string;
  /** shortcut as shown to the user */
  keys: string;
  perform(): void | Promise<void>;
}

let editor: Monaco.editor.IStandaloneCodeEditor | null = null;

function shareUrl(): string {
  const s = store.getState();
  const hash = encodeShare({ code: s.code, machine: s.machine, title: s.title });
  return `${location.origin}${location.pathname}#${hash}`;
}

async function run(): Promise<void> {
  const s = store.getState();
  if (!editor) {
    s.showToast("The editor is still loading…");
    return;
  }
  const model = editor.getModel();
  if (!model) return;
  const { compile } = await import("../editor/monaco.ts");
  const out = await compile(model);
  if (!out.js) {
    const e = out.errors[0];
    s.startRun();
    s.finishRun("error", { name: "SyntaxError", message: e.message, line: e.line, column: e.column });
    s.notice(`Not run: syntax error at line ${e.line}: ${e.message}`);
    return;
  }
  engine.run(out.js, out.mappings);
}

export const COMMANDS: Record<CommandName, Command> = {
  run: { name: "run", label: "Run", keys: "Ctrl/⌘+Enter", perform: run },
  stop: { name: "stop", label: "Stop", keys: "Esc (in the views)", perform: () => engine.stop() },
  share: {
    name: "share", label: "Share", keys: "Ctrl/⌘+S",
    perform: async () => {
      const url = shareUrl();
      history.replaceState(null, "", url);
      try {
        await navigator.clipboard.writeText(url);
        store.getState().showToast("Link copied to the clipboard");
      } catch {
        store.getState().showToast("Link is in the address bar (the clipboard is not available)");
      }
    },
  },
  download: {
    name: "download", label: "Download", keys: "",
    perform: () => {
      const s = store.getState();
      const blob = new Blob([s.code], { type: "text/typescript" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${(s.title || "iommu-script").replace(/[^\w.-]+/g, "-").toLowerCase()}.ts`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    },
  },
  upload: {
    name: "upload", label: "Open file…", keys: "",
    perform: () => {
      const input = document.createElement("input");
      input.type = "file";
      input.accept = ".ts,.js,.mjs,text/plain";
      input.onchange = async () => {
        const f = input.files?.[0];
        if (!f) return;
        if (f.size > 1 << 20) {
          store.getState().showToast("That file is larger than 1 MiB: not a script");
          return;
        }
        store.getState().loadScript(await f.text(), f.name);
      };
      input.click();
    },
  },
  examples: { name: "examples", label: "Examples", keys: "Alt+E", perform: () => store.getState().setExamplesOpen(!store.getState().examplesOpen) },
  theme: {
    name: "theme", label: "Theme", keys: "Alt+T",
    perform: () => {
      const s = store.getState();
      const next = s.themePref === "system" ? "dark" : s.themePref === "dark" ? "light" : "system";
      s.setThemePref(next, matchMedia("(prefers-color-scheme: dark)").matches);
      localStorage.setItem("iommu-playground:theme", next);
    },
  },
  help: { name: "help", label: "Keyboard shortcuts", keys: "?", perform: () => store.getState().setHelpOpen(true) },
  live: { name: "live", label: "Back to live", keys: "End (in the timeline)", perform: () => store.getState().setCursor(null) },
};

export const commands = {
  run: () => COMMANDS.run.perform(),
  share: () => COMMANDS.share.perform(),
  bindEditor(e: Monaco.editor.IStandaloneCodeEditor) {
    editor = e;
  },
  loadExample(id: string) {
    const ex = EXAMPLES.find((x) => x.id === id);
    if (!ex) return;
    store.getState().loadScript(ex.code, ex.title);
    store.getState().setExamplesOpen(false);
  },
};

/** Extra shortcuts shown in the dialog that are not commands. */
export const OTHER_SHORTCUTS: [string, string][] = [
  ["Ctrl+M (Ctrl+Shift+M on macOS)", "in the editor: let Tab move focus out of the editor (toggle)"],
  ["↑ / ↓ / Enter", "in the log: move between lines / select that moment in every view"],
  ["← / → / Home / End", "on the timeline: step to the previous / next event, first / live"],
  ["Space", "on the timeline: play / pause the replay"],
];
