import { describe, it, expect } from "vitest";
import { vtdMachine } from "./helpers.ts";
import { CAP, ECAP, fieldGet, DMAR_FSTS_REG, DMAR_GSTS_REG, DMAR_FRCD_REG_OFFSET } from "../../../../engine/hw/vtd/regs.ts";

describe("capability registers describe the simulated unit", () => {
  it("CAP", () => {
    const { hw } = vtdMachine({ faultRecords: 4 });
    const cap = hw.readReg64(0x08);
    expect(fieldGet(cap, CAP.ND)).toBe(6); // 16-bit DIDs
    expect(fieldGet(cap, CAP.CM)).toBe(0);
    expect(fieldGet(cap, CAP.SAGAW)).toBe(0b00100); // 4-level only
    expect(fieldGet(cap, CAP.MGAW) + 1).toBe(48);
    expect(fieldGet(cap, CAP.SLLPS)).toBe(0b0011); // 2M and 1G
    expect(fieldGet(cap, CAP.PSI)).toBe(1);
    expect(fieldGet(cap, CAP.NFR) + 1).toBe(4);
    expect(fieldGet(cap, CAP.FRO) * 16).toBe(DMAR_FRCD_REG_OFFSET);
  });

  it("ECAP", () => {
    const { hw } = vtdMachine();
    const e = hw.readReg64(0x10);
    for (const f of ["QI", "DT", "PT", "SC", "NEST", "PRS", "PASID", "SMTS", "SLADS", "SLTS", "FLTS", "SMPWC"] as const) {
      expect([f, fieldGet(e, ECAP[f])]).toEqual([f, 1]);
    }
    expect(fieldGet(e, ECAP.PSS)).toBe(19);
    expect(fieldGet(e, ECAP.IR)).toBe(0);
  });

  it("after boot: translation, root pointer and queued invalidation are on", () => {
    const { hw } = vtdMachine();
    expect(hw.readReg32(DMAR_GSTS_REG) >>> 0).toBe(((1 << 31) | (1 << 30) | (1 << 26)) >>> 0);
    expect(hw.readReg32(0x18)).toBe(0); // GCMD reads as 0 (write-only command bits)
    expect(hw.readReg32(DMAR_FSTS_REG)).toBe(0);
  });

  it("read-only registers ignore writes", () => {
    const { hw } = vtdMachine();
    const cap = hw.readReg64(0x08);
    hw.writeReg64(0x08, 0n);
    expect(hw.readReg64(0x08)).toBe(cap);
  });
});
