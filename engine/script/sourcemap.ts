/**
 * Just enough of the source-map format to map a generated line back to its source line, for
 * TypeScript scripts (esbuild in the CLI, the TypeScript service in the browser): errors and
 * events point at the line the user wrote.
 */
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** (1-based generated line) → (1-based source line); lines without a mapping map to themselves. */
export function lineMapFromSourceMap(map: { mappings: string }): (line: number) => number {
  const table: number[] = [];
  let srcLine = 0;
  map.mappings.split(";").forEach((group, genLine) => {
    let first: number | undefined;
    for (const seg of group.split(",")) {
      if (!seg) continue;
      const vals: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = B64.indexOf(ch);
        value += (d & 31) << shift;
        if (d & 32) shift += 5;
        else {
          vals.push(value & 1 ? -(value >> 1) : value >> 1);
          value = 0;
          shift = 0;
        }
      }
      if (vals.length >= 3) {
        srcLine += vals[2];
        if (first === undefined) first = srcLine;
      }
    }
    table[genLine] = first ?? -1;
  });
  return (line) => {
    const v = table[line - 1];
    return v === undefined || v < 0 ? line : v + 1;
  };
}
