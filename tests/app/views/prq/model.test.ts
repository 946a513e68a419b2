// app/views/prq/model.ts: the page-request sequence chart, the queue ring and the device-TLB, from real traces.
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../../../../app/examples/index.ts";
import { createPrqModel, LANES, pendingSlots } from "../../../../app/views/prq/model.ts";
import { layoutPrq, MAX_ROWS } from "../../../../app/views/prq/layout.ts";
import type { TraceEvent } from "../../../../engine/trace/events.ts";
import { PROLOGUE, trace } from "../helpers.ts";

const FAULTS = EXAMPLES.find((e) => e.id === "page-faults")!.code;
const last = (events: TraceEvent[]) => events[events.length - 1].seq;

/** Event kinds the chart draws as messages (dma.* only for DMAs that asked for a page). */
const MESSAGE_KINDS = new Set([
  "ats.request", "ats.completion", "pri.request", "pri.response", "prq.request", "prq.overflow", "prq.irq", "prq.handle", "prq.recover",
  "prq.response", "iopf.partial", "iopf.group", "iopf.discard", "iopf.response", "fault.read", "fault.response", "devtlb.inv",
]);

describe("page requests model", () => {
  it("draws every message of the trace, each at its event, between the lanes of its parties", async () => {
    const events = await trace(FAULTS);
    const at = createPrqModel().at(events, last(events));
    const asked = new Set(events.filter((e) => e.k === "pri.request").map((e) => e.cmd_seq));
    const expected = events.filter((e) => MESSAGE_KINDS.has(e.k) || ((e.k === "dma.complete" || e.k === "dma.fault") && asked.has(e.cmd_seq)));
    const msgs = at.messages.messages.slice(0, at.count);
    expect(msgs.map((m) => `${m.seq}:${m.k}`)).toEqual(expected.map((e) => `${e.seq}:${e.k}`));
    expect(msgs.every((m, i) => m.t === expected[i].t)).toBe(true);
    const lane = Object.fromEntries(msgs.map((m) => [m.k, `${m.from}>${m.to}`]));
    expect(lane).toMatchObject({
      "ats.request": "device>iommu", "ats.completion": "iommu>device", "pri.request": "device>iommu", "prq.request": "iommu>iommu",
      "prq.irq": "iommu>kernel", "prq.handle": "iommu>kernel", "iopf.group": "kernel>faultfd", "fault.read": "faultfd>script",
      "fault.response": "script>faultfd", "iopf.response": "faultfd>kernel", "prq.response": "kernel>iommu", "pri.response": "iommu>device",
    });
    expect(LANES.map((l) => l.id)).toEqual(["device", "iommu", "kernel", "faultfd", "script"]);
  });

  it("links a page request round trip into one group: request, queue, fault fd, response, retry", async () => {
    const events = await trace(FAULTS);
    const at = createPrqModel().at(events, last(events));
    expect(at.groups).toBe(events.filter((e) => e.k === "pri.request").length);
    const pri = events.find((e) => e.k === "pri.request")!;
    if (pri.k !== "pri.request") throw new Error("unexpected trace");
    const g = at.messages.groups[0];
    expect(g).toMatchObject({ rid: pri.rid, prgi: pri.group, addr: pri.addr });
    const kinds = g.messages.map((i) => at.messages.messages[i].k);
    expect(kinds).toEqual([
      "ats.request", "ats.completion", "pri.request", "prq.request", "prq.handle", "iopf.group", "fault.read", "fault.response",
      "iopf.response", "prq.response", "pri.response", "ats.request", "ats.completion", "dma.complete",
    ]);
    // each message of the group is an event about that group: its PRGI, its cookie, or the DMA that asked
    const read = events.find((e) => e.k === "fault.read" && e.group === pri.group)!;
    if (read.k !== "fault.read") throw new Error("unexpected trace");
    expect(g.cookie).toBe(read.cookie);
    for (const i of g.messages) {
      const m = at.messages.messages[i];
      const e = events.find((x) => x.seq === m.seq)!;
      const about = ("group" in e && e.group === pri.group) || ("cookie" in e && e.cookie === read.cookie) || e.cmd_seq === pri.cmd_seq;
      expect([m.seq, about]).toEqual([m.seq, true]);
    }
    expect(at.messages.messages[g.messages[11]].label).toMatch(/^retry: ATS translation request/);
    expect(at.messages.statusAt(0, last(events))).toEqual({ stage: "done", response: "Success" });
    // the third group is answered INVALID: its DMA fails
    expect(at.messages.statusAt(2, last(events))).toEqual({ stage: "failed", response: "Invalid Request" });
    // cookies are reused once answered: group 3 is read under cookie 1 again
    expect(at.messages.groups.map((x) => x.cookie)).toEqual([1, 2, 1]);
    // while it waits for user space, the first group has come as far as the fault fd
    const delivered = events.find((e) => e.k === "iopf.group")!;
    expect(at.messages.statusAt(0, delivered.seq).stage).toBe("delivered");
  });

  it("follows the page request queue: head, tail and the slots in between", async () => {
    const events = await trace(FAULTS);
    const m = createPrqModel();
    const reqs = events.filter((e) => e.k === "prq.request");
    const second = reqs[1];
    if (second.k !== "prq.request") throw new Error("unexpected trace");
    const s = m.at(events, second.seq).state;
    expect([s.head, s.tail]).toEqual([second.head, second.tail]);
    expect(pendingSlots(s)).toBe(2);
    expect(s.slots.get(second.slot)).toMatchObject({ group: second.group, addr: second.addr });
    // the ring size the driver programmed (PQA: 128 × 2^PQS)
    const pqa = events.find((e) => e.k === "vtd.reg.write" && e.reg === "PQA_REG")!;
    expect(s.ringSize).toBe(128 * 2 ** (Number(pqa.k === "vtd.reg.write" ? pqa.value : 0) & 7));
    // the prq thread consumed both: PQH moves to the tail
    const pqh = events.find((e) => e.k === "vtd.reg.write" && e.reg === "PQH_REG" && e.seq > second.seq)!;
    const after = m.at(events, pqh.seq).state;
    expect(after.head).toBe(Number(pqh.k === "vtd.reg.write" ? pqh.value : 0) / 32);
    expect(pendingSlots(after)).toBe(0);
    expect(after.overflow).toBe(false);
    const l = layoutPrq(m.at(events, second.seq), null, { width: 900 });
    expect(l.slots.filter((x) => x.pending).map((x) => x.text)).toEqual(reqs.slice(0, 2).map((e) => String(e.k === "prq.request" ? e.group : -1)));
    expect(l.slots.find((x) => x.head)?.slot).toBe(second.head);
    expect(l.slots.find((x) => x.tail)?.slot).toBe(second.tail);
  });

  it("shows the device-TLB entries at the cursor", async () => {
    const events = await trace(FAULTS);
    const m = createPrqModel();
    const end = m.at(events, last(events)).state;
    const fills = events.filter((e) => e.k === "devtlb.fill");
    expect(end.devtlb.size).toBe(fills.length);
    for (const f of fills) if (f.k === "devtlb.fill") expect(end.devtlb.get(`${f.rid}/${f.way}`)).toMatchObject({ page: f.page, pa: f.pa, perm: f.perm });
    expect(m.at(events, fills[0].seq - 1).state.devtlb.size).toBe(0);
    const l = layoutPrq(m.at(events, last(events)), null, { width: 900 });
    expect(l.devtlb.map((d) => d.lines[1].text)).toEqual(["0x40000000 4 KiB", "0x40002000 4 KiB"]);
  });

  it("removes a device-TLB entry on an ATS invalidation, and draws that message", async () => {
    const events = await trace(`${PROLOGUE}
map(0x100000, 0x2000);
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
await hw.device(vfio).read(0x100000, 8);
ioctl(iommufd, IOMMU_IOAS_UNMAP, { ioas_id: ioas, iova: 0x100000, length: 0x2000 });
`);
    const inv = events.find((e) => e.k === "devtlb.inv")!;
    const m = createPrqModel();
    expect(m.at(events, inv.seq - 1).state.devtlb.size).toBe(1);
    const at = m.at(events, inv.seq);
    expect(at.state.devtlb.size).toBe(0);
    expect(at.state.lastDevtlb).toMatchObject({ kind: "inv" });
    const msg = at.messages.messages[at.count - 1];
    expect(msg).toMatchObject({ k: "devtlb.inv", from: "iommu", to: "device", group: -1 });
    expect(at.groups).toBe(0);
  });

  it("time travels: counts and the chart follow the cursor; the chart keeps the latest rows", async () => {
    const events = await trace(FAULTS);
    const m = createPrqModel();
    const end = m.at(events, last(events));
    const total = end.count;
    const read = events.find((e) => e.k === "fault.read")!;
    const mid = m.at(events, read.seq);
    expect(mid.count).toBe(end.messages.seqs.filter((s) => s <= read.seq).length);
    expect(mid.groups).toBe(2);
    expect(m.at(events, last(events)).count).toBe(total);
    const l = layoutPrq(mid, 1, { width: 900 });
    expect(l.messages).toHaveLength(Math.min(MAX_ROWS, mid.count));
    expect(l.messages[l.messages.length - 1]).toMatchObject({ seq: read.seq, current: true });
    // the selected group's messages are marked ◆, the others not
    expect(l.messages.filter((x) => x.selected).every((x) => x.group === 1 && x.label.text.startsWith("◆ "))).toBe(true);
    expect(l.messages.filter((x) => !x.selected).some((x) => x.label.text.startsWith("◆"))).toBe(false);
    expect(l.groups.find((x) => x.id === 1)).toMatchObject({ selected: true });
  });
});
