/**
 * The live views. Each is a folder: model.ts (state at a cursor, derived from the trace), layout.ts
 * (state + size → positioned marks), render.ts (d3: one keyed join per mark) and the component,
 * which draws outside React on store changes (common/useViewFrame.ts). Each component's header
 * comment lists the data-* attributes it exposes for tests.
 */
export { WalkView } from "./walk/WalkView.tsx";
export { IotlbView } from "./iotlb/IotlbView.tsx";
export { ObjectsView } from "./objects/ObjectsView.tsx";
export { AddrSpaceView } from "./addrspace/AddrSpaceView.tsx";
export { PrqView } from "./prq/PrqView.tsx";
export { FaultsView } from "./faults/FaultsView.tsx";
export { LogView } from "./log/LogView.tsx";
export { TimelineView } from "./timeline/TimelineView.tsx";
/** Playback runs while the TimelineView is mounted; an app shell may start it too (one loop per store). */
export { startPlayback } from "./timeline/playback.ts";
