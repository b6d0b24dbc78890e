/**
 * A quick look at what rill/otel's tracing interceptor costs on unary calls (issue 17; the real
 * bench, with processes pinned to cores and ratios to raw, is still to come). One process, one
 * server and one channel per mode on 127.0.0.1, the same Echo call:
 *
 *   plain        no interceptors (the plain call path)
 *   identity     an interceptor that does nothing, `(next) => next`: the cost of the interceptor path itself
 *   otel-noop    the tracing interceptor on both sides, no SDK registered (the API's no-op tracer)
 *   otel-sdk     the tracing interceptor with the SDK recording every span (BatchSpanProcessor,
 *                an exporter that drops the spans, W3C propagation, AsyncLocalStorage context)
 *   otel-sdk-0ev the same with `maxMessageEvents: 0` (no message events, so no message re-encoded for its size)
 *
 * Modes alternate round by round; calls/s per round, the median reported, sequential calls and
 * 32 in flight.
 *
 *   node scripts/prepare.mjs && node dist/bench/otel-overhead.js [--calls 5000] [--rounds 7]
 */
import { parseArgs } from "node:util";
import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Echo } from "../gen/echo/echo_pb.js";
import { createChannel, createClient, createServer, silentLogger, type Interceptor } from "../src/index.js";
import { createTracingInterceptor } from "../src/otel/index.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "5000" }, rounds: { type: "string", default: "7" } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const dropAll: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const sdk = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });

const modes: Record<string, Interceptor[]> = {
  plain: [],
  identity: [(next) => next],
  "otel-noop": [createTracingInterceptor()],
  "otel-sdk": [createTracingInterceptor({ tracerProvider: sdk, propagator: new W3CTraceContextPropagator() })],
  "otel-sdk-0ev": [createTracingInterceptor({ tracerProvider: sdk, propagator: new W3CTraceContextPropagator(), maxMessageEvents: 0 })],
};

const setups = await Promise.all(
  Object.entries(modes).map(async ([name, interceptors]) => {
    const server = createServer({ logger: silentLogger, interceptors });
    server.add(Echo, { unaryEcho: async (req) => ({ message: req.message }) });
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger, interceptors });
    return { name, server, channel, client: createClient(Echo, channel) };
  }),
);

type Client = (typeof setups)[number]["client"];

async function run(client: Client, inFlight: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < calls) await client.unaryEcho({ message: "hello" });
    }),
  );
  return calls / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const inFlight of [1, 32]) {
  const results = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  for (const s of setups) await run(s.client, inFlight); // warm-up
  for (let r = 0; r < rounds; r++) for (const s of setups) results.get(s.name)!.push(await run(s.client, inFlight));
  const base = median(results.get("plain")!);
  console.log(`\nunary, ${inFlight} in flight, ${calls} calls × ${rounds} rounds (median calls/s, ratio to plain):`);
  for (const [name, xs] of results) console.log(`  ${name.padEnd(12)} ${median(xs).toFixed(0).padStart(7)}  ${(median(xs) / base).toFixed(3)}`);
}

for (const s of setups) {
  s.channel.close();
  await s.server.shutdown({ graceMs: 1000 });
}
await sdk.shutdown();
