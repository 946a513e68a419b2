/**
 * A resizable two-pane split. The divider is a focusable separator: drag it, or use the arrow
 * keys (Shift for bigger steps), Home/End. The ratio is remembered per split in localStorage.
 */
import { useCallback, useRef, useState, type ReactNode } from "react";

export function Split(props: { id: string; direction: "row" | "column"; initial: number; min?: number; children: [ReactNode, ReactNode]; label: string }) {
  const key = `iommu-playground:split:${props.id}`;
  const min = props.min ?? 0.15;
  const [ratio, setRatio] = useState<number>(() => {
    const saved = Number(localStorage.getItem(key));
    return saved > 0 && saved < 1 ? saved : props.initial;
  });
  const host = useRef<HTMLDivElement>(null);
  const set = useCallback(
    (r: number) => {
      const v = Math.max(min, Math.min(1 - min, r));
      setRatio(v);
      localStorage.setItem(key, String(v));
    },
    [key, min],
  );
  const horizontal = props.direction === "row";
  const onPointerDown = (e: React.PointerEvent) => {
    const el = host.current;
    if (!el) return;
    (e.target as HTMLElement).setPointerCapture(e.pointerId);
    const rect = el.getBoundingClientRect();
    const move = (ev: PointerEvent) => set(horizontal ? (ev.clientX - rect.left) / rect.width : (ev.clientY - rect.top) / rect.height);
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  };
  const onKeyDown = (e: React.KeyboardEvent) => {
    const step = e.shiftKey ? 0.1 : 0.02;
    const less = horizontal ? "ArrowLeft" : "ArrowUp";
    const more = horizontal ? "ArrowRight" : "ArrowDown";
    if (e.key === less) set(ratio - step);
    else if (e.key === more) set(ratio + step);
    else if (e.key === "Home") set(min);
    else if (e.key === "End") set(1 - min);
    else return;
    e.preventDefault();
  };
  return (
    <div ref={host} className={`split split-${props.direction}`}>
      <div className="split-pane" style={{ flexBasis: `${ratio * 100}%` }}>{props.children[0]}</div>
      <div
        className="split-divider" role="separator" tabIndex={0} aria-label={props.label}
        aria-orientation={horizontal ? "vertical" : "horizontal"}
        aria-valuemin={Math.round(min * 100)} aria-valuemax={Math.round((1 - min) * 100)} aria-valuenow={Math.round(ratio * 100)}
        onPointerDown={onPointerDown} onKeyDown={onKeyDown}
      />
      <div className="split-pane" style={{ flexBasis: `${(1 - ratio) * 100}%` }}>{props.children[1]}</div>
    </div>
  );
}
