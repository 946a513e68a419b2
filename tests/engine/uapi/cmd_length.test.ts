/**
 * The kernel selftest's iommufd.cmd_length (tools/testing/selftests/iommu/iommufd.c), over the
 * WHOLE command table (engine/uapi IOMMUFD_IOCTLS, the mirror of main.c iommufd_ioctl_ops[]),
 * plus the dispatcher's other generic answers (iommufd_fops_ioctl, reference §3.0):
 *   size = min_size - 1                       → EINVAL (from the dispatcher, not the handler)
 *   size = sizeof + 8, any tail byte non-zero → E2BIG  (copy_struct_from_user)
 *   size = sizeof + 8, tail all zero          → exactly the answer of the all-zero struct
 *   size = min_size (an old binary)           → the same answer: the new fields read as zero
 *   a NULL argument                           → EFAULT (reading `size` faults)
 *   nr 0x95 (past the table), an _IOWR encoding of a valid nr → ENOTTY
 * All arguments are raw Uint8Arrays, as a C program would pass them.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IOMMUFD_IOCTLS } from "../../../engine/uapi/iommufd.ts";
import { ErrnoError } from "../../../engine/script/runtime.ts";
import type { ErrnoName } from "../../../engine/uapi/errno.ts";
import { bareFixture, C, expectErrno, rawStruct, type IommufdFixture } from "../../harness/iommufd.ts";

/**
 * What each ioctl answers for an all-zero struct on a fresh iommufd (checked in kernel order:
 * flags / reserved / type first, then the lookups of ID 0). "ok" is success.
 */
const ALL_ZERO_ANSWER: Record<string, ErrnoName | "ok"> = {
  IOMMU_DESTROY: "ENOENT", // ID 0 never exists
  IOMMU_IOAS_ALLOC: "ok",
  IOMMU_IOAS_ALLOW_IOVAS: "ENOENT", // ioas_id 0
  IOMMU_IOAS_COPY: "EINVAL", // neither READABLE nor WRITEABLE (before any lookup)
  IOMMU_IOAS_IOVA_RANGES: "ENOENT",
  IOMMU_IOAS_MAP: "EINVAL", // neither READABLE nor WRITEABLE
  IOMMU_IOAS_UNMAP: "ENOENT", // the lookup comes first in iommufd_ioas_unmap
  IOMMU_OPTION: "ok", // RLIMIT_MODE SET 0 on an iommufd that holds no object (CAP_SYS_RESOURCE)
  IOMMU_VFIO_IOAS: "ENODEV", // op GET with no compat IOAS
  IOMMU_HWPT_ALLOC: "ENOENT", // dev_id 0
  IOMMU_GET_HW_INFO: "ENOENT", // dev_id 0
  IOMMU_HWPT_SET_DIRTY_TRACKING: "ENOENT", // hwpt_id 0
  IOMMU_HWPT_GET_DIRTY_BITMAP: "ENOENT",
  IOMMU_HWPT_INVALIDATE: "ENOENT", // entry_num 0 is allowed; hwpt_id 0 is not
  IOMMU_FAULT_QUEUE_ALLOC: "ok",
  IOMMU_IOAS_MAP_FILE: "EINVAL", // neither READABLE nor WRITEABLE (before the fd is looked at)
  IOMMU_VIOMMU_ALLOC: "EOPNOTSUPP", // type IOMMU_VIOMMU_TYPE_DEFAULT
  IOMMU_VDEVICE_ALLOC: "ENOENT", // viommu_id 0
  IOMMU_IOAS_CHANGE_PROCESS: "ok", // no mappings to move
  IOMMU_VEVENTQ_ALLOC: "EOPNOTSUPP", // type IOMMU_VEVENTQ_TYPE_DEFAULT
  IOMMU_HW_QUEUE_ALLOC: "EOPNOTSUPP", // type IOMMU_HW_QUEUE_TYPE_DEFAULT
};

/** The answer of one call: "ok" or the errno, with where the kernel failed. */
function answer(fn: () => unknown): { code: ErrnoName | "ok"; where?: string } {
  try {
    fn();
    return { code: "ok" };
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    return { code: e.code, where: e.where };
  }
}

describe("cmd_length over every iommufd ioctl", () => {
  let f: IommufdFixture;
  beforeEach(() => {
    f = bareFixture();
  });
  afterEach(() => f.teardown());

  it("the table covers every ioctl of the command table", () => {
    expect(Object.keys(ALL_ZERO_ANSWER).sort()).toEqual(IOMMUFD_IOCTLS.map((d) => d.name).sort());
    // the command numbers are consecutive from IOMMUFD_CMD_BASE, and _IO(';', nr)
    IOMMUFD_IOCTLS.forEach((d, i) => {
      expect(d.nr).toBe(C.IOMMUFD_CMD_BASE + i);
      expect(d.request).toBe((C.IOMMUFD_TYPE << 8) | d.nr);
    });
  });

  for (const def of IOMMUFD_IOCTLS) {
    const size = def.struct!.size;
    const min = def.minSize;

    it(`${def.name}: size min_size - 1 (${min - 1}) → EINVAL`, () => {
      const cmd = rawStruct(size + 1, min - 1);
      cmd[size] = 0xff; // the selftest's trailing byte: irrelevant to a short struct
      const e = expectErrno("EINVAL", () => f.g.ioctl(f.fd, def.request, cmd));
      expect(e.where).toBe("iommufd_fops_ioctl");
      expectErrno("EINVAL", () => f.g.ioctl(f.fd, def.request, rawStruct(size, 0)));
    });

    it(`${def.name}: sizeof + 8 (${size + 8}) with a non-zero tail byte → E2BIG`, () => {
      for (let i = 0; i < 8; i++) {
        const cmd = rawStruct(size + 8, size + 8);
        cmd[size + i] = 1 << i;
        expectErrno("E2BIG", () => f.g.ioctl(f.fd, def.request, cmd));
      }
      // nothing was created by the refused calls
      expect(f.objectIds()).toEqual([]);
    });

    it(`${def.name}: sizeof + 8 with a zero tail, and min_size, answer as the all-zero struct`, () => {
      const want = ALL_ZERO_ANSWER[def.name];
      const exact = answer(() => f.g.ioctl(f.fd, def.request, rawStruct(size, size)));
      expect(exact.code, exact.where).toBe(want);
      const longer = answer(() => f.g.ioctl(f.fd, def.request, rawStruct(size + 8, size + 8)));
      expect(longer.code, longer.where).toBe(want);
      expect(longer.where).not.toBe("iommufd_fops_ioctl");
      expect(longer.where).not.toBe("copy_struct_from_user");
      if (min < size) {
        // an old binary's shorter struct is zero-extended
        const old = answer(() => f.g.ioctl(f.fd, def.request, rawStruct(min, min)));
        expect(old.code, old.where).toBe(want);
      }
    });

    it(`${def.name}: a NULL argument → EFAULT`, () => {
      expectErrno("EFAULT", () => f.g.ioctl(f.fd, def.request, null));
    });
  }

  it("nr 0x95, past the end of the table → ENOTTY", () => {
    const req = (C.IOMMUFD_TYPE << 8) | 0x95;
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, req, rawStruct(64, 64)));
    // past the table the VFIO compat handler answers, before any pointer is read
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, req, null));
  });

  it("nr 0x7f, below IOMMUFD_CMD_BASE and not a VFIO container ioctl → ENOTTY", () => {
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, (C.IOMMUFD_TYPE << 8) | 0x7f, rawStruct(64, 64)));
  });

  it("_IOWR(';', 0x81, 12) instead of _IO(';', 0x81) → ENOTTY", () => {
    const IOC_READ_WRITE = 3;
    const req = ((IOC_READ_WRITE << 30) | (12 << 16) | (C.IOMMUFD_TYPE << 8) | 0x81) >>> 0;
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, req, rawStruct(12, 12)));
    // the size is read first: a bad pointer gives EFAULT even for a wrong encoding
    expectErrno("EFAULT", () => f.g.ioctl(f.fd, req, null));
    expect(f.objectIds()).toEqual([]);
  });

  it("an _IO number of another type byte with a table nr → ENOTTY", () => {
    expectErrno("ENOTTY", () => f.g.ioctl(f.fd, (0x3c << 8) | 0x81, rawStruct(12, 12)));
  });
});
