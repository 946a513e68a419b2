/**
 * viommu.c and the vEVENTQ / HW-queue allocators: vIOMMUs need a driver with viommu_ops (SMMUv3,
 * Tegra241 CMDQV, later AMD). The VT-d driver of the baseline kernel has none, so these answer as
 * that kernel does: every generic check first, then EOPNOTSUPP from the missing driver support,
 * or ENOENT because no vIOMMU can exist to be looked up.
 */
import { err, isErr, type Rc } from "../uapi/errno.ts";
import { ULONG_MAX } from "./io-pagetable.ts";
import type { Ucmd } from "./main.ts";
import { iommufdGetDevice, iommufdGetObject } from "./private.ts";

const n = (v: unknown): number => v as number;
const b = (v: unknown): bigint => v as bigint;

function getViommu(ucmd: Ucmd, id: number): Rc {
  // iommufd_get_viommu: a VIOMMU-typed lookup; none can exist on this machine
  const obj = iommufdGetObject(ucmd.ictx, id, "ANY");
  if (isErr(obj)) return obj;
  return err("ENOENT", "iommufd_get_object", `object ${id} is a ${obj.type}, not a VIOMMU`);
}

/** IOMMU_VIOMMU_ALLOC: iommufd_viommu_alloc_ioctl */
export function iommufdViommuAllocIoctl(ucmd: Ucmd): Rc {
  const { cmd, ictx } = ucmd;
  if (cmd.flags || cmd.type === 0)
    return err("EOPNOTSUPP", "iommufd_viommu_alloc_ioctl", cmd.flags ? "flags must be 0" : "type IOMMU_VIOMMU_TYPE_DEFAULT is reserved");
  const idev = iommufdGetDevice(ictx, n(cmd.dev_id));
  if (isErr(idev)) return idev;
  return err("EOPNOTSUPP", "iommufd_viommu_alloc_ioctl", `the ${ictx.kernel.machine.iommu.kind} driver has no vIOMMU support (type ${n(cmd.type)})`);
}

/** IOMMU_VDEVICE_ALLOC: iommufd_vdevice_alloc_ioctl */
export function iommufdVdeviceAllocIoctl(ucmd: Ucmd): Rc {
  const { cmd } = ucmd;
  if (b(cmd.virt_id) > ULONG_MAX) return err("EINVAL", "iommufd_vdevice_alloc_ioctl", "virt_id does not fit an unsigned long");
  return getViommu(ucmd, n(cmd.viommu_id));
}

/** IOMMU_VEVENTQ_ALLOC: iommufd_veventq_alloc */
export function iommufdVeventqAlloc(ucmd: Ucmd): Rc {
  const { cmd } = ucmd;
  if (cmd.flags || cmd.__reserved || cmd.type === 0)
    return err("EOPNOTSUPP", "iommufd_veventq_alloc", cmd.type === 0 ? "type IOMMU_VEVENTQ_TYPE_DEFAULT is reserved" : "flags and __reserved must be 0");
  if (!cmd.veventq_depth) return err("EINVAL", "iommufd_veventq_alloc", "veventq_depth is 0");
  return getViommu(ucmd, n(cmd.viommu_id));
}

/** IOMMU_HW_QUEUE_ALLOC: iommufd_hw_queue_alloc_ioctl */
export function iommufdHwQueueAllocIoctl(ucmd: Ucmd): Rc {
  const { cmd } = ucmd;
  if (cmd.flags || cmd.type === 0)
    return err("EOPNOTSUPP", "iommufd_hw_queue_alloc_ioctl", cmd.flags ? "flags must be 0" : "type IOMMU_HW_QUEUE_TYPE_DEFAULT is reserved");
  const length = b(cmd.length);
  if (!length) return err("EINVAL", "iommufd_hw_queue_alloc_ioctl", "length is 0");
  if (b(cmd.nesting_parent_iova) + length - 1n > ULONG_MAX) return err("EOVERFLOW", "iommufd_hw_queue_alloc_ioctl", "nesting_parent_iova + length - 1 overflows");
  return getViommu(ucmd, n(cmd.viommu_id));
}
