// Bootstrap of the CLI's engine thread: worker threads do not inherit the --import tsx loader,
// so register it here, then load the TypeScript entry (engine/cli-worker.ts).
import { register } from "tsx/esm/api";

register();
await import(new URL("./cli-worker.ts", import.meta.url).href);
