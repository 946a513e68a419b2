/**
 * Which iommufd context an event belongs to. Object IDs are per iommufd (each open of /dev/iommu
 * numbers its objects from 1), but only alloc/destroy events carry `ictx`; the others (attach,
 * map, reserve) are tied to their call by cmd_seq. So: remember the fd of the call in progress
 * (sys.enter), learn fd → ictx from the objects its calls allocate or destroy (a VFIO device fd
 * learns it from the DEVICE its bind allocates), and resolve other events through their call's fd.
 */
import type { TraceEvent } from "./events.ts";

export class CallContext {
  /** the call in progress: calls do not nest, so one is enough */
  private call: { seq: number; fd: number; req?: string } = { seq: -1, fd: -1 };
  private readonly fdCtx = new Map<number, number>();
  /** fallback for calls on an fd that has not shown its context yet */
  private lastCtx = 1;

  observe(e: TraceEvent): void {
    switch (e.k) {
      case "sys.enter":
        this.call = { seq: e.seq, fd: e.fd, req: e.req };
        break;
      case "iommufd.obj.alloc":
      case "iommufd.obj.destroy":
        if (this.inCall(e) && this.call.fd >= 0) this.fdCtx.set(this.call.fd, e.ictx);
        this.lastCtx = e.ictx;
        break;
      case "sys.call":
        if (e.call === "close" && !e.errno) this.fdCtx.delete(e.fd);
        break;
    }
  }

  /** Is `e` caused by the call in progress? */
  inCall(e: TraceEvent): boolean {
    return e.cmd_seq === this.call.seq;
  }

  /** The ioctl request of the call in progress (undefined outside ioctls). */
  get request(): string | undefined {
    return this.call.req;
  }

  /** The iommufd context of an fd (the fd of a sys.call). */
  ctxOfFd(fd: number): number {
    return this.fdCtx.get(fd) ?? this.lastCtx;
  }

  /** The iommufd context an event without `ictx` belongs to. */
  ctxOf(e: TraceEvent): number {
    return this.inCall(e) ? this.ctxOfFd(this.call.fd) : this.lastCtx;
  }

  clone(): CallContext {
    const c = new CallContext();
    c.call = this.call;
    for (const [fd, ctx] of this.fdCtx) c.fdCtx.set(fd, ctx);
    c.lastCtx = this.lastCtx;
    return c;
  }
}

/** The key of an iommufd object across contexts: "ictx:id". */
export function objKey(ictx: number, id: number): string {
  return `${ictx}:${id}`;
}
