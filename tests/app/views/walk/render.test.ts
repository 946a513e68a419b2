// @vitest-environment jsdom
// app/views/walk/render.ts: one SVG snapshot of a 2 MiB walk that starts below a PWC hit.
import { expect, it } from "vitest";
import { createWalkModel } from "../../../../app/views/walk/model.ts";
import { layoutWalk } from "../../../../app/views/walk/layout.ts";
import { renderWalk } from "../../../../app/views/walk/render.ts";
import { PROLOGUE, seqOf, snapshotText, trace } from "../helpers.ts";

it("renders the walk", async () => {
  const events = await trace(`${PROLOGUE}
map(0x40201000, 0x1000);
map(0x80000000, 0x200000, { align: 2 * 1024 * 1024 });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
await hw.device(vfio).read(0x40201000, 8);
await hw.device(vfio).read(0x80001000, 8);
`);
  const s = createWalkModel().at(events, seqOf(events, (e) => e.k === "dma.complete", 1));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const layout = layoutWalk(s, { width: 900 });
  renderWalk(svg, layout);
  renderWalk(svg, layout); // idempotent: a second render changes nothing
  expect(svg.querySelectorAll("g.box")).toHaveLength(5);
  await expect(snapshotText(svg)).toMatchFileSnapshot("walk.svg");
});
