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
import { setTimeout as sleep } from "node:timers/promises";
import { Code, RpcError, createChannel, createClient, subscribe, silentLogger } from "../../src/index.js";
import { subscriptionStartKey } from "../../src/services/pubsub/index.js";
import { Longlived } from "../../gen/longlived/longlived_pb.js";
import { commonExampleHelp, exampleArgs, fail } from "../example-cli.js";

const usage = `usage: node dist/examples/longlived/clients.js [--target HOST:PORT] [--count N] [--every-ms MS] [--seconds S]

Starts N long-lived subscribers of the Longlived service, MS apart; each resumes after the last
event it saw when the server comes back. Ctrl+C (or --seconds) unsubscribes them all.
  --count N            subscribers (default 10)
  --every-ms MS        pause between starting two (default 2000)
  --seconds S          stop after S seconds (default 0: until Ctrl+C)
${commonExampleHelp}`;

const { values, target } = exampleArgs(usage, { count: { type: "string", default: "10" }, "every-ms": { type: "string", default: "2000" }, seconds: { type: "string", default: "0" } });
const whole = (name: string): number => {
  const text = String(values[name]);
  if (!/^\d+$/.test(text)) fail(`--${name} takes a whole number, not "${text}"`, 2);
  return Number(text);
};
const count = whole("count");
const everyMs = whole("every-ms");
const seconds = whole("seconds");

const channel = createChannel(target, { logger: silentLogger });
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
