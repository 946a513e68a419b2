/**
 * ioas.c: the IOAS ioctls. Each handler follows iommufd's order: flags and reserved fields
 * (EOPNOTSUPP), arithmetic limits (EOVERFLOW), meaningless requests (EINVAL), the object lookup
 * (ENOENT), then the work, then one copy of the outputs back to the caller.
 */
import { err, isErr, type Rc } from "../uapi/errno.ts";
import { iommufd_ioas_map_flags } from "../uapi/iommufd.ts";
import { unknownBits } from "../uapi/consts.ts";
import { encodeStruct } from "../uapi/struct.ts";
import { iommu_iova_range } from "../uapi/iommufd.ts";
import { PAGE_SIZE } from "../hw/memory.ts";
import { convIommuProt, IoPagetable, SIZE_MAX, ULONG_MAX, type PagesElm, type Range } from "./io-pagetable.ts";
import { iommufdUcmdRespond, type IommufdCtx, type Ucmd } from "./main.ts";
import { IoptPages } from "./pages.ts";
import { iommufdGetIoas, IommufdIoas } from "./private.ts";
import { MemFile } from "./process.ts";

const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
const IOMMU_IOAS_MAP_READABLE = 1 << 2;
const PAGE = BigInt(PAGE_SIZE);

const n = (v: unknown): number => v as number;
const b = (v: unknown): bigint => v as bigint;

/** iommufd_ioas_alloc: a new, published-later IOAS. */
export function iommufdIoasAlloc(ictx: IommufdCtx): IommufdIoas | ReturnType<typeof err> {
  const ioas = ictx.objectAlloc(new IommufdIoas(ictx, new IoPagetable(ictx.kernel.machine.trace)));
  if (isErr(ioas)) return ioas;
  ioas.iopt.ioasId = ioas.id;
  return ioas;
}

/** IOMMU_IOAS_ALLOC */
export function iommufdIoasAllocIoctl(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.flags) return err("EOPNOTSUPP", "iommufd_ioas_alloc_ioctl", `flags must be 0 (got 0x${n(cmd.flags).toString(16)})`);
  const ioas = iommufdIoasAlloc(ictx);
  if (isErr(ioas)) return ioas;
  cmd.out_ioas_id = ioas.id;
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) {
    ictx.objectAbortAndDestroy(ioas);
    return rc;
  }
  ictx.objectFinalize(ioas);
  return 0;
}

/** IOMMU_IOAS_IOVA_RANGES: the holes of the reserved tree, as many as fit; EMSGSIZE after copying back. */
export function iommufdIoasIovaRanges(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_ioas_iova_ranges", "__reserved must be 0");
  const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
  if (isErr(ioas)) return ioas;
  const max = n(cmd.num_iovas);
  const ranges = ioas.iopt.iovaRanges();
  const base = b(cmd.allowed_iovas);
  let count = 0;
  for (const r of ranges) {
    if (count < max) {
      const rc = ictx.kernel.mm.copyToUser(base + BigInt(count * iommu_iova_range.size), encodeStruct(iommu_iova_range, { start: r.start, last: r.last }));
      if (rc) return rc;
    }
    count++;
  }
  cmd.num_iovas = count;
  cmd.out_iova_alignment = ioas.iopt.iovaAlignment;
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) return rc;
  if (count > max)
    return err("EMSGSIZE", "iommufd_ioas_iova_ranges", `${count} range(s) exist but num_iovas was ${max}; num_iovas now holds the total`);
  return 0;
}

/** iommufd_ioas_load_iovas: read a user array of iommu_iova_range. */
function loadIovas(ucmd: Ucmd, ptr: bigint, num: number): Range[] | ReturnType<typeof err> {
  const out: Range[] = [];
  for (let i = 0; i < num; i++) {
    const bytes = ucmd.ictx.kernel.mm.copyFromUser(ptr + BigInt(i * iommu_iova_range.size), iommu_iova_range.size);
    if (isErr(bytes)) return bytes;
    const dv = new DataView(bytes.buffer);
    const start = dv.getBigUint64(0, true);
    const last = dv.getBigUint64(8, true);
    if (start >= last)
      return err("EINVAL", "iommufd_ioas_load_iovas", `range ${i} has start 0x${start.toString(16)} >= last 0x${last.toString(16)}`);
    if (out.some((r) => r.start <= last && r.last >= start))
      return err("EINVAL", "iommufd_ioas_load_iovas", `range ${i} overlaps an earlier range of the list`);
    out.push({ start, last });
  }
  return out;
}

/** IOMMU_IOAS_ALLOW_IOVAS */
export function iommufdIoasAllowIovas(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_ioas_allow_iovas", "__reserved must be 0");
  const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
  if (isErr(ioas)) return ioas;
  const ranges = loadIovas(ucmd, b(cmd.allowed_iovas), n(cmd.num_iovas));
  if (isErr(ranges)) return ranges;
  return ioas.iopt.setAllowIova(ranges);
}

function checkMapFlags(fn: string, cmd: Ucmd["cmd"], hasReserved: boolean): Rc {
  const bad = unknownBits(iommufd_ioas_map_flags, n(cmd.flags));
  if (bad || (hasReserved && cmd.__reserved))
    return err("EOPNOTSUPP", fn, bad ? `unknown flag bits 0x${bad.toString(16)}` : "__reserved must be 0");
  return 0;
}

function newPages(ictx: IommufdCtx, source: IoptPages["source"], startByte: number, length: bigint, writable: boolean): IoptPages | ReturnType<typeof err> {
  // iopt_alloc_pages
  if (length > SIZE_MAX - PAGE || length === 0n)
    return err("EINVAL", "iopt_alloc_pages", length === 0n ? "length is 0" : "length is too large");
  const npages = Number((BigInt(startByte) + length + PAGE - 1n) / PAGE);
  if (npages > 2 ** 32) return err("ENOMEM", "iopt_alloc_pages", "the mapping is larger than the simulated machine can track");
  const k = ictx.kernel;
  return new IoptPages(source, startByte, Number(length), npages, writable, ictx.accountMode, { mm: k.mm, user: k.user, creds: k.creds, trace: k.machine.trace });
}

/** IOMMU_IOAS_MAP: iommufd_ioas_map → iopt_map_user_pages */
export function iommufdIoasMap(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  let rc = checkMapFlags("iommufd_ioas_map", cmd, true);
  if (rc) return rc;
  if (b(cmd.iova) >= ULONG_MAX || b(cmd.length) >= ULONG_MAX)
    return err("EOVERFLOW", "iommufd_ioas_map", "iova or length is ULONG_MAX or more");
  const flags = n(cmd.flags);
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
    return err("EINVAL", "iommufd_ioas_map", "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set");
  const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
  if (isErr(ioas)) return ioas;
  const uptr = b(cmd.user_va);
  const length = b(cmd.length);
  // iopt_alloc_user_pages
  if (uptr + length > ULONG_MAX) return err("EOVERFLOW", "iopt_alloc_user_pages", "user_va + length overflows");
  const startByte = Number(uptr % PAGE);
  const pages = newPages(ictx, { kind: "user", uptr: Number(uptr - BigInt(startByte)) }, startByte, length, !!(flags & IOMMU_IOAS_MAP_WRITEABLE));
  if (isErr(pages)) return pages;
  const iova = ioas.iopt.mapPages(
    [{ pages, startByte, length }], length,
    flags & IOMMU_IOAS_MAP_FIXED_IOVA ? b(cmd.iova) : null,
    convIommuProt(!!(flags & IOMMU_IOAS_MAP_READABLE), !!(flags & IOMMU_IOAS_MAP_WRITEABLE)), uptr,
  );
  if (isErr(iova)) return iova;
  cmd.iova = iova;
  rc = iommufdUcmdRespond(ucmd);
  return rc;
}

/** IOMMU_IOAS_MAP_FILE: iommufd_ioas_map_file → iopt_map_file_pages */
export function iommufdIoasMapFile(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const rc = checkMapFlags("iommufd_ioas_map_file", cmd, false);
  if (rc) return rc;
  if (b(cmd.iova) >= ULONG_MAX || b(cmd.length) >= ULONG_MAX)
    return err("EOVERFLOW", "iommufd_ioas_map_file", "iova or length is ULONG_MAX or more");
  const flags = n(cmd.flags);
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
    return err("EINVAL", "iommufd_ioas_map_file", "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set");
  const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
  if (isErr(ioas)) return ioas;
  const file = ictx.kernel.fds.get(n(cmd.fd));
  if (!file) return err("EBADF", "iommufd_ioas_map_file", `fd ${n(cmd.fd)} is not open`);
  const start = b(cmd.start);
  const length = b(cmd.length);
  // check_add_overflow(start, length - 1): length 0 wraps to ULONG_MAX
  if (length === 0n ? start !== 0n : start + length - 1n > ULONG_MAX)
    return err("EOVERFLOW", "iopt_alloc_file_pages", "start + length - 1 overflows");
  const memfd = file.kind === "memfd" ? (file as unknown as { file: MemFile }).file : null;
  const startByte = Number(start % PAGE);
  const pages = newPages(ictx, { kind: "file", file: memfd, start: Number(start - BigInt(startByte)) }, startByte, length, !!(flags & IOMMU_IOAS_MAP_WRITEABLE));
  if (isErr(pages)) return pages;
  const iova = ioas.iopt.mapPages(
    [{ pages, startByte, length }], length,
    flags & IOMMU_IOAS_MAP_FIXED_IOVA ? b(cmd.iova) : null,
    convIommuProt(!!(flags & IOMMU_IOAS_MAP_READABLE), !!(flags & IOMMU_IOAS_MAP_WRITEABLE)), start,
  );
  if (isErr(iova)) return iova;
  cmd.iova = iova;
  return iommufdUcmdRespond(ucmd);
}

/** IOMMU_IOAS_COPY */
export function iommufdIoasCopy(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const rc = checkMapFlags("iommufd_ioas_copy", cmd, false);
  if (rc) return rc;
  const length = b(cmd.length);
  if (length >= ULONG_MAX || b(cmd.src_iova) >= ULONG_MAX || b(cmd.dst_iova) >= ULONG_MAX)
    return err("EOVERFLOW", "iommufd_ioas_copy", "length, src_iova or dst_iova is ULONG_MAX or more");
  const flags = n(cmd.flags);
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
    return err("EINVAL", "iommufd_ioas_copy", "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set");
  const src = iommufdGetIoas(ictx, n(cmd.src_ioas_id));
  if (isErr(src)) return src;
  // iopt_get_pages
  if (!length) return err("EINVAL", "iopt_get_pages", "length is 0");
  const srcIova = b(cmd.src_iova);
  if (srcIova + length - 1n > ULONG_MAX) return err("EOVERFLOW", "iopt_get_pages", "src_iova + length - 1 overflows");
  const elms: PagesElm[] | ReturnType<typeof err> = src.iopt.getPages(srcIova, srcIova + length - 1n);
  if (isErr(elms)) return elms;
  const dst = iommufdGetIoas(ictx, n(cmd.dst_ioas_id));
  if (isErr(dst)) return dst;
  const first = elms[0];
  const srcAddr = first.pages.source.kind === "user"
    ? BigInt(first.pages.source.uptr + first.startByte)
    : BigInt(first.pages.source.start + first.startByte);
  const iova = dst.iopt.mapPages(elms, length, flags & IOMMU_IOAS_MAP_FIXED_IOVA ? b(cmd.dst_iova) : null,
    convIommuProt(!!(flags & IOMMU_IOAS_MAP_READABLE), !!(flags & IOMMU_IOAS_MAP_WRITEABLE)), srcAddr);
  if (isErr(iova)) return iova;
  cmd.dst_iova = iova;
  return iommufdUcmdRespond(ucmd);
}

/** IOMMU_IOAS_UNMAP */
export function iommufdIoasUnmap(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
  if (isErr(ioas)) return ioas;
  const iova = b(cmd.iova);
  const length = b(cmd.length);
  let unmapped: bigint | ReturnType<typeof err>;
  if (iova === 0n && length === ULONG_MAX) {
    unmapped = ioas.iopt.unmapIovaRange(0n, ULONG_MAX);
  } else {
    if (iova >= ULONG_MAX || length >= ULONG_MAX)
      return err("EOVERFLOW", "iommufd_ioas_unmap", "iova or length is ULONG_MAX or more (only iova 0 with length U64_MAX means 'everything')");
    // iopt_unmap_iova
    if (!length) return err("EINVAL", "iopt_unmap_iova", "length is 0");
    if (iova + length - 1n > ULONG_MAX) return err("EOVERFLOW", "iopt_unmap_iova", "iova + length - 1 overflows");
    unmapped = ioas.iopt.unmapIovaRange(iova, iova + length - 1n);
    if (!isErr(unmapped) && unmapped === 0n)
      return err("ENOENT", "iommufd_ioas_unmap", `nothing is mapped in [0x${iova.toString(16)}, 0x${(iova + length - 1n).toString(16)}]`);
  }
  if (isErr(unmapped)) return unmapped;
  cmd.length = unmapped;
  return iommufdUcmdRespond(ucmd);
}

/** IOMMU_OPTION: iommufd_option */
export function iommufdOption(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_option", "__reserved must be 0");
  let rc: Rc;
  switch (n(cmd.option_id)) {
    case 0: // IOMMU_OPTION_RLIMIT_MODE
      rc = optionRlimitMode(ucmd);
      break;
    case 1: // IOMMU_OPTION_HUGE_PAGES
      rc = ioasOption(ucmd);
      break;
    default:
      return err("EOPNOTSUPP", "iommufd_option", `unknown option_id ${n(cmd.option_id)}`);
  }
  if (rc) return rc;
  // only val64 is copied back
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, b(cmd.val64), true);
  if (ucmd.userSize < 24) return 0;
  return ictx.kernel.mm.copyToUser(ucmd.ubuffer + 16, out);
}

/** iommufd_option_rlimit_mode */
function optionRlimitMode(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.object_id) return err("EOPNOTSUPP", "iommufd_option_rlimit_mode", "object_id must be 0: the option applies to the whole iommufd");
  if (cmd.op === 1) {
    cmd.val64 = ictx.accountMode === "mm" ? 1n : 0n;
    return 0;
  }
  if (cmd.op === 0) {
    if (!ictx.kernel.creds.capSysResource) return err("EPERM", "iommufd_option_rlimit_mode", "changing the accounting mode needs CAP_SYS_RESOURCE");
    if (ictx.objects.size) return err("EBUSY", "iommufd_option_rlimit_mode", "the iommufd already holds objects");
    if (cmd.val64 === 0n) ictx.accountMode = "user";
    else if (cmd.val64 === 1n) ictx.accountMode = "mm";
    else return err("EINVAL", "iommufd_option_rlimit_mode", "val64 must be 0 (per user) or 1 (per process)");
    return 0;
  }
  return err("EOPNOTSUPP", "iommufd_option_rlimit_mode", `unknown op ${n(cmd.op)}`);
}

/** iommufd_ioas_option / iommufd_ioas_option_huge_pages */
function ioasOption(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  const ioas = iommufdGetIoas(ictx, n(cmd.object_id));
  if (isErr(ioas)) return ioas;
  if (cmd.op === 1) {
    cmd.val64 = ioas.iopt.disableLargePages ? 0n : 1n;
    return 0;
  }
  if (cmd.op === 0) {
    if (cmd.val64 === 0n) return ioas.iopt.disableLarge();
    if (cmd.val64 === 1n) {
      ioas.iopt.enableLarge();
      return 0;
    }
    return err("EINVAL", "iommufd_ioas_option_huge_pages", "val64 must be 0 or 1");
  }
  return err("EOPNOTSUPP", "iommufd_ioas_option_huge_pages", `unknown op ${n(cmd.op)}`);
}

/** IOMMU_VFIO_IOAS: iommufd_vfio_ioas */
export function iommufdVfioIoas(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_vfio_ioas", "__reserved must be 0");
  switch (n(cmd.op)) {
    case 0: {
      if (!ictx.vfioIoas) return err("ENODEV", "get_compat_ioas", "no VFIO compatibility IOAS is set");
      cmd.ioas_id = ictx.vfioIoas.id;
      return iommufdUcmdRespond(ucmd);
    }
    case 1: {
      const ioas = iommufdGetIoas(ictx, n(cmd.ioas_id));
      if (isErr(ioas)) return ioas;
      ictx.vfioIoas = ioas;
      return 0;
    }
    case 2:
      ictx.vfioIoas = null;
      return 0;
    default:
      return err("EOPNOTSUPP", "iommufd_vfio_ioas", `unknown op ${n(cmd.op)}`);
  }
}

/** IOMMU_IOAS_CHANGE_PROCESS: one process here, so it only checks that every mapping is a file mapping. */
export function iommufdIoasChangeProcess(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.__reserved) return err("EOPNOTSUPP", "iommufd_ioas_change_process", "__reserved must be 0");
  for (const obj of ictx.list()) {
    if (obj.type !== "IOAS") continue;
    for (const a of obj.iopt.areas)
      if (a.pages.source.kind !== "file")
        return err("EINVAL", "iommufd_ioas_change_process", `IOAS ${obj.id} maps user memory at 0x${a.start.toString(16)}: only IOMMU_IOAS_MAP_FILE mappings can change process`);
  }
  return 0;
}
