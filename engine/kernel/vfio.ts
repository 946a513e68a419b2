/**
 * drivers/vfio/device_cdev.c + drivers/vfio/iommufd.c: the VFIO device cdev
 * (/dev/vfio/devices/vfioN) and the three calls that tie it to iommufd: BIND, ATTACH_PT,
 * DETACH_PT. Until BIND succeeds every other ioctl on the fd gives EINVAL. Closing the fd unbinds:
 * PASIDs and RID are detached, the DEVICE object is destroyed, the iommufd reference dropped.
 *
 * Two size rules on one fd (quirk 17): BIND uses copy_struct_from_user (E2BIG on a non-zero
 * tail); ATTACH and DETACH read exactly minsz bytes and ignore whatever follows.
 */
import { err, isErr, type Err } from "../uapi/errno.ts";
import { decodeStruct, offsetofend } from "../uapi/struct.ts";
import { VFIO_IOCTLS, vfio_device_attach_iommufd_pt, vfio_device_bind_iommufd, vfio_device_detach_iommufd_pt } from "../uapi/vfio.ts";
import { IOMMU_NO_PASID, type SimDevice } from "../hw/model.ts";
import { iommufdDeviceAttach, iommufdDeviceBind, iommufdDeviceDetach, iommufdDeviceIsAttached, iommufdDeviceReplace, iommufdDeviceUnbind } from "./device.ts";
import { KFile } from "./fs.ts";
import type { Kernel } from "./kernel.ts";
import { copyStructFromUser, IommufdFile } from "./main.ts";
import type { IommufdDevice } from "./private.ts";

const REQ = Object.fromEntries(VFIO_IOCTLS.map((d) => [d.name, d.request]));

export class VfioDeviceFile extends KFile {
  readonly kind = "vfio-device" as const;
  /** df->access_granted: bound */
  idev: IommufdDevice | null = null;
  private ctxFile: IommufdFile | null = null;
  constructor(readonly kernel: Kernel, readonly dev: SimDevice) {
    super();
  }
  get path(): string {
    return this.dev.path;
  }

  protected release(): void {
    // vfio_df_unbind_iommufd
    if (this.idev) {
      iommufdDeviceUnbind(this.idev);
      this.kernel.vfioOpen.delete(this.dev.index);
      this.idev = null;
      this.ctxFile!.put();
      this.ctxFile = null;
    }
  }

  /** vfio_device_fops_unl_ioctl for a cdev fd */
  ioctl(request: number, arg: number): number | Err {
    if (request === REQ.VFIO_DEVICE_BIND_IOMMUFD) return this.bind(arg);
    if (!this.idev) return err("EINVAL", "vfio_device_fops_unl_ioctl", `${this.dev.path} is not bound to an iommufd yet (VFIO_DEVICE_BIND_IOMMUFD first)`);
    if (request === REQ.VFIO_DEVICE_ATTACH_IOMMUFD_PT) return this.attach(arg);
    if (request === REQ.VFIO_DEVICE_DETACH_IOMMUFD_PT) return this.detach(arg);
    return err("ENOTTY", "vfio_pci_core_ioctl", `request 0x${request.toString(16)} is not a VFIO device ioctl this simulator knows`);
  }

  /** vfio_df_ioctl_bind_iommufd (v6.18: the full struct size is passed to copy_struct_from_user) */
  private bind(arg: number): number | Err {
    const def = vfio_device_bind_iommufd;
    const minsz = offsetofend(def, "out_devid");
    const head = this.kernel.mm.copyFromUser(arg, 4);
    if (isErr(head)) return head;
    const argsz = new DataView(head.buffer).getUint32(0, true);
    if (argsz < minsz) return err("EINVAL", "vfio_df_ioctl_bind_iommufd", `argsz ${argsz} is below ${minsz}`);
    const bytes = copyStructFromUser(this.kernel, def.size, arg, argsz);
    if (isErr(bytes)) return bytes;
    const bind = decodeStruct(def, bytes);
    const flags = bind.flags as number;
    const fd = bind.iommufd as number;
    if (fd < 0 || flags & ~1) return err("EINVAL", "vfio_df_ioctl_bind_iommufd", fd < 0 ? "iommufd is negative" : `unknown flags 0x${flags.toString(16)}`);
    if (this.idev) return err("EINVAL", "vfio_df_ioctl_bind_iommufd", `${this.dev.path} is already bound through this fd`);
    if (flags & 1) return err("EINVAL", "vfio_pci_validate_vf_token", "VF token provided, but the device is neither a PF nor a VF");
    const f = this.kernel.fds.get(fd);
    if (!f) return err("EBADF", "iommufd_ctx_from_fd", `fd ${fd} is not open`);
    if (!(f instanceof IommufdFile)) return err("EBADFD", "iommufd_ctx_from_file", `fd ${fd} (${f.path}) is not an iommufd`);
    // vfio_df_open: the cdev path may not open a device twice
    if (this.kernel.vfioOpen.has(this.dev.index))
      return err("EINVAL", "vfio_df_open", `${this.dev.path} is already bound through another fd`);
    const idev = iommufdDeviceBind(f.ictx, this.dev);
    if (isErr(idev)) return idev;
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, idev.id, true);
    const rc = this.kernel.mm.copyToUser(arg + def.field.out_devid.offset, out);
    if (rc) {
      iommufdDeviceUnbind(idev);
      return rc;
    }
    this.idev = idev;
    this.ctxFile = f.get(); // the device holds its iommufd
    this.kernel.vfioOpen.add(this.dev.index);
    return 0;
  }

  /** vfio_df_ioctl_attach_pt */
  private attach(arg: number): number | Err {
    const def = vfio_device_attach_iommufd_pt;
    const minsz = offsetofend(def, "pt_id");
    const bytes = this.kernel.mm.copyFromUser(arg, minsz);
    if (isErr(bytes)) return bytes;
    const a = decodeStruct(def, bytes);
    const flags = a.flags as number;
    if ((a.argsz as number) < minsz) return err("EINVAL", "vfio_df_ioctl_attach_pt", `argsz ${a.argsz} is below ${minsz}`);
    if (flags & ~1) return err("EINVAL", "vfio_df_ioctl_attach_pt", `unknown flags 0x${flags.toString(16)}`);
    let pasid = IOMMU_NO_PASID;
    if (flags & 1) {
      const xend = offsetofend(def, "pasid");
      if ((a.argsz as number) < xend) return err("EINVAL", "vfio_df_ioctl_attach_pt", `VFIO_DEVICE_ATTACH_PASID needs argsz >= ${xend}`);
      const p = this.kernel.mm.copyFromUser(arg + def.field.pasid.offset, 4);
      if (isErr(p)) return p;
      pasid = new DataView(p.buffer).getUint32(0, true);
    }
    const idev = this.idev!;
    const ptId = { value: a.pt_id as number };
    // vfio_iommufd_physical_attach_ioas / _pasid_attach_ioas: attached already → replace
    const rc = iommufdDeviceIsAttached(idev, pasid) ? iommufdDeviceReplace(idev, pasid, ptId) : iommufdDeviceAttach(idev, pasid, ptId);
    if (rc) return rc;
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, ptId.value, true);
    const rc2 = this.kernel.mm.copyToUser(arg + def.field.pt_id.offset, out);
    if (rc2) {
      iommufdDeviceDetach(idev, IOMMU_NO_PASID); // quirk 16: the RID, even for a PASID attach
      return rc2;
    }
    return 0;
  }

  /** vfio_df_ioctl_detach_pt */
  private detach(arg: number): number | Err {
    const def = vfio_device_detach_iommufd_pt;
    const minsz = offsetofend(def, "flags");
    const bytes = this.kernel.mm.copyFromUser(arg, minsz);
    if (isErr(bytes)) return bytes;
    const d = decodeStruct(def, bytes);
    const flags = d.flags as number;
    if ((d.argsz as number) < minsz) return err("EINVAL", "vfio_df_ioctl_detach_pt", `argsz ${d.argsz} is below ${minsz}`);
    if (flags & ~1) return err("EINVAL", "vfio_df_ioctl_detach_pt", `unknown flags 0x${flags.toString(16)}`);
    let pasid = IOMMU_NO_PASID;
    if (flags & 1) {
      const xend = offsetofend(def, "pasid");
      if ((d.argsz as number) < xend) return err("EINVAL", "vfio_df_ioctl_detach_pt", `VFIO_DEVICE_DETACH_PASID needs argsz >= ${xend}`);
      const p = this.kernel.mm.copyFromUser(arg + def.field.pasid.offset, 4);
      if (isErr(p)) return p;
      pasid = new DataView(p.buffer).getUint32(0, true);
    }
    iommufdDeviceDetach(this.idev!, pasid);
    return 0;
  }
}
