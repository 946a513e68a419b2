// @vitest-environment jsdom
// app/views/faults/render.ts: one SVG snapshot of the fault recording registers with a pending fault and a drop.
import { expect, it } from "vitest";
import { createFaultsModel } from "../../../../app/views/faults/model.ts";
import { layoutFaults } from "../../../../app/views/faults/layout.ts";
import { renderFaults } from "../../../../app/views/faults/render.ts";
import { PROLOGUE_NO_ATS, snapshotText, trace } from "../helpers.ts";

it("renders the fault records", async () => {
  const events = await trace(`${PROLOGUE_NO_ATS}
map(0x100000, 0x1000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
try { await hw.device(vfio).read(0x900000, 8); } catch {}
try { await hw.device(vfio).read(0xa00000, 8); } catch {}
`, { knobs: { faultRecords: 4 } });
  const { state, seq } = createFaultsModel(4).at(events, events[events.length - 1].seq);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const layout = layoutFaults(state, seq, { width: 800 });
  renderFaults(svg, layout);
  renderFaults(svg, layout);
  expect(svg.querySelectorAll("g.record")).toHaveLength(4);
  expect(svg.querySelectorAll('g.record[data-status="pending"]')).toHaveLength(1);
  await expect(snapshotText(svg)).toMatchFileSnapshot("faults.svg");
});
