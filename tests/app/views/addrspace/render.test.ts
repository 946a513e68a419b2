// @vitest-environment jsdom
// app/views/addrspace/render.ts: one SVG snapshot of an IOAS with an area and its reservations.
import { expect, it } from "vitest";
import { createAddrSpaceModel } from "../../../../app/views/addrspace/model.ts";
import { layoutAddrSpace } from "../../../../app/views/addrspace/layout.ts";
import { renderAddrSpace } from "../../../../app/views/addrspace/render.ts";
import { PROLOGUE, snapshotText, trace } from "../helpers.ts";

it("renders the address spaces", async () => {
  const events = await trace(`${PROLOGUE}
map(0x100000, 0x4000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
`);
  const layout = layoutAddrSpace(createAddrSpaceModel().at(events, events[events.length - 1].seq), { width: 900 });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  renderAddrSpace(svg, layout);
  renderAddrSpace(svg, layout);
  expect(svg.querySelectorAll("g.range.reserved")).toHaveLength(2); // the MSI window and the aperture above 2^48
  await expect(snapshotText(svg, /^addrspace-hatch-\d+$/)).toMatchFileSnapshot("addrspace.svg");
});
