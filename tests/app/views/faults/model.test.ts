// app/views/faults/model.ts: the fault recording registers at the cursor, from real traces.
import { describe, expect, it } from "vitest";
import { createFaultsModel, pendingCount } from "../../../../app/views/faults/model.ts";
import { layoutFaults } from "../../../../app/views/faults/layout.ts";
import { EXAMPLES } from "../../../../app/examples/index.ts";
import { trace } from "../helpers.ts";

/** Two devices without ATS fault, one after the other, then the driver's handler runs. */
const TWO = `
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const v1 = open("/dev/vfio/devices/vfio1");
ioctl(v1, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(v1, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const v0 = open("/dev/vfio/devices/vfio0");
ioctl(v0, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(v0, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
try { await hw.device(v1).read(0x100000, 8); } catch {}
try { await hw.device(v1).read(0x200000, 8); } catch {}
try { await hw.device(v0).write(0x300000, new Uint8Array(4)); } catch {}
await sleep(100000);
`;

describe("faults model", () => {
  it("shows each recorded fault with its reason, and the drops with why", async () => {
    const events = await trace(EXAMPLES.find((e) => e.id === "nested")!.code);
    const rec = events.find((e) => e.k === "vtd.fault.record")!;
    const drop = events.find((e) => e.k === "vtd.fault.drop")!;
    if (rec.k !== "vtd.fault.record" || drop.k !== "vtd.fault.drop") throw new Error("unexpected trace");
    const m = createFaultsModel();
    const s = m.at(events, drop.seq).state;
    expect(s.records.get(rec.index)).toMatchObject({ reason: rec.reason, name: rec.name, rid: rec.rid, addr: rec.addr, write: rec.write, pending: true });
    expect([s.recorded, s.dropped, pendingCount(s)]).toEqual([1, 1, 1]);
    expect(s.drops[0]).toMatchObject({ reason: drop.reason, why: drop.why });
    const l = layoutFaults(s, drop.seq, { width: 800 });
    const row = l.records.find((r) => r.index === rec.index)!;
    expect(row.status).toBe("pending");
    expect(row.lines[0].text).toContain(`● F=1 pending · reason 0x${rec.reason.toString(16)}`);
    expect(row.lines[1].text).toBe(rec.name);
    expect(l.text.some((t) => t.text.startsWith(`✖ 0x${drop.reason.toString(16)}`) && t.text.includes(drop.why))).toBe(true);
    expect(m.at(events, rec.seq - 1).state.recorded).toBe(0);
  });

  it("sets PFO when the next record is still pending, and the driver clears records and PFO", async () => {
    const knobs = { faultRecords: 1 };
    const events = await trace(TWO, { knobs });
    const m = createFaultsModel(1);
    const pfoDrop = events.find((e) => e.k === "vtd.fault.drop" && /still pending: PFO set/.test(e.why))!;
    expect(pfoDrop).toBeDefined();
    const s = m.at(events, pfoDrop.seq).state;
    expect(s.pfo).toBe(true);
    expect(pendingCount(s)).toBe(1);
    expect(layoutFaults(s, pfoDrop.seq, { width: 800 }).text[1].text).toMatch(/PFO set/);
    const clear = events.find((e) => e.k === "vtd.fault.clear")!;
    if (clear.k !== "vtd.fault.clear") throw new Error("unexpected trace");
    const end = m.at(events, events[events.length - 1].seq).state;
    expect(end.pfo).toBe(false);
    expect(end.records.get(clear.index)).toMatchObject({ pending: false, text: clear.text });
    expect(pendingCount(end)).toBe(0);
    // time travel back to the overflow
    expect(m.at(events, pfoDrop.seq).state.pfo).toBe(true);
  });
});
