/**
 * The script API as a TypeScript declaration file, generated from engine/uapi (never written by
 * hand, so it cannot drift from what the engine accepts): every request constant with its literal
 * value, every struct with each field's C type, offset, direction and documentation, every flag
 * and enum value, an `ioctl` overload per request, and the globals of ../shared/SCRIPT-API.md.
 */
import { CONST_SETS, IOCTLS, STRUCTS } from "../../engine/uapi/index.ts";
import { ERRNO, STRERROR, type ErrnoName } from "../../engine/uapi/errno.ts";
import { IOMMUFD_CMD_BASE, IOMMUFD_TYPE } from "../../engine/uapi/iommufd.ts";
import { VFIO_API_VERSION, VFIO_BASE, VFIO_TYPE } from "../../engine/uapi/vfio.ts";
import type { Field, StructDef } from "../../engine/uapi/struct.ts";

const hex = (n: number) => "0x" + n.toString(16);

function fieldType(f: Field): string {
  const scalar = f.wide ? "number | bigint" : "number";
  if (f.ptr) {
    const elem = f.ptr.to !== "bytes" ? f.ptr.to : null;
    const byType = f.ptr.byType ? Object.values(f.ptr.byType.map) : [];
    const shapes = [elem ? `${elem}[]` : null, ...byType.map((t) => `${t} | ${t}[]`), "Uint8Array", "ArrayBufferView"].filter(Boolean);
    return `${scalar} | ${shapes.join(" | ")}`;
  }
  return f.count > 1 ? `(${scalar})[]` : scalar;
}

function structDts(s: StructDef): string {
  const lines = [`/** struct ${s.name} (${s.size} bytes, since ${s.since}): ${s.doc} */`, `interface ${s.name} {`];
  for (const f of s.fields) {
    const ctype = f.count > 1 ? `${f.type}[${f.count}]` : f.type;
    const since = f.since && f.since !== s.since ? `, since ${f.since}` : "";
    const set = f.flags ?? f.enum;
    lines.push(`  /** \`${ctype} ${f.name}\` @${f.offset} (${f.dir}${since}): ${f.doc}${set ? ` — values: ${set}` : ""} */`);
    lines.push(`  ${f.name}?: ${fieldType(f)};`);
    for (const a of f.alias ?? []) lines.push(`  /** alias of ${f.name} (a C union) */`, `  ${a}?: ${fieldType(f)};`);
  }
  lines.push("}");
  return lines.join("\n");
}

export function scriptApiDts(): string {
  const out: string[] = ["// The iommu-playground script API, generated from engine/uapi.", ""];
  const seen = new Set<string>();
  const constant = (name: string, value: number, doc: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    out.push(`/** ${doc} */`, `declare const ${name}: ${value < 0 ? value : hex(value)};`);
  };
  constant("IOMMUFD_TYPE", IOMMUFD_TYPE, "ioctl type byte of iommufd (';')");
  constant("IOMMUFD_CMD_BASE", IOMMUFD_CMD_BASE, "first iommufd command number");
  constant("VFIO_TYPE", VFIO_TYPE, "ioctl type byte of VFIO (';')");
  constant("VFIO_BASE", VFIO_BASE, "first VFIO command number");
  constant("VFIO_API_VERSION", VFIO_API_VERSION, "VFIO_GET_API_VERSION's answer");
  for (const d of IOCTLS) {
    constant(d.name, d.request, `${d.doc}. _IO(';', ${hex(d.nr)}), since ${d.since}${d.struct ? `; struct ${d.struct.name}, min size ${d.minSize}` : "; integer argument"}`);
    if (d.target === "iommufd") constant("IOMMUFD_CMD_" + d.name.replace(/^IOMMU_/, ""), d.nr, `command number of ${d.name}`);
  }
  for (const set of CONST_SETS.values()) for (const c of set.values) constant(c.name, c.value, `${set.name} (${set.kind}), since ${c.since}: ${c.doc}`);
  for (const [n, v] of Object.entries(ERRNO)) constant(n, v, `errno ${v}: ${STRERROR[n as ErrnoName]}`);
  out.push("");
  for (const s of STRUCTS.values()) out.push(structDts(s), "");
  for (const d of IOCTLS) {
    if (d.struct) {
      out.push(`/** ${d.name}: ${d.doc} (struct ${d.struct.name}). Throws ErrnoError with the kernel's errno on failure. */`);
      out.push(`declare function ioctl(fd: number, request: typeof ${d.name}, arg: ${d.struct.name} | Uint8Array | number | null): Required<${d.struct.name}>;`);
    } else {
      out.push(`/** ${d.name}: ${d.doc}. Returns the syscall's value. */`);
      out.push(`declare function ioctl(fd: number, request: typeof ${d.name}, arg?: number): number;`);
    }
  }
  out.push(GLOBALS);
  return out.join("\n");
}

const GLOBALS = `
/** Any other request: the kernel answers (ENOTTY for an unknown one). */
declare function ioctl(fd: number, request: number, arg?: object | Uint8Array | number | bigint | null): any;

/** A failed system call: the kernel's errno and which check failed. */
declare class ErrnoError extends Error {
  /** errno name, e.g. "EINVAL" */ readonly code: string;
  /** errno number, e.g. 22 */ readonly errno: number;
  /** the failing check and why, e.g. "iopt_check_iova: iova is not aligned …" */ readonly reason: string;
  /** the kernel function whose check failed */ readonly where: string;
}
/** A DMA the IOMMU could not translate, or whose page request was not answered Success. */
declare class DmaFault extends Error {
  /** hardware fault reason (VT-d FR); 0 when the DMA failed on a page response */ readonly reason: number;
  /** the PCI page group response code that failed the DMA (1 Invalid Request), else undefined */ readonly responseCode: number | undefined;
  readonly reasonName: string;
  readonly iova: number | bigint;
  /** undefined for a request without PASID */ readonly pasid: number | undefined;
  /** requester id (bus << 8 | devfn) */ readonly rid: number;
  readonly write: boolean;
}
/** The simulator broke one of its own invariants (never a kernel errno). */
declare class EngineBug extends Error {}

/** Open "/dev/iommu" (a new iommufd) or "/dev/vfio/devices/vfioN". Returns the fd. */
declare function open(path: string): number;
declare function close(fd: number): number;
/** read(2) a fault-queue fd: the iommu_hwpt_pgfault records that fit (count in bytes). */
declare function read(fd: number, count?: number): Required<iommu_hwpt_pgfault>[];
/** read(2), raw bytes. */
declare function readBytes(fd: number, count: number): Uint8Array;
/** write(2) page responses to a fault-queue fd; returns the bytes written. */
declare function write(fd: number, data: iommu_hwpt_page_response[] | Uint8Array): number;
/**
 * Resolves true when the fd is readable (a fault queue with a group to read) in simulated time,
 * false when the timeout passes. Time moves only while the whole script waits; waiting for what
 * nothing can bring is a deadlock, reported as a ScriptError.
 */
declare function poll(fd: number, timeout_ns?: number): Promise<boolean>;
/** Read-write user memory; { align: 2 << 20 } gives transparent huge pages. Returns the address. */
declare function mmap(length: number, opts?: { align?: number; fd?: number; offset?: number }): number;
declare function munmap(address: number, length: number): number;
declare function memfd_create(name: string): number;
declare function ftruncate(fd: number, length: number): number;
/** Read user memory as the CPU would. */
declare function peek(address: number, length: number): Uint8Array;
/** Write user memory as the CPU would. */
declare function poke(address: number, bytes: Uint8Array): void;
/** Let simulated time pass. */
declare function sleep(ns: number): Promise<void>;
/** Lower (or raise) RLIMIT_MEMLOCK, in bytes. */
declare function setrlimit(resource: "RLIMIT_MEMLOCK", bytes: number): void;
declare function strerror(errno: number | string): string;

interface SimDevice {
  readonly name: string;
  /** cdev path, /dev/vfio/devices/vfioN */ readonly path: string;
  /** requester id: bus << 8 | devfn */ readonly rid: number;
  /** PASID width in bits (0: none) */ readonly pasidBits: number;
  readonly pri: boolean;
  readonly ats: boolean;
}
interface DeviceDma {
  readonly name: string;
  readonly path: string;
  readonly rid: number;
  /**
   * A DMA read through the IOMMU; rejects with DmaFault. A device with ATS uses its device-TLB;
   * when its domain has a fault queue, a miss waits for the page response (it settles after it).
   */
  read(iova: number | bigint, length: number, opts?: { pasid?: number }): Promise<Uint8Array>;
  /** A DMA write through the IOMMU; rejects with DmaFault (see read). */
  write(iova: number | bigint, bytes: Uint8Array, opts?: { pasid?: number }): Promise<void>;
  /**
   * A raw PCIe page request (devices with PRI). Requests with one \`group\` (0..511) form a group;
   * \`last\` closes it; last with neither read nor write is a Stop Marker. Resolves with the page
   * group response code the device receives for a request that closes its group (0 Success,
   * 1 Invalid Request), else null (queued; a Stop Marker; dropped by a full queue).
   */
  pageRequest(req: { iova: number | bigint; pasid?: number; group: number; last: boolean; read: boolean; write: boolean; exec?: boolean; priv?: boolean }): Promise<number | null>;
}
/** The simulated machine. */
declare const hw: {
  /** the IOMMU model: "vtd" */ readonly iommu: string;
  readonly devices: readonly SimDevice[];
  /** simulated time in ns */ readonly now: number;
  /** the DMA side of a device, by cdev path or open fd */
  device(pathOrFd: string | number): DeviceDma;
};

/** One level of Guest.pte(): the first-stage entry a walk of the IOVA reads at that level. */
interface GuestPteLevel {
  /** 5 = PML5, 4 = PML4 … 1 = PT */ level: number;
  /** GPA of the table */ table: number;
  index: number;
  /** GPA of the entry itself (poke it with write64) */ entryGpa: number;
  entry: bigint;
  /** "P|RW|US|A|D|PS", "-" when not present */ bits: string;
  leaf: boolean;
}
/**
 * A guest VM's RAM and x86 first-stage page table (engine/script/guest.ts), for nested HWPTs.
 * Guest RAM is user memory mapped into the IOAS at GPA base (IOVA = GPA); page tables come
 * from its top, downwards. Entries are Linux's: non-leaf P|RW|US|A, leaf P|US|A (+RW|D if writable, +PS).
 */
interface Guest {
  /** user address of guest RAM */ readonly ram: number;
  /** GPA of guest RAM */ readonly base: number;
  readonly size: number;
  /** 4 (48-bit) or 5 (57-bit) */ readonly levels: number;
  /** GPA of the root table: iommu_hwpt_vtd_s1.pgtbl_addr */ readonly root: number;
  /** A zeroed 4 KiB table page (from the top of RAM); returns its GPA. */
  alloc(): number;
  /** Map [iova, iova + size) → [gpa, …): writes leaf entries (largest page size the alignment allows). */
  map(iova: number, gpa: number, size: number, opts?: { write?: boolean; user?: boolean; pageSize?: number; presetAD?: boolean }): Guest;
  /** Clear the leaves covering [iova, iova + size). No invalidation: that is the guest's job. */
  unmap(iova: number, size: number): Guest;
  /** The entries a walk of iova reads, root first. */
  pte(iova: number): GuestPteLevel[];
  /** The GPA iova translates to through the first stage, or -1. */
  translate(iova: number): number;
  /** Guest RAM at a GPA, as the guest CPU sees it. */
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, bytes: Uint8Array): Guest;
  read64(gpa: number): bigint;
  write64(gpa: number, value: bigint | number): Guest;
  /** iommu_hwpt_vtd_s1 for IOMMU_HWPT_ALLOC's data_uptr (IOMMU_VTD_S1_* flags). */
  s1(flags?: number): Required<iommu_hwpt_vtd_s1>;
  /** IOMMU_HWPT_INVALIDATE of [iova, iova + size) on a nested HWPT (no range: everything). */
  invalidate(hwptId: number, iova?: number, size?: number, opts?: { leaf?: boolean }): iommu_hwpt_invalidate;
}
/**
 * Make a guest: mmap its RAM, IOMMU_IOAS_MAP it at GPA base (default 0, size default 16 MiB),
 * allocate its root table. hugepages: back RAM with 2 MiB THPs.
 * @example const g = guest({ iommufd, ioas, size: 16 << 20 }); g.map(0x40000000, 0x100000, 0x2000);
 */
declare function guest(opts: { iommufd: number; ioas: number; size?: number; base?: number; levels?: 4 | 5; hugepages?: boolean }): Guest;
`;
