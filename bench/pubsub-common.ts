/**
 * What the pub/sub benchmarks share (bench/pubsub.ts, bench/pubsub-scale.ts): the clock the
 * payloads carry, the percentile, and Rill's hub server as both serve it.
 */
import { createServer, silentLogger } from "../src/index.js";
import { createHub, PubSubService, type EventLog, type Hub } from "../src/services/pubsub/index.js";

/**
 * Epoch milliseconds with sub-millisecond resolution, comparable across processes on one
 * machine (`performance.timeOrigin` is the process's start on the wall clock).
 */
export const now = (): number => performance.timeOrigin + performance.now();

/** The p-th percentile (nearest rank, p in 0..100) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Thousands of subscriptions share a few connections: a server meant for that raises
 * maxConcurrentStreams (100 by default since the hardening; grpc-js sets no limit).
 */
export const hubMaxConcurrentStreams = 100_000;

/** Rill's hub on `log`, served on 127.0.0.1 (a free port). */
export async function serveRillHub(log: EventLog): Promise<{ hub: Hub; port: number; close(): Promise<void> }> {
  const hub = createHub({ log });
  const server = createServer({ logger: silentLogger, maxConcurrentStreams: hubMaxConcurrentStreams }).add(PubSubService, hub.service);
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return {
    hub,
    port,
    async close() {
      await hub.close();
      server.forceShutdown();
    },
  };
}
