/**
 * The benchmark orchestrator: `npm run bench [-- --quick]`.
 *
 * Every run starts a fresh server process and a fresh client process (pinned to cores 0 and 1
 * with `taskset` when it exists), on 127.0.0.1, and kills both by PID at the end. Within a
 * scenario the implementations alternate run by run (raw, rill, grpc-js, connect, raw, …) for
 * several rounds; the report gives each metric's median over the rounds and its ratio to the
 * raw node:http2 baseline of the same run (the Connect rows: Rill's server and connect-node's
 * with one client, ratios to connect-node), as a markdown table on stdout and as JSON in
 * bench/results/latest.json. The process handling is processes.ts, the medians, ratios and
 * table report.ts (shared with transfer.ts).
 *
 * Options: --quick, --rounds N, --duration MS, --warmup MS, --only raw,rill,…,
 * --scenarios id,… (see scenarios.ts), --cpu-prof DIR (profiles every child process),
 * --no-taskset, --out FILE, --observed (adds the observed implementations beside the ones they
 * observe, and warms every run of the run up for 5 s unless --warmup says otherwise).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { implNames, optionalImpls, sleep, warmupStreams, type ImplName } from "./common.js";
import type { CpuReport, FanoutReport, MemReport, Metrics } from "./ipc.js";
import { hasTaskset, killAll, runPair, type Child, type SpawnOptions } from "./processes.js";
import { measure, summarize, table, type Results, type RunResult } from "./report.js";
import { fullConfig, quickConfig, scenarios, type RunConfig, type Scenario } from "./scenarios.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

// ---- options
const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag("--quick");
const config: RunConfig = { ...(quick ? quickConfig : fullConfig) };
if (option("--duration") !== undefined) config.durationMs = Number(option("--duration"));
if (option("--warmup") !== undefined) config.warmupMs = Number(option("--warmup"));
const rounds = Number(option("--rounds") ?? (quick ? 2 : 5));
/** The memory scenarios are slower and steadier: fewer rounds. */
const memoryRounds = Math.max(1, quick ? Math.min(rounds, 1) : Math.min(rounds, 3));
const only = (option("--only")?.split(",") ?? [...implNames]) as ImplName[];
const observed = flag("--observed");
/**
 * An observed process (OpenTelemetry SDK, tracing and metrics) reaches its steady cost per call
 * only 4–5 s in, plain ones after 1–2 s (`npm run bench:warmup -- rill rill-observed
 * grpc-js-observed`): measured after 1 s, its ratio would be mostly warm-up. A service runs for
 * hours, so an observed run warms every implementation up for as long, the plain ones too.
 */
const observedWarmupMs = 5000;
if (observed && option("--warmup") === undefined) config.warmupMs = Math.max(config.warmupMs, observedWarmupMs);
/** Which implementation each `--observed` one runs beside: it runs wherever that one does. */
const observedBeside: Partial<Record<ImplName, ImplName>> = { "rill-observed": "rill", "grpc-js-observed": "grpc-js", "raw-ctx": "raw" };
/** The implementations a scenario runs: its own list if it has one, optional ones only where it asks for them. */
const implsOf = (s: Scenario): ImplName[] =>
  impls.filter((i) => {
    const beside = observedBeside[i];
    if (observed && beside !== undefined) return s.impls === undefined || s.impls.includes(beside);
    return s.impls === undefined ? !optionalImpls.includes(i) || (s.extraImpls ?? []).includes(i) : s.impls.includes(i);
  });
const impls = implNames.filter((n) => only.includes(n));
const chosen = option("--scenarios")?.split(",");
const selected = scenarios.filter((s) => chosen === undefined || chosen.includes(s.id));
const cpuProfDir = option("--cpu-prof");
const filtered = chosen !== undefined || impls.length !== implNames.length;
const outFile = resolve(option("--out") ?? join(root, "bench", "results", filtered ? "partial.json" : "latest.json"));
const taskset = !flag("--no-taskset") && hasTaskset();
const spawnOptions: SpawnOptions = { taskset, cpuProfDir, nodeArgs: ["--expose-gc"] };

// ---- one run
/**
 * The memory scenarios, driven step by step; the ping-pong beside bulk data ends with the
 * client's result; every other load run is CPU-timed (the server's CPU time over the client's
 * measured stretch).
 */
const drivers: Record<string, (server: Child, client: Child) => Promise<Metrics>> = { "idle-streams": idleStreams, "stalled-reader": stalledReader };
for (const s of scenarios) if (s.cpuPer !== undefined) drivers[s.id] = cpuTimed;

function runOne(impl: ImplName, scenario: Scenario, round: number): Promise<Metrics> {
  return runPair(
    {
      label: impl,
      tag: `${scenario.id}-${impl}-r${round}`,
      server: { script: "server.js", args: scenario.connectJson?.httpVersion === "1.1" ? [impl, "http1"] : [impl] },
      client: (port) => ({ script: "client.js", args: [impl, String(port), scenario.id, JSON.stringify(config)] }),
      resultTimeoutMs: config.warmupMs * 2 + config.durationMs + 30_000,
      drive: drivers[scenario.id],
    },
    spawnOptions,
  );
}

/** Waits until the server holds `wanted` idle streams (its fan-out sinks). */
async function sinksReach(server: Child, wanted: (sinks: number) => boolean, what: string): Promise<MemReport> {
  const t0 = performance.now();
  for (;;) {
    const mem = await server.request<MemReport>({ type: "mem", gc: false });
    if (wanted(mem.sinks)) return mem;
    if (performance.now() - t0 > 60_000) throw new Error(`${what}: the server holds ${mem.sinks} streams after 60 s`);
    await sleep(5);
  }
}

/**
 * The fan-out's warm-up: a tenth as many idle streams, fanned out to three times, then cancelled.
 * Every other scenario measures after a warm-up of the very thing it measures; without this, the
 * fan-out was also the first time either process ran its code (V8 compiling it as it went):
 * Rill's first fan-out took 1.65× as long as the same fan-out again, raw's 1.33× (203 vs 123,
 * 134 vs 101 ms).
 */
async function warmFanout(server: Child, client: Child): Promise<void> {
  const w = warmupStreams(config.idleStreams);
  await client.request({ type: "step", step: "warm-open" });
  await sinksReach(server, (sinks) => sinks >= w, "fan-out warm-up");
  for (let i = 0; i < 3; i++) {
    await server.request<FanoutReport>({ type: "fanout" });
    await client.event((e) => e.type === "event" && e.name === "warm-fanout-done", 30_000);
  }
  await client.request({ type: "step", step: "warm-close" });
  await sinksReach(server, (sinks) => sinks === 0, "fan-out warm-up's end");
}

async function idleStreams(server: Child, client: Child): Promise<Metrics> {
  const n = config.idleStreams;
  await client.event((e) => e.type === "event" && e.name === "connected", 30_000);
  await warmFanout(server, client);
  const before = await server.request<MemReport>({ type: "mem", gc: true });
  const t0 = performance.now();
  await client.request({ type: "step", step: "open" });
  await sinksReach(server, (sinks) => sinks >= n, `opening ${n} streams`);
  const openMs = performance.now() - t0;
  await sleep(200); // lets the last handlers settle before the heap is read
  const after = await server.request<MemReport>({ type: "mem", gc: true });
  await client.request({ type: "step", step: "collect" });
  const fan = await server.request<FanoutReport>({ type: "fanout" });
  const done = await client.event((e) => e.type === "event" && (e.name === "fanout-done" || e.name === "fanout-timeout"), 65_000);
  const data = (done as { name: string; data: Metrics }).data;
  if ((done as { name: string }).name !== "fanout-done") throw new Error(`fan-out reached ${data.received} of ${n} streams`);
  // Each stream has now sent a message and stays open: what a live subscription holds once its
  // write path has been used (the first measurement is streams that never sent anything).
  await sleep(200);
  const sent = await server.request<MemReport>({ type: "mem", gc: true });
  const again = await server.request<FanoutReport>({ type: "fanout" });
  const doneAgain = await client.event((e) => e.type === "event" && (e.name === "fanout-done" || e.name === "fanout-timeout"), 65_000);
  const dataAgain = (doneAgain as { name: string; data: Metrics }).data;
  if ((doneAgain as { name: string }).name !== "fanout-done") throw new Error(`the second fan-out reached ${dataAgain.received! - n} of ${n} streams`);
  return {
    heapPerStream: (after.heapUsed - before.heapUsed) / n,
    heapPerSentStream: (sent.heapUsed - before.heapUsed) / n,
    rssPerStream: (after.rss - before.rss) / n,
    fanoutMs: data.t1! - fan.t0,
    fanoutWriteMs: fan.writeMs,
    fanoutAgainMs: dataAgain.t1! - again.t0,
    openMs,
  };
}

/**
 * A load run that also reads the server's CPU time over the client's measured stretch (its
 * "measuring" and "measured" events), per operation the client counted (`ops`: calls or
 * messages), and as a share of that wall time ("server busy": near 1, the server set the rate;
 * well below, the client or the machine did). The IPC round trips add well under a millisecond
 * to seconds.
 */
async function cpuTimed(server: Child, client: Child): Promise<Metrics> {
  await client.event((e) => e.type === "event" && e.name === "measuring", config.warmupMs + 30_000);
  const c0 = await server.request<CpuReport>({ type: "cpu" });
  await client.event((e) => e.type === "event" && e.name === "measured", config.durationMs + 30_000);
  const c1 = await server.request<CpuReport>({ type: "cpu" });
  const e = await client.event((e) => e.type === "result", 30_000);
  const m = (e as { metrics: Metrics }).metrics;
  const cpuUs = c1.cpuUs - c0.cpuUs;
  return { ...m, serverCpuUs: cpuUs / m.ops!, serverBusy: cpuUs / 1000 / (c1.at - c0.at) };
}

async function stalledReader(server: Child, client: Child): Promise<Metrics> {
  await client.event((e) => e.type === "event" && e.name === "connected", 30_000);
  const before = await server.request<MemReport>({ type: "mem", gc: true });
  const r = await client.request<{ error?: string }>({ type: "step", step: "stall" });
  if (r.error !== undefined) throw new Error(r.error);
  await sleep(config.stallMs);
  const after = await server.request<MemReport>({ type: "mem", gc: true });
  const MB = 1e6;
  return {
    rssGrowth: (after.rss - before.rss) / MB,
    heapGrowth: (after.heapUsed - before.heapUsed) / MB,
    externalGrowth: (after.external - before.external) / MB,
    producedMB: ((after.produced - before.produced) * config.stallMessageBytes) / MB,
  };
}

// ---- main
const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`;
const startedAt = new Date();
const loadAtStart = loadavg();
console.error(
  `[bench] ${quick ? "quick" : "full"} run: ${impls.join(", ")}; ${rounds} rounds (${memoryRounds} for memory${quick ? " and bulk" : ""} scenarios), ` +
    `warm-up ${config.warmupMs} ms, measure ${config.durationMs} ms; ${taskset ? "server on core 0, client on core 1 (taskset)" : "no taskset: processes not pinned"}`,
);
const results: Results = {};
for (const s of selected) {
  const memory = s.id === "idle-streams" || s.id === "stalled-reader";
  // --quick keeps under ~2 minutes by giving the bulk-bandwidth rows (those raw-tuned runs in)
  // one round, like the memory rows: bandwidth moves less run to run.
  const single = memory || (quick && (s.extraImpls ?? []).includes("raw-tuned"));
  const runsOf: Record<string, RunResult[]> = {};
  for (let round = 1; round <= (single ? memoryRounds : rounds); round++) {
    for (const impl of implsOf(s)) (runsOf[impl] ??= []).push(await measure("bench", s, round, impl, () => runOne(impl, s, round)));
  }
  results[s.id] = summarize(runsOf, s.baseline);
}
killAll();

const markdown = table(results, selected, impls);
const seconds = (Date.now() - startedAt.getTime()) / 1000;
const otherBaselines = selected.some((s) => s.baseline !== undefined && s.baseline !== "raw");
console.log(
  `\n${markdown}\n\nMedians of ${rounds} rounds (${memoryRounds} for the memory${quick ? " and bulk-bandwidth" : ""} scenarios); (n×) = ratio to raw node:http2 in the same run` +
    `${otherBaselines ? " (to the implementation the metric names where it names one; [a–b] = range over the rounds)" : ""}. ${seconds.toFixed(0)} s.\nCommand: \`${command}\``,
);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  JSON.stringify(
    {
      command,
      startedAt: startedAt.toISOString(),
      seconds,
      node: process.version,
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      // Other work on the machine moves every figure: the README's provenance line quotes these.
      loadAverage: { start: loadAtStart, end: loadavg() },
      taskset,
      rounds,
      memoryRounds,
      config,
      implementations: impls,
      table: markdown,
      results,
    },
    null,
    2,
  ) + "\n",
);
console.error(`[bench] wrote ${outFile}`);
