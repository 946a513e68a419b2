/**
 * The VT-d model: `createVtd` builds the hardware unit (hw.ts) and the Intel IOMMU driver
 * (driver.ts) that programs it, the way a machine with one DRHD boots Linux with
 * intel_iommu=on,sm_on.
 *
 * Knobs (MachineConfig.model), all optional:
 *   iotlbSets, iotlbWays  IOTLB geometry (default 16 × 4)
 *   pwcEntries            entries per paging-structure-cache level (default 16; 0 disables)
 *   fsPwcEntries          entries per first-stage (nested) PWC level (default 16; 0 disables)
 *   staleDetector         the stale-translation detector, true (default) or false (stale.ts)
 *   faultRecords          fault recording registers, CAP.NFR + 1 (default 8, 1..256)
 *   iotlbHitNs, memReadNs, qiDescNs   latencies in simulated ns (defaults 10, 90, 500)
 *   prqOrder              the driver's page request queue: 2^prqOrder pages of 128 descriptors
 *                         (default 4, Linux's PRQ_ORDER: 2048; 0 gives a 128-entry ring that a
 *                         script can overflow)
 * A knob that is unknown or out of range throws: a machine configuration error, not a guest error.
 */
import type { ModelFactory } from "../../machine.ts";
import type { IommuModel } from "../model.ts";
import { IntelIommu } from "./driver.ts";
import { VtdHw, VTD_HW_DEFAULTS, type VtdHwConfig } from "./hw.ts";

export { IntelIommu, DmarDomain } from "./driver.ts";
export { VtdHw, VTD_HW_DEFAULTS, type VtdHwConfig, type VtdStats } from "./hw.ts";
export { VTD_FR, vtdFaultReasonName } from "./fault.ts";

/** The VT-d model as a machine holds it, with the concrete halves exposed for tests and views. */
export interface VtdModel extends IommuModel {
  readonly kind: "vtd";
  readonly ops: IntelIommu;
  readonly hw: VtdHw;
}

const KNOBS: Record<string, { min: number; max: number; what: string }> = {
  iotlbSets: { min: 1, max: 4096, what: "IOTLB sets" },
  iotlbWays: { min: 1, max: 64, what: "IOTLB ways" },
  pwcEntries: { min: 0, max: 1024, what: "paging-structure-cache entries per level" },
  fsPwcEntries: { min: 0, max: 1024, what: "first-stage (nested) paging-structure-cache entries per level" },
  faultRecords: { min: 1, max: 256, what: "fault recording registers (CAP.NFR + 1)" },
  iotlbHitNs: { min: 0, max: 1e9, what: "IOTLB hit latency (ns)" },
  staleDetector: { min: 0, max: 1, what: "the stale-translation detector (true / false)" },
  memReadNs: { min: 0, max: 1e9, what: "memory reference latency (ns)" },
  qiDescNs: { min: 0, max: 1e9, what: "invalidation descriptor latency (ns)" },
};

/** Validate the factory's knobs into a hardware configuration. */
export function vtdConfigFromKnobs(knobs: Record<string, unknown>): VtdHwConfig {
  const cfg: VtdHwConfig = { ...VTD_HW_DEFAULTS };
  for (const [k, v] of Object.entries(knobs)) {
    const spec = KNOBS[k];
    if (!spec) throw new Error(`createVtd: unknown knob "${k}" (known: ${Object.keys(KNOBS).join(", ")})`);
    if (v === undefined) continue;
    if (k === "staleDetector") {
      if (typeof v !== "boolean") throw new Error(`createVtd: knob staleDetector must be true or false, got ${JSON.stringify(v)}`);
      cfg.staleDetector = v;
      continue;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < spec.min || v > spec.max) {
      throw new Error(`createVtd: knob ${k} (${spec.what}) must be an integer in [${spec.min}, ${spec.max}], got ${JSON.stringify(v)}`);
    }
    (cfg as unknown as Record<string, number>)[k] = v;
  }
  return cfg;
}

export const createVtd: ModelFactory = (ctx, devices, knobs) => {
  // prqOrder configures the driver (Linux's compile-time PRQ_ORDER), not the hardware unit
  const { prqOrder, ...hwKnobs } = knobs;
  if (prqOrder !== undefined && (typeof prqOrder !== "number" || !Number.isInteger(prqOrder) || prqOrder < 0 || prqOrder > 4)) {
    throw new Error(`createVtd: knob prqOrder (page request queue pages, log2) must be an integer in [0, 4], got ${JSON.stringify(prqOrder)}`);
  }
  const hw = new VtdHw(ctx, vtdConfigFromKnobs(hwKnobs));
  const ops = new IntelIommu(ctx, hw, devices, { prqOrder: prqOrder as number | undefined });
  const model: VtdModel = { kind: "vtd", ops, hw };
  return model;
};

/** createVtd with its concrete type, for tests and views. */
export function createVtdModel(...args: Parameters<ModelFactory>): VtdModel {
  return createVtd(...args) as VtdModel;
}
