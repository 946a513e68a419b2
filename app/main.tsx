/**
 * The playground's entry. Until the editor and views land (issue 3), this page says what the
 * project is and how to drive the engine from the command line.
 */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

function Placeholder() {
  return (
    <main style={{ font: "16px/1.5 system-ui, sans-serif", maxWidth: "44rem", margin: "3rem auto", padding: "0 1rem" }}>
      <h1>iommu-playground</h1>
      <p>
        Write iommufd uAPI call scripts and watch a simulated Intel VT-d IOMMU walk its page tables, fill and hit
        its IOTLB, and record faults.
      </p>
      <p>
        The engine is ready; the editor and the live views come next. Meanwhile, run a script from the command line:
      </p>
      <pre style={{ background: "#0f172a", color: "#e2e8f0", padding: "1rem", borderRadius: 6, overflowX: "auto" }}>
        npm run --silent cli -- run ../shared/contract/smoke.js
      </pre>
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Placeholder />
  </StrictMode>,
);
