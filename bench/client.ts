/**
 * The client child process: `node dist/bench/client.js <impl> <port> <scenario> <config-json>`.
 * Runs one scenario over one connection and reports its metrics to the orchestrator; the
 * memory scenarios wait for the orchestrator's steps between phases.
 */
import { IDLE, UNLIMITED, encodeStreamSpec, payloadOf, sleep, wallNow, type BenchClient, type ImplName } from "./common.js";
import { loadImpl } from "./impl/index.js";
import { send, type Metrics, type Request } from "./ipc.js";
import type { RunConfig } from "./scenarios.js";
import { Samples } from "./stats.js";

const [, , implName, portArg, scenario, configJson] = process.argv;
const config = JSON.parse(configJson!) as RunConfig;
const port = Number(portArg);

const steps = new Map<string, (m: Request & { type: "step" }) => Promise<Metrics | undefined>>();
process.on("message", (m: Request) => {
  if (m.type === "exit") {
    send({ id: m.id });
    setImmediate(() => process.exit(0));
  } else if (m.type === "step") {
    const handler = steps.get(m.step);
    if (handler === undefined) send({ id: m.id, error: `no step ${m.step}` });
    else
      handler(m).then(
        (data) => send({ id: m.id, ...data }),
        (e: unknown) => send({ id: m.id, error: String(e) }),
      );
  }
});
process.on("disconnect", () => process.exit(0));

const data64 = payloadOf(64).data;

async function unary(c: BenchClient, inFlight: number): Promise<Metrics> {
  const samples = new Samples();
  const start = performance.now();
  const measureFrom = start + config.warmupMs;
  const end = measureFrom + config.durationMs;
  let lastDone = measureFrom;
  const worker = async (): Promise<void> => {
    for (;;) {
      const t = performance.now();
      if (t >= end) return;
      await c.unary(data64);
      const t2 = performance.now();
      if (t >= measureFrom) {
        samples.add(t2 - t);
        lastDone = t2;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { rate: (samples.count / (lastDone - measureFrom)) * 1000, p50: samples.quantileUs(0.5), p99: samples.quantileUs(0.99), calls: samples.count };
}

/** Reads an unlimited server stream of `size`-byte messages; returns messages/s and bytes/s. */
async function serverStream(c: BenchClient, size: number): Promise<Metrics> {
  let n = 0;
  const r = c.serverStream(encodeStreamSpec(UNLIMITED, size), () => n++);
  await sleep(config.warmupMs);
  const n0 = n;
  const t0 = performance.now();
  await sleep(config.durationMs);
  const n1 = n;
  const t1 = performance.now();
  r.cancel();
  await Promise.race([r.done, sleep(2000)]);
  const rate = ((n1 - n0) / (t1 - t0)) * 1000;
  return { rate, mbps: (rate * size) / 1e6, messages: n1 - n0 };
}

async function clientStream(c: BenchClient): Promise<Metrics> {
  const timed = (until: number): (() => boolean) => {
    let i = 0;
    let go = true;
    return () => {
      if ((++i & 63) === 0) go = performance.now() < until;
      return go;
    };
  };
  await c.clientStream(payloadOf(64), timed(performance.now() + config.warmupMs));
  const t0 = performance.now();
  const n = await c.clientStream(payloadOf(64), timed(t0 + config.durationMs));
  const t1 = performance.now();
  return { rate: (n / (t1 - t0)) * 1000, messages: n };
}

/** One client stream of `size`-byte messages; the server's count × size ÷ time to its response. */
async function clientStreamBytes(c: BenchClient, size: number): Promise<Metrics> {
  const timed = (until: number): (() => boolean) => () => performance.now() < until;
  await c.clientStream(payloadOf(size), timed(performance.now() + config.warmupMs));
  const t0 = performance.now();
  const n = await c.clientStream(payloadOf(size), timed(t0 + config.durationMs));
  const t1 = performance.now();
  const rate = (n / (t1 - t0)) * 1000;
  return { rate, mbps: (rate * size) / 1e6, messages: n };
}

async function bidi(c: BenchClient): Promise<Metrics> {
  const pp = c.bidi();
  const samples = new Samples();
  const start = performance.now();
  const measureFrom = start + config.warmupMs;
  const end = measureFrom + config.durationMs;
  let lastDone = measureFrom;
  for (;;) {
    const t = performance.now();
    if (t >= end) break;
    await pp.roundTrip(data64);
    const t2 = performance.now();
    if (t >= measureFrom) {
      samples.add(t2 - t);
      lastDone = t2;
    }
  }
  await pp.close();
  return { rate: (samples.count / (lastDone - measureFrom)) * 1000, p50: samples.quantileUs(0.5), p99: samples.quantileUs(0.99) };
}

/** Warms both ends up (JIT, lazily built state) so the memory baselines include it. */
async function warm(c: BenchClient): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await c.unary(data64);
    await c.serverStream(encodeStreamSpec(2, 64), () => {}).done;
  }
}

/** Opens the idle streams on step "open"; reports "fanout-done" when each got its message. */
async function idleStreams(c: BenchClient): Promise<void> {
  await warm(c);
  const n = config.idleStreams;
  const readings: unknown[] = [];
  steps.set("open", async () => {
    let received = 0;
    const spec = encodeStreamSpec(IDLE, 0);
    const onMessage = (): void => {
      if (++received === n) send({ type: "event", name: "fanout-done", data: { t1: wallNow(), received } });
    };
    for (let i = 0; i < n; i++) readings.push(c.serverStream(spec, onMessage));
    setTimeout(() => send({ type: "event", name: "fanout-timeout", data: { received } }), 60_000).unref();
    return {};
  });
  send({ type: "event", name: "connected" });
}

async function stalledReader(c: BenchClient): Promise<void> {
  await warm(c);
  steps.set("stall", async () => {
    await c.stall(encodeStreamSpec(config.stallMessages, config.stallMessageBytes));
    return {};
  });
  send({ type: "event", name: "connected" });
}

try {
  const impl = await loadImpl(implName as ImplName);
  const c = await impl.connectClient(port);
  let metrics: Metrics | undefined;
  switch (scenario) {
    case "unary-100":
      metrics = await unary(c, 100);
      break;
    case "unary-1":
      metrics = await unary(c, 1);
      break;
    case "server-stream-64":
      metrics = await serverStream(c, 64);
      break;
    case "client-stream-64":
      metrics = await clientStream(c);
      break;
    case "bidi-pingpong":
      metrics = await bidi(c);
      break;
    case "server-stream-1mib":
      metrics = await serverStream(c, 1024 * 1024);
      break;
    case "server-stream-64kib":
      metrics = await serverStream(c, 64 * 1024);
      break;
    case "client-stream-1mib":
      metrics = await clientStreamBytes(c, 1024 * 1024);
      break;
    case "client-stream-64kib":
      metrics = await clientStreamBytes(c, 64 * 1024);
      break;
    case "idle-streams":
      await idleStreams(c);
      break;
    case "stalled-reader":
      await stalledReader(c);
      break;
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  if (metrics !== undefined) send({ type: "result", metrics });
  if (process.send === undefined && metrics !== undefined) process.exit(0); // started by hand
} catch (e) {
  send({ type: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
