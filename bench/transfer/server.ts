/**
 * The transfer benchmark's server child process: `node dist/bench/transfer/server.js <impl>`.
 * Serves Download and Bidi on 127.0.0.1 (ephemeral port), reports `ready` with the port, and
 * exits when the orchestrator asks or goes away.
 */
import { sleep, type ImplName } from "../common.js";
import { send, type Request } from "../ipc.js";
import { transferImpl } from "./index.js";

process.on("message", (m: Request) => {
  if (m.type === "exit") process.exit(0);
});
process.on("disconnect", () => process.exit(0));

try {
  const impl = transferImpl(process.argv[2] as ImplName);
  send({ type: "ready", port: await impl.serve() });
} catch (e) {
  send({ type: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  await sleep(100);
  throw e;
}
