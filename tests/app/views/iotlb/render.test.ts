// @vitest-environment jsdom
// app/views/iotlb/render.ts: one SVG snapshot of a small IOTLB right after a hit.
import { expect, it } from "vitest";
import { indexAtOrBefore } from "../../../../app/views/common/events.ts";
import { createIotlbModel, geometryOf } from "../../../../app/views/iotlb/model.ts";
import { layoutIotlb } from "../../../../app/views/iotlb/layout.ts";
import { renderIotlb } from "../../../../app/views/iotlb/render.ts";
import { PROLOGUE_NO_ATS, seqOf, snapshotText, trace } from "../helpers.ts";

it("renders the caches", async () => {
  const knobs = { iotlbSets: 2, iotlbWays: 2, pwcEntries: 2 };
  const events = await trace(`${PROLOGUE_NO_ATS}
map(0x100000, 0x4000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const d = hw.device(vfio);
await d.read(0x100000, 8);
await d.read(0x101000, 8);
await d.read(0x100000, 8);
`, { knobs });
  const m = createIotlbModel(geometryOf(knobs));
  const seq = seqOf(events, (e) => e.k === "vtd.iotlb.hit");
  const idx = indexAtOrBefore(events, seq);
  const layout = layoutIotlb(m.atIndex(events, idx), m.rates(events, idx, 8), seq, { width: 640 });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  renderIotlb(svg, layout);
  renderIotlb(svg, layout);
  expect(svg.querySelectorAll("g.entry.iotlb")).toHaveLength(2);
  expect(svg.querySelector("g.badge")?.getAttribute("data-kind")).toBe("hit");
  await expect(snapshotText(svg)).toMatchFileSnapshot("iotlb.svg");
});
