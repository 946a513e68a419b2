/**
 * The right-hand side: the views (walk, IOTLB, objects, address space, page requests, faults) as tabs above the log and
 * the timeline. Loaded lazily by App.tsx, with d3 and the views' code.
 */
import { useState } from "react";
import { Split } from "./Split.tsx";
import { AddrSpaceView, FaultsView, IotlbView, LogView, ObjectsView, PrqView, TimelineView, WalkView } from "../views/index.ts";

const TABS = [
  { id: "walk", label: "Walk", View: WalkView },
  { id: "iotlb", label: "IOTLB & caches", View: IotlbView },
  { id: "objects", label: "Objects", View: ObjectsView },
  { id: "addrspace", label: "Address space", View: AddrSpaceView },
  { id: "prq", label: "Page requests", View: PrqView },
  { id: "faults", label: "Faults", View: FaultsView },
] as const;

function Views() {
  const [tab, setTab] = useState<(typeof TABS)[number]["id"]>("walk");
  const onKey = (e: React.KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.id === tab);
    if (e.key === "ArrowRight") setTab(TABS[(i + 1) % TABS.length].id);
    else if (e.key === "ArrowLeft") setTab(TABS[(i + TABS.length - 1) % TABS.length].id);
    else return;
    e.preventDefault();
  };
  const Active = TABS.find((t) => t.id === tab)!.View;
  return (
    <section className="views" aria-label="Views">
      <div role="tablist" aria-label="Views" className="tabs" onKeyDown={onKey}>
        {TABS.map((t) => (
          <button key={t.id} role="tab" id={`tab-${t.id}`} aria-selected={tab === t.id} aria-controls={`panel-${t.id}`} tabIndex={tab === t.id ? 0 : -1} data-tab={t.id} onClick={() => setTab(t.id)}>
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="tabpanel">
        <Active />
      </div>
    </section>
  );
}

export default function Workspace() {
  return (
    <Split id="right" direction="column" initial={0.55} label="Resize views and log">
      <Views />
      <Split id="bottom" direction="column" initial={0.68} label="Resize log and timeline">
        <LogView />
        <TimelineView />
      </Split>
    </Split>
  );
}
