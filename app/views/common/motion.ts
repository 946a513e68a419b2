/** Whether the user accepts motion: animations are skipped under prefers-reduced-motion. */
export function motionAllowed(): boolean {
  return typeof matchMedia !== "function" || !matchMedia("(prefers-reduced-motion: reduce)").matches;
}
