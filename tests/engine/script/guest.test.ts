// engine/script/guest.ts: a guest's RAM and x86 first-stage page table, byte-exact as Linux's
// guest driver writes it, built only from the script globals.
import { describe, expect, it } from "vitest";
import { newSession } from "../../harness/iommufd.ts";
import type { Guest, GuestOptions } from "../../../engine/script/guest.ts";
import { Session, runScript } from "../../../engine/script/runtime.ts";

function setup(o: Partial<GuestOptions> = {}) {
  const { s, g } = newSession();
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id as number;
  const guest = (g.guest as (opts: GuestOptions) => Guest)({ iommufd: fd, ioas, size: 8 << 20, ...o });
  return { s, g, fd, ioas, guest };
}

describe("guest()", () => {
  it("maps guest RAM into the IOAS at GPA base (IOVA = GPA) and allocates the root table at the top", () => {
    const { g, fd, ioas, guest } = setup({ base: 0x1000_0000 });
    expect(guest.base).toBe(0x1000_0000);
    expect(guest.root).toBe(0x1000_0000 + (8 << 20) - 4096);
    expect(guest.levels).toBe(4);
    expect(guest.s1()).toEqual({ flags: 0, pgtbl_addr: guest.root, addr_width: 48 });
    // guest RAM occupies its GPA range in the IOAS
    expect(() => g.ioctl(fd, g.IOMMU_IOAS_MAP, { flags: 7, ioas_id: ioas, user_va: g.mmap(4096), length: 4096, iova: 0x1000_0000 })).toThrow(/EEXIST/);
    // a device attached to the IOAS reads guest RAM at its GPA
    const vfio = g.open("/dev/vfio/devices/vfio1");
    g.ioctl(vfio, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd });
    g.ioctl(vfio, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
    guest.write(0x1000_2000, new Uint8Array([1, 2, 3]));
    return g.hw.device(vfio).read(0x1000_2000, 3).then((b) => expect([...b]).toEqual([1, 2, 3]));
  });

  it("writes Linux's first-stage entries byte for byte: non-leaf P|RW|US|A, leaf P|RW|US|A|D", () => {
    const { guest } = setup();
    const ram = guest.base + (8 << 20);
    guest.map(0x12_3456_7000, 0x10_0000, 0x1000);
    const w = guest.pte(0x12_3456_7000);
    // tables come from the top of RAM downwards: root, PDPT, PD, PT
    expect(w.map((l) => l.table)).toEqual([ram - 0x1000, ram - 0x2000, ram - 0x3000, ram - 0x4000]);
    expect(w.map((l) => l.index)).toEqual([0x12_3456_7000 / 2 ** 39 | 0, (0x12_3456_7000 / 2 ** 30) % 512 | 0, (0x12_3456_7000 / 2 ** 21) % 512 | 0, (0x12_3456_7000 / 2 ** 12) % 512 | 0]);
    expect(w.map((l) => l.entry)).toEqual([
      BigInt(ram - 0x2000) | 0x27n, // P | RW | US | A
      BigInt(ram - 0x3000) | 0x27n,
      BigInt(ram - 0x4000) | 0x27n,
      0x10_0000n | 0x67n, // P | RW | US | A | D
    ]);
    // the same bytes, little-endian, in guest RAM
    const b = guest.read(w[3].entryGpa, 8);
    expect([...b]).toEqual([0x67, 0x00, 0x10, 0, 0, 0, 0, 0]);
    expect(guest.translate(0x12_3456_7abc)).toBe(0x10_0abc);
  });

  it("read-only, supervisor, no pre-set A/D, 2 MiB and 1 GiB leaves", () => {
    const { guest } = setup();
    guest.map(0x1000, 0x1000, 0x1000, { write: false });
    guest.map(0x2000, 0x2000, 0x1000, { user: false });
    guest.map(0x3000, 0x3000, 0x1000, { presetAD: false });
    guest.map(0x4000_0000, 0x20_0000, 2 << 20);
    guest.map(0x80_0000_0000, 0, 1 << 30);
    const leaf = (iova: number) => guest.pte(iova).at(-1)!;
    expect(leaf(0x1000).entry).toBe(0x1000n | 0x25n); // P | US | A
    expect(leaf(0x2000).entry).toBe(0x2000n | 0x63n); // P | RW | A | D
    expect(leaf(0x3000).entry).toBe(0x3000n | 0x07n); // P | RW | US
    expect(leaf(0x4000_0000)).toMatchObject({ level: 2, entry: 0x20_0000n | 0xe7n, bits: "P|RW|US|A|D|PS", leaf: true });
    expect(leaf(0x80_0000_0000)).toMatchObject({ level: 3, entry: 0xe7n, leaf: true });
    expect(guest.translate(0x4000_0000 + 0x1_2345)).toBe(0x20_0000 + 0x1_2345);
    // the largest page the alignment allows, unless asked
    guest.map(0x8000_0000, 0x40_0000, 2 << 20, { pageSize: 4096 });
    expect(leaf(0x8000_0000).level).toBe(1);
  });

  it("5 levels: the root is a PML5, addr_width 57", () => {
    const { guest } = setup({ levels: 5 });
    expect(guest.s1(1)).toEqual({ flags: 1, pgtbl_addr: guest.root, addr_width: 57 });
    guest.map(0x10_0000_0000_0000, 0x10_0000, 0x1000);
    expect(guest.pte(0x10_0000_0000_0000).map((l) => l.level)).toEqual([5, 4, 3, 2, 1]);
  });

  it("unmap clears whole leaves and leaves the tables; pokes go straight to RAM", () => {
    const { guest } = setup();
    guest.map(0x4000_0000, 0x20_0000, 2 << 20).map(0x4020_0000, 0x10_0000, 0x2000);
    guest.unmap(0x4000_1000, 0x1000); // inside the 2 MiB page: the whole page goes
    expect(guest.pte(0x4000_0000).at(-1)).toMatchObject({ level: 2, entry: 0n, leaf: false });
    guest.unmap(0x4020_0000, 0x1000);
    expect(guest.translate(0x4020_0000)).toBe(-1);
    expect(guest.translate(0x4020_1000)).toBe(0x10_1000);
    const pte = guest.pte(0x4020_1000)[3];
    guest.write64(pte.entryGpa, 0x30_0000n | 0x67n);
    expect(guest.translate(0x4020_1000)).toBe(0x30_0000);
  });

  it("refuses what a guest kernel would refuse, as script errors", () => {
    const { guest } = setup();
    guest.map(0x1000, 0x1000, 0x1000);
    expect(() => guest.map(0x1000, 0x2000, 0x1000)).toThrow(/already mapped/);
    expect(() => guest.map(0x1800, 0x2000, 0x1000)).toThrow(/4 KiB aligned/);
    expect(() => guest.read(8 << 20, 8)).toThrow(/outside guest RAM/);
    expect(() => guest.map(2 ** 47 - 0x1000, 0, 0x2000)).toThrow(/canonical/);
    guest.map(0x4000_0000, 0x20_0000, 2 << 20);
    expect(() => guest.map(0x4000_1000, 0, 0x1000)).toThrow(/inside a 2 MiB page/);
    const { g } = newSession();
    expect(() => (g.guest as (o: unknown) => unknown)({ iommufd: 3, ioas: 1, levels: 3 })).toThrow(/levels must be 4 or 5/);
  });

  it("a script's own `guest` variable wins over the global", async () => {
    const lines: string[] = [];
    const r = await runScript(new Session({}), "const guest = 42; console.log(String(guest));", { console: (_l, t) => lines.push(t) });
    expect(r.ok).toBe(true);
    expect(lines).toEqual(["42"]);
  });
});
