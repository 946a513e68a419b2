/**
 * The script editor: Monaco with the script API's IntelliSense, Ctrl/Cmd+Enter to run,
 * Ctrl/Cmd+S to copy the share link, error markers on the line a run failed at, and the line of
 * the selected event revealed. The text is saved as the user types (see app/persist.ts).
 */
import Editor, { type OnMount } from "@monaco-editor/react";
import { useEffect, useRef } from "react";
import { monaco, SCRIPT_URI, TabFocus } from "./monaco.ts";
import { store, useApp } from "../store/index.ts";
import { commands } from "../commands/index.ts";

export default function ScriptEditor() {
  const code = useApp((s) => s.code);
  const theme = useApp((s) => s.theme);
  const error = useApp((s) => s.error);
  const selectedSeq = useApp((s) => s.selectedSeq);
  const editorRef = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);

  const onMount: OnMount = (editor) => {
    editorRef.current = editor as unknown as monaco.editor.IStandaloneCodeEditor;
    commands.bindEditor(editorRef.current);
    editor.addAction({
      id: "iommu.run", label: "Run script", keybindings: [monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter],
      run: () => void commands.run(),
    });
    editor.addAction({
      id: "iommu.share", label: "Copy share link", keybindings: [monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS],
      run: () => void commands.share(),
    });
    // Tab focus mode (Ctrl+M, Ctrl+Shift+M on macOS) lets keyboard users leave the editor with Tab
    // (WCAG 2.1.2, no keyboard trap). Monaco keeps it in a global it does not persist: we do.
    restoreTabFocus();
  };

  // Mark the line a run failed at (script error, uncaught ErrnoError, DmaFault).
  useEffect(() => {
    const model = editorRef.current?.getModel();
    if (!model) return;
    const markers: monaco.editor.IMarkerData[] = [];
    if (error?.line) {
      markers.push({
        severity: monaco.MarkerSeverity.Error,
        message: `${error.name}: ${error.message}`,
        startLineNumber: error.line, endLineNumber: error.line,
        startColumn: 1, endColumn: model.getLineMaxColumn(Math.min(error.line, model.getLineCount())),
      });
    }
    monaco.editor.setModelMarkers(model, "iommu-run", markers);
  }, [error]);

  // Reveal the script line that caused the selected event.
  useEffect(() => {
    const ed = editorRef.current;
    if (!ed || selectedSeq === null) return;
    const line = lineOfEvent(selectedSeq);
    if (!line) return;
    ed.revealLineInCenterIfOutsideViewport(line);
    ed.setSelection(new monaco.Selection(line, 1, line, ed.getModel()!.getLineMaxColumn(line)));
  }, [selectedSeq]);

  return (
    <div className="editor-host" data-testid="editor">
      <Editor
        path={SCRIPT_URI}
        defaultLanguage="typescript"
        value={code}
        theme={theme === "dark" ? "vs-dark" : "vs"}
        onChange={(v) => store.getState().setCode(v ?? "")}
        onMount={onMount}
        options={{ minimap: { enabled: false }, fontSize: 13, tabSize: 2, scrollBeyondLastLine: false, automaticLayout: true, ariaLabel: "Script editor. Ctrl+Enter runs; press Ctrl+M, then Tab, to leave the editor." }}
      />
    </div>
  );
}

const TAB_KEY = "iommu-playground:tabFocus";
let tabFocusWatched = false;

/** Apply the remembered tab-focus mode once, and remember every change (however it was made). */
function restoreTabFocus(): void {
  if (tabFocusWatched) return;
  tabFocusWatched = true;
  TabFocus.setTabFocusMode(localStorage.getItem(TAB_KEY) === "1");
  TabFocus.onDidChangeTabFocus((on: boolean) => {
    localStorage.setItem(TAB_KEY, on ? "1" : "0");
    store.getState().showToast(on ? "Tab now moves focus out of the editor (Ctrl+M to undo)" : "Tab indents again (Ctrl+M to leave the editor with Tab)");
  });
}

/** The script line of an event: its own, or that of the call it belongs to. */
function lineOfEvent(seq: number): number | undefined {
  const { events } = store.getState();
  let lo = 0;
  let hi = events.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid].seq < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  const e = events[lo];
  if (!e || e.seq !== seq) return undefined;
  const own = (e as { line?: number }).line;
  if (own) return own;
  const cause = events.find((x) => x.seq === e.cmd_seq) as { line?: number } | undefined;
  return cause?.line;
}
