/**
 * The VT-d model: `createVtd` builds the hardware unit (hw.ts) and the Intel IOMMU driver
 * (driver.ts) that programs it, the way a machine with one DRHD boots Linux with
 * intel_iommu=on,sm_on.
 *
 * Knobs (MachineConfig.model), all optional:
 *   iotlbSets, iotlbWays  IOTLB geometry (default 16 × 4)
 *   pwcEntries            entries per paging-structure-cache level (default 16; 0 disables)
 *   faultRecords          fault recording registers, CAP.NFR + 1 (default 8, 1..256)
 *   iotlbHitNs, memReadNs, qiDescNs   latencies in simulated ns (defaults 10, 90, 500)
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
  faultRecords: { min: 1, max: 256, what: "fault recording registers (CAP.NFR + 1)" },
  iotlbHitNs: { min: 0, max: 1e9, what: "IOTLB hit latency (ns)" },
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
    if (typeof v !== "number" || !Number.isInteger(v) || v < spec.min || v > spec.max) {
      throw new Error(`createVtd: knob ${k} (${spec.what}) must be an integer in [${spec.min}, ${spec.max}], got ${JSON.stringify(v)}`);
    }
    (cfg as unknown as Record<string, number>)[k] = v;
  }
  return cfg;
}

export const createVtd: ModelFactory = (ctx, devices, knobs) => {
  const hw = new VtdHw(ctx, vtdConfigFromKnobs(knobs));
  const ops = new IntelIommu(ctx, hw, devices);
  const model: VtdModel = { kind: "vtd", ops, hw };
  return model;
};

/** createVtd with its concrete type, for tests and views. */
export function createVtdModel(...args: Parameters<ModelFactory>): VtdModel {
  return createVtd(...args) as VtdModel;
}
