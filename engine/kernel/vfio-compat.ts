/**
 * vfio_compat.c: the legacy VFIO type1 container ioctls, answered by iommufd on its own fd (when
 * iommufd provides /dev/vfio/vfio, or after VFIO_GROUP_SET_CONTAINER with an iommufd). They act
 * on the context's compat IOAS (IOMMU_VFIO_IOAS). VFIO's size rule applies: read `minsz` bytes,
 * EINVAL when argsz is below it, ignore the rest.
 */
import { err, isErr, type Err } from "../uapi/errno.ts";
import { VFIO_IOCTLS } from "../uapi/vfio.ts";
import { decodeStruct, encodeStruct, offsetofend } from "../uapi/struct.ts";
import { vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info } from "../uapi/vfio.ts";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from "../hw/model.ts";
import { PAGE_SIZE } from "../hw/memory.ts";
import { IoptPages } from "./pages.ts";
import { ULONG_MAX } from "./io-pagetable.ts";
import type { IommufdCtx } from "./main.ts";
import type { IommufdIoas } from "./private.ts";

const REQ = Object.fromEntries(VFIO_IOCTLS.map((d) => [d.name, d.request]));
const PAGE = BigInt(PAGE_SIZE);

/** get_compat_ioas */
function getCompatIoas(ictx: IommufdCtx): IommufdIoas | Err {
  if (!ictx.vfioIoas) return err("ENODEV", "get_compat_ioas", "no VFIO compatibility IOAS (IOMMU_VFIO_IOAS_SET, or attach a group first)");
  return ictx.vfioIoas;
}

/** iommufd_vfio_ioctl: the syscall's return value, or an Err (ENOTTY for anything unknown). */
export function iommufdVfioIoctl(ictx: IommufdCtx, request: number, arg: number): number | Err {
  switch (request) {
    case REQ.VFIO_GET_API_VERSION:
      return 0; // VFIO_API_VERSION
    case REQ.VFIO_CHECK_EXTENSION:
      return checkExtension(ictx, arg);
    case REQ.VFIO_SET_IOMMU:
      return setIommu(ictx, arg);
    case REQ.VFIO_IOMMU_GET_INFO:
      return getInfo(ictx, arg);
    case REQ.VFIO_IOMMU_MAP_DMA:
      return mapDma(ictx, arg);
    case REQ.VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(ictx, arg);
    default:
      return err("ENOTTY", "iommufd_fops_ioctl", `request 0x${request.toString(16)} is not an iommufd ioctl nor a VFIO container ioctl iommufd answers`);
  }
}

/** iommufd_vfio_check_extension */
function checkExtension(ictx: IommufdCtx, type: number): number | Err {
  switch (type) {
    case 1: // VFIO_TYPE1_IOMMU
    case 3: // VFIO_TYPE1v2_IOMMU
    case 9: // VFIO_UNMAP_ALL
      return 1;
    case 8: // VFIO_NOIOMMU_IOMMU: CONFIG_VFIO_NOIOMMU is off in the simulated kernel
      return 0;
    case 4: { // VFIO_DMA_CC_IOMMU: every domain of the compat IOAS enforces coherency
      const ioas = getCompatIoas(ictx);
      if (isErr(ioas)) return ioas;
      return ioas.hwptList.every((h) => h.enforceCacheCoherency) ? 1 : 0;
    }
    default: // the reserved nesting type, VFIO_UPDATE_VADDR, anything else
      return 0;
  }
}

/** iommufd_vfio_set_iommu */
function setIommu(ictx: IommufdCtx, type: number): number | Err {
  if (type !== 1 && type !== 3) return err("EINVAL", "iommufd_vfio_set_iommu", `type ${type} is neither VFIO_TYPE1_IOMMU nor VFIO_TYPE1v2_IOMMU`);
  const ioas = getCompatIoas(ictx);
  if (isErr(ioas)) return ioas;
  // TYPE1 may unmap in the middle of a mapping: emulate it by disabling large IOPTEs.
  if (type === 1) {
    const rc = ioas.iopt.disableLarge();
    if (rc) return rc;
  }
  return 0;
}

function readMinsz(ictx: IommufdCtx, arg: number, minsz: number): Uint8Array | Err {
  return ictx.kernel.mm.copyFromUser(arg, minsz);
}

/** iommufd_get_pagesizes */
function pagesizes(ioas: IommufdIoas): bigint {
  let bitmap = ULONG_MAX;
  for (const d of ioas.iopt.domains) bitmap &= BigInt(d.pgsizeBitmap);
  if (bitmap & (PAGE - 1n)) bitmap = (bitmap & ~(PAGE - 1n)) | PAGE;
  return bitmap > ioas.iopt.iovaAlignment ? bitmap : ioas.iopt.iovaAlignment;
}

/** iommufd_vfio_iommu_get_info: flags, page sizes, then the DMA_AVAIL and IOVA_RANGE capabilities. */
function getInfo(ictx: IommufdCtx, arg: number): number | Err {
  const def = vfio_iommu_type1_info;
  let minsz = offsetofend(def, "iova_pgsizes");
  const head = readMinsz(ictx, arg, minsz);
  if (isErr(head)) return head;
  const info = decodeStruct(def, head);
  const argsz = info.argsz as number;
  if (argsz < minsz) return err("EINVAL", "iommufd_vfio_iommu_get_info", `argsz ${argsz} is below ${minsz}`);
  minsz = Math.min(argsz, def.size);
  const ioas = getCompatIoas(ictx);
  if (isErr(ioas)) return ioas;
  info.flags = 1; // VFIO_IOMMU_INFO_PGSIZES
  info.iova_pgsizes = pagesizes(ioas);
  info.cap_offset = 0;
  const mm = ictx.kernel.mm;
  // The capability chain, as iommufd_vfio_iommu_get_info builds it: each fill function writes
  // what fits in the `avail` bytes left (IOVA_RANGE writes each range that fits, and its header
  // only when all do) and returns its full size; a cap's `next` is written once argsz reaches
  // the start of the cap after it, whether or not that one fitted.
  const fills = [fillCapDmaAvail, fillCapIova];
  let total = def.size;
  let lastCap = -1;
  for (const fill of fills) {
    const r = argsz > total ? fill(ictx, ioas, arg + total, argsz - total) : fill(ictx, ioas, 0, 0);
    if (isErr(r)) return r;
    const capSize = Math.ceil(r / 8) * 8;
    if (lastCap >= 0 && argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      const rc = mm.copyToUser(arg + lastCap + 4, next);
      if (rc) return rc;
    }
    lastCap = total;
    total += capSize;
  }
  if (argsz >= total) info.cap_offset = def.size;
  info.argsz = total;
  info.flags = 1 | 2; // | VFIO_IOMMU_INFO_CAPS
  const out = encodeStruct(def, info);
  const rc = mm.copyToUser(arg, out.subarray(0, minsz));
  return rc ? rc : 0;
}

/** struct vfio_info_cap_header { __u16 id; __u16 version; __u32 next; } */
function capHeader(id: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, id, true);
  dv.setUint16(2, 1, true); // version
  return b;
}

/** iommufd_fill_cap_dma_avail: struct vfio_iommu_type1_info_dma_avail (12 bytes), avail = U32_MAX. */
function fillCapDmaAvail(ictx: IommufdCtx, _ioas: IommufdIoas, cur: number, avail: number): number | Err {
  const cap = capHeader(3, 12); // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
  new DataView(cap.buffer).setUint32(8, 0xffffffff, true);
  if (avail >= cap.length) {
    const rc = ictx.kernel.mm.copyToUser(cur, cap);
    if (rc) return rc;
  }
  return cap.length;
}

/**
 * iommufd_fill_cap_iova: struct vfio_iommu_type1_info_cap_iova_range (16-byte header with
 * nr_iovas, then 16-byte ranges): every range that fits is written, the header only if all do.
 */
function fillCapIova(ictx: IommufdCtx, ioas: IommufdIoas, cur: number, avail: number): number | Err {
  const mm = ictx.kernel.mm;
  const ranges = ioas.iopt.iovaRanges();
  for (let i = 0; i < ranges.length; i++) {
    if (avail >= 16 + 16 * (i + 1)) {
      const range = new Uint8Array(16);
      const dv = new DataView(range.buffer);
      dv.setBigUint64(0, ranges[i].start, true);
      dv.setBigUint64(8, ranges[i].last, true);
      const rc = mm.copyToUser(cur + 16 + 16 * i, range);
      if (rc) return rc;
    }
  }
  const size = 16 + 16 * ranges.length;
  if (avail >= size) {
    const head = capHeader(1, 16); // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
    new DataView(head.buffer).setUint32(8, ranges.length, true);
    const rc = mm.copyToUser(cur, head);
    if (rc) return rc;
  }
  return size;
}

/** iommufd_vfio_map_dma: always a fixed IOVA, always per-mm accounting. */
function mapDma(ictx: IommufdCtx, arg: number): number | Err {
  const def = vfio_iommu_type1_dma_map;
  const minsz = offsetofend(def, "size");
  const bytes = readMinsz(ictx, arg, minsz);
  if (isErr(bytes)) return bytes;
  const map = decodeStruct(def, bytes);
  const flags = map.flags as number;
  if ((map.argsz as number) < minsz || flags & ~3)
    return err("EINVAL", "iommufd_vfio_map_dma", (map.argsz as number) < minsz ? `argsz is below ${minsz}` : `flags 0x${flags.toString(16)}: only VFIO_DMA_MAP_FLAG_READ and _WRITE are supported`);
  const prot = IOMMU_CACHE | (flags & 1 ? IOMMU_READ : 0) | (flags & 2 ? IOMMU_WRITE : 0);
  const ioas = getCompatIoas(ictx);
  if (isErr(ioas)) return ioas;
  const vaddr = map.vaddr as bigint;
  const size = map.size as bigint;
  if (vaddr + size > ULONG_MAX) return err("EOVERFLOW", "iopt_alloc_user_pages", "vaddr + size overflows");
  if (size === 0n || size > ULONG_MAX - PAGE) return err("EINVAL", "iopt_alloc_pages", "size is 0 or too large");
  const startByte = Number(vaddr % PAGE);
  const k = ictx.kernel;
  const pages = new IoptPages({ kind: "user", uptr: Number(vaddr - BigInt(startByte)) }, startByte, Number(size),
    Number((BigInt(startByte) + size + PAGE - 1n) / PAGE), !!(flags & 2), k.creds.capIpcLock ? "none" : "mm",
    { mm: k.mm, user: k.user, creds: k.creds, trace: k.machine.trace });
  const iova = ioas.iopt.mapPages([{ pages, startByte, length: size }], size, map.iova as bigint, prot, vaddr);
  if (isErr(iova)) return iova;
  return 0;
}

/**
 * iommufd_vfio_unmap_dma. Once the range walk has run, `size` is written back with the bytes
 * unmapped even when the call fails (`unmap.size = unmapped; copy_to_user(arg, &unmap, minsz)`
 * before `err_put`, drivers/iommu/iommufd/vfio_compat.c): 0 for a bad length, the bytes removed
 * before the failing area for ENOENT. Only the FLAG_ALL argument check and a failed cut leave
 * the struct untouched.
 */
function unmapDma(ictx: IommufdCtx, arg: number): number | Err {
  const def = vfio_iommu_type1_dma_unmap;
  const minsz = offsetofend(def, "size");
  const bytes = readMinsz(ictx, arg, minsz);
  if (isErr(bytes)) return bytes;
  const unmap = decodeStruct(def, bytes);
  const flags = unmap.flags as number;
  if ((unmap.argsz as number) < minsz || flags & ~2)
    return err("EINVAL", "iommufd_vfio_unmap_dma", (unmap.argsz as number) < minsz ? `argsz is below ${minsz}` : `flags 0x${flags.toString(16)}: only VFIO_DMA_UNMAP_FLAG_ALL is supported`);
  const ioas = getCompatIoas(ictx);
  if (isErr(ioas)) return ioas;
  const iova = unmap.iova as bigint;
  const size = unmap.size as bigint;
  const progress = { unmapped: 0n };
  let rc: 0 | Err = 0;
  if (flags & 2) {
    if (iova !== 0n || size !== 0n) return err("EINVAL", "iommufd_vfio_unmap_dma", "VFIO_DMA_UNMAP_FLAG_ALL needs iova and size 0");
    const r = ioas.iopt.unmapIovaRange(0n, ULONG_MAX, progress);
    if (isErr(r)) rc = r;
  } else {
    if (ioas.iopt.disableLargePages) {
      // iopt_cut_iova: TYPE1 may unmap part of a mapping
      const cut = ioas.iopt.cutIova(iova ? [iova + size - 1n, iova - 1n] : [iova + size - 1n]);
      if (cut) return cut;
    }
    // iopt_unmap_iova. v6.18 (and 6.12.y / 6.17.y): an empty range succeeds with 0 bytes here,
    // unlike IOMMU_IOAS_UNMAP
    if (!size) rc = err("EINVAL", "iopt_unmap_iova", "size is 0");
    else if (iova + size - 1n > ULONG_MAX) rc = err("EOVERFLOW", "iopt_unmap_iova", "iova + size - 1 overflows");
    else {
      const r = ioas.iopt.unmapIovaRange(iova, iova + size - 1n, progress);
      if (isErr(r)) rc = r;
    }
  }
  unmap.size = progress.unmapped;
  const wr = ictx.kernel.mm.copyToUser(arg, encodeStruct(def, unmap).subarray(0, minsz));
  return wr ? wr : rc;
}
