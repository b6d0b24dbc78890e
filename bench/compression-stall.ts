/**
 * What compressing large messages costs the event loop: ten 4 MiB gzip unary echoes (client and
 * server in this process), with zlib's thread pool (Rill's path above 64 KiB) and, with `sync`,
 * with the synchronous calls it replaced. Prints the wall time and the event-loop delay
 * (max, p99, p50). Run: `node dist/bench/compression-stall.js [sync]`.
 */
import { randomBytes } from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Echo } from "../gen/echo/echo_pb.js";
import { gzip, type Compression } from "../src/codec/compression.js";
import { createChannel, createClient, createServer } from "../src/index.js";

const mode = process.argv[2] === "sync" ? "sync" : "async";
if (mode === "sync") {
  delete (gzip as { -readonly [K in keyof Compression]: Compression[K] }).compressAsync;
  delete (gzip as { -readonly [K in keyof Compression]: Compression[K] }).decompressAsync;
}
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const server = createServer({ compression: "gzip", logger: quiet });
server.add(Echo, { unaryEcho: (r) => ({ message: r.message }) });
const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
const channel = createChannel(`127.0.0.1:${port}`, { compression: "gzip" });
const echo = createClient(Echo, channel);
// Hex of random bytes: half-compressible, just under the default 4 MiB message limit.
const message = randomBytes(2 * 1024 * 1024 - 64).toString("hex");
await echo.unaryEcho({ message: "warm-up" });
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const t0 = performance.now();
for (let i = 0; i < 10; i++) await echo.unaryEcho({ message });
const ms = performance.now() - t0;
delay.disable();
const f = (ns: number) => (ns / 1e6).toFixed(1);
console.log(`${mode}: 10 x 4 MiB gzip unary echoes in ${ms.toFixed(0)} ms; event-loop delay max ${f(delay.max)} ms, p99 ${f(delay.percentile(99))} ms, p50 ${f(delay.percentile(50))} ms`);
channel.close();
await server.shutdown();
