/**
 * main.c: the iommufd context (one per open of /dev/iommu), its object table, the ioctl command
 * table and the dispatcher that applies the generic rules before any handler runs.
 *
 * Dispatch (iommufd_fops_ioctl), in the kernel's order:
 *   nr outside the table            → the VFIO-container compatibility handler (vfio-compat.ts),
 *                                     ENOTTY for anything it does not know
 *   first __u32 (size) unreadable   → EFAULT
 *   request ≠ the table's number    → ENOTTY   (e.g. an _IOWR encoding of a valid nr)
 *   size < min_size                 → EINVAL
 *   size > kernel size, tail ≠ 0    → E2BIG    (copy_struct_from_user; a short struct is zero-extended)
 * Handlers then validate, look up, act, and copy their outputs back once (iommufdUcmdRespond),
 * at most the caller's size.
 *
 * Objects: IDs come from 1..2^31-1, lowest free first, and are reused. An object is reserved
 * (invisible) while its ioctl can still fail and published only on success; IOMMU_DESTROY works
 * only when the ID table holds the last reference (else EBUSY); closing the context destroys
 * leaves first until nothing is left.
 */
import { err, isErr, type Err, type Rc } from "../uapi/errno.ts";
import { IOMMUFD_IOCTLS, IOMMUFD_CMD_BASE, IOMMUFD_TYPE, type IoctlDef } from "../uapi/iommufd.ts";
import { decodeStruct, encodeStruct, type Decoded } from "../uapi/struct.ts";
import { KFile } from "./fs.ts";
import type { Kernel } from "./kernel.ts";
import type { AccountMode } from "./pages.ts";
import { IOMMUFD_OBJ, IommufdHwptNested, IommufdHwptPaging, type AnyObject, type IommufdGroup, type IommufdIoas, type IommufdObject } from "./private.ts";
import * as ioas from "./ioas.ts";
import * as hwpt from "./hw-pagetable.ts";
import * as eventq from "./eventq.ts";
import * as viommu from "./viommu.ts";
import { iommufdVfioIoctl } from "./vfio-compat.ts";

/** struct iommufd_ucmd: one ioctl in flight. */
export interface Ucmd {
  readonly ictx: IommufdCtx;
  /** user address of the argument */
  readonly ubuffer: number;
  /** the caller's size (first __u32) */
  readonly userSize: number;
  /** the command struct as the kernel holds it (zero-extended to the kernel size) */
  readonly cmd: Decoded;
  readonly def: IoctlDef;
}

type Handler = (ucmd: Ucmd) => Rc;

/** iommufd_ioctl_ops[]: ioctl → handler. Numbers, structs and min sizes come from engine/uapi. */
const HANDLERS: Record<string, Handler> = {
  IOMMU_DESTROY: iommufdDestroy,
  IOMMU_IOAS_ALLOC: ioas.iommufdIoasAllocIoctl,
  IOMMU_IOAS_ALLOW_IOVAS: ioas.iommufdIoasAllowIovas,
  IOMMU_IOAS_COPY: ioas.iommufdIoasCopy,
  IOMMU_IOAS_IOVA_RANGES: ioas.iommufdIoasIovaRanges,
  IOMMU_IOAS_MAP: ioas.iommufdIoasMap,
  IOMMU_IOAS_UNMAP: ioas.iommufdIoasUnmap,
  IOMMU_OPTION: ioas.iommufdOption,
  IOMMU_VFIO_IOAS: ioas.iommufdVfioIoas,
  IOMMU_HWPT_ALLOC: hwpt.iommufdHwptAlloc,
  IOMMU_GET_HW_INFO: hwpt.iommufdGetHwInfo,
  IOMMU_HWPT_SET_DIRTY_TRACKING: hwpt.iommufdHwptSetDirtyTracking,
  IOMMU_HWPT_GET_DIRTY_BITMAP: hwpt.iommufdHwptGetDirtyBitmap,
  IOMMU_HWPT_INVALIDATE: hwpt.iommufdHwptInvalidate,
  IOMMU_FAULT_QUEUE_ALLOC: eventq.iommufdFaultAlloc,
  IOMMU_IOAS_MAP_FILE: ioas.iommufdIoasMapFile,
  IOMMU_VIOMMU_ALLOC: viommu.iommufdViommuAllocIoctl,
  IOMMU_VDEVICE_ALLOC: viommu.iommufdVdeviceAllocIoctl,
  IOMMU_IOAS_CHANGE_PROCESS: ioas.iommufdIoasChangeProcess,
  IOMMU_VEVENTQ_ALLOC: viommu.iommufdVeventqAlloc,
  IOMMU_HW_QUEUE_ALLOC: viommu.iommufdHwQueueAllocIoctl,
};

const CMD_TABLE: { def: IoctlDef; handler: Handler }[] = IOMMUFD_IOCTLS.map((def) => {
  const handler = HANDLERS[def.name];
  if (!handler) throw new Error(`no handler for ${def.name}`);
  return { def, handler };
});

/** struct iommufd_ctx */
export class IommufdCtx {
  readonly objects = new Map<number, IommufdObject>();
  readonly groups = new Map<number, IommufdGroup>();
  /** the IOAS VFIO-compatibility ioctls operate on */
  vfioIoas: IommufdIoas | null = null;
  accountMode: AccountMode;
  /** set once the file is released and every object destroyed */
  dead = false;
  constructor(
    readonly kernel: Kernel,
    /** a number for events (which ctx an object belongs to) */
    readonly serial: number,
    /** opened as /dev/vfio/vfio (VFIO-compatible defaults) */
    readonly vfioCompat: boolean,
  ) {
    this.accountMode = kernel.creds.capIpcLock ? "none" : vfioCompat ? "mm" : "user";
  }

  /** iommufd_object_alloc (reserve): the lowest free ID, not yet visible to lookups. */
  objectAlloc<T extends IommufdObject>(obj: T): T | Err {
    let id = 1;
    while (this.objects.has(id)) id++;
    if (id > 0x7fffffff) return err("EBUSY", "xa_alloc", "the object ID space is exhausted");
    obj.id = id;
    this.objects.set(id, obj);
    return obj;
  }

  /** iommufd_object_finalize: publish. */
  objectFinalize(obj: IommufdObject): void {
    obj.published = true;
    const t = this.kernel.machine.trace;
    if (!t.on) return;
    const links =
      obj instanceof IommufdHwptPaging ? { ioas_id: obj.ioas.id, auto: obj.autoDomain }
      : obj instanceof IommufdHwptNested ? { parent_id: obj.parent.id }
      : {};
    t.emit("iommufd.obj.alloc", { id: obj.id, type: obj.type, ictx: this.serial, ...links });
  }

  /** iommufd_object_abort: give the ID back; the object never existed. */
  objectAbort(obj: IommufdObject): void {
    if (this.objects.get(obj.id) === obj) this.objects.delete(obj.id);
  }

  /** iommufd_object_abort_and_destroy: undo an object that already holds things. */
  objectAbortAndDestroy(obj: IommufdObject): void {
    obj.destroy();
    this.objectAbort(obj);
  }

  /**
   * iommufd_object_remove: destroy by ID if nothing but the table holds it (IOMMU_DESTROY), or
   * unconditionally with `force` when the kernel itself is tearing the object down and has just
   * dropped its own references (auto-domain cleanup, unbind).
   */
  objectRemove(id: number, force = false): Rc {
    const obj = this.objects.get(id);
    if (!obj || !obj.published) return err("ENOENT", "iommufd_object_remove", `no object with ID ${id}`);
    if (obj.users !== 1 && !force) {
      const h = obj.holders();
      return err("EBUSY", "iommufd_object_remove", `${obj.type} ${id} is still referenced${h.length ? " by " + h.join(", ") : ""}`);
    }
    this.objects.delete(id);
    obj.users = 0;
    obj.destroy();
    const t = this.kernel.machine.trace;
    if (t.on) t.emit("iommufd.obj.destroy", { id, type: obj.type, ictx: this.serial });
    return 0;
  }

  /** Objects, published, in ID order (for views and tests). */
  list(): AnyObject[] {
    return [...this.objects.values()].filter((o) => o.published).sort((a, b) => a.id - b.id) as AnyObject[];
  }

  /** iommufd_fops_release: destroy leaves until the table is empty. */
  release(): void {
    while (this.objects.size) {
      let destroyed = 0;
      for (const obj of [...this.objects.values()].sort((a, b) => a.id - b.id)) {
        if (obj.users !== 1) continue;
        if (!obj.published) continue;
        this.objectRemove(obj.id);
        destroyed++;
      }
      if (!destroyed) throw new Error(`iommufd release: ${this.objects.size} object(s) hold each other (refcount bug)`);
    }
    this.dead = true;
  }
}

/** The file of an open /dev/iommu. */
export class IommufdFile extends KFile {
  readonly kind = "iommufd" as const;
  constructor(readonly ictx: IommufdCtx, readonly path: string) {
    super();
  }
  protected release(): void {
    this.ictx.release();
  }
}

/** iommufd_ucmd_respond: copy the command back, at most the caller's size. */
export function iommufdUcmdRespond(ucmd: Ucmd): Rc {
  const bytes = encodeStruct(ucmd.def.struct!, ucmd.cmd);
  const n = Math.min(ucmd.userSize, bytes.length);
  return ucmd.ictx.kernel.mm.copyToUser(ucmd.ubuffer, bytes.subarray(0, n));
}

/**
 * copy_struct_from_user: `usize` bytes at `uaddr` into a `ksize` struct: zero-extended when
 * shorter; when longer, the extra bytes must be zero (E2BIG).
 */
export function copyStructFromUser(kernel: Kernel, ksize: number, uaddr: number, usize: number): Uint8Array | Err {
  const head = kernel.mm.copyFromUser(uaddr, Math.min(ksize, usize));
  if (isErr(head)) return head;
  if (usize > ksize) {
    // check_zeroed_user: read the tail in chunks so a huge size does not allocate a huge buffer
    for (let off = ksize; off < usize; off += 4096) {
      const tail = kernel.mm.copyFromUser(uaddr + off, Math.min(4096, usize - off));
      if (isErr(tail)) return tail;
      const nz = tail.findIndex((b) => b !== 0);
      if (nz >= 0)
        return err("E2BIG", "copy_struct_from_user", `byte ${off + nz} of the ${usize}-byte struct is non-zero, but this kernel's struct is only ${ksize} bytes`);
    }
  }
  const out = new Uint8Array(ksize);
  out.set(head);
  return out;
}

/** iommufd_fops_ioctl */
export function iommufdFopsIoctl(ictx: IommufdCtx, request: number, arg: number): number | Err {
  const nr = request & 0xff;
  if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= CMD_TABLE.length) return iommufdVfioIoctl(ictx, request, arg);
  const op = CMD_TABLE[nr - IOMMUFD_CMD_BASE];
  const kernel = ictx.kernel;
  const sizeBytes = kernel.mm.copyFromUser(arg, 4);
  if (isErr(sizeBytes)) return sizeBytes;
  const userSize = new DataView(sizeBytes.buffer).getUint32(0, true);
  if (op.def.request !== request)
    return err("ENOTTY", "iommufd_fops_ioctl", `request 0x${request.toString(16)} has nr 0x${nr.toString(16)} but is not ${op.def.name} (0x${op.def.request.toString(16)}): iommufd ioctls are _IO(';', nr) with no size or direction bits`);
  if (userSize < op.def.minSize)
    return err("EINVAL", "iommufd_fops_ioctl", `size ${userSize} is below the minimum ${op.def.minSize} of struct ${op.def.struct!.name}`);
  const bytes = copyStructFromUser(kernel, op.def.struct!.size, arg, userSize);
  if (isErr(bytes)) return bytes;
  const cmd = decodeStruct(op.def.struct!, bytes);
  const rc = op.handler({ ictx, ubuffer: arg, userSize, cmd, def: op.def });
  return rc ? rc : 0;
}

/** IOMMU_DESTROY: iommufd_destroy */
function iommufdDestroy(ucmd: Ucmd): Rc {
  return ucmd.ictx.objectRemove(ucmd.cmd.id as number);
}

export { IOMMUFD_OBJ, IOMMUFD_TYPE };
