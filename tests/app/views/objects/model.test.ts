// app/views/objects/model.ts: the object graph and what blocks IOMMU_DESTROY, from real engine traces.
import { describe, expect, it } from "vitest";
import { createObjectsModel, edgesOf, failedDestroy, holdersOf, type ObjectsState } from "../../../../app/views/objects/model.ts";
import { layoutObjects } from "../../../../app/views/objects/layout.ts";
import { PROLOGUE, seqOf, trace } from "../helpers.ts";

const name = (s: ObjectsState, key: string) => `${s.nodes.get(key)?.type} ${s.nodes.get(key)?.id}`;
const graph = (s: ObjectsState) => edgesOf(s).map((e) => `${name(s, e.from)}>${name(s, e.to)}:${e.kind}:${e.label}`).sort();
const objects = (s: ObjectsState) => [...s.nodes.values()].map((n) => `${n.type} ${n.id}`).sort();

const AUTO = `${PROLOGUE}
map(0x100000, 0x1000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
try { ioctl(iommufd, IOMMU_DESTROY, { id: ioas }); } catch {}
ioctl(vfio, VFIO_DEVICE_DETACH_IOMMUFD_PT, {});
ioctl(iommufd, IOMMU_DESTROY, { id: ioas });
`;

describe("objects model", () => {
  it("links an automatic HWPT to its IOAS and the attached device to the HWPT", async () => {
    const events = await trace(AUTO);
    const attached = seqOf(events, (e) => e.k === "sys.call" && e.req === "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
    const { state } = createObjectsModel().at(events, attached);
    expect(objects(state)).toEqual(["DEVICE 2", "HWPT_PAGING 3", "IOAS 1"]);
    expect(graph(state)).toEqual(["DEVICE 2>HWPT_PAGING 3:attach:RID", "HWPT_PAGING 3>IOAS 1:ioas:auto"]);
    expect(state.nodes.get("1:2")?.path).toBe("/dev/vfio/devices/vfio0");
  });

  it("names the holders of a refused IOMMU_DESTROY as the kernel does", async () => {
    const events = await trace(AUTO);
    const refused = events.find((e) => e.k === "sys.call" && e.errno === "EBUSY")!;
    const { state, event } = createObjectsModel().at(events, refused.seq);
    const busy = failedDestroy(event, state)!;
    expect(busy.target).toBe("1:1");
    expect(busy.holders.map((k) => name(state, k))).toEqual(["HWPT_PAGING 3"]);
    const texts = holdersOf(state, state.nodes.get("1:1")!).map((h) => h.text);
    expect(refused.k === "sys.call" && refused.reason).toContain(`still referenced by ${texts.join(", ")}`);
    const layout = layoutObjects(state, busy, [], { width: 800 });
    expect(layout.nodes.find((n) => n.key === "1:1")?.role).toBe("target");
    expect(layout.nodes.find((n) => n.key === "1:3")?.role).toBe("holder");
    expect(layout.edges.filter((e) => e.blocking)).toHaveLength(1);
  });

  it("time travels: the automatic HWPT is gone after detach, and back at an earlier cursor", async () => {
    const events = await trace(AUTO);
    const m = createObjectsModel();
    const end = m.at(events, events[events.length - 1].seq).state;
    expect(objects(end)).toEqual(["DEVICE 2"]);
    const enter = seqOf(events, (e) => e.k === "sys.enter" && e.req === "VFIO_DEVICE_DETACH_IOMMUFD_PT");
    const detach = seqOf(events, (e) => e.k === "sys.call" && e.req === "VFIO_DEVICE_DETACH_IOMMUFD_PT");
    const before = m.at(events, enter).state;
    expect(objects(before)).toContain("HWPT_PAGING 3");
    const prefix = events.filter((e) => e.seq <= enter);
    expect(graph(createObjectsModel().at(prefix, enter).state)).toEqual(graph(before));
    expect(objects(m.at(events, detach).state)).toEqual(["DEVICE 2", "IOAS 1"]);
  });

  it("shows a manual HWPT with its fault queue, and what holds the FAULT", async () => {
    const events = await trace(`${PROLOGUE}
const { out_fault_id: fault, out_fault_fd: ffd } = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: dev, pt_id: ioas, fault_id: fault });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });
close(ffd);
`);
    const { state } = createObjectsModel().at(events, events[events.length - 1].seq);
    expect(graph(state)).toEqual(["DEVICE 2>HWPT_PAGING 4:attach:RID", "HWPT_PAGING 4>FAULT 3:fault:fault_id", "HWPT_PAGING 4>IOAS 1:ioas:pt_id"]);
    const hwpt = state.nodes.get("1:4")!;
    expect(hwpt).toMatchObject({ auto: false, flags: "IOMMU_HWPT_FAULT_ID_VALID" });
    expect(holdersOf(state, state.nodes.get("1:3")!).map((h) => h.text)).toEqual(["HWPT_PAGING 4"]);
    const open = createObjectsModel().at(events, seqOf(events, (e) => e.k === "sys.call" && e.call === "close") - 1).state;
    expect(holdersOf(open, open.nodes.get("1:3")!).map((h) => h.text)).toEqual([expect.stringMatching(/^its open fault fd \d+$/), "HWPT_PAGING 4"]);
  });

  it("keeps the objects of two iommufds apart", async () => {
    const events = await trace(`
const a = open("/dev/iommu");
const b = open("/dev/iommu");
ioctl(a, IOMMU_IOAS_ALLOC, {});
ioctl(b, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio1");
const { out_devid } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd: b });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: 1 });
`);
    const { state } = createObjectsModel().at(events, events[events.length - 1].seq);
    const ctxs = [...state.nodes.values()].map((n) => n.key).sort();
    expect(ctxs).toEqual(["1:1", "2:1", "2:2", "2:3"]);
    expect(edgesOf(state).map((e) => `${e.from}>${e.to}`).sort()).toEqual(["2:2>2:3", "2:3>2:1"]);
  });
});
