// @vitest-environment jsdom
// app/views/walk/render.ts: one SVG snapshot of a 2 MiB walk that starts below a PWC hit.
import { expect, it } from "vitest";
import { createWalkModel } from "../../../../app/views/walk/model.ts";
import { layoutWalk } from "../../../../app/views/walk/layout.ts";
import { renderWalk } from "../../../../app/views/walk/render.ts";
import { PROLOGUE_NO_ATS, seqOf, snapshotText, trace } from "../helpers.ts";

it("renders the walk", async () => {
  const events = await trace(`${PROLOGUE_NO_ATS}
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

it("renders a nested walk as the 2D grid", async () => {
  // the nested example's first DMA (no TextEncoder: jsdom's typed arrays are another realm's),
  // with the default caches: the walk reads 13 entries, the second-stage PWC answers the rest
  const events = await trace(`
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio1");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const { out_hwpt_id: parent } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id, pt_id: ioas });
const g = guest({ iommufd, ioas, size: 16 << 20 });
g.map(0x40000000, 0x100000, 0x2000);
const { out_hwpt_id: nested } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { dev_id, pt_id: parent, data_type: IOMMU_HWPT_DATA_VTD_S1, data_uptr: g.s1() });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: nested });
await hw.device(vfio).read(0x40000000, 20);
`);
  const s = createWalkModel().at(events, seqOf(events, (e) => e.k === "dma.complete", 0));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const layout = layoutWalk(s, { width: 900 });
  renderWalk(svg, layout);
  renderWalk(svg, layout);
  expect(svg.querySelectorAll("g.cell")).toHaveLength(24);
  expect(svg.querySelectorAll('g.cell[data-status="pwc"]').length).toBeGreaterThan(0);
  expect(svg.querySelectorAll("g.box")).toHaveLength(0);
  await expect(snapshotText(svg)).toMatchFileSnapshot("walk-nested.svg");
  // back to a second-stage-only walk: the grid is gone, the boxes are back
  const flat = await trace(`${PROLOGUE_NO_ATS}
map(0x40201000, 0x1000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
await hw.device(vfio).read(0x40201000, 8);
`);
  renderWalk(svg, layoutWalk(createWalkModel().at(flat, seqOf(flat, (e) => e.k === "dma.complete")), { width: 900 }));
  expect(svg.querySelectorAll("g.cell")).toHaveLength(0);
  expect(svg.querySelector("g.grid")).toBeNull();
  expect(svg.querySelectorAll("g.box")).toHaveLength(5);
});
