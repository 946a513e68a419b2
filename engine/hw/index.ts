/** The IOMMU models a machine can have, by name (the CLI's --machine, the app's selector). */
import type { ModelFactory } from "../machine.ts";
import type { ModelName } from "./catalog.ts";
import { createVtd } from "./vtd/index.ts";

export const MODELS: Record<ModelName, ModelFactory> & Record<string, ModelFactory | undefined> = {
  vtd: createVtd,
};
