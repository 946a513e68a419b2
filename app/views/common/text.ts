/** Text fitting for SVG marks, with the headless default of a fixed monospace advance. */

/** Approximate advance of one character of the 12 px monospace font the views use. */
export const CHAR_W = 7.2;

/** Break `text` into lines of at most `max` characters, at spaces when possible. */
export function wrap(text: string, max: number, maxLines = Infinity): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let w = word;
    while (w.length > max) {
      if (line) out.push(line);
      out.push(w.slice(0, max));
      w = w.slice(max);
      line = "";
    }
    if (!line) line = w;
    else if (line.length + 1 + w.length <= max) line += " " + w;
    else {
      out.push(line);
      line = w;
    }
  }
  if (line) out.push(line);
  if (out.length > maxLines) {
    const kept = out.slice(0, maxLines);
    kept[maxLines - 1] = clip(kept[maxLines - 1] + " " + out[maxLines].trim(), max);
    return kept;
  }
  return out;
}

/** `text` cut to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, Math.max(0, max - 1)) + "…";
}
