// The uAPI tables against the kernel's numbers (../shared/reference/iommufd-uapi.md §3.1, §4, §12):
// request numbers, struct sizes, min sizes and the offsets that moved over time.
import { describe, expect, it } from "vitest";
import { IOCTL_BY_NAME, STRUCTS, uapiConstants } from "../../../engine/uapi/index.ts";
import { decodeStruct, encodeStruct } from "../../../engine/uapi/struct.ts";

const SIZES: [string, number, number, number][] = [
  // name, request, min_size, kernel_size
  ["IOMMU_DESTROY", 0x3b80, 8, 8],
  ["IOMMU_IOAS_ALLOC", 0x3b81, 12, 12],
  ["IOMMU_IOAS_ALLOW_IOVAS", 0x3b82, 24, 24],
  ["IOMMU_IOAS_COPY", 0x3b83, 40, 40],
  ["IOMMU_IOAS_IOVA_RANGES", 0x3b84, 32, 32],
  ["IOMMU_IOAS_MAP", 0x3b85, 40, 40],
  ["IOMMU_IOAS_UNMAP", 0x3b86, 24, 24],
  ["IOMMU_OPTION", 0x3b87, 24, 24],
  ["IOMMU_VFIO_IOAS", 0x3b88, 12, 12],
  ["IOMMU_HWPT_ALLOC", 0x3b89, 24, 48],
  ["IOMMU_GET_HW_INFO", 0x3b8a, 32, 40],
  ["IOMMU_HWPT_SET_DIRTY_TRACKING", 0x3b8b, 16, 16],
  ["IOMMU_HWPT_GET_DIRTY_BITMAP", 0x3b8c, 48, 48],
  ["IOMMU_HWPT_INVALIDATE", 0x3b8d, 32, 32],
  ["IOMMU_FAULT_QUEUE_ALLOC", 0x3b8e, 16, 16],
  ["IOMMU_IOAS_MAP_FILE", 0x3b8f, 40, 40],
  ["IOMMU_VIOMMU_ALLOC", 0x3b90, 24, 40],
  ["IOMMU_VDEVICE_ALLOC", 0x3b91, 24, 24],
  ["IOMMU_IOAS_CHANGE_PROCESS", 0x3b92, 8, 8],
  ["IOMMU_VEVENTQ_ALLOC", 0x3b93, 28, 32],
  ["IOMMU_HW_QUEUE_ALLOC", 0x3b94, 40, 40],
  ["VFIO_DEVICE_BIND_IOMMUFD", 0x3b76, 16, 24],
  ["VFIO_DEVICE_ATTACH_IOMMUFD_PT", 0x3b77, 12, 16],
  ["VFIO_DEVICE_DETACH_IOMMUFD_PT", 0x3b78, 8, 12],
];

describe("uAPI tables", () => {
  it.each(SIZES)("%s is 0x%s with min_size %i and size %i", (name, request, min, size) => {
    const def = IOCTL_BY_NAME.get(name)!;
    expect(def.request).toBe(request);
    expect(def.minSize).toBe(min);
    expect(def.struct!.size).toBe(size);
  });

  it("lays out iommu_hw_info as v6.17 does (union at 24, u8 at 28, reserved bytes 29..31)", () => {
    const s = STRUCTS.get("iommu_hw_info")!;
    expect(s.field.out_data_type.offset).toBe(24);
    expect(s.field.in_data_type).toBe(s.field.out_data_type);
    expect(s.field.out_max_pasid_log2.offset).toBe(28);
    expect([s.field.__reserved.offset, s.field.__reserved.size]).toEqual([29, 3]);
    expect(s.field.out_capabilities.offset).toBe(32);
  });

  it("gives the payload and record structs their kernel sizes", () => {
    const sizes = Object.fromEntries([...STRUCTS.values()].map((s) => [s.name, s.size]));
    expect(sizes).toMatchObject({
      iommu_iova_range: 16, iommu_hwpt_vtd_s1: 24, iommu_hw_info_vtd: 24, iommu_hwpt_vtd_s1_invalidate: 24,
      iommu_hwpt_pgfault: 40, iommu_hwpt_page_response: 8, iommu_hw_info_arm_smmuv3: 40,
      iommu_hwpt_arm_smmuv3: 16, vfio_iommu_type1_info: 24, vfio_iommu_type1_dma_map: 32, vfio_iommu_type1_dma_unmap: 24,
    });
  });

  it("round-trips a struct through little-endian bytes", () => {
    const s = STRUCTS.get("iommu_ioas_map")!;
    const bytes = encodeStruct(s, { size: 40, flags: 7, ioas_id: 2, user_va: 0x7f0000001000n, length: 0x4000n, iova: 0xffff_ffff_ffff_f000n });
    expect([...bytes.subarray(0, 8)]).toEqual([40, 0, 0, 0, 7, 0, 0, 0]);
    expect([...bytes.subarray(32, 40)]).toEqual([0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(decodeStruct(s, bytes)).toMatchObject({ ioas_id: 2, iova: 0xffff_ffff_ffff_f000n, user_va: 0x7f0000001000n });
  });

  it("zero-extends a short buffer when decoding", () => {
    const s = STRUCTS.get("iommu_hwpt_alloc")!;
    const d = decodeStruct(s, new Uint8Array([24, 0, 0, 0, 1]));
    expect(d.flags).toBe(1);
    expect(d.fault_id).toBe(0);
  });

  it("exports every constant a script needs, with the kernel's values", () => {
    const c = uapiConstants();
    expect(c).toMatchObject({
      IOMMU_IOAS_MAP_FIXED_IOVA: 1, IOMMU_IOAS_MAP_WRITEABLE: 2, IOMMU_IOAS_MAP_READABLE: 4,
      IOMMU_HWPT_ALLOC_NEST_PARENT: 1, IOMMU_HWPT_ALLOC_DIRTY_TRACKING: 2, IOMMU_HWPT_FAULT_ID_VALID: 4, IOMMU_HWPT_ALLOC_PASID: 8,
      IOMMU_HW_INFO_TYPE_INTEL_VTD: 1, IOMMU_HWPT_DATA_VTD_S1: 1, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: 0,
      IOMMUFD_CMD_DESTROY: 0x80, IOMMUFD_CMD_HW_QUEUE_ALLOC: 0x94, IOMMU_HW_QUEUE_ALLOC: 0x3b94,
      VFIO_CHECK_EXTENSION: 0x3b65, VFIO_IOMMU_MAP_DMA: 0x3b71, VFIO_TYPE1v2_IOMMU: 3,
      EINVAL: 22, E2BIG: 7, ENOTTY: 25, EOPNOTSUPP: 95, EOVERFLOW: 75,
    });
  });

  it("knows which release added each ioctl and late field", () => {
    expect(IOCTL_BY_NAME.get("IOMMU_HWPT_ALLOC")!.since).toBe("v6.6");
    expect(IOCTL_BY_NAME.get("IOMMU_FAULT_QUEUE_ALLOC")!.since).toBe("v6.11");
    const hw = STRUCTS.get("iommu_hwpt_alloc")!;
    expect(hw.field.data_type.since).toBe("v6.7");
    expect(hw.field.fault_id.since).toBe("v6.11");
  });
});
