/**
 * The iommufd-related part of include/uapi/linux/vfio.h as data: the device cdev calls that bind a
 * device to an iommufd and attach it (v6.6+), and the legacy type1 container ioctls that iommufd
 * answers on its own fd for compatibility (drivers/iommu/iommufd/vfio_compat.c).
 * Source: Kingxukai/linux include/uapi/linux/vfio.h @ 0291023e7330 (~v6.17).
 *
 * VFIO's size rule is not iommufd's: most VFIO ioctls read `minsz` bytes and ignore the rest of
 * `argsz`; only BIND uses copy_struct_from_user (E2BIG on a non-zero tail).
 */
import { defineConsts, type ConstSet } from "./consts.ts";
import { _IO, type IoctlDef } from "./iommufd.ts";
import { defineStruct, offsetofend, type Release, type StructDef } from "./struct.ts";

export const VFIO_TYPE = 0x3b; // ';'
export const VFIO_BASE = 100;
export const VFIO_API_VERSION = 0;

export const vfio_extension = defineConsts("vfio_extension", "enum", [
  ["VFIO_TYPE1_IOMMU", 1, "v6.2", "type1 IOMMU backend"],
  ["VFIO_SPAPR_TCE_IOMMU", 2, "v6.2", "POWER sPAPR TCE backend"],
  ["VFIO_TYPE1v2_IOMMU", 3, "v6.2", "type1 v2 (no sub-range unmap of a mapping)"],
  ["VFIO_DMA_CC_IOMMU", 4, "v6.2", "the IOMMU enforces DMA cache coherency"],
  ["VFIO_EEH", 5, "v6.2", "POWER EEH"],
  ["VFIO_TYPE1_NESTING_IOMMU", 6, "v6.2", "reserved (removed in v6.13)"],
  ["VFIO_SPAPR_TCE_v2_IOMMU", 7, "v6.2", "POWER sPAPR TCE v2"],
  ["VFIO_NOIOMMU_IOMMU", 8, "v6.2", "no IOMMU (unsafe)"],
  ["VFIO_UNMAP_ALL", 9, "v6.2", "VFIO_DMA_UNMAP_FLAG_ALL is supported"],
  ["VFIO_UPDATE_VADDR", 10, "v6.2", "VFIO_DMA_MAP_FLAG_VADDR is supported"],
]);

export const vfio_device_bind_flags = defineConsts("vfio_device_bind_flags", "flags", [
  ["VFIO_DEVICE_BIND_FLAG_TOKEN", 1 << 0, "v6.17", "token_uuid_ptr points at the VF token"],
]);

export const vfio_device_attach_flags = defineConsts("vfio_device_attach_flags", "flags", [
  ["VFIO_DEVICE_ATTACH_PASID", 1 << 0, "v6.15", "attach the pasid field's PASID rather than the RID"],
]);

export const vfio_device_detach_flags = defineConsts("vfio_device_detach_flags", "flags", [
  ["VFIO_DEVICE_DETACH_PASID", 1 << 0, "v6.15", "detach the pasid field's PASID rather than the RID"],
]);

export const vfio_dma_map_flags = defineConsts("vfio_dma_map_flags", "flags", [
  ["VFIO_DMA_MAP_FLAG_READ", 1 << 0, "v6.2", "readable from device"],
  ["VFIO_DMA_MAP_FLAG_WRITE", 1 << 1, "v6.2", "writable from device"],
  ["VFIO_DMA_MAP_FLAG_VADDR", 1 << 2, "v6.2", "update the vaddr of an existing mapping"],
]);

export const vfio_dma_unmap_flags = defineConsts("vfio_dma_unmap_flags", "flags", [
  ["VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP", 1 << 0, "v6.2", "return the dirty bitmap of the range"],
  ["VFIO_DMA_UNMAP_FLAG_ALL", 1 << 1, "v6.2", "unmap everything (iova and size 0)"],
  ["VFIO_DMA_UNMAP_FLAG_VADDR", 1 << 2, "v6.2", "invalidate the vaddr of a mapping"],
]);

export const vfio_iommu_type1_info_flags = defineConsts("vfio_iommu_type1_info_flags", "flags", [
  ["VFIO_IOMMU_INFO_PGSIZES", 1 << 0, "v6.2", "iova_pgsizes is valid"],
  ["VFIO_IOMMU_INFO_CAPS", 1 << 1, "v6.2", "cap_offset is valid"],
]);

export const vfio_iommu_type1_info_cap = defineConsts("vfio_iommu_type1_info_cap", "enum", [
  ["VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", 1, "v6.2", "IOVA ranges capability"],
  ["VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION", 2, "v6.2", "migration capability"],
  ["VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL", 3, "v6.2", "number of DMA mappings available"],
]);

export const VFIO_CONSTS: readonly ConstSet[] = [
  vfio_extension, vfio_device_bind_flags, vfio_device_attach_flags, vfio_device_detach_flags,
  vfio_dma_map_flags, vfio_dma_unmap_flags, vfio_iommu_type1_info_flags, vfio_iommu_type1_info_cap,
];

export const vfio_device_bind_iommufd = defineStruct("vfio_device_bind_iommufd", "v6.6", "Bind a VFIO device cdev to an iommufd", [
  ["argsz", "__u32", "in", "sizeof(struct vfio_device_bind_iommufd) as the caller knows it"],
  ["flags", "__u32", "in", "VFIO_DEVICE_BIND_FLAG_*", { flags: "vfio_device_bind_flags" }],
  ["iommufd", "__s32", "in", "the iommufd to bind to"],
  ["out_devid", "__u32", "out", "ID of the DEVICE object in that iommufd"],
  ["token_uuid_ptr", "__aligned_u64", "in", "pointer to the 16-byte VF token UUID (with FLAG_TOKEN)", { since: "v6.17", ptr: { to: "bytes" } }],
]);

export const vfio_device_attach_iommufd_pt = defineStruct("vfio_device_attach_iommufd_pt", "v6.6", "Attach a bound device (or one of its PASIDs) to an IOAS or HWPT", [
  ["argsz", "__u32", "in", "sizeof(struct vfio_device_attach_iommufd_pt) as the caller knows it"],
  ["flags", "__u32", "in", "VFIO_DEVICE_ATTACH_*", { flags: "vfio_device_attach_flags" }],
  ["pt_id", "__u32", "inout", "in: IOAS or HWPT ID; out: the HWPT actually attached"],
  ["pasid", "__u32", "in", "PASID, with VFIO_DEVICE_ATTACH_PASID", { since: "v6.15" }],
]);

export const vfio_device_detach_iommufd_pt = defineStruct("vfio_device_detach_iommufd_pt", "v6.6", "Detach a device (or one of its PASIDs) back to blocking DMA", [
  ["argsz", "__u32", "in", "sizeof(struct vfio_device_detach_iommufd_pt) as the caller knows it"],
  ["flags", "__u32", "in", "VFIO_DEVICE_DETACH_*", { flags: "vfio_device_detach_flags" }],
  ["pasid", "__u32", "in", "PASID, with VFIO_DEVICE_DETACH_PASID", { since: "v6.15" }],
]);

export const vfio_iommu_type1_info = defineStruct("vfio_iommu_type1_info", "v6.2", "Legacy container: IOMMU info", [
  ["argsz", "__u32", "inout", "in: buffer size; out: the size the full info needs"],
  ["flags", "__u32", "out", "VFIO_IOMMU_INFO_*", { flags: "vfio_iommu_type1_info_flags" }],
  ["iova_pgsizes", "__aligned_u64", "out", "bitmap of supported page sizes"],
  ["cap_offset", "__u32", "out", "offset of the first capability in the buffer"],
  ["pad", "__u32", "out", "0"],
]);

export const vfio_iommu_type1_dma_map = defineStruct("vfio_iommu_type1_dma_map", "v6.2", "Legacy container: map user memory at a fixed IOVA", [
  ["argsz", "__u32", "in", "sizeof(struct vfio_iommu_type1_dma_map)"],
  ["flags", "__u32", "in", "VFIO_DMA_MAP_FLAG_*", { flags: "vfio_dma_map_flags" }],
  ["vaddr", "__aligned_u64", "in", "user virtual address"],
  ["iova", "__aligned_u64", "in", "IOVA"],
  ["size", "__aligned_u64", "in", "bytes"],
]);

export const vfio_iommu_type1_dma_unmap = defineStruct("vfio_iommu_type1_dma_unmap", "v6.2", "Legacy container: unmap IOVA", [
  ["argsz", "__u32", "in", "sizeof(struct vfio_iommu_type1_dma_unmap)"],
  ["flags", "__u32", "in", "VFIO_DMA_UNMAP_FLAG_*", { flags: "vfio_dma_unmap_flags" }],
  ["iova", "__aligned_u64", "in", "IOVA"],
  ["size", "__aligned_u64", "inout", "in: bytes to unmap; out: bytes unmapped"],
]);

export const VFIO_STRUCTS: readonly StructDef[] = [
  vfio_device_bind_iommufd, vfio_device_attach_iommufd_pt, vfio_device_detach_iommufd_pt,
  vfio_iommu_type1_info, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap,
];

function vfioIoctl(name: string, n: number, struct: StructDef | null, minField: string | null, since: Release, target: IoctlDef["target"], doc: string): IoctlDef {
  const nr = VFIO_BASE + n;
  return {
    name, request: _IO(VFIO_TYPE, nr), nr, struct,
    minSize: struct && minField ? offsetofend(struct, minField) : 0, minField, since, target, doc,
  };
}

export const VFIO_IOCTLS: readonly IoctlDef[] = [
  vfioIoctl("VFIO_GET_API_VERSION", 0, null, null, "v6.2", "vfio-container", "returns VFIO_API_VERSION (0)"),
  vfioIoctl("VFIO_CHECK_EXTENSION", 1, null, null, "v6.2", "vfio-container", "1 if the extension (argument) is supported, else 0"),
  vfioIoctl("VFIO_SET_IOMMU", 2, null, null, "v6.2", "vfio-container", "choose the IOMMU type (VFIO_TYPE1_IOMMU / VFIO_TYPE1v2_IOMMU)"),
  vfioIoctl("VFIO_IOMMU_GET_INFO", 12, vfio_iommu_type1_info, "iova_pgsizes", "v6.2", "vfio-container", "page sizes and IOVA ranges of the compat IOAS"),
  vfioIoctl("VFIO_IOMMU_MAP_DMA", 13, vfio_iommu_type1_dma_map, "size", "v6.2", "vfio-container", "map user memory at a fixed IOVA"),
  vfioIoctl("VFIO_IOMMU_UNMAP_DMA", 14, vfio_iommu_type1_dma_unmap, "size", "v6.2", "vfio-container", "unmap IOVA"),
  vfioIoctl("VFIO_DEVICE_BIND_IOMMUFD", 18, vfio_device_bind_iommufd, "out_devid", "v6.6", "vfio-device", "bind the device to an iommufd"),
  vfioIoctl("VFIO_DEVICE_ATTACH_IOMMUFD_PT", 19, vfio_device_attach_iommufd_pt, "pt_id", "v6.6", "vfio-device", "attach to an IOAS or HWPT (replace if attached)"),
  vfioIoctl("VFIO_DEVICE_DETACH_IOMMUFD_PT", 20, vfio_device_detach_iommufd_pt, "flags", "v6.6", "vfio-device", "detach back to blocking DMA"),
];
