/**
 * The server child process: `node --expose-gc dist/bench/server.js <impl> [http1]`. Starts the
 * implementation's server on 127.0.0.1 (ephemeral port), reports the port, then answers the
 * orchestrator: memory (after GC), CPU time, fan-out of one 64 B message to every idle stream,
 * what it allocates between two requests (alloc-sampler.ts), exit. `http1`: the implementation's HTTP/1.1 server where that is a separate one (connect-node).
 */
import { AllocSampler } from "./alloc-sampler.js";
import { payloadOf, wallNow, type ImplName, type ServerHooks } from "./common.js";
import { loadImpl } from "./impl/index.js";
import { send, type CpuReport, type FanoutReport, type MemReport, type Request } from "./ipc.js";

const name = process.argv[2] as ImplName;
const hooks: ServerHooks = { sinks: new Set(), produced: 0 };
const impl = await loadImpl(name);
const server = await impl.startServer(hooks, { http1: process.argv[3] === "http1" });

const allocSampler = new AllocSampler();

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  for (let i = 0; i < 3; i++) gc();
}

process.on("message", (m: Request) => {
  switch (m.type) {
    case "mem": {
      if (m.gc) collect();
      const u = process.memoryUsage();
      const report: MemReport = {
        rss: u.rss,
        heapUsed: u.heapUsed,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
        produced: hooks.produced,
        sinks: hooks.sinks.size,
      };
      send({ id: m.id, ...report });
      return;
    }
    case "cpu": {
      const u = process.cpuUsage();
      const report: CpuReport = { cpuUs: u.user + u.system, at: performance.now() };
      send({ id: m.id, ...report });
      return;
    }
    case "fanout": {
      const data = payloadOf(64).data;
      const t0 = wallNow();
      for (const s of hooks.sinks) s.send(data);
      const report: FanoutReport = { t0, writeMs: wallNow() - t0, sinks: hooks.sinks.size };
      send({ id: m.id, ...report });
      return;
    }
    case "alloc":
      if (m.action === "start") {
        void allocSampler.start().then(() => send({ id: m.id }));
      } else {
        void allocSampler.stop().then((report) => send({ id: m.id, ...report }));
      }
      return;
    case "exit":
      server.close();
      send({ id: m.id });
      // Leaves time for the reply; --cpu-prof writes its profile on exit.
      setImmediate(() => process.exit(0));
      return;
    default:
      send({ id: m.id });
  }
});
process.on("disconnect", () => process.exit(0));
// Started by hand (no IPC): runs until SIGINT/SIGTERM, e.g. to pair one implementation's server
// with another's client; exiting normally lets --cpu-prof write its profile.
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
send({ type: "ready", port: server.port });
