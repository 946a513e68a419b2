// app/views/objects: nest-parent and nested HWPTs, a PASID attachment, a FAULT with its HWPTs, from real traces.
import { expect, it } from "vitest";
import { createObjectsModel, edgesOf, holdersOf, type ObjectsState } from "../../../../app/views/objects/model.ts";
import { layoutObjects } from "../../../../app/views/objects/layout.ts";
import { trace } from "../helpers.ts";

const name = (s: ObjectsState, key: string) => `${s.nodes.get(key)?.type} ${s.nodes.get(key)?.id}`;
const graph = (s: ObjectsState) => edgesOf(s).map((e) => `${name(s, e.from)}>${name(s, e.to)}:${e.kind}:${e.label}`).sort();

it("links a nested HWPT to its nest parent, its fault queue and its PASID attachment", async () => {
  const events = await trace(`
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const { out_hwpt_id: parent } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID, dev_id, pt_id: ioas });
const g = guest({ iommufd, ioas, size: 4 << 20 });
const { out_fault_id: fault_id } = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});
const { out_hwpt_id: nested } = ioctl(iommufd, IOMMU_HWPT_ALLOC, {
  flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID, dev_id, pt_id: parent, fault_id,
  data_type: IOMMU_HWPT_DATA_VTD_S1, data_uptr: g.s1(),
});
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { flags: VFIO_DEVICE_ATTACH_PASID, pasid: 5, pt_id: nested });
`);
  const { state } = createObjectsModel().at(events, events[events.length - 1].seq);
  const byType = (t: string) => [...state.nodes.values()].find((n) => n.type === t)!;
  const parent = byType("HWPT_PAGING");
  const nested = byType("HWPT_NESTED");
  const fault = byType("FAULT");
  expect(parent).toMatchObject({ nestParent: true, ioas: 1, auto: false });
  expect(nested).toMatchObject({ parent: parent.id, fault: fault.id, dataType: "IOMMU_HWPT_DATA_VTD_S1" });
  expect(graph(state)).toEqual([
    `DEVICE 2>HWPT_NESTED ${nested.id}:attach:PASID 5`,
    `HWPT_NESTED ${nested.id}>FAULT ${fault.id}:fault:fault_id`,
    `HWPT_NESTED ${nested.id}>HWPT_PAGING ${parent.id}:parent:parent`,
    `HWPT_PAGING ${parent.id}>IOAS 1:ioas:pt_id`,
  ]);
  // what IOMMU_DESTROY would name: the parent is held by the nested HWPT, the FAULT by it too
  expect(holdersOf(state, parent).map((h) => h.text)).toEqual([`HWPT_NESTED ${nested.id}`]);
  expect(holdersOf(state, fault).map((h) => h.text)).toContain(`HWPT_NESTED ${nested.id}`);
  expect(holdersOf(state, nested).map((h) => h.text)).toEqual(["device 2 PASID 5"]);
  // references point right: device → nested → parent → IOAS → fault queue
  const l = layoutObjects(state, null, [], { width: 1200 });
  const x = (key: string) => l.nodes.find((n) => n.key === key)!.x;
  expect(x("1:2")).toBeLessThan(x(nested.key));
  expect(x(nested.key)).toBeLessThan(x(parent.key));
  expect(x(parent.key)).toBeLessThan(x("1:1"));
  expect(x("1:1")).toBeLessThan(x(fault.key));
  const text = (key: string) => l.nodes.find((n) => n.key === key)!.lines.map((t) => t.text).join(" ");
  expect(text(parent.key)).toContain("nest parent");
  expect(text(nested.key)).toMatch(/first stage: the guest's table/);
});
