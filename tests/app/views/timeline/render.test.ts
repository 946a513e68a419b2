// @vitest-environment jsdom
// app/views/timeline/render.ts: one SVG snapshot of the lanes with the playhead.
import { expect, it } from "vitest";
import { TimelineModel } from "../../../../app/views/timeline/model.ts";
import { layoutPlayhead, layoutTimeline } from "../../../../app/views/timeline/layout.ts";
import { renderPlayhead, renderTimeline } from "../../../../app/views/timeline/render.ts";
import { PROLOGUE_NO_ATS, snapshotText, trace } from "../helpers.ts";

it("renders the timeline", async () => {
  const events = await trace(`${PROLOGUE_NO_ATS}
map(0x100000, 0x2000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
await hw.device(vfio).read(0x100000, 0x2000);
`);
  const l = layoutTimeline(new TimelineModel().update(events), "seq", { width: 500, height: 300 });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  renderTimeline(svg, l);
  renderTimeline(svg, l);
  renderPlayhead(svg, l, layoutPlayhead(l, events, Math.floor(events.length / 2), 3, false));
  expect(svg.querySelectorAll("g.lane").length).toBe(l.lanes.length);
  expect(svg.querySelector("line.cursor")).not.toBeNull();
  await expect(snapshotText(svg)).toMatchFileSnapshot("timeline.svg");
});
