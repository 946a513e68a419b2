/**
 * The whole uAPI surface, for the kernel's dispatcher, the script runtime's globals, the log
 * formatter and the editor's typings: every ioctl, struct and named constant, looked up by name
 * or number.
 */
import type { ConstSet } from "./consts.ts";
import { ERRNO } from "./errno.ts";
import { IOMMUFD_CMD_BASE, IOMMUFD_CONSTS, IOMMUFD_IOCTLS, IOMMUFD_STRUCTS, IOMMUFD_TYPE, type IoctlDef } from "./iommufd.ts";
import type { StructDef } from "./struct.ts";
import { VFIO_API_VERSION, VFIO_BASE, VFIO_CONSTS, VFIO_IOCTLS, VFIO_STRUCTS, VFIO_TYPE } from "./vfio.ts";

export const IOCTLS: readonly IoctlDef[] = [...IOMMUFD_IOCTLS, ...VFIO_IOCTLS];
export const STRUCTS: ReadonlyMap<string, StructDef> = new Map([...IOMMUFD_STRUCTS, ...VFIO_STRUCTS].map((s) => [s.name, s]));
export const CONST_SETS: ReadonlyMap<string, ConstSet> = new Map([...IOMMUFD_CONSTS, ...VFIO_CONSTS].map((c) => [c.name, c]));

export const IOCTL_BY_NAME: ReadonlyMap<string, IoctlDef> = new Map(IOCTLS.map((d) => [d.name, d]));

/**
 * Request numbers are not unique across fd kinds: VFIO_IOMMU_GET_INFO (container) and
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (device) share 0x3b70. Look up by target.
 */
export function ioctlByRequest(request: number, target: IoctlDef["target"]): IoctlDef | undefined {
  return IOCTLS.find((d) => d.request === request && d.target === target);
}

/** Every named constant a script sees as a global: ioctl requests, enum and flag values, errno. */
export function uapiConstants(): Record<string, number> {
  const out: Record<string, number> = {
    IOMMUFD_TYPE, IOMMUFD_CMD_BASE, VFIO_TYPE, VFIO_BASE, VFIO_API_VERSION,
  };
  for (const d of IOCTLS) out[d.name] = d.request;
  for (const d of IOMMUFD_IOCTLS) out["IOMMUFD_CMD_" + d.name.replace(/^IOMMU_/, "")] = d.nr;
  for (const set of CONST_SETS.values()) for (const c of set.values) out[c.name] = c.value;
  for (const [n, v] of Object.entries(ERRNO)) out[n] = v;
  return out;
}

export type { IoctlDef } from "./iommufd.ts";
export type { StructDef, Field, Decoded, FieldValue } from "./struct.ts";
export type { ConstSet, ConstDef } from "./consts.ts";
