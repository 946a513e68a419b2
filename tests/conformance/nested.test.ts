/**
 * Nested HWPTs on VT-d: a port of torvalds/linux tools/testing/selftests/iommu/iommufd.c
 * TEST_F(iommufd_ioas, alloc_hwpt_nested) (read at Kingxukai/linux @ 9b44fff655e2, ~v6.17), with
 * the selftest's mock data (IOMMU_HWPT_DATA_SELFTEST, struct iommu_hwpt_selftest, the mock's
 * IOTLB array) replaced by VT-d's (IOMMU_HWPT_DATA_VTD_S1, struct iommu_hwpt_vtd_s1,
 * IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entries), and the checks Linux's VT-d driver makes
 * (drivers/iommu/intel/nested.c, pasid.c intel_pasid_setup_nested) in the kernel's order:
 *
 *   IOMMU_HWPT_ALLOC, pt_id = a HWPT_PAGING (iommufd_hwpt_alloc → iommufd_hwpt_nested_alloc):
 *     __reserved                                  EOPNOTSUPP
 *     data_type NONE with data / type without data EINVAL
 *     dev_id                                      ENOENT
 *     pt_id missing or of another type            EINVAL
 *     flags beyond FAULT_ID_VALID | ALLOC_PASID, data_len 0, no nested allocator   EOPNOTSUPP
 *     parent automatic, not NEST_PARENT, other driver                              EINVAL
 *     driver: no ECAP.NEST, flags beyond ALLOC_PASID, data type not VTD_S1         EOPNOTSUPP
 *     driver: parent not a second-stage nest parent                                EINVAL
 *     driver: iommu_copy_struct_from_user — length ≠ 24 EINVAL, unreadable EFAULT
 *     fault_id (FAULT_ID_VALID)                   ENOENT
 *   attach (intel_nested_attach_dev / _set_dev_pasid → intel_pasid_setup_nested):
 *     addr_width not 48 or 57 (57 needs CAP.FS5LP) EINVAL
 *     IOMMU_VTD_S1_SRE without ECAP.SRS            EINVAL
 *     IOMMU_VTD_S1_EAFE without ECAP.EAFS          EINVAL
 *     a fault queue and a device without PRI       ENODEV
 *
 * Where the selftest asks the mock for its IOTLB (IOMMU_TEST_OP_MD_CHECK_IOTLB), the port looks at
 * the invalidation descriptors the driver issued and at the VT-d IOTLB after real DMA.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { C, U64_MAX, expectErrno, ioasFixture, type IommufdFixture, type Variant } from "../harness/iommufd.ts";
import { pasidEntryDecode, pasidEntryDecodeFs, PGTT_NESTED } from "../../engine/hw/vtd/tables.ts";
import type { VtdModel } from "../../engine/hw/vtd/index.ts";
import type { TraceEvent } from "../../engine/trace/events.ts";

const S1 = { flags: 0, pgtbl_addr: 0x10_0000, addr_width: 48 };
const NEST_PARENT = C.IOMMU_HWPT_ALLOC_NEST_PARENT;
const VTD_S1 = C.IOMMU_HWPT_DATA_VTD_S1;
const INV_VTD_S1 = C.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;

function nestedAlloc(f: IommufdFixture, parent: number, extra: Record<string, unknown> = {}, flags = 0): number {
  return f.hwptAlloc(f.devId, parent, flags, { data_type: VTD_S1, data_uptr: S1, ...extra });
}

function inv(f: IommufdFixture, hwpt: number, a: Record<string, unknown>) {
  const arg = { hwpt_id: hwpt, data_type: INV_VTD_S1, ...a };
  let code: string | null = null;
  try {
    f.ioctl("IOMMU_HWPT_INVALIDATE", arg);
  } catch (e) {
    code = (e as { code: string }).code;
  }
  return { code, entry_num: (arg as { entry_num?: number }).entry_num };
}

for (const variant of ["no_domain", "vtd"] as Variant[]) {
  describe(`iommufd_ioas / ${variant}`, () => {
    let f: IommufdFixture;
    beforeEach(() => {
      f = ioasFixture(variant);
    });
    afterEach(() => f.teardown());

    it("iommufd_ioas.alloc_hwpt_nested (selftest, VT-d data)", () => {
      if (!f.devId) {
        expectErrno("ENOENT", () => f.hwptAlloc(f.devId, f.ioasId, 0));
        expectErrno("ENOENT", () => f.hwptAlloc(f.devId, 0, 0, { data_type: VTD_S1, data_uptr: S1 }));
        return;
      }
      /* Negative tests */
      expectErrno("ENOENT", () => f.hwptAlloc(f.ioasId, f.devId));
      expectErrno("EINVAL", () => f.hwptAlloc(f.devId, f.devId));

      const parent = f.hwptAlloc(f.devId, f.ioasId, NEST_PARENT);
      const parentNotWork = f.hwptAlloc(f.devId, f.ioasId, 0);

      /* Negative nested tests */
      expectErrno("EINVAL", () => f.hwptAlloc(f.devId, parent, 0, { data_type: C.IOMMU_HWPT_DATA_NONE, data_len: 24, data_uptr: new Uint8Array(24) }));
      // the selftest's IOMMU_HWPT_DATA_SELFTEST + 1: a type this driver does not take
      expectErrno("EOPNOTSUPP", () => f.hwptAlloc(f.devId, parent, 0, { data_type: C.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 24, data_uptr: new Uint8Array(24) }));
      // min_data_len - 1
      const short = expectErrno("EINVAL", () => f.hwptAlloc(f.devId, parent, 0, { data_type: VTD_S1, data_len: 23, data_uptr: new Uint8Array(24) }));
      expect(short.where).toBe("iommu_copy_struct_from_user");
      // NULL data
      expectErrno("EFAULT", () => f.hwptAlloc(f.devId, parent, 0, { data_type: VTD_S1, data_len: 24, data_uptr: 0 }));
      expectErrno("EOPNOTSUPP", () => nestedAlloc(f, parent, {}, NEST_PARENT));
      expectErrno("EINVAL", () => nestedAlloc(f, parentNotWork));

      /* Allocate two nested hwpts sharing one common parent hwpt */
      const nested0 = nestedAlloc(f, parent);
      const nested1 = nestedAlloc(f, parent);

      /* Negative test: a nested hwpt on top of a nested hwpt */
      expectErrno("EINVAL", () => nestedAlloc(f, nested0));
      /* Negative test: parent hwpt now cannot be freed */
      const busy = expectErrno("EBUSY", () => f.destroy(parent));
      expect(busy.reason).toMatch(new RegExp(`HWPT_NESTED ${nested0}, HWPT_NESTED ${nested1}`));

      /* hwpt_invalidate only supports a user-managed hwpt (nested) — EINVAL since v6.13 (ENOENT before) */
      expect(inv(f, parent, { data_uptr: [{ addr: 0, npages: 1 }], entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      /* Check data_type by passing zero-length array */
      expect(inv(f, nested0, { data_uptr: 0, entry_len: 24, entry_num: 0 })).toEqual({ code: null, entry_num: 0 });
      /* Negative test: Invalid data_type */
      expect(inv(f, nested0, { data_type: 1, data_uptr: new Uint8Array(24), entry_len: 24, entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      expect(inv(f, nested0, { data_type: 1, data_uptr: 0, entry_len: 24, entry_num: 0 })).toEqual({ code: "EINVAL", entry_num: 0 });
      /* Negative test: structure size sanity */
      expect(inv(f, nested0, { data_uptr: new Uint8Array(25), entry_len: 25, entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      expect(inv(f, nested0, { data_uptr: new Uint8Array(24), entry_len: 1, entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      /* Negative test: invalid flag is passed */
      expect(inv(f, nested0, { data_uptr: [{ addr: 0, npages: 1, flags: 0xffffffff }] })).toEqual({ code: "EOPNOTSUPP", entry_num: 0 });
      /* Negative test: invalid data_uptr when array is not empty */
      expect(inv(f, nested0, { data_uptr: 0, entry_len: 24, entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      /* Negative test: invalid entry_len when array is not empty */
      expect(inv(f, nested0, { data_uptr: new Uint8Array(24), entry_len: 0, entry_num: 1 })).toEqual({ code: "EINVAL", entry_num: 0 });
      /* VT-d's own entry rules (instead of the mock's invalid iotlb_id) */
      expect(inv(f, nested0, { data_uptr: [{ addr: 0x1001, npages: 1 }] })).toEqual({ code: "EINVAL", entry_num: 0 });
      expect(inv(f, nested0, { data_uptr: [{ addr: 0x1000, npages: U64_MAX }] })).toEqual({ code: "EINVAL", entry_num: 0 });
      expect(inv(f, nested0, { data_uptr: [{ addr: 0x1000, npages: 1, __reserved: 1 }] })).toEqual({ code: "EOPNOTSUPP", entry_num: 0 });
      /* Invalidate the 1st entry but fail the 2nd request due to invalid flags */
      expect(inv(f, nested0, { data_uptr: [{ addr: 0, npages: 1 }, { addr: 0x1000, npages: 1, flags: 0xffffffff }] })).toEqual({ code: "EOPNOTSUPP", entry_num: 1 });
      /* ... due to an invalid address in the 2nd request */
      expect(inv(f, nested0, { data_uptr: [{ addr: 0, npages: 1 }, { addr: 0x800, npages: 1 }] })).toEqual({ code: "EINVAL", entry_num: 1 });
      /* Invalidate two entries, and everything of nested1 */
      expect(inv(f, nested0, { data_uptr: [{ addr: 0x2000, npages: 1 }, { addr: 0x3000, npages: 1, flags: C.IOMMU_VTD_INV_FLAGS_LEAF }] })).toEqual({ code: null, entry_num: 2 });
      expect(inv(f, nested1, { data_uptr: [{ addr: 0, npages: U64_MAX }] })).toEqual({ code: null, entry_num: 1 });

      /* Attach device to nested_hwpt_id[0] that then will be busy */
      expect(f.attach(f.devFd, nested0)).toBe(nested0);
      expectErrno("EBUSY", () => f.destroy(nested0));
      /* Switch from nested_hwpt_id[0] to nested_hwpt_id[1] */
      f.attach(f.devFd, nested1);
      expectErrno("EBUSY", () => f.destroy(nested1));
      f.destroy(nested0);
      /* Detach from nested_hwpt_id[1] and destroy it */
      f.attach(f.devFd, parent);
      f.destroy(nested1);
      /* Detach from the parent hw_pagetable and destroy it */
      f.attach(f.devFd, f.ioasId);
      f.destroy(parent);
      f.destroy(parentNotWork);
    });

    if (variant === "no_domain") return;

    it("attach-time checks of intel_pasid_setup_nested: addr_width, SRE, EAFE (allocation accepts them all)", () => {
      const parent = f.hwptAlloc(f.devId, f.ioasId, NEST_PARENT);
      for (const bad of [{ addr_width: 0 }, { addr_width: 39 }, { addr_width: 56 }, { flags: Number(C.IOMMU_VTD_S1_SRE) }, { flags: Number(C.IOMMU_VTD_S1_EAFE) }]) {
        const h = nestedAlloc(f, parent, { data_uptr: { ...S1, ...bad } });
        const e = expectErrno("EINVAL", () => f.attach(f.devFd, h));
        expect(e.where).toBe("intel_pasid_setup_nested");
        f.destroy(h);
      }
      // a failed replace leaves the device on its old (automatic) domain: DMA still works there
      f.mapFixed(f.buffer, 4096, f.baseIova);
      return f.dev().read(f.baseIova, 4).then(() => {
        // WPE alone is accepted (it only applies with SRE), and __reserved is never looked at
        const ok = nestedAlloc(f, parent, { data_uptr: { ...S1, flags: Number(C.IOMMU_VTD_S1_WPE), __reserved: 7 } });
        expect(f.attach(f.devFd, ok)).toBe(ok);
        const five = nestedAlloc(f, parent, { data_uptr: { ...S1, addr_width: 57 } });
        expect(f.attach(f.devFd, five)).toBe(five); // CAP.FS5LP = 1
        f.attach(f.devFd, f.ioasId);
        f.destroy(ok).destroy(five).destroy(parent);
      });
    });

    it("the nested PASID entry: PGTT 011, FSPTPTR = pgtbl_addr, SSPTPTR = the parent's table, the nested DID", () => {
      const parent = f.hwptAlloc(f.devId, f.ioasId, NEST_PARENT);
      const nested = nestedAlloc(f, parent, { data_uptr: { ...S1, flags: Number(C.IOMMU_VTD_S1_WPE) } });
      const model = f.s.machine.iommu as VtdModel;
      const events: TraceEvent[] = [];
      f.s.machine.trace.setSink((e) => events.push(e));
      f.attach(f.devFd, nested);
      const ictx = f.s.kernel.contexts()[0];
      const dom = (id: number) => (ictx.objects.get(id) as unknown as { domain: { id: number; pgd?: number } }).domain;
      const pe = model.ops.pasidEntryAddr(f.s.machine.devices[0], 0);
      const mem = f.s.machine.mem;
      expect(pasidEntryDecode(mem.read64n(pe), mem.read64n(pe + 8))).toEqual({
        present: true, fpd: false, aw: 2, pgtt: PGTT_NESTED, ssade: false, ssptptr: dom(parent).pgd, did: dom(nested).id, pwsnp: true, pgsnp: true,
      });
      expect(pasidEntryDecodeFs(mem.read64n(pe + 16))).toEqual({ fsptptr: 0x10_0000, flpm: 0, sre: false, wpe: false, eafe: false });
      expect(dom(nested).id).not.toBe(dom(parent).id);
      expect(events.find((e) => e.k === "iommu.attach")).toMatchObject({ did: dom(nested).id, pgtt: 3 });
      f.attach(f.devFd, f.ioasId);
      f.destroy(nested).destroy(parent);
    });

    it("errno order of the core before the driver", () => {
      const parent = f.hwptAlloc(f.devId, f.ioasId, NEST_PARENT);
      const plain = f.hwptAlloc(f.devId, f.ioasId, 0);
      // step 2 of iommufd_hwpt_alloc: a type without data
      expectErrno("EINVAL", () => f.hwptAlloc(f.devId, parent, 0, { data_type: VTD_S1, data_len: 0, data_uptr: 0 }));
      // NONE + no data passes step 2, then data_len 0 is EOPNOTSUPP in iommufd_hwpt_nested_alloc
      expect(expectErrno("EOPNOTSUPP", () => f.hwptAlloc(f.devId, parent, 0)).where).toBe("iommufd_hwpt_nested_alloc");
      // bad flags are checked before the parent: EOPNOTSUPP, not EINVAL, on a parent that would not work
      expect(expectErrno("EOPNOTSUPP", () => nestedAlloc(f, plain, {}, C.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)).where).toBe("iommufd_hwpt_nested_alloc");
      // the parent is checked before the payload: EINVAL, not EFAULT
      expectErrno("EINVAL", () => f.hwptAlloc(f.devId, plain, 0, { data_type: VTD_S1, data_len: 24, data_uptr: 0 }));
      // the core's parent check comes before the driver's data-type check
      expect(expectErrno("EINVAL", () => f.hwptAlloc(f.devId, plain, 0, { data_type: C.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 24, data_uptr: new Uint8Array(24) })).where).toBe("iommufd_hwpt_nested_alloc");
      // on a good parent the driver answers: the type first (EOPNOTSUPP), then the length (EINVAL)
      expect(expectErrno("EOPNOTSUPP", () => f.hwptAlloc(f.devId, parent, 0, { data_type: C.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 8, data_uptr: new Uint8Array(8) })).where).toBe("intel_iommu_domain_alloc_nested");
      // an automatic domain is never a parent
      expectErrno("EINVAL", () => nestedAlloc(f, f.hwptId));
      // a longer payload is EINVAL (never E2BIG), even with a zero tail
      expect(expectErrno("EINVAL", () => f.hwptAlloc(f.devId, parent, 0, { data_type: VTD_S1, data_len: 32, data_uptr: new Uint8Array(32) })).where).toBe("iommu_copy_struct_from_user");
      // FAULT_ID_VALID with a bad fault_id: ENOENT after the driver, nothing left behind
      const before = f.objectIds();
      expectErrno("ENOENT", () => nestedAlloc(f, parent, { fault_id: 0x7777 }, C.IOMMU_HWPT_FAULT_ID_VALID));
      expect(f.objectIds()).toEqual(before);
      f.destroy(plain).destroy(parent);
    });

    it("a nested HWPT with a fault queue: ENODEV on a device without PRI; PASIDs need IOMMU_HWPT_ALLOC_PASID", () => {
      const parent = f.hwptAlloc(f.devId, f.ioasId, NEST_PARENT | C.IOMMU_HWPT_ALLOC_PASID);
      const fault = f.ioctl("IOMMU_FAULT_QUEUE_ALLOC", {});
      f.track(fault.out_fault_fd);
      const withFault = nestedAlloc(f, parent, { fault_id: fault.out_fault_id }, C.IOMMU_HWPT_FAULT_ID_VALID);
      expectErrno("EBUSY", () => f.destroy(fault.out_fault_id));
      const d1 = f.bind(1); // vfio1: no PRI
      expectErrno("ENODEV", () => f.attach(d1.fd, withFault));
      expect(f.attach(f.devFd, withFault)).toBe(withFault); // vfio0 has PRI
      f.detach(f.devFd); // a PASID needs the RID unattached or on a PASID-compatible HWPT
      // a nested HWPT without ALLOC_PASID cannot take a PASID; with it, it can
      const plain = nestedAlloc(f, parent);
      const pasidOk = nestedAlloc(f, parent, {}, C.IOMMU_HWPT_ALLOC_PASID);
      expectErrno("EINVAL", () => f.g.ioctl(f.devFd, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { flags: C.VFIO_DEVICE_ATTACH_PASID, pasid: 3, pt_id: plain }));
      f.g.ioctl(f.devFd, C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, { flags: C.VFIO_DEVICE_ATTACH_PASID, pasid: 3, pt_id: pasidOk });
      expectErrno("EBUSY", () => f.destroy(pasidOk));
      f.g.ioctl(f.devFd, C.VFIO_DEVICE_DETACH_IOMMUFD_PT, { flags: C.VFIO_DEVICE_DETACH_PASID, pasid: 3 });
      f.destroy(pasidOk).destroy(plain).destroy(withFault);
      f.g.close(fault.out_fault_fd);
    });
  });
}
