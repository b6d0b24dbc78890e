/**
 * The client child process: `node dist/bench/client.js <impl> <port> <scenario> <config-json>`.
 * Runs one scenario over one connection and reports its metrics to the orchestrator; the
 * memory scenarios wait for the orchestrator's steps between phases. The Connect rows
 * (scenarios.ts `connectJson`) use connect-node's Connect client whatever `<impl>` is: there the
 * implementation names only the server.
 */
import { IDLE, UNLIMITED, encodeStreamSpec, payloadOf, sleep, wallNow, warmupStreams, type BenchClient, type ImplName, type Reading, type UnaryClient } from "./common.js";
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
 * The measured stretch of a load run: tells the orchestrator when it starts ("measuring") and
 * ends ("measured"), so it can read the server's CPU time over the same stretch, and gives this
 * process's CPU time over it per operation (`clientCpuUs`, a call or a message), as a share of
 * the wall time (`clientBusy`: near 1, the client set the rate), and the operations counted
 * (`ops`, which the orchestrator divides the server's CPU time by).
 */
class Measured {
  private cpu0: NodeJS.CpuUsage | undefined;
  private t0 = 0;

  get started(): boolean {
    return this.cpu0 !== undefined;
  }

  start(): void {
    this.t0 = performance.now();
    this.cpu0 = process.cpuUsage();
    send({ type: "event", name: "measuring" });
  }

  end(ops: number): Metrics {
    const u = process.cpuUsage(this.cpu0);
    send({ type: "event", name: "measured" });
    const cpuUs = u.user + u.system;
    return { ops, clientCpuUs: cpuUs / ops, clientBusy: cpuUs / 1000 / (performance.now() - this.t0) };
  }
}

/**
 * `inFlight` workers calling in a loop until the end of the measurement, which starts
 * `config.warmupMs` after the first call. With `warmCalls` (the Connect rows) it starts instead
 * when a call ends after both that time and `warmCalls` calls (at most `maxWarmupMs` after the
 * first), and the result also has the warm-up's length (`warmupMs`, `warmupCalls`).
 */
async function unary(c: UnaryClient, inFlight: number, warmCalls?: number): Promise<Metrics> {
  const samples = new Samples();
  const measured = new Measured();
  const start = performance.now();
  let measureFrom = warmCalls === undefined ? start + config.warmupMs : Number.POSITIVE_INFINITY;
  let end = measureFrom + config.durationMs;
  let lastDone = measureFrom;
  let warmed = 0;
  const begin = (t: number): void => {
    measureFrom = t;
    end = t + config.durationMs;
    lastDone = t;
    measured.start();
  };
  const startTimer = warmCalls === undefined ? setTimeout(() => measured.start(), config.warmupMs) : undefined;
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
  clearTimeout(startTimer);
  if (!measured.started) measured.start(); // a run too short for its timer still reports
  const metrics: Metrics = {
    rate: (samples.count / (lastDone - measureFrom)) * 1000,
    p50: samples.quantileUs(0.5),
    p99: samples.quantileUs(0.99),
    calls: samples.count,
    ...measured.end(samples.count),
  };
  if (warmCalls !== undefined) {
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
  const measured = new Measured();
  measured.start();
  const n0 = n;
  const t0 = performance.now();
  await sleep(config.durationMs);
  const n1 = n;
  const t1 = performance.now();
  const cpu = measured.end(n1 - n0);
  r.cancel();
  await Promise.race([r.done, sleep(2000)]);
  const rate = ((n1 - n0) / (t1 - t0)) * 1000;
  return { rate, mbps: (rate * size) / 1e6, messages: n1 - n0, ...cpu };
}

/** One client stream of `size`-byte messages; the server's count (× size) ÷ time to its response. */
async function clientStream(c: BenchClient, size: number): Promise<Metrics> {
  // Small messages read the clock every 64th message: a clock read per message would be a
  // measurable part of what is measured.
  const every = size < 1024 ? 63 : 0;
  const timed = (until: number): (() => boolean) => {
    let i = 0;
    let go = true;
    return () => {
      if ((++i & every) === 0) go = performance.now() < until;
      return go;
    };
  };
  await c.clientStream(payloadOf(size), timed(performance.now() + config.warmupMs));
  const measured = new Measured();
  measured.start();
  const t0 = performance.now();
  const n = await c.clientStream(payloadOf(size), timed(t0 + config.durationMs));
  const t1 = performance.now();
  const rate = (n / (t1 - t0)) * 1000;
  return { rate, mbps: (rate * size) / 1e6, messages: n, ...measured.end(n) };
}

/** Round trips of one 64 B message on one bidi stream, one at a time, while `until()` says go. */
async function pingPong(c: BenchClient, samples: Samples, measureFrom: number, end: number): Promise<number> {
  const pp = c.bidi();
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
  return lastDone;
}

async function bidi(c: BenchClient): Promise<Metrics> {
  const samples = new Samples();
  const measureFrom = performance.now() + config.warmupMs;
  const measured = new Measured();
  const timer = setTimeout(() => measured.start(), config.warmupMs);
  const lastDone = await pingPong(c, samples, measureFrom, measureFrom + config.durationMs);
  clearTimeout(timer);
  if (!measured.started) measured.start();
  return {
    rate: (samples.count / (lastDone - measureFrom)) * 1000,
    p50: samples.quantileUs(0.5),
    p99: samples.quantileUs(0.99),
    ...measured.end(samples.count),
  };
}

/**
 * Ping-pong on a connection that also carries bulk data: an unlimited server stream of 64 KiB
 * messages (a file being lent, as in bench/transfer.ts) and, on the same connection, one 64 B
 * round trip at a time. What a small call waits behind bulk bytes shows in its p99.
 */
async function pingPongBesideBulk(c: BenchClient): Promise<Metrics> {
  const size = 64 * 1024;
  let n = 0;
  const bulk = c.serverStream(encodeStreamSpec(UNLIMITED, size), () => n++);
  const samples = new Samples();
  const measureFrom = performance.now() + config.warmupMs;
  let n0 = 0;
  const timer = setTimeout(() => (n0 = n), config.warmupMs);
  const lastDone = await pingPong(c, samples, measureFrom, measureFrom + config.durationMs);
  clearTimeout(timer);
  const bulkMessages = n - n0;
  bulk.cancel();
  await Promise.race([bulk.done, sleep(2000)]);
  const seconds = (lastDone - measureFrom) / 1000;
  return { p50: samples.quantileUs(0.5), p99: samples.quantileUs(0.99), rate: samples.count / seconds, mbps: (bulkMessages * size) / 1e6 / seconds };
}

/** Warms both ends up (JIT, lazily built state) so the memory baselines include it. */
async function warm(c: BenchClient): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await c.unary(data64);
    await c.serverStream(encodeStreamSpec(2, 64), () => {}).done;
  }
}

/**
 * Opens the idle streams on step "open"; reports "fanout-done" each time every one got another
 * message. Before that, steps "warm-open" and "warm-close" open and cancel a tenth as many, which
 * the orchestrator fans out to a few times (run.ts `warmFanout`), so that both processes have run
 * the fan-out's own code before it is measured, as every other scenario warms up before it measures.
 */
async function idleStreams(c: BenchClient): Promise<void> {
  await warm(c);
  const n = config.idleStreams;
  const readings: unknown[] = [];
  const warming: Reading[] = [];
  steps.set("warm-open", async () => {
    const w = warmupStreams(n);
    let received = 0;
    const spec = encodeStreamSpec(IDLE, 0);
    const onMessage = (): void => {
      if (++received % w === 0) send({ type: "event", name: "warm-fanout-done" });
    };
    for (let i = 0; i < w; i++) warming.push(c.serverStream(spec, onMessage));
    return {};
  });
  steps.set("warm-close", async () => {
    for (const r of warming) r.cancel();
    await Promise.all(warming.map((r) => r.done));
    warming.length = 0;
    return {};
  });
  // Before the fan-out the orchestrator collects both heaps (the server's as it reads its size):
  // streams opened long before a fan-out are old objects by then, not the young ones of a
  // process that has been quiet since it opened them.
  steps.set("collect", async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) for (let i = 0; i < 2; i++) gc();
    return {};
  });
  steps.set("open", async () => {
    let received = 0;
    const spec = encodeStreamSpec(IDLE, 0);
    const onMessage = (): void => {
      // Every n messages: each fan-out sends one to every stream.
      if (++received % n === 0) send({ type: "event", name: "fanout-done", data: { t1: wallNow(), received } });
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
      return clientStream(c, 64);
    case "bidi-pingpong":
      return bidi(c);
    case "pingpong-beside-bulk":
      return pingPongBesideBulk(c);
    case "server-stream-1mib":
      return serverStream(c, 1024 * 1024);
    case "server-stream-64kib":
      return serverStream(c, 64 * 1024);
    case "client-stream-1mib":
      return clientStream(c, 1024 * 1024);
    case "client-stream-64kib":
      return clientStream(c, 64 * 1024);
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
