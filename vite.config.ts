/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  worker: { format: "es" },
  test: {
    environment: "node",
    include: ["tests/**/*.test.ts"],
    // The machine has two cores; the engine tests are CPU-bound.
    pool: "forks",
    maxWorkers: 2,
  },
});
