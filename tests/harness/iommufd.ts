/**
 * A fluent driver for the iommufd conformance tests, in the spirit of the kernel selftest's
 * FIXTURE / FIXTURE_VARIANT (torvalds/linux tools/testing/selftests/iommu/iommufd.c) and its
 * helper macros (iommufd_utils.h: test_ioctl_ioas_alloc, test_ioctl_ioas_map_fixed, …), and of
 * tldraw's TestEditor: a test talks to the engine exactly as a script does — through the script
 * globals (open, ioctl, mmap, poke, hw.device(fd).read) — and the helpers only save typing.
 *
 *   const f = ioasFixture("vtd");             // /dev/iommu + IOAS (+ vfio0 bound and attached)
 *   f.mapFixed(f.buffer, PAGE_SIZE, f.baseIova).unmap(f.baseIova, PAGE_SIZE);
 *   expectErrno("ENOENT", () => f.unmap(f.baseIova, PAGE_SIZE));
 *   f.teardown();                              // teardown_iommufd: close, nothing left pinned
 *
 * Variants (the selftest runs no_domain and mock_domain; we run no_domain and vtd):
 *   no_domain  the IOAS has no device, so no domain: iova_alignment 1, nothing reserved, nothing
 *              pinned (IOMMU_IOAS_MAP does not even look at user memory).
 *   vtd        /dev/vfio/devices/vfio0 is bound and attached to the IOAS, so a real VT-d
 *              second-stage domain mirrors it: 4 KiB smallest page (the mock's is 2 KiB), a
 *              48-bit aperture [0, 2^48 - 1] (the mock's is [1 << 24, (1 << 31) - 1]) and the x86
 *              MSI window [0xfee00000, 0xfeefffff] reserved (the mock reserves nothing).
 */
import { expect } from "vitest";
import { createGlobals, DmaFault, ErrnoError, Session, type SessionConfig } from "../../engine/script/runtime.ts";
import type { ErrnoName } from "../../engine/uapi/errno.ts";
import { uapiConstants } from "../../engine/uapi/index.ts";

export const PAGE_SIZE = 4096;
export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
/** The selftest's BUFFER_SIZE: 16 pages, huge-page aligned. */
export const BUFFER_SIZE = PAGE_SIZE * 16;
export const U64_MAX = (1n << 64n) - 1n;
export const SIZE_MAX = U64_MAX;

/** The VT-d model's constants, standing in for the selftest's MOCK_* ones. */
export const VTD = {
  /** smallest IOPTE (MOCK_PAGE_SIZE is PAGE_SIZE / 2) */
  PAGE_SIZE: 4096,
  /** 48-bit AGAW: the domain aperture is [0, 2^48 - 1] */
  APERTURE_LAST: 2 ** 48 - 1,
  /** IOMMU_RESV_MSI from intel_iommu_get_resv_regions */
  MSI_START: 0xfee00000,
  MSI_LAST: 0xfeefffff,
  /** where the vtd variant maps (the mock's MOCK_APERTURE_START is 1 << 24 too) */
  BASE_IOVA: 1 << 24,
} as const;

export type Variant = "no_domain" | "vtd";
export const IOAS_VARIANTS: readonly Variant[] = ["no_domain", "vtd"];

/** The script globals (SCRIPT-API.md); constants are looked up by name. */
export interface Globals {
  [name: string]: any;
  open(path: string): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg?: unknown): any;
  read(fd: number, count?: number): Record<string, number | bigint>[];
  readBytes(fd: number, count: number): Uint8Array;
  write(fd: number, data: unknown): number;
  mmap(length: number, opts?: { align?: number; fd?: number; offset?: number }): number;
  munmap(addr: number, length: number): number;
  memfd_create(name: string): number;
  ftruncate(fd: number, length: number): number;
  peek(addr: number, length: number): Uint8Array;
  poke(addr: number, bytes: Uint8Array): void;
  hw: {
    iommu: string;
    devices: readonly { name: string; path: string; rid: number; pasidBits: number; pri: boolean; ats: boolean }[];
    readonly now: number;
    device(pathOrFd: string | number): {
      read(iova: number | bigint, length: number, o?: { pasid?: number }): Promise<Uint8Array>;
      write(iova: number | bigint, bytes: Uint8Array, o?: { pasid?: number }): Promise<void>;
      pageRequest(req: { iova: number | bigint; pasid?: number; group: number; last: boolean; read: boolean; write: boolean; exec?: boolean; priv?: boolean }): Promise<number | null>;
    };
  };
  poll(fd: number, timeoutNs?: number): Promise<boolean>;
  sleep(ns: number): Promise<void>;
}

/** A fresh machine and its script globals. */
export function newSession(config: SessionConfig = {}): { s: Session; g: Globals } {
  const s = new Session(config);
  const g = createGlobals(s, { console: () => {}, lineOf: () => undefined }) as Globals;
  return { s, g };
}

/**
 * Assert that `fn` fails with errno `code` (the selftest's EXPECT_ERRNO) and return the error,
 * so a test can look at what the kernel still wrote back.
 */
export function expectErrno(code: ErrnoName, fn: () => unknown): ErrnoError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) expect.fail(`expected ${code}, but the call succeeded`);
  if (!(thrown instanceof ErrnoError)) throw thrown;
  expect(thrown.code, thrown.message).toBe(code);
  return thrown;
}

/** Assert that a DMA promise rejects with a DmaFault, and return it. */
export async function expectDmaFault(p: Promise<unknown>): Promise<DmaFault> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) expect.fail("expected a DMA fault, but the DMA succeeded");
  if (!(thrown instanceof DmaFault)) throw thrown;
  return thrown;
}

/** A byte pattern that differs per page and per offset, so a DMA of the wrong page shows. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + (i >> 12) * 13 + seed * 31) & 0xff;
  return out;
}

const MAP_RW = 2 | 4; // IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE
const MAP_FIXED = 1; // IOMMU_IOAS_MAP_FIXED_IOVA

/** A bound VFIO device: its cdev fd and DEVICE object ID. */
export interface BoundDevice {
  fd: number;
  devId: number;
}

/**
 * One open /dev/iommu and the helpers of iommufd_utils.h. Methods with nothing to return return
 * `this`, so calls chain.
 */
export class IommufdFixture {
  readonly s: Session;
  readonly g: Globals;
  readonly fd: number;
  /** the fixture's IOAS (0 for the bare `iommufd` fixture) */
  ioasId = 0;
  /** the fixture's device (vtd variant): cdev fd, DEVICE ID, auto HWPT ID */
  devFd = 0;
  devId = 0;
  hwptId = 0;
  /** where fixed mappings go: 0 without a domain, VTD.BASE_IOVA with one (MOCK_APERTURE_START) */
  baseIova = 0;
  /** the selftest's `buffer`: BUFFER_SIZE bytes, huge-page aligned, filled with pattern() */
  readonly buffer: number;
  private readonly extraFds: number[] = [];

  constructor(readonly variant: Variant | "bare", config: SessionConfig = {}) {
    const { s, g } = newSession(config);
    this.s = s;
    this.g = g;
    this.fd = g.open("/dev/iommu");
    this.buffer = g.mmap(BUFFER_SIZE, { align: HUGEPAGE_SIZE });
    g.poke(this.buffer, pattern(BUFFER_SIZE));
  }

  /** A constant or errno by name (IOMMU_IOAS_MAP, EINVAL, …). */
  c(name: string): number {
    const v = this.g[name];
    if (typeof v !== "number") throw new Error(`no uAPI constant ${name}`);
    return v;
  }

  ioctl(name: string, arg?: unknown): any {
    return this.g.ioctl(this.fd, this.c(name), arg);
  }

  // ---- objects ---------------------------------------------------------------------------------

  /** test_ioctl_ioas_alloc */
  ioasAlloc(): number {
    return this.ioctl("IOMMU_IOAS_ALLOC", {}).out_ioas_id;
  }

  /** test_ioctl_destroy */
  destroy(id: number): this {
    this.ioctl("IOMMU_DESTROY", { id });
    return this;
  }

  /** test_cmd_hwpt_alloc */
  hwptAlloc(devId: number, ptId: number, flags = 0, extra: Record<string, unknown> = {}): number {
    return this.ioctl("IOMMU_HWPT_ALLOC", { dev_id: devId, pt_id: ptId, flags, ...extra }).out_hwpt_id;
  }

  // ---- IOAS map / unmap ------------------------------------------------------------------------

  /** test_ioctl_ioas_map: automatic IOVA, readable and writeable; returns the IOVA. */
  map(userVa: number, length: number, o: { ioasId?: number; flags?: number } = {}): number {
    const r = this.ioctl("IOMMU_IOAS_MAP", { ioas_id: o.ioasId ?? this.ioasId, flags: o.flags ?? MAP_RW, user_va: userVa, length });
    return Number(r.iova);
  }

  /** test_ioctl_ioas_map_fixed */
  mapFixed(userVa: number, length: number, iova: number | bigint, o: { ioasId?: number; flags?: number } = {}): this {
    this.ioctl("IOMMU_IOAS_MAP", { ioas_id: o.ioasId ?? this.ioasId, flags: (o.flags ?? MAP_RW) | MAP_FIXED, user_va: userVa, length, iova });
    return this;
  }

  /** test_ioctl_ioas_map_file: automatic IOVA; returns the IOVA. */
  mapFile(mfd: number, start: number, length: number, o: { ioasId?: number; flags?: number } = {}): number {
    const r = this.ioctl("IOMMU_IOAS_MAP_FILE", { ioas_id: o.ioasId ?? this.ioasId, flags: o.flags ?? MAP_RW, fd: mfd, start, length });
    return Number(r.iova);
  }

  /** _test_ioctl_ioas_unmap: returns the bytes unmapped. */
  unmapLen(iova: number | bigint, length: number | bigint, ioasId = this.ioasId): number | bigint {
    return this.ioctl("IOMMU_IOAS_UNMAP", { ioas_id: ioasId, iova, length }).length;
  }

  /** test_ioctl_ioas_unmap */
  unmap(iova: number | bigint, length: number | bigint, ioasId = this.ioasId): this {
    this.unmapLen(iova, length, ioasId);
    return this;
  }

  /** IOMMU_IOAS_IOVA_RANGES with room for `capacity` ranges. */
  iovaRanges(capacity = 16, ioasId = this.ioasId): { num: number; alignment: number | bigint; ranges: { start: number | bigint; last: number | bigint }[] } {
    const ranges: { start: number | bigint; last: number | bigint }[] = [];
    const r = this.ioctl("IOMMU_IOAS_IOVA_RANGES", { ioas_id: ioasId, num_iovas: capacity, allowed_iovas: ranges });
    return { num: r.num_iovas, alignment: r.out_iova_alignment, ranges };
  }

  /** IOMMU_IOAS_ALLOW_IOVAS */
  allowIovas(ranges: { start: number | bigint; last: number | bigint }[], ioasId = this.ioasId): this {
    if (ranges.length) this.ioctl("IOMMU_IOAS_ALLOW_IOVAS", { ioas_id: ioasId, allowed_iovas: ranges });
    else this.ioctl("IOMMU_IOAS_ALLOW_IOVAS", { ioas_id: ioasId, num_iovas: 0, allowed_iovas: 0 });
    return this;
  }

  /** IOMMU_OPTION; returns val64. */
  option(optionId: string, op: "SET" | "GET", objectId = 0, val64: number | bigint = 0): number | bigint {
    return this.ioctl("IOMMU_OPTION", { option_id: this.c(optionId), op: this.c(`IOMMU_OPTION_OP_${op}`), object_id: objectId, val64 }).val64;
  }

  // ---- devices (VFIO cdev) -----------------------------------------------------------------------

  /** open /dev/vfio/devices/vfio<index> and VFIO_DEVICE_BIND_IOMMUFD it to this iommufd. */
  bind(index: number): BoundDevice {
    const fd = this.g.open(`/dev/vfio/devices/vfio${index}`);
    this.extraFds.push(fd);
    const r = this.g.ioctl(fd, this.c("VFIO_DEVICE_BIND_IOMMUFD"), { iommufd: this.fd });
    return { fd, devId: r.out_devid };
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT (a replace when already attached); returns the pt_id written back. */
  attach(devFd: number, ptId: number): number {
    return this.g.ioctl(devFd, this.c("VFIO_DEVICE_ATTACH_IOMMUFD_PT"), { pt_id: ptId }).pt_id;
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT */
  detach(devFd: number): this {
    this.g.ioctl(devFd, this.c("VFIO_DEVICE_DETACH_IOMMUFD_PT"), {});
    return this;
  }

  /** Close a device fd opened by bind() (unbind). */
  closeDevice(devFd: number): this {
    this.g.close(devFd);
    const i = this.extraFds.indexOf(devFd);
    if (i >= 0) this.extraFds.splice(i, 1);
    return this;
  }

  /** The DMA side of a device, by fd. */
  dev(devFd = this.devFd) {
    return this.g.hw.device(devFd);
  }

  // ---- teardown ----------------------------------------------------------------------------------

  /** IDs of the live objects of this iommufd (for ID-reuse and leak checks). */
  objectIds(): number[] {
    return this.s.kernel.contexts().flatMap((c) => c.list().map((o) => o.id));
  }

  /**
   * teardown_iommufd: close the iommufd (and the device fds that hold it); then no context may
   * be left and no page pinned or charged (the selftest's IOMMU_TEST_OP_MD_CHECK_REFS on buffer).
   */
  teardown(): void {
    const k = this.s.kernel;
    for (const fd of [...this.extraFds].reverse()) if (k.fds.get(fd)) this.g.close(fd);
    this.extraFds.length = 0;
    if (k.fds.get(this.fd)) this.g.close(this.fd);
    for (const fd of k.fds.fds()) {
      const f = k.fds.get(fd);
      if (f && (f.kind === "fault" || f.kind === "veventq")) this.g.close(fd);
    }
    expect(k.contexts(), "an iommufd context outlived every fd").toHaveLength(0);
    expect(k.mm.pinnedVm, "pages still pinned after close").toBe(0);
    expect(k.mm.lockedVm, "locked_vm still charged after close").toBe(0);
    expect(k.user.lockedVm, "user locked_vm still charged after close").toBe(0);
  }

  /** Track an fd this test opened, so teardown closes it. */
  track(fd: number): number {
    this.extraFds.push(fd);
    return fd;
  }
}

/** FIXTURE(iommufd): just an open /dev/iommu. */
export function bareFixture(config: SessionConfig = {}): IommufdFixture {
  return new IommufdFixture("bare", config);
}

/**
 * FIXTURE(iommufd_ioas) with FIXTURE_VARIANT no_domain or vtd (the selftest's mock_domain): an
 * IOAS, and for vtd the device vfio0 bound and attached to it, so that an automatic VT-d domain
 * (hwptId) mirrors the IOAS.
 */
export function ioasFixture(variant: Variant, config: SessionConfig = {}): IommufdFixture {
  const f = new IommufdFixture(variant, config);
  f.ioasId = f.ioasAlloc();
  if (variant === "vtd") {
    const d = f.bind(0);
    f.devFd = d.fd;
    f.devId = d.devId;
    f.hwptId = f.attach(d.fd, f.ioasId);
    f.baseIova = VTD.BASE_IOVA;
  }
  return f;
}

/** ffs(x) - 1 as a power of two: the lowest set bit of a positive integer. */
export function lowestBit(x: number): number {
  return x & -x;
}

/** A deterministic shuffle (the selftest uses rand()). */
export function shuffled<T>(items: readonly T[], seed = 7): T[] {
  const out = [...items];
  let a = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    const j = a % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Every uAPI constant and errno by name (the script globals' numbers). */
export const C: Readonly<Record<string, number>> = uapiConstants();

/** A zeroed raw struct of `total` bytes whose first __u32 (size / argsz) is `size`. */
export function rawStruct(total: number, size: number): Uint8Array {
  const b = new Uint8Array(total);
  new DataView(b.buffer).setUint32(0, size, true);
  return b;
}

export function getU32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

export function setU32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, true);
}

export function getU64(b: Uint8Array, off: number): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, true);
}

export function setU64(b: Uint8Array, off: number, v: number | bigint): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
}
