/**
 * The page: toolbar on top; the editor on the left; on the right the views (panels/Workspace.tsx).
 * Every pane is resizable. The editor and the views load lazily, so the page paints first.
 */
import { lazy, Suspense } from "react";
import { Split } from "./panels/Split.tsx";
import { Toolbar } from "./panels/Toolbar.tsx";
import { HelpDialog } from "./panels/HelpDialog.tsx";
import { LinkConflict } from "./panels/LinkConflict.tsx";
import { useApp } from "./store/index.ts";

// Both halves load after first paint: Monaco is megabytes, the views bring d3.
const ScriptEditor = lazy(() => import("./editor/ScriptEditor.tsx"));
const Workspace = lazy(() => import("./panels/Workspace.tsx"));

export function App() {
  const toast = useApp((s) => s.toast);
  return (
    <div className="app">
      <Toolbar />
      <main className="main">
        <Split id="main" direction="row" initial={0.42} label="Resize editor and views">
          <section className="editor-pane" aria-label="Script">
            <Suspense fallback={<div className="editor-loading" role="status">Loading the editor…</div>}>
              <ScriptEditor />
            </Suspense>
            <p className="hint">Ctrl/⌘+Enter runs · Ctrl+M then Tab leaves the editor · ? shows all shortcuts</p>
          </section>
          <Suspense fallback={<div className="editor-loading" role="status">Loading the views…</div>}>
            <Workspace />
          </Suspense>
        </Split>
      </main>
      <div className="toast" role="status" aria-live="polite">{toast ?? ""}</div>
      <HelpDialog />
      <LinkConflict />
    </div>
  );
}
