/**
 * A generic device DMA engine: what a PCI function does when it reads or writes memory through
 * an IOMMU. It works with any model's hardware half (IommuHw): the transfer is split into
 * requests that never cross a 4 KiB boundary (a PCIe request may not), each request is
 * translated by `hw.translate()`, and real bytes move through PhysMem.
 *
 * Time: the IOMMU model charges its own translation latency as it works (VT-d: 10 ns per IOTLB
 * hit, 90 ns per memory reference of a walk); moving the bytes themselves is not timed.
 *
 * On a fault the transfer stops there and a DmaFaultInfo comes back. For a write, the bytes of
 * the requests before the faulting one have landed in memory, as on real hardware: DMA is not
 * transactional.
 *
 * x86 interrupt window: a model may claim some requests as interrupt messages rather than DMA
 * (VT-d: untranslated requests without PASID to 0xFEEx_xxxx) by implementing
 * `InterruptWindowHw`; those requests are handed to it and never translated.
 */
import type { MachineCtx } from "../machine.ts";
import type { DmaRequest, IommuHw, SimDevice } from "./model.ts";

const PAGE = 4096;

/** A DMA the IOMMU could not translate. */
export interface DmaFaultInfo {
  /** hardware fault reason (VT-d FR) */
  reason: number;
  reasonName: string;
  /** the first byte of the request that faulted */
  iova: number;
  /** undefined for a request without PASID */
  pasid: number | undefined;
  rid: number;
  write: boolean;
  /** bytes transferred before the fault (for a write: already in memory) */
  done: number;
}

/** Optional capability of an IommuHw: requests it treats as interrupt messages, not DMA. */
export interface InterruptWindowHw {
  isInterruptRequest(req: DmaRequest): boolean;
  /** A write carries its bytes; a read gets nothing back (the device sees zeros). */
  interruptRequest(req: DmaRequest, data: Uint8Array | null, len: number): void;
}

export function interruptWindow(hw: IommuHw): InterruptWindowHw | null {
  const h = hw as Partial<InterruptWindowHw>;
  return typeof h.isInterruptRequest === "function" && typeof h.interruptRequest === "function" ? (h as InterruptWindowHw) : null;
}

function check(iova: number, length: number): void {
  if (!Number.isInteger(iova) || iova < 0) throw new Error(`DMA: iova must be a non-negative integer, got ${iova}`);
  if (!Number.isInteger(length) || length < 0) throw new Error(`DMA: length must be a non-negative integer, got ${length}`);
}

/**
 * One transfer, request by request. `move(pa, offset, n)` moves n bytes at physical address pa
 * for the transfer bytes [offset, offset + n); `intr(req, offset, n)` handles interrupt requests.
 */
function transfer(
  ctx: MachineCtx,
  hw: IommuHw,
  dev: SimDevice,
  iova: number,
  length: number,
  pasid: number,
  write: boolean,
  move: (pa: number, offset: number, n: number) => void,
  intr: (w: InterruptWindowHw, req: DmaRequest, offset: number, n: number) => void,
): DmaFaultInfo | null {
  const { trace } = ctx;
  const rid = dev.rid;
  if (trace.on) trace.emit("dma.request", { rid, pasid, iova, len: length, write, line: trace.line });
  const iw = interruptWindow(hw);
  const req: DmaRequest = { rid, pasid, iova, write };
  let done = 0;
  while (done < length) {
    const cur = iova + done;
    req.iova = cur;
    let n = Math.min(length - done, PAGE - (cur % PAGE));
    if (iw && iw.isInterruptRequest(req)) {
      intr(iw, req, done, n);
      if (trace.on) trace.emit("dma.complete", { rid, pasid, iova: cur, pa: cur, len: n, write });
      done += n;
      continue;
    }
    const t = hw.translate(req);
    if (!t.ok) {
      if (trace.on) trace.emit("dma.fault", { rid, pasid, iova: cur, write, reason: t.reason, name: t.name });
      return { reason: t.reason, reasonName: t.name, iova: cur, pasid: pasid < 0 ? undefined : pasid, rid, write, done };
    }
    // the result object may be reused by the model: take what we need now
    const pa = t.pa;
    n = Math.min(n, t.size);
    move(pa, done, n);
    if (trace.on) trace.emit("dma.complete", { rid, pasid, iova: cur, pa, len: n, write });
    done += n;
  }
  return null;
}

/**
 * The device reads `length` bytes at `iova` (with `pasid`, or without PASID when -1 or
 * undefined). Returns the bytes, or the fault that stopped the transfer.
 */
export function dmaRead(ctx: MachineCtx, hw: IommuHw, dev: SimDevice, iova: number, length: number, pasid: number = -1): Uint8Array | DmaFaultInfo {
  check(iova, length);
  const out = new Uint8Array(length);
  const f = transfer(
    ctx, hw, dev, iova, length, pasid ?? -1, false,
    (pa, offset, n) => out.set(ctx.mem.read(pa, n), offset),
    (w, req, _offset, n) => w.interruptRequest(req, null, n),
  );
  return f ?? out;
}

/**
 * The device writes `data` at `iova`. Returns null when every byte landed, else the fault (the
 * bytes before the faulting request have landed).
 */
export function dmaWrite(ctx: MachineCtx, hw: IommuHw, dev: SimDevice, iova: number, data: Uint8Array, pasid: number = -1): DmaFaultInfo | null {
  check(iova, data.length);
  return transfer(
    ctx, hw, dev, iova, data.length, pasid ?? -1, true,
    (pa, offset, n) => ctx.mem.write(pa, data.subarray(offset, offset + n)),
    (w, req, offset, n) => w.interruptRequest(req, data.subarray(offset, offset + n), n),
  );
}
