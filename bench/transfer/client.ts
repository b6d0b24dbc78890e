/**
 * The transfer benchmark's client child process:
 * `node dist/bench/transfer/client.js <impl> <port> <size> <warmup> <alone|ping>`.
 *
 * One connection: open the ping-pong stream (its first round trip also warms the connection), a
 * warm-up download of `warmup` bytes (not measured), then the measured download of `size` bytes,
 * timed from the call to the verified last chunk — alone, or with the 64 B ping-pong looping on
 * the same connection until it ends. Reports the metrics as its `result` event.
 */
import { sleep, type ImplName } from "../common.js";
import { send, type Metrics, type Request } from "../ipc.js";
import { Samples } from "../stats.js";
import { PING_BYTES } from "./common.js";
import { transferImpl } from "./index.js";

process.on("message", (m: Request) => {
  if (m.type === "exit") process.exit(0);
});
process.on("disconnect", () => process.exit(0));

async function run(impl: ImplName, port: number, size: number, warmup: number, withPing: boolean): Promise<Metrics> {
  const client = await transferImpl(impl).connect(port);
  const pp = client.bidi();
  const ping = new Uint8Array(PING_BYTES).fill(0x70);
  await pp.roundTrip(ping);
  if (warmup > 0) await client.download(warmup);
  const samples = new Samples();
  let transferring = true;
  const t0 = performance.now();
  const download = client.download(size).finally(() => (transferring = false));
  const pinger = withPing
    ? (async () => {
        while (transferring) {
          const t = performance.now();
          await pp.roundTrip(ping);
          samples.add(performance.now() - t);
        }
      })()
    : Promise.resolve();
  await download;
  const ms = performance.now() - t0;
  await pinger;
  await pp.close();
  client.close();
  const metrics: Metrics = { bytes: size, ms, mbps: size / 1e6 / (ms / 1000) };
  if (withPing) {
    metrics.pings = samples.count;
    metrics.p50Us = samples.quantileUs(0.5);
    metrics.p99Us = samples.quantileUs(0.99);
    metrics.maxUs = samples.quantileUs(1);
  }
  return metrics;
}

const [, , impl, port, size, warmup, mode] = process.argv;
try {
  send({ type: "result", metrics: await run(impl as ImplName, Number(port), Number(size), Number(warmup ?? 0), mode === "ping") });
} catch (e) {
  send({ type: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  await sleep(100);
  throw e;
}
