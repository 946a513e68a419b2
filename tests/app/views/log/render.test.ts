// @vitest-environment jsdom
// app/views/log/render.ts: one snapshot of the visible rows at a refused IOMMU_DESTROY.
import { expect, it } from "vitest";
import { LogModel, LogRows } from "../../../../app/views/log/model.ts";
import { layoutLog } from "../../../../app/views/log/layout.ts";
import { renderLog } from "../../../../app/views/log/render.ts";
import { PROLOGUE, snapshotText, trace } from "../helpers.ts";

it("renders the log rows", async () => {
  // (no TextEncoder here: jsdom's Uint8Array is not the engine's realm's)
  const code = `${PROLOGUE}
map(0x100000, 0x1000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
await hw.device(vfio).read(0x100000, 4);
try { ioctl(iommufd, IOMMU_DESTROY, { id: ioas }); } catch {}
`;
  const events = await trace(code);
  const log = new LogModel().update(events);
  const busy = log.lines.find((l) => l.severity === "error")!;
  const rows = new LogRows(log, [{ seq: busy.seq, text: "a notice from the app" }]);
  const layout = layoutLog(rows, { top: 0, height: 400 }, { cursor: busy.seq, selectedSeq: busy.seq, activeRow: rows.rowOfSeq(busy.seq) });
  const div = document.createElement("div");
  renderLog(div, layout);
  renderLog(div, layout);
  const error = div.querySelector(`#log-row-${busy.seq}`)!;
  expect(error.getAttribute("aria-selected")).toBe("true");
  expect(error.getAttribute("data-line")).toBe(String(code.split("\n").findIndex((l) => l.includes("IOMMU_DESTROY")) + 1));
  expect(error.querySelector(".badge")?.textContent).toBe("✖ EBUSY");
  await expect(snapshotText(div)).toMatchFileSnapshot("log.html");
});
