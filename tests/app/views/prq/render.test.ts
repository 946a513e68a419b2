// @vitest-environment jsdom
// app/views/prq/render.ts: one SVG snapshot of a page request round trip, and its keyboard selection.
import { expect, it } from "vitest";
import { createPrqModel } from "../../../../app/views/prq/model.ts";
import { layoutPrq } from "../../../../app/views/prq/layout.ts";
import { renderPrq } from "../../../../app/views/prq/render.ts";
import { snapshotText, trace } from "../helpers.ts";

it("renders the page requests", async () => {
  // the fault-handler example's shape, without poke (jsdom's TextEncoder is another realm's)
  const events = await trace(`
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const { out_fault_id: fault_id, out_fault_fd: faultfd } = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id, pt_id: ioas, fault_id });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });
const ram = mmap(0x1000);
const dma = hw.device(vfio).read(0x40000000, 8);
await poll(faultfd);
for (const f of read(faultfd)) {
  ioctl(iommufd, IOMMU_IOAS_MAP, { flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, user_va: ram, length: 0x1000, iova: 0x40000000 });
  write(faultfd, [{ cookie: f.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
}
await dma;
`);
  const m = createPrqModel();
  const at = m.at(events, events[events.length - 1].seq);
  expect(at.groups).toBe(1);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const picked: number[] = [];
  const layout = layoutPrq(at, 0, { width: 900 });
  renderPrq(svg, layout, { onSelect: (g) => picked.push(g) });
  renderPrq(svg, layout, { onSelect: (g) => picked.push(g) });
  expect(svg.querySelectorAll("g.msg")).toHaveLength(at.count);
  expect(svg.querySelectorAll("g.msg.selected").length).toBe(at.messages.groups[0].messages.length);
  await expect(snapshotText(svg)).toMatchFileSnapshot("prq.svg");
  // keyboard: Enter on a focused message picks its group; a click on the group row too
  const msg = svg.querySelector<SVGGElement>('g.msg[data-group="0"]')!;
  expect(msg.getAttribute("tabindex")).toBe("0");
  msg.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  svg.querySelector<SVGGElement>("g.group")!.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  expect(picked).toEqual([0, 0]);
});
