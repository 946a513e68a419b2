/** Asks before a shared link replaces saved work that differs from it. */
import { useEffect, useRef } from "react";
import { pendingLink, resolvePendingLink, usePendingLink } from "../boot.ts";

export function LinkConflict() {
  const pending = usePendingLink();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (pending && !d.open) d.showModal();
    if (!pending && d.open) d.close();
  }, [pending]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="conflict-title" onCancel={() => resolvePendingLink(false)}>
      <h2 id="conflict-title">Open the shared script?</h2>
      <p>This link carries a different script than the one you were working on. Opening it replaces your script in the editor.</p>
      <p className="hint">{pendingLink()?.title ? `Link: ${pendingLink()!.title}` : ""}</p>
      <div className="row">
        <button type="button" onClick={() => resolvePendingLink(true)}>Open the link</button>
        <button type="button" autoFocus onClick={() => resolvePendingLink(false)}>Keep my script</button>
      </div>
    </dialog>
  );
}
