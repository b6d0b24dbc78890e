/**
 * The demo server behind `npm start`: every example service on one port (127.0.0.1:50051).
 * Set PORT or HOST to move it.
 */
import { createServer } from "../src/index.js";
import { createRpcMetrics } from "../src/metrics/index.js";
import { DemoStats, demoPages } from "./web/pages.js";
import { Echo } from "../gen/echo/echo_pb.js";
import { RouteGuide } from "../gen/routeguide/route_guide_pb.js";
import { echoService } from "./echo/server.js";
import { routeGuideService } from "./routeguide/server.js";
import { addVideoService } from "./video/server.js";
import { createLonglived } from "./longlived/server.js";
import { Longlived } from "../gen/longlived/longlived_pb.js";
import { createHub, PubSubService } from "../src/services/pubsub/index.js";
import { Alexandria } from "../gen/alexandria/alexandria_pb.js";
import { alexandriaService, storeFromEnv } from "./alexandria/server.js";
import { serveHealth } from "../src/services/health/index.js";
import { serveReflection } from "../src/services/reflection/index.js";
import { blobResourceName, serveByteStream } from "../src/services/bytestream/index.js";
import { TransferService, transferService } from "../src/transfer/index.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 50051);

// The demo page (examples/web) is served on the same port; its numbers come from this interceptor.
// Prometheus text at GET /metrics on the same port (rill/metrics), for scrapers and `rill top`.
const stats = new DemoStats();
const metrics = createRpcMetrics();
const server = createServer({ interceptors: [metrics.interceptor, stats.interceptor], http: (req) => metrics.httpHandler(req) ?? pages(req) });
const pages = demoPages(server, stats);
metrics.observeServer(server);
server.add(Echo, echoService());
server.add(RouteGuide, routeGuideService());
addVideoService(server);
// Pub/sub hub and the long-lived demo on it: Redis Streams when REDIS_URL is set, else in memory.
const hub = createHub();
metrics.observeHub(hub);
const longlived = createLonglived(hub);
server.add(PubSubService, hub.service);
server.add(Longlived, longlived.service);
// Alexandria's library: on Redis and disk when ALEXANDRIA_REDIS_URL is set, else in memory.
const library = await storeFromEnv();
server.add(Alexandria, alexandriaService({ store: library }));
// A heartbeat of events for the page's live feed: DEMO_TICK_MS apart (0 turns it off).
const tickMs = Number(process.env.DEMO_TICK_MS ?? 1000);
const boot = Math.random().toString(36).slice(2, 8);
let tick = 0;
const ticker =
  tickMs > 0
    ? setInterval(() => {
        const at = new Date().toISOString();
        hub.publish("demo.ticks", new TextEncoder().encode(JSON.stringify({ tick: ++tick, at, server: boot }))).catch(() => {});
      }, tickMs)
    : undefined;
// google.bytestream over a throwaway content-addressed directory (never inside the repository),
// seeded with two blobs so a remote-cache client or `rill call` can read one at once.
const casDir = mkdtempSync(join(tmpdir(), "rill-demo-cas-"));
const bytestream = serveByteStream(server, { dir: casDir });
const seeded = [
  await bytestream.blobs.put(new TextEncoder().encode("Hello from Rill's ByteStream demo.\n")),
  await bytestream.blobs.put(new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff)),
];
// Rill's own TransferService (ranged, parallel, per-chunk CRC32C) over another throwaway
// directory, seeded with one payload to download.
const transferDir = mkdtempSync(join(tmpdir(), "rill-demo-transfer-"));
writeFileSync(join(transferDir, "sample.bin"), new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) & 0xff));
server.add(TransferService, transferService({ dir: transferDir }));
// Reflection and health describe every service on the server, so they come last.
serveReflection(server);
serveHealth(server);

let addr: { host: string; port: number };
try {
  addr = await server.listen({ host, port });
} catch (e) {
  const code = (e as NodeJS.ErrnoException).code;
  console.error(
    code === "EADDRINUSE"
      ? `Port ${port} on ${host} is already in use. Stop the other server, or run with PORT=50052 npm start.`
      : `Cannot listen on ${host}:${port}: ${(e as Error).message}`,
  );
  process.exit(1);
}
const target = `${addr.host}:${addr.port}`;
console.log(`Rill demo server listening on ${target}`);
console.log(`Services:`);
for (const s of server.services) console.log(`  ${s.typeName}: ${s.methods.map((m) => m.name).join(", ")}`);
console.log(`
Open http://${target}/ in a browser: the live feed, the video catalogue and the server's numbers.
Metrics for Prometheus: http://${target}/metrics (or watch them: rill top ${target}).
Try it:
  node dist/examples/echo/client.js --target ${target}
  node dist/examples/routeguide/client.js --target ${target}
  npm run demo:clients -- --target ${target}      (10 long-lived subscribers, 2 s apart)
  node dist/examples/alexandria/client.js --target ${target} --agent alice lend FILE bob
  rill list ${target}        (or: node dist/src/cli/rill.js list ${target})
ByteStream (REAPI remote-cache names) over ${casDir}, seeded with:
${seeded.map((d) => `  ${blobResourceName(d)}   (${d.size} bytes)`).join("\n")}
  rill call ${target} google.bytestream.ByteStream/Read -d '{"resource_name":"${blobResourceName(seeded[0]!)}"}'
  write with uploads/{uuid}/blobs/{sha256}/{size}; QueryWriteStatus resumes an interrupted upload
TransferService over ${transferDir} (payload "sample.bin", 4 MiB):
  rill call ${target} rill.transfer.v1.TransferService/GetStatus -d '{"transfer_id":"sample.bin"}'
Press Ctrl+C to stop.`);

const stop = () => {
  console.log("Shutting down (in-flight calls get 5 s to finish)...");
  // Subscriptions never end by themselves: end them now (UNAVAILABLE) so clients resubscribe
  // elsewhere instead of holding the grace period.
  longlived.stop();
  if (ticker !== undefined) clearInterval(ticker);
  hub.drain();
  void server
    .shutdown({ graceMs: 5000 })
    .then(() => library.close())
    .then(() => {
      rmSync(casDir, { recursive: true, force: true });
      rmSync(transferDir, { recursive: true, force: true });
      process.exit(0);
    });
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
