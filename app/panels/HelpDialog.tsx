/** The `?` dialog: every shortcut, from the command registry. */
import { useEffect, useRef } from "react";
import { COMMANDS, OTHER_SHORTCUTS } from "../commands/index.ts";
import { store, useApp } from "../store/index.ts";

export function HelpDialog() {
  const open = useApp((s) => s.helpOpen);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="help-title" onClose={() => store.getState().setHelpOpen(false)}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <table>
        <tbody>
          {Object.values(COMMANDS).filter((c) => c.keys).map((c) => (
            <tr key={c.name}><th scope="row"><kbd>{c.keys}</kbd></th><td>{c.label}</td></tr>
          ))}
          {OTHER_SHORTCUTS.map(([k, what]) => (
            <tr key={k}><th scope="row"><kbd>{k}</kbd></th><td>{what}</td></tr>
          ))}
        </tbody>
      </table>
      <p className="hint">Monaco keeps Tab for indentation: press <kbd>Ctrl+M</kbd> first to move focus with Tab.</p>
      <form method="dialog"><button type="submit" autoFocus>Close</button></form>
    </dialog>
  );
}
