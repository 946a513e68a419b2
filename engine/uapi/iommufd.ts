/**
 * include/uapi/linux/iommufd.h as data: every struct, enum, flag and ioctl, declared once.
 * Baseline: torvalds/linux include/uapi/linux/iommufd.h @ b4d90dbc4c1b (~v6.17); the `since`
 * tags come from ../shared/reference/iommufd-uapi.md §13 (release history).
 *
 * Generic ioctl format (the header's DOC block, paraphrased): the first __u32 of every argument is
 * its size; the kernel accepts any size from the ioctl's first-release size upward, zero-extends a
 * short struct and refuses non-zero bytes it does not understand with E2BIG.
 */
import { defineConsts, type ConstSet } from "./consts.ts";
import { defineStruct, offsetofend, type Release, type StructDef } from "./struct.ts";

export const IOMMUFD_TYPE = 0x3b; // ';'
export const IOMMUFD_CMD_BASE = 0x80;

/** _IO(type, nr): no direction or size bits, so a struct can grow without a new number. */
export function _IO(type: number, nr: number): number {
  return (type << 8) | nr;
}

// ---- enums and flags --------------------------------------------------------------------------

export const iommufd_ioas_map_flags = defineConsts("iommufd_ioas_map_flags", "flags", [
  ["IOMMU_IOAS_MAP_FIXED_IOVA", 1 << 0, "v6.2", "place the mapping at iova exactly; the range must be free"],
  ["IOMMU_IOAS_MAP_WRITEABLE", 1 << 1, "v6.2", "DMA is allowed to write to this mapping"],
  ["IOMMU_IOAS_MAP_READABLE", 1 << 2, "v6.2", "DMA is allowed to read from this mapping"],
]);

export const iommufd_option = defineConsts("iommufd_option", "enum", [
  ["IOMMU_OPTION_RLIMIT_MODE", 0, "v6.2", "whole ctx: 0 = per-user pinned-page accounting, 1 = per-process (mm)"],
  ["IOMMU_OPTION_HUGE_PAGES", 1, "v6.2", "per IOAS: 1 = allow large IOPTEs (default), 0 = map everything at PAGE_SIZE"],
]);

export const iommufd_option_ops = defineConsts("iommufd_option_ops", "enum", [
  ["IOMMU_OPTION_OP_SET", 0, "v6.2", "set the option to val64"],
  ["IOMMU_OPTION_OP_GET", 1, "v6.2", "return the option in val64"],
]);

export const iommufd_vfio_ioas_op = defineConsts("iommufd_vfio_ioas_op", "enum", [
  ["IOMMU_VFIO_IOAS_GET", 0, "v6.2", "return the IOAS used by VFIO container compatibility"],
  ["IOMMU_VFIO_IOAS_SET", 1, "v6.2", "make ioas_id the compatibility IOAS"],
  ["IOMMU_VFIO_IOAS_CLEAR", 2, "v6.2", "unset the compatibility IOAS"],
]);

export const iommufd_hwpt_alloc_flags = defineConsts("iommufd_hwpt_alloc_flags", "flags", [
  ["IOMMU_HWPT_ALLOC_NEST_PARENT", 1 << 0, "v6.7", "the HWPT can be the parent (stage 2) of nested HWPTs"],
  ["IOMMU_HWPT_ALLOC_DIRTY_TRACKING", 1 << 1, "v6.7", "require a domain that can track DMA-dirty pages"],
  ["IOMMU_HWPT_FAULT_ID_VALID", 1 << 2, "v6.11", "fault_id names a FAULT object that receives this HWPT's I/O page faults"],
  ["IOMMU_HWPT_ALLOC_PASID", 1 << 3, "v6.15", "the HWPT may be attached to PASIDs of a device"],
]);

export const iommu_hwpt_vtd_s1_flags = defineConsts("iommu_hwpt_vtd_s1_flags", "flags", [
  ["IOMMU_VTD_S1_SRE", 1 << 0, "v6.7", "supervisor requests enabled"],
  ["IOMMU_VTD_S1_EAFE", 1 << 1, "v6.7", "extended access flag enabled"],
  ["IOMMU_VTD_S1_WPE", 1 << 2, "v6.7", "write protect enabled"],
]);

export const iommu_hwpt_data_type = defineConsts("iommu_hwpt_data_type", "enum", [
  ["IOMMU_HWPT_DATA_NONE", 0, "v6.7", "no driver data: a kernel-managed paging HWPT"],
  ["IOMMU_HWPT_DATA_VTD_S1", 1, "v6.7", "Intel VT-d stage-1 page table (struct iommu_hwpt_vtd_s1)"],
  ["IOMMU_HWPT_DATA_ARM_SMMUV3", 2, "v6.13", "ARM SMMUv3 nested STE (struct iommu_hwpt_arm_smmuv3)"],
]);

export const iommu_hw_info_vtd_flags = defineConsts("iommu_hw_info_vtd_flags", "flags", [
  ["IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17", 1 << 0, "v6.8", "read-only mappings must not be used on a nest-parent domain"],
]);

export const iommu_hw_info_type = defineConsts("iommu_hw_info_type", "enum", [
  ["IOMMU_HW_INFO_TYPE_NONE", 0, "v6.6", "the driver reports no hardware information"],
  ["IOMMU_HW_INFO_TYPE_DEFAULT", 0, "v6.17", "input: the driver's default type"],
  ["IOMMU_HW_INFO_TYPE_INTEL_VTD", 1, "v6.6", "struct iommu_hw_info_vtd"],
  ["IOMMU_HW_INFO_TYPE_ARM_SMMUV3", 2, "v6.13", "struct iommu_hw_info_arm_smmuv3"],
  ["IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV", 3, "v6.17", "struct iommu_hw_info_tegra241_cmdqv"],
]);

export const iommufd_hw_capabilities = defineConsts("iommufd_hw_capabilities", "flags", [
  ["IOMMU_HW_CAP_DIRTY_TRACKING", 1 << 0, "v6.7", "the IOMMU can track DMA-dirty pages"],
  ["IOMMU_HW_CAP_PCI_PASID_EXEC", 1 << 1, "v6.15", "the device's PASID capability has Execute Permission enabled"],
  ["IOMMU_HW_CAP_PCI_PASID_PRIV", 1 << 2, "v6.15", "the device's PASID capability has Privileged Mode enabled"],
]);

export const iommufd_hw_info_flags = defineConsts("iommufd_hw_info_flags", "flags", [
  ["IOMMU_HW_INFO_FLAG_INPUT_TYPE", 1 << 0, "v6.17", "in_data_type selects the info type to report"],
]);

export const iommufd_hwpt_set_dirty_tracking_flags = defineConsts("iommufd_hwpt_set_dirty_tracking_flags", "flags", [
  ["IOMMU_HWPT_DIRTY_TRACKING_ENABLE", 1, "v6.7", "enable dirty tracking (0 disables)"],
]);

export const iommufd_hwpt_get_dirty_bitmap_flags = defineConsts("iommufd_hwpt_get_dirty_bitmap_flags", "flags", [
  ["IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR", 1, "v6.7", "read the dirty bits without clearing them (and without an IOTLB flush)"],
]);

export const iommu_hwpt_invalidate_data_type = defineConsts("iommu_hwpt_invalidate_data_type", "enum", [
  ["IOMMU_HWPT_INVALIDATE_DATA_VTD_S1", 0, "v6.8", "struct iommu_hwpt_vtd_s1_invalidate entries"],
  ["IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3", 1, "v6.13", "struct iommu_viommu_arm_smmuv3_invalidate entries"],
]);

export const iommu_hwpt_vtd_s1_invalidate_flags = defineConsts("iommu_hwpt_vtd_s1_invalidate_flags", "flags", [
  ["IOMMU_VTD_INV_FLAGS_LEAF", 1 << 0, "v6.8", "only leaf PTEs changed: paging-structure caches may be kept"],
]);

export const iommu_hwpt_pgfault_flags = defineConsts("iommu_hwpt_pgfault_flags", "flags", [
  ["IOMMU_PGFAULT_FLAGS_PASID_VALID", 1 << 0, "v6.11", "the pasid field is valid"],
  ["IOMMU_PGFAULT_FLAGS_LAST_PAGE", 1 << 1, "v6.11", "the last page fault of its group"],
]);

export const iommu_hwpt_pgfault_perm = defineConsts("iommu_hwpt_pgfault_perm", "flags", [
  ["IOMMU_PGFAULT_PERM_READ", 1 << 0, "v6.11", "read access requested"],
  ["IOMMU_PGFAULT_PERM_WRITE", 1 << 1, "v6.11", "write access requested"],
  ["IOMMU_PGFAULT_PERM_EXEC", 1 << 2, "v6.11", "execute access requested"],
  ["IOMMU_PGFAULT_PERM_PRIV", 1 << 3, "v6.11", "privileged access requested"],
]);

export const iommufd_page_response_code = defineConsts("iommufd_page_response_code", "enum", [
  ["IOMMUFD_PAGE_RESP_SUCCESS", 0, "v6.11", "the fault was handled; the device retries (PCI 'Success')"],
  ["IOMMUFD_PAGE_RESP_INVALID", 1, "v6.11", "the fault could not be handled; the device must not retry (PCI 'Invalid Request')"],
]);

export const iommu_viommu_type = defineConsts("iommu_viommu_type", "enum", [
  ["IOMMU_VIOMMU_TYPE_DEFAULT", 0, "v6.13", "reserved for future use"],
  ["IOMMU_VIOMMU_TYPE_ARM_SMMUV3", 1, "v6.13", "ARM SMMUv3 vIOMMU"],
  ["IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV", 2, "v6.17", "NVIDIA Tegra241 CMDQV vIOMMU"],
]);

export const iommu_veventq_flag = defineConsts("iommu_veventq_flag", "flags", [
  ["IOMMU_VEVENTQ_FLAG_LOST_EVENTS", 1 << 0, "v6.15", "events were lost before this header"],
]);

export const iommu_veventq_type = defineConsts("iommu_veventq_type", "enum", [
  ["IOMMU_VEVENTQ_TYPE_DEFAULT", 0, "v6.15", "reserved for future use"],
  ["IOMMU_VEVENTQ_TYPE_ARM_SMMUV3", 1, "v6.15", "ARM SMMUv3 event records"],
  ["IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV", 2, "v6.17", "Tegra241 CMDQV error maps"],
]);

export const iommu_hw_queue_type = defineConsts("iommu_hw_queue_type", "enum", [
  ["IOMMU_HW_QUEUE_TYPE_DEFAULT", 0, "v6.17", "reserved for future use"],
  ["IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV", 1, "v6.17", "a Tegra241 VCMDQ"],
]);

export const IOMMUFD_CONSTS: readonly ConstSet[] = [
  iommufd_ioas_map_flags, iommufd_option, iommufd_option_ops, iommufd_vfio_ioas_op,
  iommufd_hwpt_alloc_flags, iommu_hwpt_vtd_s1_flags, iommu_hwpt_data_type, iommu_hw_info_vtd_flags,
  iommu_hw_info_type, iommufd_hw_capabilities, iommufd_hw_info_flags,
  iommufd_hwpt_set_dirty_tracking_flags, iommufd_hwpt_get_dirty_bitmap_flags,
  iommu_hwpt_invalidate_data_type, iommu_hwpt_vtd_s1_invalidate_flags, iommu_hwpt_pgfault_flags,
  iommu_hwpt_pgfault_perm, iommufd_page_response_code, iommu_viommu_type, iommu_veventq_flag,
  iommu_veventq_type, iommu_hw_queue_type,
];

// ---- structs ------------------------------------------------------------------------------------

const SIZE = (s: string): [string, string, "in", string] => ["size", "__u32", "in", `sizeof(struct ${s}) as the caller knows it`];

export const iommu_destroy = defineStruct("iommu_destroy", "v6.2", "Destroy any object by its ID", [
  SIZE("iommu_destroy"),
  ["id", "__u32", "in", "iommufd object ID to destroy; any destroyable type"],
]);

export const iommu_ioas_alloc = defineStruct("iommu_ioas_alloc", "v6.2", "Allocate an empty I/O address space", [
  SIZE("iommu_ioas_alloc"),
  ["flags", "__u32", "in", "must be 0"],
  ["out_ioas_id", "__u32", "out", "ID of the new IOAS"],
]);

export const iommu_iova_range = defineStruct("iommu_iova_range", "v6.2", "An inclusive range of IOVA", [
  ["start", "__aligned_u64", "inout", "first IOVA"],
  ["last", "__aligned_u64", "inout", "last IOVA (inclusive)"],
]);

export const iommu_ioas_iova_ranges = defineStruct("iommu_ioas_iova_ranges", "v6.2", "Report the IOVA ranges usable for mapping", [
  SIZE("iommu_ioas_iova_ranges"),
  ["ioas_id", "__u32", "in", "IOAS to query"],
  ["num_iovas", "__u32", "inout", "in: capacity of allowed_iovas; out: total number of ranges"],
  ["__reserved", "__u32", "in", "must be 0"],
  ["allowed_iovas", "__aligned_u64", "in", "pointer to struct iommu_iova_range[num_iovas], written by the kernel", { ptr: { to: "iommu_iova_range", count: "num_iovas", out: true } }],
  ["out_iova_alignment", "__aligned_u64", "out", "minimum alignment of IOVA and length for maps"],
]);

export const iommu_ioas_allow_iovas = defineStruct("iommu_ioas_allow_iovas", "v6.2", "Restrict the IOVA that automatic allocation and reservations may use", [
  SIZE("iommu_ioas_allow_iovas"),
  ["ioas_id", "__u32", "in", "IOAS to change"],
  ["num_iovas", "__u32", "in", "number of entries in allowed_iovas (0 clears the list)"],
  ["__reserved", "__u32", "in", "must be 0"],
  ["allowed_iovas", "__aligned_u64", "in", "pointer to struct iommu_iova_range[num_iovas]", { ptr: { to: "iommu_iova_range", count: "num_iovas" } }],
]);

export const iommu_ioas_map = defineStruct("iommu_ioas_map", "v6.2", "Map user memory into an IOAS", [
  SIZE("iommu_ioas_map"),
  ["flags", "__u32", "in", "IOMMU_IOAS_MAP_* (READABLE and/or WRITEABLE required)", { flags: "iommufd_ioas_map_flags" }],
  ["ioas_id", "__u32", "in", "IOAS to map into"],
  ["__reserved", "__u32", "in", "must be 0"],
  ["user_va", "__aligned_u64", "in", "user virtual address of the memory to map"],
  ["length", "__aligned_u64", "in", "bytes to map"],
  ["iova", "__aligned_u64", "inout", "in with FIXED_IOVA: where to map; out: the IOVA chosen"],
]);

export const iommu_ioas_map_file = defineStruct("iommu_ioas_map_file", "v6.13", "Map a range of a memory file (memfd) into an IOAS", [
  SIZE("iommu_ioas_map_file"),
  ["flags", "__u32", "in", "IOMMU_IOAS_MAP_* flags", { flags: "iommufd_ioas_map_flags" }],
  ["ioas_id", "__u32", "in", "IOAS to map into"],
  ["fd", "__s32", "in", "the memfd"],
  ["start", "__aligned_u64", "in", "byte offset in the file"],
  ["length", "__aligned_u64", "in", "bytes to map"],
  ["iova", "__aligned_u64", "inout", "in with FIXED_IOVA: where to map; out: the IOVA chosen"],
]);

export const iommu_ioas_copy = defineStruct("iommu_ioas_copy", "v6.2", "Map memory already mapped in one IOAS into another (no second pin)", [
  SIZE("iommu_ioas_copy"),
  ["flags", "__u32", "in", "IOMMU_IOAS_MAP_* flags", { flags: "iommufd_ioas_map_flags" }],
  ["dst_ioas_id", "__u32", "in", "IOAS to map into"],
  ["src_ioas_id", "__u32", "in", "IOAS to copy the mapping from"],
  ["length", "__aligned_u64", "in", "bytes to copy"],
  ["dst_iova", "__aligned_u64", "inout", "in with FIXED_IOVA: where to map; out: the IOVA chosen"],
  ["src_iova", "__aligned_u64", "in", "IOVA of the source range"],
]);

export const iommu_ioas_unmap = defineStruct("iommu_ioas_unmap", "v6.2", "Unmap whole areas of an IOAS", [
  SIZE("iommu_ioas_unmap"),
  ["ioas_id", "__u32", "in", "IOAS to unmap from"],
  ["iova", "__aligned_u64", "in", "first IOVA (0 with length U64_MAX: everything)"],
  ["length", "__aligned_u64", "inout", "in: bytes to unmap; out: bytes unmapped"],
]);

export const iommu_option = defineStruct("iommu_option", "v6.2", "Get or set an iommufd option", [
  SIZE("iommu_option"),
  ["option_id", "__u32", "in", "IOMMU_OPTION_*", { enum: "iommufd_option" }],
  ["op", "__u16", "in", "IOMMU_OPTION_OP_SET or _GET", { enum: "iommufd_option_ops" }],
  ["__reserved", "__u16", "in", "must be 0"],
  ["object_id", "__u32", "in", "the object the option applies to (0 for the ctx)"],
  ["val64", "__aligned_u64", "inout", "in for SET, out for GET"],
]);

export const iommu_vfio_ioas = defineStruct("iommu_vfio_ioas", "v6.2", "Get, set or clear the IOAS used by VFIO container compatibility", [
  SIZE("iommu_vfio_ioas"),
  ["ioas_id", "__u32", "inout", "in for SET, out for GET"],
  ["op", "__u16", "in", "IOMMU_VFIO_IOAS_*", { enum: "iommufd_vfio_ioas_op" }],
  ["__reserved", "__u16", "in", "must be 0"],
]);

export const iommu_hwpt_vtd_s1 = defineStruct("iommu_hwpt_vtd_s1", "v6.7", "Intel VT-d stage-1 page table info (IOMMU_HWPT_DATA_VTD_S1)", [
  ["flags", "__aligned_u64", "in", "IOMMU_VTD_S1_*", { flags: "iommu_hwpt_vtd_s1_flags" }],
  ["pgtbl_addr", "__aligned_u64", "in", "guest-physical base of the stage-1 page table"],
  ["addr_width", "__u32", "in", "stage-1 input address width: 48 (4-level) or 57 (5-level)"],
  ["__reserved", "__u32", "in", "must be 0"],
]);

export const iommu_hwpt_arm_smmuv3 = defineStruct("iommu_hwpt_arm_smmuv3", "v6.13", "ARM SMMUv3 nested STE (IOMMU_HWPT_DATA_ARM_SMMUV3)", [
  ["ste", "__aligned_le64[2]", "in", "the first two 64-bit words of a guest Stream Table Entry"],
]);

export const iommu_hwpt_alloc = defineStruct("iommu_hwpt_alloc", "v6.6", "Allocate a hardware page table (paging or nested)", [
  SIZE("iommu_hwpt_alloc"),
  ["flags", "__u32", "in", "IOMMU_HWPT_ALLOC_* and IOMMU_HWPT_FAULT_ID_VALID", { flags: "iommufd_hwpt_alloc_flags" }],
  ["dev_id", "__u32", "in", "device the HWPT must be compatible with"],
  ["pt_id", "__u32", "in", "IOAS, nest-parent HWPT_PAGING, or vIOMMU"],
  ["out_hwpt_id", "__u32", "out", "ID of the new HWPT"],
  ["__reserved", "__u32", "in", "must be 0"],
  ["data_type", "__u32", "in", "IOMMU_HWPT_DATA_* type of the data at data_uptr", { since: "v6.7", enum: "iommu_hwpt_data_type" }],
  ["data_len", "__u32", "in", "length of the driver data", { since: "v6.7" }],
  ["data_uptr", "__aligned_u64", "in", "pointer to the driver data", { since: "v6.7", ptr: { to: "bytes", len: "data_len", byType: { field: "data_type", map: { 1: "iommu_hwpt_vtd_s1", 2: "iommu_hwpt_arm_smmuv3" } } } }],
  ["fault_id", "__u32", "in", "FAULT object, used with IOMMU_HWPT_FAULT_ID_VALID", { since: "v6.11" }],
  ["__reserved2", "__u32", "in", "documented as 0; not checked by the kernel", { since: "v6.11" }],
]);

export const iommu_hw_info_vtd = defineStruct("iommu_hw_info_vtd", "v6.6", "Intel VT-d hardware information (IOMMU_HW_INFO_TYPE_INTEL_VTD)", [
  ["flags", "__u32", "out", "IOMMU_HW_INFO_VTD_*", { flags: "iommu_hw_info_vtd_flags" }],
  ["__reserved", "__u32", "out", "0"],
  ["cap_reg", "__aligned_u64", "out", "the VT-d Capability Register (VT-d spec 11.4.2)"],
  ["ecap_reg", "__aligned_u64", "out", "the VT-d Extended Capability Register (VT-d spec 11.4.3)"],
]);

export const iommu_hw_info_arm_smmuv3 = defineStruct("iommu_hw_info_arm_smmuv3", "v6.13", "ARM SMMUv3 hardware information", [
  ["flags", "__u32", "out", "must be 0"],
  ["__reserved", "__u32", "out", "0"],
  ["idr", "__u32[6]", "out", "SMMU_IDR0..5"],
  ["iidr", "__u32", "out", "SMMU_IIDR"],
  ["aidr", "__u32", "out", "SMMU_AIDR"],
]);

export const iommu_hw_info_tegra241_cmdqv = defineStruct("iommu_hw_info_tegra241_cmdqv", "v6.17", "NVIDIA Tegra241 CMDQV hardware information", [
  ["flags", "__u32", "out", "must be 0"],
  ["version", "__u8", "out", "CMDQV version"],
  ["log2vcmdqs", "__u8", "out", "log2 of the number of VCMDQs"],
  ["log2vsids", "__u8", "out", "log2 of the number of virtual SIDs"],
  ["__reserved", "__u8", "out", "0"],
]);

export const iommu_hw_info = defineStruct("iommu_hw_info", "v6.6", "Query the IOMMU behind a device", [
  SIZE("iommu_hw_info"),
  ["flags", "__u32", "in", "IOMMU_HW_INFO_FLAG_*", { flags: "iommufd_hw_info_flags" }],
  ["dev_id", "__u32", "in", "device to query"],
  ["data_len", "__u32", "inout", "in: buffer length; out: the length of the kernel's data"],
  ["data_uptr", "__aligned_u64", "in", "buffer for the type-specific data", { ptr: { to: "bytes", len: "data_len", out: true, byType: { field: "out_data_type", map: { 1: "iommu_hw_info_vtd", 2: "iommu_hw_info_arm_smmuv3", 3: "iommu_hw_info_tegra241_cmdqv" } } } }],
  ["out_data_type", "__u32", "inout", "out: IOMMU_HW_INFO_TYPE_* of the data; in (as in_data_type) with IOMMU_HW_INFO_FLAG_INPUT_TYPE", { enum: "iommu_hw_info_type", alias: ["in_data_type"] }],
  ["out_max_pasid_log2", "__u8", "out", "PASID width of the device; 0: no PASID", { since: "v6.15" }],
  ["__reserved", "__u8[3]", "in", "must be 0"],
  ["out_capabilities", "__aligned_u64", "out", "IOMMU_HW_CAP_* bits", { since: "v6.7", flags: "iommufd_hw_capabilities" }],
]);

export const iommu_hwpt_set_dirty_tracking = defineStruct("iommu_hwpt_set_dirty_tracking", "v6.7", "Start or stop dirty tracking on a HWPT", [
  SIZE("iommu_hwpt_set_dirty_tracking"),
  ["flags", "__u32", "in", "IOMMU_HWPT_DIRTY_TRACKING_ENABLE or 0", { flags: "iommufd_hwpt_set_dirty_tracking_flags" }],
  ["hwpt_id", "__u32", "in", "HWPT_PAGING to change"],
  ["__reserved", "__u32", "in", "documented as 0; not checked by the kernel"],
]);

export const iommu_hwpt_get_dirty_bitmap = defineStruct("iommu_hwpt_get_dirty_bitmap", "v6.7", "Read (and clear) the dirty bits of an IOVA range into a bitmap", [
  SIZE("iommu_hwpt_get_dirty_bitmap"),
  ["hwpt_id", "__u32", "in", "HWPT_PAGING to read"],
  ["flags", "__u32", "in", "IOMMU_HWPT_GET_DIRTY_BITMAP_*", { flags: "iommufd_hwpt_get_dirty_bitmap_flags" }],
  ["__reserved", "__u32", "in", "must be 0"],
  ["iova", "__aligned_u64", "in", "base IOVA of the bitmap (bit 0)"],
  ["length", "__aligned_u64", "in", "bytes of IOVA covered"],
  ["page_size", "__aligned_u64", "in", "bytes of IOVA per bit"],
  ["data", "__aligned_u64", "in", "pointer to the bitmap of little-endian __u64 words", { ptr: { to: "bytes", out: true } }],
]);

export const iommu_hwpt_vtd_s1_invalidate = defineStruct("iommu_hwpt_vtd_s1_invalidate", "v6.8", "One VT-d stage-1 cache invalidation", [
  ["addr", "__aligned_u64", "in", "start address, 4 KiB aligned"],
  ["npages", "__aligned_u64", "in", "number of 4 KiB pages; addr 0 with U64_MAX: everything"],
  ["flags", "__u32", "in", "IOMMU_VTD_INV_FLAGS_*", { flags: "iommu_hwpt_vtd_s1_invalidate_flags" }],
  ["__reserved", "__u32", "in", "must be 0"],
]);

export const iommu_viommu_arm_smmuv3_invalidate = defineStruct("iommu_viommu_arm_smmuv3_invalidate", "v6.13", "One raw SMMUv3 command", [
  ["cmd", "__aligned_le64[2]", "in", "a 128-bit SMMUv3 command queue entry"],
]);

export const iommu_hwpt_invalidate = defineStruct("iommu_hwpt_invalidate", "v6.8", "Invalidate the caches of a nested HWPT or vIOMMU", [
  SIZE("iommu_hwpt_invalidate"),
  ["hwpt_id", "__u32", "in", "HWPT_NESTED or vIOMMU"],
  ["data_uptr", "__aligned_u64", "in", "pointer to an array of entries", { ptr: { to: "bytes", count: "entry_num", elemLen: "entry_len", byType: { field: "data_type", map: { 0: "iommu_hwpt_vtd_s1_invalidate", 1: "iommu_viommu_arm_smmuv3_invalidate" } } } }],
  ["data_type", "__u32", "in", "IOMMU_HWPT_INVALIDATE_DATA_*", { enum: "iommu_hwpt_invalidate_data_type" }],
  ["entry_len", "__u32", "in", "bytes per entry"],
  ["entry_num", "__u32", "inout", "in: number of entries; out: entries handled"],
  ["__reserved", "__u32", "in", "must be 0"],
]);

export const iommu_hwpt_pgfault = defineStruct("iommu_hwpt_pgfault", "v6.11", "One I/O page fault, as read() from a fault queue fd", [
  ["flags", "__u32", "out", "IOMMU_PGFAULT_FLAGS_*", { flags: "iommu_hwpt_pgfault_flags" }],
  ["dev_id", "__u32", "out", "device that faulted"],
  ["pasid", "__u32", "out", "PASID, if PASID_VALID"],
  ["grpid", "__u32", "out", "page request group index"],
  ["perm", "__u32", "out", "IOMMU_PGFAULT_PERM_*", { flags: "iommu_hwpt_pgfault_perm" }],
  ["__reserved", "__u32", "out", "0 (implicit padding before v6.14)"],
  ["addr", "__aligned_u64", "out", "faulting page address"],
  ["length", "__u32", "out", "size hint; 0 today"],
  ["cookie", "__u32", "out", "kernel cookie of the group; echo it in the response"],
]);

export const iommu_hwpt_page_response = defineStruct("iommu_hwpt_page_response", "v6.11", "A response to a fault group, as write() to a fault queue fd", [
  ["cookie", "__u32", "in", "cookie of the group being answered"],
  ["code", "__u32", "in", "IOMMUFD_PAGE_RESP_*", { enum: "iommufd_page_response_code" }],
]);

export const iommu_fault_alloc = defineStruct("iommu_fault_alloc", "v6.11", "Allocate a fault queue (FAULT object and fd)", [
  SIZE("iommu_fault_alloc"),
  ["flags", "__u32", "in", "must be 0"],
  ["out_fault_id", "__u32", "out", "ID of the FAULT object"],
  ["out_fault_fd", "__u32", "out", "fd to read faults from and write responses to"],
]);

export const iommu_viommu_tegra241_cmdqv = defineStruct("iommu_viommu_tegra241_cmdqv", "v6.17", "Tegra241 vIOMMU data (output)", [
  ["out_vintf_mmap_offset", "__aligned_u64", "out", "mmap offset of the VINTF page 0"],
  ["out_vintf_mmap_length", "__aligned_u64", "out", "mmap length of the VINTF page 0"],
]);

export const iommu_viommu_alloc = defineStruct("iommu_viommu_alloc", "v6.13", "Allocate a vIOMMU on top of a nest-parent HWPT", [
  SIZE("iommu_viommu_alloc"),
  ["flags", "__u32", "in", "must be 0"],
  ["type", "__u32", "in", "IOMMU_VIOMMU_TYPE_*", { enum: "iommu_viommu_type" }],
  ["dev_id", "__u32", "in", "device whose physical IOMMU backs the vIOMMU"],
  ["hwpt_id", "__u32", "in", "nest-parent HWPT_PAGING"],
  ["out_viommu_id", "__u32", "out", "ID of the vIOMMU"],
  ["data_len", "__u32", "in", "length of the driver data", { since: "v6.17" }],
  ["__reserved", "__u32", "in", "documented as 0; not checked by the kernel", { since: "v6.17" }],
  ["data_uptr", "__aligned_u64", "in", "pointer to driver data", { since: "v6.17", ptr: { to: "bytes", len: "data_len", out: true } }],
]);

export const iommu_vdevice_alloc = defineStruct("iommu_vdevice_alloc", "v6.13", "Give a device a virtual ID on a vIOMMU", [
  SIZE("iommu_vdevice_alloc"),
  ["viommu_id", "__u32", "in", "vIOMMU"],
  ["dev_id", "__u32", "in", "device"],
  ["out_vdevice_id", "__u32", "out", "ID of the vDEVICE"],
  ["virt_id", "__aligned_u64", "in", "virtual ID (vSID, vRID, vDeviceID) of the device on the vIOMMU"],
]);

export const iommu_ioas_change_process = defineStruct("iommu_ioas_change_process", "v6.13", "Move pinned-page accounting to the calling process", [
  SIZE("iommu_ioas_change_process"),
  ["__reserved", "__u32", "in", "must be 0"],
]);

export const iommu_veventq_alloc = defineStruct("iommu_veventq_alloc", "v6.15", "Allocate a vIOMMU event queue", [
  SIZE("iommu_veventq_alloc"),
  ["flags", "__u32", "in", "must be 0"],
  ["viommu_id", "__u32", "in", "vIOMMU"],
  ["type", "__u32", "in", "IOMMU_VEVENTQ_TYPE_*", { enum: "iommu_veventq_type" }],
  ["veventq_depth", "__u32", "in", "maximum number of queued events"],
  ["out_veventq_id", "__u32", "out", "ID of the vEVENTQ"],
  ["out_veventq_fd", "__u32", "out", "fd to read events from"],
  ["__reserved", "__u32", "in", "must be 0"],
]);

export const iommufd_vevent_header = defineStruct("iommufd_vevent_header", "v6.15", "Header of each vEVENTQ record", [
  ["flags", "__u32", "out", "IOMMU_VEVENTQ_FLAG_*", { flags: "iommu_veventq_flag" }],
  ["sequence", "__u32", "out", "event sequence number, wrapping at INT_MAX"],
]);

export const iommu_hw_queue_alloc = defineStruct("iommu_hw_queue_alloc", "v6.17", "Allocate a hardware-accelerated queue of a vIOMMU", [
  SIZE("iommu_hw_queue_alloc"),
  ["flags", "__u32", "in", "must be 0"],
  ["viommu_id", "__u32", "in", "vIOMMU"],
  ["type", "__u32", "in", "IOMMU_HW_QUEUE_TYPE_*", { enum: "iommu_hw_queue_type" }],
  ["index", "__u32", "in", "logical queue index"],
  ["out_hw_queue_id", "__u32", "out", "ID of the HW queue"],
  ["nesting_parent_iova", "__aligned_u64", "in", "guest-physical base of the queue memory"],
  ["length", "__aligned_u64", "in", "queue memory length"],
]);

export const IOMMUFD_STRUCTS: readonly StructDef[] = [
  iommu_destroy, iommu_ioas_alloc, iommu_iova_range, iommu_ioas_iova_ranges, iommu_ioas_allow_iovas,
  iommu_ioas_map, iommu_ioas_map_file, iommu_ioas_copy, iommu_ioas_unmap, iommu_option,
  iommu_vfio_ioas, iommu_hwpt_vtd_s1, iommu_hwpt_arm_smmuv3, iommu_hwpt_alloc, iommu_hw_info_vtd,
  iommu_hw_info_arm_smmuv3, iommu_hw_info_tegra241_cmdqv, iommu_hw_info,
  iommu_hwpt_set_dirty_tracking, iommu_hwpt_get_dirty_bitmap, iommu_hwpt_vtd_s1_invalidate,
  iommu_viommu_arm_smmuv3_invalidate, iommu_hwpt_invalidate, iommu_hwpt_pgfault,
  iommu_hwpt_page_response, iommu_fault_alloc, iommu_viommu_tegra241_cmdqv, iommu_viommu_alloc,
  iommu_vdevice_alloc, iommu_ioas_change_process, iommu_veventq_alloc, iommufd_vevent_header,
  iommu_hw_queue_alloc,
];

// ---- ioctls -------------------------------------------------------------------------------------

/** Which kind of fd an ioctl is issued on. */
export type IoctlTarget = "iommufd" | "vfio-device" | "vfio-container";

export interface IoctlDef {
  readonly name: string;
  /** the full request number (what ioctl(2) receives) */
  readonly request: number;
  readonly nr: number;
  /** the argument struct, or null for integer-argument ioctls */
  readonly struct: StructDef | null;
  /** size of the first released version: end of its last field then (the kernel's min_size) */
  readonly minSize: number;
  /** field whose offsetofend is minSize (the kernel's IOCTL_OP last argument) */
  readonly minField: string | null;
  readonly since: Release;
  readonly target: IoctlTarget;
  readonly doc: string;
}

function iommufdIoctl(name: string, cmd: number, struct: StructDef, minField: string, since: Release, doc: string): IoctlDef {
  const nr = IOMMUFD_CMD_BASE + cmd;
  return { name, request: _IO(IOMMUFD_TYPE, nr), nr, struct, minSize: offsetofend(struct, minField), minField, since, target: "iommufd", doc };
}

/** drivers/iommu/iommufd/main.c iommufd_ioctl_ops[], in command-number order. */
export const IOMMUFD_IOCTLS: readonly IoctlDef[] = [
  iommufdIoctl("IOMMU_DESTROY", 0x00, iommu_destroy, "id", "v6.2", "Destroy any object by ID"),
  iommufdIoctl("IOMMU_IOAS_ALLOC", 0x01, iommu_ioas_alloc, "out_ioas_id", "v6.2", "Allocate an IOAS"),
  iommufdIoctl("IOMMU_IOAS_ALLOW_IOVAS", 0x02, iommu_ioas_allow_iovas, "allowed_iovas", "v6.2", "Set the allowed IOVA ranges"),
  iommufdIoctl("IOMMU_IOAS_COPY", 0x03, iommu_ioas_copy, "src_iova", "v6.2", "Copy mappings between IOASes"),
  iommufdIoctl("IOMMU_IOAS_IOVA_RANGES", 0x04, iommu_ioas_iova_ranges, "out_iova_alignment", "v6.2", "Report usable IOVA ranges"),
  iommufdIoctl("IOMMU_IOAS_MAP", 0x05, iommu_ioas_map, "iova", "v6.2", "Map user memory"),
  iommufdIoctl("IOMMU_IOAS_UNMAP", 0x06, iommu_ioas_unmap, "length", "v6.2", "Unmap IOVA"),
  iommufdIoctl("IOMMU_OPTION", 0x07, iommu_option, "val64", "v6.2", "Get or set an option"),
  iommufdIoctl("IOMMU_VFIO_IOAS", 0x08, iommu_vfio_ioas, "__reserved", "v6.2", "The VFIO compatibility IOAS"),
  iommufdIoctl("IOMMU_HWPT_ALLOC", 0x09, iommu_hwpt_alloc, "__reserved", "v6.6", "Allocate a HWPT"),
  iommufdIoctl("IOMMU_GET_HW_INFO", 0x0a, iommu_hw_info, "__reserved", "v6.6", "Query the IOMMU behind a device"),
  iommufdIoctl("IOMMU_HWPT_SET_DIRTY_TRACKING", 0x0b, iommu_hwpt_set_dirty_tracking, "__reserved", "v6.7", "Start or stop dirty tracking"),
  iommufdIoctl("IOMMU_HWPT_GET_DIRTY_BITMAP", 0x0c, iommu_hwpt_get_dirty_bitmap, "data", "v6.7", "Read the dirty bitmap"),
  iommufdIoctl("IOMMU_HWPT_INVALIDATE", 0x0d, iommu_hwpt_invalidate, "__reserved", "v6.8", "Invalidate nested caches"),
  iommufdIoctl("IOMMU_FAULT_QUEUE_ALLOC", 0x0e, iommu_fault_alloc, "out_fault_fd", "v6.11", "Allocate a fault queue"),
  iommufdIoctl("IOMMU_IOAS_MAP_FILE", 0x0f, iommu_ioas_map_file, "iova", "v6.13", "Map a memfd range"),
  iommufdIoctl("IOMMU_VIOMMU_ALLOC", 0x10, iommu_viommu_alloc, "out_viommu_id", "v6.13", "Allocate a vIOMMU"),
  iommufdIoctl("IOMMU_VDEVICE_ALLOC", 0x11, iommu_vdevice_alloc, "virt_id", "v6.13", "Allocate a vDEVICE"),
  iommufdIoctl("IOMMU_IOAS_CHANGE_PROCESS", 0x12, iommu_ioas_change_process, "__reserved", "v6.13", "Move pin accounting to this process"),
  iommufdIoctl("IOMMU_VEVENTQ_ALLOC", 0x13, iommu_veventq_alloc, "out_veventq_fd", "v6.15", "Allocate a vEVENTQ"),
  iommufdIoctl("IOMMU_HW_QUEUE_ALLOC", 0x14, iommu_hw_queue_alloc, "length", "v6.17", "Allocate a HW queue"),
];
