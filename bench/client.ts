/**
 * The client child process: `node dist/bench/client.js <impl> <port> <scenario> <config-json>`.
 * Runs one scenario over one connection and reports its metrics to the orchestrator; the
 * memory scenarios wait for the orchestrator's steps between phases. The Connect rows
 * (scenarios.ts `connectJson`) use connect-node's Connect client whatever `<impl>` is: there the
 * implementation names only the server.
 */
import { IDLE, UNLIMITED, encodeStreamSpec, payloadOf, sleep, wallNow, type BenchClient, type ImplName, type UnaryClient } from "./common.js";
import { loadImpl } from "./impl/index.js";
import { send, type Metrics, type Request } from "./ipc.js";
import { scenarios, type RunConfig } from "./scenarios.js";
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

/** The longest a warm-up by call count (`unary`'s `warmCalls`) may take before measuring anyway. */
const maxWarmupMs = 20_000;

/**
 * `inFlight` workers calling in a loop until the end of the measurement, which starts
 * `config.warmupMs` after the first call. With `warmCalls` (the Connect rows) it starts instead
 * when a call ends after both that time and `warmCalls` calls (at most `maxWarmupMs` after the
 * first), tells the orchestrator (event "measuring", so it can read the server's CPU time), and
 * the result also has this process's CPU time per call (`clientCpuUs`), as a share of the wall
 * time (`clientBusy`: near 1, the client set the rate), and the warm-up's length (`warmupMs`).
 */
async function unary(c: UnaryClient, inFlight: number, warmCalls?: number): Promise<Metrics> {
  const samples = new Samples();
  const start = performance.now();
  let measureFrom = warmCalls === undefined ? start + config.warmupMs : Number.POSITIVE_INFINITY;
  let end = measureFrom + config.durationMs;
  let lastDone = measureFrom;
  let warmed = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  const begin = (t: number): void => {
    measureFrom = t;
    end = t + config.durationMs;
    lastDone = t;
    cpu0 = process.cpuUsage();
    send({ type: "event", name: "measuring" });
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      const t = performance.now();
      if (t >= end) return;
      await c.unary(data64);
      const t2 = performance.now();
      if (t >= measureFrom) {
        samples.add(t2 - t);
        lastDone = t2;
      } else if (warmCalls !== undefined && measureFrom === Number.POSITIVE_INFINITY) {
        if ((++warmed >= warmCalls && t2 - start >= config.warmupMs) || t2 - start >= maxWarmupMs) begin(t2);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const metrics: Metrics = { rate: (samples.count / (lastDone - measureFrom)) * 1000, p50: samples.quantileUs(0.5), p99: samples.quantileUs(0.99), calls: samples.count };
  if (cpu0 !== undefined) {
    const u = process.cpuUsage(cpu0);
    metrics.clientCpuUs = (u.user + u.system) / samples.count;
    metrics.clientBusy = (u.user + u.system) / 1000 / (performance.now() - measureFrom);
    metrics.warmupMs = measureFrom - start;
    metrics.warmupCalls = warmed;
  }
  return metrics;
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

/** Runs `scenario` with the implementation's own client; undefined for the step-driven ones. */
async function runScenario(c: BenchClient): Promise<Metrics | undefined> {
  switch (scenario) {
    case "unary-100":
      return unary(c, 100);
    case "unary-1":
      return unary(c, 1);
    case "server-stream-64":
      return serverStream(c, 64);
    case "client-stream-64":
      return clientStream(c);
    case "bidi-pingpong":
      return bidi(c);
    case "server-stream-1mib":
      return serverStream(c, 1024 * 1024);
    case "server-stream-64kib":
      return serverStream(c, 64 * 1024);
    case "client-stream-1mib":
      return clientStreamBytes(c, 1024 * 1024);
    case "client-stream-64kib":
      return clientStreamBytes(c, 64 * 1024);
    case "idle-streams":
      await idleStreams(c);
      return undefined;
    case "stalled-reader":
      await stalledReader(c);
      return undefined;
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

try {
  const connectJson = scenarios.find((s) => s.id === scenario)?.connectJson;
  let metrics: Metrics | undefined;
  if (connectJson !== undefined) {
    // The Connect rows: connect-node's Connect client whichever server (the implementation) it
    // calls, loaded only here so the other runs' clients import only the library they measure.
    const { connectJsonClient } = await import("./impl/connect.js");
    metrics = await unary(await connectJsonClient(port, connectJson.httpVersion), 100, connectJson.warmupCalls);
  } else {
    const impl = await loadImpl(implName as ImplName);
    metrics = await runScenario(await impl.connectClient(port));
  }
  if (metrics !== undefined) send({ type: "result", metrics });
  if (process.send === undefined && metrics !== undefined) process.exit(0); // started by hand
} catch (e) {
  send({ type: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
