/**
 * Monaco, bundled (never from a CDN): the slim entry points, our own workers, and the script API
 * typings. Loaded lazily with the editor pane so the toolbar and views paint first.
 * Traps avoided (../shared/reference/web-stack.md §3): loader.config({ monaco }) before the first
 * <Editor> mounts (else @monaco-editor/react fetches Monaco from jsdelivr); workers through
 * MonacoEnvironment with ?worker imports; TypeScript configured through the top-level namespace,
 * once, at module level (StrictMode mounts twice).
 */
import * as monaco from "monaco-editor/editor/editor.api";
import "monaco-editor/features/register.all";
import "monaco-editor/languages/definitions/typescript/register";
import * as ts from "monaco-editor/languages/features/typescript/register";
import EditorWorker from "monaco-editor/editor/editor.worker?worker";
import TsWorker from "monaco-editor/language/typescript/ts.worker?worker";
import { loader } from "@monaco-editor/react";
// Monaco's global "Tab moves focus" switch: not in the public API, but the state we must persist.
// @ts-expect-error an internal module without type declarations
import { TabFocus as MonacoTabFocus } from "monaco-editor/editor/browser/config/tabFocus";
import { scriptApiDts } from "./typings.ts";

(self as unknown as { MonacoEnvironment: monaco.Environment }).MonacoEnvironment = {
  getWorker(_id: string, label: string) {
    return label === "typescript" || label === "javascript" ? new TsWorker() : new EditorWorker();
  },
};

loader.config({ monaco });

ts.typescriptDefaults.setCompilerOptions({
  target: ts.ScriptTarget.ESNext,
  module: ts.ModuleKind.ESNext,
  lib: ["es2022"],
  strict: false,
  noImplicitAny: false,
  allowJs: true,
  checkJs: false,
  sourceMap: true,
  // every script is a module, so top-level await type-checks (TypeScript's moduleDetection: force)
  moduleDetection: 3,
});
ts.typescriptDefaults.setDiagnosticsOptions({ noSemanticValidation: false, noSyntaxValidation: false });
ts.typescriptDefaults.addExtraLib(scriptApiDts(), "file:///iommu-script-api.d.ts");

export const SCRIPT_URI = "file:///script.ts";

export interface Compiled {
  /** JavaScript to run, or null when the script has syntax errors */
  js: string | null;
  mappings?: string;
  /** diagnostics that stop a run (syntax) */
  errors: { line: number; column: number; message: string }[];
}

/** Transpile the editor's model with the TypeScript worker (the same compiler that checks it). */
export async function compile(model: monaco.editor.ITextModel): Promise<Compiled> {
  const getWorker = await ts.getTypeScriptWorker();
  const worker = await getWorker(model.uri);
  const uri = model.uri.toString();
  const syntactic = await worker.getSyntacticDiagnostics(uri);
  if (syntactic.length) {
    return {
      js: null,
      errors: syntactic.map((d) => {
        const pos = model.getPositionAt(d.start ?? 0);
        const text = typeof d.messageText === "string" ? d.messageText : d.messageText.messageText;
        return { line: pos.lineNumber, column: pos.column, message: text };
      }),
    };
  }
  const out = await worker.getEmitOutput(uri);
  const js = out.outputFiles.find((f) => f.name.endsWith(".js"))?.text ?? "";
  const map = out.outputFiles.find((f) => f.name.endsWith(".js.map"))?.text;
  // module output ends with `export {};` and a sourceMappingURL comment: not for a function body
  const body = js.replace(/^export \{\};\s*$/m, "").replace(/^\/\/# sourceMappingURL=.*$/m, "");
  return { js: body, mappings: map ? (JSON.parse(map) as { mappings: string }).mappings : undefined, errors: [] };
}

export const TabFocus = MonacoTabFocus as {
  getTabFocusMode(): boolean;
  setTabFocusMode(on: boolean): void;
  onDidChangeTabFocus(listener: (on: boolean) => void): { dispose(): void };
};

export { monaco };
