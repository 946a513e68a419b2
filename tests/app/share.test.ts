// app/share.ts: links round-trip, old formats are recognised, damage is reported, not thrown.
import { describe, expect, it } from "vitest";
import { compressToEncodedURIComponent } from "lz-string";
import { decodeShare, encodeShare, loadWork, saveWork } from "../../app/share.ts";

describe("share links", () => {
  it("round-trips the script and machine settings", () => {
    const state = { code: "const fd = open('/dev/iommu');\n// ünïcode ✓\n", machine: { iommu: "vtd", knobs: { iotlbSets: 4 } }, title: "t" };
    const hash = encodeShare(state);
    expect(hash.startsWith("v1/")).toBe(true);
    expect(hash).toMatch(/^[A-Za-z0-9+\-/$_]*$/);
    const back = decodeShare("#" + hash);
    expect(back).toEqual({ ok: true, state });
  });

  it("keeps accepting a v1 link written by hand (the format is the contract)", () => {
    const hash = "v1/" + compressToEncodedURIComponent(JSON.stringify({ c: "x()", m: "vtd", k: {}, t: "" }));
    const r = decodeShare(hash);
    expect(r.ok && r.state.code).toBe("x()");
  });

  it("refuses newer, foreign and damaged links with a reason", () => {
    expect(decodeShare("#v2/abc")).toEqual({ ok: false, reason: "this link was made by a newer playground (format v2)" });
    expect(decodeShare("#hello").ok).toBe(false);
    const d = decodeShare("#v1/%%%");
    expect(d.ok).toBe(false);
  });

  it("saves and loads work, surviving a broken store", () => {
    const mem = new Map<string, string>();
    const storage = { getItem: (k: string) => mem.get(k) ?? null, setItem: (k: string, v: string) => void mem.set(k, v) };
    expect(loadWork(storage)).toBeNull();
    saveWork({ code: "a", title: "b", machine: { iommu: "vtd", knobs: {} } }, storage);
    expect(loadWork(storage)?.code).toBe("a");
    mem.set("iommu-playground:work", "{not json");
    expect(loadWork(storage)).toBeNull();
  });
});
