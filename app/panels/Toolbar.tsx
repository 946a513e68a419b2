/** The toolbar: every command as a labelled button with its shortcut in the tooltip. */
import { COMMANDS, commands } from "../commands/index.ts";
import { EXAMPLES } from "../examples/index.ts";
import { MODEL_CATALOG } from "../../engine/hw/catalog.ts";
import { store, useApp } from "../store/index.ts";

export function Toolbar() {
  const status = useApp((s) => s.status);
  const themePref = useApp((s) => s.themePref);
  const examplesOpen = useApp((s) => s.examplesOpen);
  const iommu = useApp((s) => s.machine.iommu);
  const budget = useApp((s) => s.budgetMs);
  const pace = useApp((s) => s.pace);
  const running = status === "running";
  return (
    <header className="toolbar" role="toolbar" aria-label="Playground">
      <span className="brand">iommu-playground</span>
      <div className="menu">
        <button type="button" aria-haspopup="menu" aria-expanded={examplesOpen} onClick={() => COMMANDS.examples.perform()} title={`Examples (${COMMANDS.examples.keys})`}>
          Examples ▾
        </button>
        {examplesOpen && (
          <ul className="menu-list" role="menu" aria-label="Examples" onKeyDown={(e) => e.key === "Escape" && store.getState().setExamplesOpen(false)}>
            {EXAMPLES.map((ex, i) => (
              <li key={ex.id} role="none">
                <button type="button" role="menuitem" autoFocus={i === 0} data-example={ex.id} onClick={() => commands.loadExample(ex.id)}>
                  <strong>{ex.title}</strong>
                  <span>{ex.summary}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
      <button type="button" className="primary" data-testid="run" disabled={running} onClick={() => void COMMANDS.run.perform()} title={`Run (${COMMANDS.run.keys})`}>
        ▶ Run
      </button>
      <button type="button" data-testid="stop" disabled={!running} onClick={() => COMMANDS.stop.perform()} title="Stop the running script">
        ■ Stop
      </button>
      <button type="button" data-testid="share" onClick={() => void COMMANDS.share.perform()} title={`Copy a link to this script (${COMMANDS.share.keys})`}>
        Share
      </button>
      <button type="button" onClick={() => COMMANDS.download.perform()} title="Download the script">Download</button>
      <button type="button" onClick={() => COMMANDS.upload.perform()} title="Open a script file">Open…</button>
      <label className="field">
        Machine
        <select value={iommu} onChange={(e) => store.getState().setMachine({ iommu: e.target.value })} aria-label="IOMMU model">
          {MODEL_CATALOG.map((m) => (
            <option key={m.name} value={m.name}>{m.label}</option>
          ))}
        </select>
      </label>
      <label className="field" title="A run longer than this is stopped (runaway loops)">
        Budget
        <select value={budget} onChange={(e) => store.getState().setBudget(Number(e.target.value))} aria-label="Run time budget">
          {[1000, 2000, 5000, 10000, 30000, 60000].map((ms) => <option key={ms} value={ms}>{ms / 1000} s</option>)}
        </select>
      </label>
      <label className="field" title="Slow a run down so the views can be followed (events per second)">
        Pace
        <select value={pace} onChange={(e) => store.getState().setPace(Number(e.target.value))} aria-label="Run pace">
          {[[0, "full speed"], [100_000, "100k ev/s"], [10_000, "10k ev/s"], [1_000, "1k ev/s"], [100, "100 ev/s"]].map(([v, label]) => <option key={v} value={v}>{label}</option>)}
        </select>
      </label>
      <span className={`status status-${status}`} role="status" data-testid="status" data-status={status}>
        {statusText(status)}
      </span>
      <button type="button" onClick={() => COMMANDS.theme.perform()} title={`Theme: ${themePref} (${COMMANDS.theme.keys})`} aria-label={`Theme: ${themePref}`}>
        {themePref === "system" ? "◐ System" : themePref === "dark" ? "● Dark" : "○ Light"}
      </button>
      <button type="button" onClick={() => COMMANDS.help.perform()} title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">?</button>
    </header>
  );
}

function statusText(s: string): string {
  switch (s) {
    case "running": return "⏳ running";
    case "done": return "✓ done";
    case "error": return "✗ error";
    case "timeout": return "⏱ stopped (budget)";
    case "stopped": return "■ stopped";
    default: return "ready";
  }
}
