/**
 * The classic demo's client runner: starts `--count` clients (default 10), `--every-ms` apart
 * (default 2000), each subscribing to the Longlived service with its id and printing the data it
 * receives. Clients may start before the server: they wait (gRPC connection backoff) and
 * subscribe once it is up. When the server dies they resubscribe after the last event they
 * saw, so with a Redis-backed server nothing is lost or repeated; each line shows the client's
 * own count next to the event id.
 *
 *   npm run demo:clients -- --target 127.0.0.1:50051 [--count 10] [--every-ms 2000] [--seconds 0]
 *
 * Ctrl+C (or `--seconds`) unsubscribes every client and exits.
 */
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, RpcError, createChannel, createClient, subscribe, silentLogger } from "../../src/index.js";
import { subscriptionStartKey } from "../../src/services/pubsub/index.js";
import { Longlived } from "../../gen/longlived/longlived_pb.js";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: process.env.TARGET ?? "127.0.0.1:50051" },
    count: { type: "string", default: "10" },
    "every-ms": { type: "string", default: "2000" },
    seconds: { type: "string", default: "0" },
  },
});
const count = Number(values.count);
const everyMs = Number(values["every-ms"]);
const seconds = Number(values.seconds);

const channel = createChannel(values.target, { logger: silentLogger });
const client = createClient(Longlived, channel);
const stop = new AbortController();

async function runClient(id: number): Promise<void> {
  let received = 0;
  let after: string | undefined;
  for (;;) {
    try {
      const events = subscribe(client.subscribe, {
        makeRequest: (a) => (a === undefined ? { id } : { id, afterEventId: a }),
        idOf: (r) => r.eventId,
        after,
        signal: stop.signal,
        backoff: { initialMs: 500, maxMs: 5000 },
        positionFromHeader: (md) => {
          const v = md.get(subscriptionStartKey);
          return typeof v === "string" && v !== "" ? v : undefined;
        },
        onRetry: (e, delay, last) =>
          console.log(`client ${id}: stream broke (${e.message}); resubscribing after ${last ?? "(start)"} in ${Math.round(delay)} ms`),
      });
      for await (const r of events) {
        received++;
        after = r.eventId;
        console.log(`client ${id}: [${received}] ${r.data} (event ${r.eventId})`);
      }
      console.log(`client ${id}: unsubscribed after ${received} events`);
      return;
    } catch (e) {
      if (stop.signal.aborted) return;
      if (e instanceof RpcError && (e.code === Code.DataLoss || e.code === Code.OutOfRange)) {
        // The server's log cannot resume us (in-memory log restarted, or history trimmed): say so and start over from now.
        console.log(`client ${id}: cannot resume: ${e.message}; subscribing from now`);
        after = undefined;
        continue;
      }
      console.log(`client ${id}: failed: ${(e as Error).message}`);
      return;
    }
  }
}

const shutdown = async () => {
  if (stop.signal.aborted) return;
  console.log("unsubscribing every client...");
  await Promise.allSettled(Array.from({ length: count }, (_, i) => client.unsubscribe({ id: i + 1 }, { timeoutMs: 1000 })));
  stop.abort();
  channel.close();
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());
if (seconds > 0) setTimeout(() => void shutdown(), seconds * 1000).unref();

const running: Promise<void>[] = [];
for (let id = 1; id <= count && !stop.signal.aborted; id++) {
  console.log(`starting client ${id}`);
  running.push(runClient(id));
  if (id < count) await sleep(everyMs, undefined, { signal: stop.signal }).catch(() => {});
}
await Promise.all(running);
