/**
 * The IOMMU models by name, as data only (no model code), so the app's machine selector can list
 * them without pulling the models into its first-paint bundle. engine/hw/index.ts binds each name
 * to its factory.
 */
export const MODEL_CATALOG = [
  { name: "vtd", label: "Intel VT-d" },
] as const;

export type ModelName = (typeof MODEL_CATALOG)[number]["name"];
