/**
 * A nested-translation machine for the hardware tests, built through the script API as a VMM
 * would: /dev/iommu, an IOAS, vfio0 bound, a NEST_PARENT HWPT, guest RAM mapped at GPA `base`
 * with a guest first-stage table (engine/script/guest.ts), a nested HWPT on it, vfio0 attached.
 */
import { newSession } from "../../../harness/iommufd.ts";
import type { Guest, GuestOptions } from "../../../../engine/script/guest.ts";
import type { VtdModel } from "../../../../engine/hw/vtd/index.ts";
import type { DmarDomain } from "../../../../engine/hw/vtd/driver.ts";
import type { NestedDomain } from "../../../../engine/hw/vtd/nested-driver.ts";
import type { EventKind, TraceEvent } from "../../../../engine/trace/events.ts";
import type { Translation } from "../../../../engine/hw/model.ts";

export interface NestedOpts {
  knobs?: Record<string, unknown>;
  guest?: Partial<GuestOptions>;
  /** flags of iommu_hwpt_vtd_s1 */
  s1Flags?: number;
  parentFlags?: number;
  /** allocate the nested HWPT with IOMMU_HWPT_ALLOC_PASID */
  pasid?: boolean;
  /** do not attach vfio0 to the nested HWPT */
  noAttach?: boolean;
}

export function nestedMachine(o: NestedOpts = {}) {
  const { s, g } = newSession({ knobs: o.knobs ?? {} });
  const events: TraceEvent[] = [];
  const fd = g.open("/dev/iommu");
  const ioas = g.ioctl(fd, g.IOMMU_IOAS_ALLOC, {}).out_ioas_id as number;
  const vfio = g.open("/dev/vfio/devices/vfio0");
  const devId = g.ioctl(vfio, g.VFIO_DEVICE_BIND_IOMMUFD, { iommufd: fd }).out_devid as number;
  const pasidFlag = o.pasid ? g.IOMMU_HWPT_ALLOC_PASID : 0;
  const parent = g.ioctl(fd, g.IOMMU_HWPT_ALLOC, { flags: g.IOMMU_HWPT_ALLOC_NEST_PARENT | pasidFlag | (o.parentFlags ?? 0), dev_id: devId, pt_id: ioas }).out_hwpt_id as number;
  const guest = (g.guest as (opts: GuestOptions) => Guest)({ iommufd: fd, ioas, size: 16 << 20, ...o.guest });
  const nested = g.ioctl(fd, g.IOMMU_HWPT_ALLOC, {
    flags: pasidFlag, dev_id: devId, pt_id: parent, data_type: g.IOMMU_HWPT_DATA_VTD_S1, data_uptr: guest.s1(o.s1Flags ?? 0),
  }).out_hwpt_id as number;
  if (!o.noAttach) g.ioctl(vfio, g.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: nested });
  const model = s.machine.iommu as VtdModel;
  const ictx = s.kernel.contexts()[0];
  const domainOf = (id: number) => (ictx.objects.get(id) as unknown as { domain: unknown }).domain;
  const rid = s.machine.devices[0].rid;
  return {
    s, g, fd, ioas, vfio, devId, parent, nested, guest, model, hw: model.hw, ops: model.ops, mem: s.machine.mem, rid,
    parentDomain: domainOf(parent) as DmarDomain,
    nestedDomain: domainOf(nested) as NestedDomain,
    events,
    record(): void {
      events.length = 0;
      s.machine.trace.setSink((e) => events.push(e));
    },
    of<K extends EventKind>(k: K): TraceEvent<K>[] {
      return events.filter((e) => e.k === k) as unknown as TraceEvent<K>[];
    },
    /** One translation by the hardware (copying the reused result). */
    tr(iova: number, write = false, pasid = -1): Translation {
      const t = model.hw.translate({ rid, pasid, iova, write });
      return { ...t };
    },
    dev() {
      return g.hw.device(vfio);
    },
  };
}
