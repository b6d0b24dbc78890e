/**
 * A quick look at what rill/otel's tracing and rill/metrics cost on unary calls, as interceptors
 * and as observers (issue 17; `npm run bench -- --observed` is the real bench). One process, one
 * server and one channel per mode on 127.0.0.1, the same Echo call, each mode on both sides:
 *
 *   plain        nothing (the plain call path)
 *   identity     an interceptor that does nothing, `(next) => next`: the cost of the interceptor path itself
 *   otel-noop    the tracing interceptor, no SDK registered (the API's no-op tracer)
 *   otel-sdk     the tracing interceptor with the SDK recording every span (BatchSpanProcessor,
 *                an exporter that drops the spans, W3C propagation, AsyncLocalStorage context)
 *   otel-sdk-0ev the same with `maxMessageEvents: 0` (no message events, so no message re-encoded for its size)
 *   metrics-int  rill/metrics' interceptor
 *   both-int     metrics + tracing (SDK) interceptors: the bench's rill-observed before observers
 *   obs-noop, obs-sdk, obs-sdk-0ev, metrics-obs, both-obs: the same as observers
 *
 * Before the modes, the **SDK floor**: what the same SDK costs for one call's two spans with no
 * RPC at all (a client span and a server span with the attributes rill/otel sets at start, W3C
 * headers injected and extracted, a message event each, both ended): no tracing of a call can
 * cost less than that, whatever the RPC stack, so it bounds the overhead any implementation can
 * reach with a recording SDK.
 *
 * Modes alternate round by round; calls/s per round and the process' CPU time per call (client
 * and server together: steadier than calls/s on a busy machine), medians reported, sequential
 * calls and 32 in flight.
 *
 *   node scripts/prepare.mjs && node dist/bench/otel-overhead.js [--calls 5000] [--rounds 7] [--modes obs-sdk,both-obs]
 */
import { parseArgs } from "node:util";
import { context, SpanKind, trace, type Context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AlwaysOffSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Echo } from "../gen/echo/echo_pb.js";
import { createChannel, createClient, createServer, silentLogger, type CallObserver, type Interceptor } from "../src/index.js";
import { createRpcMetrics } from "../src/metrics/index.js";
import { createTracingInterceptor, createTracingObserver } from "../src/otel/index.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "5000" }, rounds: { type: "string", default: "7" }, modes: { type: "string" } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const dropAll: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const sdk = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });
/** The same SDK sampling nothing: every span is a non-recording one (what 9 calls in 10 cost at a 10 % ratio). */
const sdkOff = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)], sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) });

type Mode = { interceptors?: Interceptor[]; observers?: CallObserver[] };
const withSdk = { tracerProvider: sdk, propagator: new W3CTraceContextPropagator() };
const withSdkOff = { tracerProvider: sdkOff, propagator: new W3CTraceContextPropagator() };
/** `--modes a,b`: only these (and plain, the baseline). */
const only = values.modes?.split(",");
const allModes: Record<string, () => Mode> = {
  plain: () => ({}),
  identity: () => ({ interceptors: [(next) => next] }),
  "otel-noop": () => ({ interceptors: [createTracingInterceptor()] }),
  "otel-sdk": () => ({ interceptors: [createTracingInterceptor(withSdk)] }),
  "otel-sdk-0ev": () => ({ interceptors: [createTracingInterceptor({ ...withSdk, maxMessageEvents: 0 })] }),
  "metrics-int": () => ({ interceptors: [createRpcMetrics().interceptor] }),
  "both-int": () => ({ interceptors: [createRpcMetrics().interceptor, createTracingInterceptor(withSdk)] }),
  "obs-noop": () => ({ observers: [createTracingObserver()] }),
  "obs-sdk": () => ({ observers: [createTracingObserver(withSdk)] }),
  "obs-sdk-0ev": () => ({ observers: [createTracingObserver({ ...withSdk, maxMessageEvents: 0 })] }),
  "obs-sdk-off": () => ({ observers: [createTracingObserver(withSdkOff)] }),
  "metrics-obs": () => ({ observers: [createRpcMetrics().observer] }),
  "both-obs": () => ({ observers: [createTracingObserver(withSdk), createRpcMetrics().observer] }),
};
const modes = Object.entries(allModes).filter(([name]) => name === "plain" || only === undefined || only.includes(name));

const setups = await Promise.all(
  modes.map(async ([name, mode]) => {
    const server = createServer({ logger: silentLogger, ...mode() });
    server.add(Echo, { unaryEcho: async (req) => ({ message: req.message }) });
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger, ...mode() });
    return { name, server, channel, client: createClient(Echo, channel) };
  }),
);

type Client = (typeof setups)[number]["client"];

/** Calls/s and CPU µs per call of one run. */
async function run(client: Client, inFlight: number): Promise<{ rate: number; cpu: number }> {
  let next = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < calls) await client.unaryEcho({ message: "hello" });
    }),
  );
  const c = process.cpuUsage(c0);
  return { rate: calls / ((performance.now() - t0) / 1000), cpu: (c.user + c.system) / calls };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU µs per "call" of the SDK alone: both sides' spans, propagation and one event each, no RPC. */
function sdkFloor(n: number, provider = sdk): number {
  const tracer = provider.getTracer("rill-bench-floor");
  const propagator = new W3CTraceContextPropagator();
  const setter = { set: (carrier: Record<string, string>, key: string, value: string) => void (carrier[key] = value) };
  const getter = { get: (carrier: Record<string, string>, key: string) => carrier[key], keys: (carrier: Record<string, string>) => Object.keys(carrier) };
  const attributes = (kind: string) => ({
    "rpc.system.name": "grpc",
    "rpc.method": "echo.Echo/UnaryEcho",
    "server.address": "127.0.0.1",
    "server.port": 50051,
    "network.peer.address": "127.0.0.1",
    "rill.side": kind,
  });
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const client = tracer.startSpan("echo.Echo/UnaryEcho", { kind: SpanKind.CLIENT, attributes: attributes("client") });
    const headers: Record<string, string> = {};
    propagator.inject(trace.setSpan(context.active(), client), headers, setter);
    const parent: Context = propagator.extract(context.active(), headers, getter);
    const server = tracer.startSpan("echo.Echo/UnaryEcho", { kind: SpanKind.SERVER, attributes: attributes("server") }, parent);
    context.with(trace.setSpan(parent, server), () => server.addEvent("message", { "rpc.message.type": "RECEIVED", "rpc.message.id": 1 }));
    client.addEvent("message", { "rpc.message.type": "SENT", "rpc.message.id": 1 });
    server.setAttribute("rpc.response.status_code", "OK");
    server.end();
    client.setAttribute("rpc.response.status_code", "OK");
    client.end();
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}


{
  sdkFloor(calls); // warm-up
  const floors = Array.from({ length: rounds }, () => sdkFloor(calls));
  console.log(`\nSDK floor (both sides' spans of one call, no RPC): ${median(floors).toFixed(1)} µs CPU per call [${Math.min(...floors).toFixed(1)}–${Math.max(...floors).toFixed(1)}]`);
  sdkFloor(calls, sdkOff);
  const off = Array.from({ length: rounds }, () => sdkFloor(calls, sdkOff));
  console.log(`SDK floor, sampled out (the same, every span non-recording): ${median(off).toFixed(1)} µs CPU per call [${Math.min(...off).toFixed(1)}–${Math.max(...off).toFixed(1)}]`);
}

for (const inFlight of [1, 32]) {
  const results = new Map<string, Array<{ rate: number; cpu: number }>>(setups.map((s) => [s.name, []]));
  for (const s of setups) await run(s.client, inFlight); // warm-up
  for (let r = 0; r < rounds; r++) for (const s of setups) results.get(s.name)!.push(await run(s.client, inFlight));
  const rates = (name: string) => results.get(name)!.map((x) => x.rate);
  const cpus = (name: string) => results.get(name)!.map((x) => x.cpu);
  const base = median(rates("plain"));
  const baseCpu = median(cpus("plain"));
  console.log(`\nunary, ${inFlight} in flight, ${calls} calls × ${rounds} rounds (medians: calls/s, ratio to plain [min–max]; CPU µs per call, ratio to plain [min–max]):`);
  for (const [name] of results) {
    const r = rates(name);
    const c = cpus(name);
    console.log(
      `  ${name.padEnd(12)} ${median(r).toFixed(0).padStart(7)}  ${(median(r) / base).toFixed(3)} [${(Math.min(...r) / base).toFixed(2)}–${(Math.max(...r) / base).toFixed(2)}]` +
        `   ${median(c).toFixed(0).padStart(5)} µs  ${(median(c) / baseCpu).toFixed(3)} [${(Math.min(...c) / baseCpu).toFixed(2)}–${(Math.max(...c) / baseCpu).toFixed(2)}]`,
    );
  }
}

for (const s of setups) {
  s.channel.close();
  await s.server.shutdown({ graceMs: 1000 });
}
await sdk.shutdown();
