/**
 * The simulated machine: clock, scheduler, trace, physical memory, one IOMMU model and the PCI
 * devices behind it. Deterministic: time only moves when the engine says so (a DMA's modelled
 * latency, a script's sleep()), and timers fire in (time, insertion) order.
 */
import { AtsDevice } from "./hw/ats.ts";
import { PhysMem } from "./hw/memory.ts";
import type { IommuModel, SimDevice } from "./hw/model.ts";
import { Trace, type TraceEvent } from "./trace/events.ts";

export class Clock {
  /** simulated time in ns */
  now = 0;
  advance(ns: number): void {
    this.now += ns;
  }
}

interface Timer {
  at: number;
  order: number;
  fn: () => void;
}

/** A timer wheel in simulated time: work that happens later (interrupt handlers, device retries). */
export class Scheduler {
  private timers: Timer[] = [];
  private order = 0;
  constructor(private readonly clock: Clock) {}

  /** Run `fn` once `ns` of simulated time have passed. Returns a function that cancels it. */
  after(ns: number, fn: () => void): () => void {
    const t: Timer = { at: this.clock.now + ns, order: this.order++, fn };
    this.timers.push(t);
    this.timers.sort((a, b) => a.at - b.at || a.order - b.order);
    return () => {
      const i = this.timers.indexOf(t);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Time of the next timer, or undefined. */
  get nextAt(): number | undefined {
    return this.timers[0]?.at;
  }

  /** Fire every timer due at or before now. */
  runDue(): void {
    while (this.timers.length && this.timers[0].at <= this.clock.now) this.timers.shift()!.fn();
  }

  /** Let time pass until `until`, firing timers at their own times on the way. */
  runUntil(until: number): void {
    while (this.timers.length && this.timers[0].at <= until) {
      const t = this.timers.shift()!;
      if (t.at > this.clock.now) this.clock.now = t.at;
      t.fn();
    }
    if (until > this.clock.now) this.clock.now = until;
  }
}

/** What every part of the machine shares. */
export interface MachineCtx {
  readonly clock: Clock;
  readonly sched: Scheduler;
  readonly trace: Trace;
  readonly mem: PhysMem;
  /**
   * The ATS / PRI side of the PCI functions that have it, by requester id (engine/hw/ats.ts):
   * what the IOMMU driver enables in config space and the IOMMU hardware sends invalidations and
   * page responses to. Absent on contexts without devices (some unit tests).
   */
  readonly pcie?: ReadonlyMap<number, AtsDevice>;
}

/** A device of the machine's configuration. */
export interface DeviceConfig {
  name: string;
  /** requester id: bus << 8 | devfn */
  rid: number;
  pasidBits: number;
  pri: boolean;
  ats: boolean;
  /** IOMMU group; defaults to one group per device */
  group?: number;
}

/** The default machine (SCRIPT-API.md): vfio0 has PASID, PRI and ATS; vfio1 has none of them. */
export const DEFAULT_DEVICES: DeviceConfig[] = [
  { name: "0000:00:03.0 accel (PASID, PRI, ATS)", rid: 0x0018, pasidBits: 20, pri: true, ats: true },
  { name: "0000:00:04.0 nic", rid: 0x0020, pasidBits: 0, pri: false, ats: false },
];

export interface MachineConfig {
  iommu: string;
  devices: DeviceConfig[];
  /** model-specific knobs (cache sizes, …), passed to the model's factory */
  model?: Record<string, unknown>;
}

export type ModelFactory = (ctx: MachineCtx, devices: SimDevice[], knobs: Record<string, unknown>) => IommuModel;

export class Machine implements MachineCtx {
  readonly clock = new Clock();
  readonly sched = new Scheduler(this.clock);
  readonly trace: Trace;
  readonly mem = new PhysMem();
  readonly devices: SimDevice[];
  readonly pcie = new Map<number, AtsDevice>();
  readonly iommu: IommuModel;

  constructor(config: MachineConfig, factory: ModelFactory, sink: ((e: TraceEvent) => void) | null = null) {
    this.trace = new Trace(this.clock, sink);
    this.devices = config.devices.map((d, index) => ({
      index,
      name: d.name,
      path: `/dev/vfio/devices/vfio${index}`,
      rid: d.rid,
      pasidBits: d.pasidBits,
      pri: d.pri,
      ats: d.ats,
      group: d.group ?? index,
    }));
    // the functions' ATS/PRI exist before the IOMMU driver probes them (it enables them at probe)
    for (const d of this.devices) if (d.ats || d.pri) this.pcie.set(d.rid, new AtsDevice(this, d, () => this.iommu.hw));
    this.iommu = factory(this, this.devices, config.model ?? {});
  }
}
