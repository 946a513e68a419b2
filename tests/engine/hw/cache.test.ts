import { describe, it, expect } from "vitest";
import { SetAssocCache } from "../../../engine/hw/common/cache.ts";

describe("SetAssocCache", () => {
  it("fills invalid ways first, then evicts the least recently used", () => {
    const c = new SetAssocCache(2, 3);
    const put = (k: number) => {
      const set = c.setOf(k);
      const slot = c.victim(set);
      const evicted = c.valid[slot] ? c.k0[slot] : -1;
      c.insert(slot, k, 0);
      return [c.wayOfSlot(slot), evicted];
    };
    expect([put(0), put(2), put(4)]).toEqual([[0, -1], [1, -1], [2, -1]]);
    expect(c.lookup(0, 0, 0)).toBe(0); // touch 0: LRU is now 2
    expect(put(6)).toEqual([1, 2]);
    expect(c.lookup(0, 4, 0)).toBe(2);
    expect(put(8)).toEqual([0, 0]); // 0 is now the oldest
    expect(c.occupancy).toBe(3);
    expect(c.lookup(1, 1, 0)).toBe(-1);
  });

  it("matches both keys; peek does not touch LRU; invalidate frees the way", () => {
    const c = new SetAssocCache(1, 2);
    c.insert(c.victim(0), 5, 1);
    c.insert(c.victim(0), 5, 2);
    expect(c.lookup(0, 5, 2)).toBe(1);
    expect(c.peek(0, 5, 1)).toBe(0);
    expect(c.victim(0)).toBe(0); // peek did not refresh slot 0
    c.invalidate(1);
    expect(c.victim(0)).toBe(1);
    expect(() => new SetAssocCache(0, 1)).toThrow();
  });
});
