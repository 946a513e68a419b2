// @vitest-environment jsdom
// app/views/objects/render.ts: one SVG snapshot of the graph at a refused IOMMU_DESTROY.
import { expect, it } from "vitest";
import { createObjectsModel, failedDestroy, touchedBy } from "../../../../app/views/objects/model.ts";
import { layoutObjects } from "../../../../app/views/objects/layout.ts";
import { renderObjects } from "../../../../app/views/objects/render.ts";
import { PROLOGUE, snapshotText, trace } from "../helpers.ts";

it("renders the object graph", async () => {
  const events = await trace(`${PROLOGUE}
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
try { ioctl(iommufd, IOMMU_DESTROY, { id: ioas }); } catch {}
`);
  const refused = events.find((e) => e.k === "sys.call" && e.errno === "EBUSY")!;
  const { state, event } = createObjectsModel().at(events, refused.seq);
  const layout = layoutObjects(state, failedDestroy(event, state), touchedBy(event, state), { width: 800 });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  renderObjects(svg, layout);
  renderObjects(svg, layout);
  expect(svg.querySelector('g.node[data-role="target"]')?.getAttribute("data-type")).toBe("IOAS");
  await expect(snapshotText(svg)).toMatchFileSnapshot("objects.svg");
});
