/**
 * The benchmark orchestrator: `npm run bench [-- --quick]`.
 *
 * Every run starts a fresh server process and a fresh client process (pinned to cores 0 and 1
 * with `taskset` when it exists), on 127.0.0.1, and kills both by PID at the end. Within a
 * scenario the implementations alternate run by run (raw, rill, grpc-js, connect, raw, …) for
 * several rounds; the report gives each metric's median over the rounds and its ratio to the
 * raw node:http2 baseline of the same run, as a markdown table on stdout and as JSON in
 * bench/results/latest.json.
 *
 * Options: --quick, --rounds N, --duration MS, --warmup MS, --only raw,rill,…,
 * --scenarios id,… (see scenarios.ts), --cpu-prof DIR (profiles every child process),
 * --no-taskset, --out FILE.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { implNames, optionalImpls, sleep, type ImplName } from "./common.js";
import type { Event, FanoutReport, MemReport, Metrics } from "./ipc.js";
import { fullConfig, quickConfig, scenarios, type MetricSpec, type RunConfig, type Scenario } from "./scenarios.js";
import { median } from "./stats.js";

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
/** The implementations a scenario runs: optional ones only where the scenario asks for them. */
const implsOf = (s: Scenario): ImplName[] => impls.filter((i) => !optionalImpls.includes(i) || (s.extraImpls ?? []).includes(i));
const impls = implNames.filter((n) => only.includes(n));
const chosen = option("--scenarios")?.split(",");
const selected = scenarios.filter((s) => chosen === undefined || chosen.includes(s.id));
const cpuProfDir = option("--cpu-prof");
const filtered = chosen !== undefined || impls.length !== implNames.length;
const outFile = resolve(option("--out") ?? join(root, "bench", "results", filtered ? "partial.json" : "latest.json"));
const taskset = !flag("--no-taskset") && spawnSync("taskset", ["-c", "0", "true"]).status === 0;

// ---- child processes
const children = new Set<ChildProcess>();
function killAll(): void {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
  children.clear();
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });

/** A child process with request/reply over IPC. */
class Child {
  private nextId = 1;
  private readonly replies = new Map<number, (m: Record<string, unknown>) => void>();
  private readonly events: Event[] = [];
  private eventWaiter: (() => void) | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly proc: ChildProcess,
    readonly label: string,
  ) {
    children.add(proc);
    proc.on("message", (m: Record<string, unknown>) => {
      if (typeof m.id === "number") {
        const r = this.replies.get(m.id);
        this.replies.delete(m.id);
        r?.(m);
      } else {
        this.events.push(m as Event);
        this.eventWaiter?.();
      }
    });
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.once("exit", () => {
      children.delete(proc);
      this.eventWaiter?.();
    });
  }

  request<T>(message: Record<string, unknown>, timeoutMs = 30_000): Promise<T & { error?: string }> {
    const id = this.nextId++;
    return withTimeout(
      new Promise((resolve) => {
        this.replies.set(id, resolve as (m: Record<string, unknown>) => void);
        this.proc.send({ ...message, id });
      }),
      timeoutMs,
      `${this.label}: no reply to ${String(message.type)}`,
    );
  }

  /** The next event matching `pick` (failures and exits reject). */
  async event(pick: (e: Event) => boolean, timeoutMs: number): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => pick(e) || e.type === "failed");
      if (i >= 0) {
        const e = this.events.splice(i, 1)[0]!;
        if (e.type === "failed") throw new Error(`${this.label} failed: ${e.error}`);
        return e;
      }
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`${this.label} exited (${this.proc.exitCode ?? this.proc.signalCode})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: timed out waiting`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.eventWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.eventWaiter = undefined;
    }
  }

  /** Asks the child to exit (so --cpu-prof can write), then kills it by PID. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        this.proc.send({ type: "exit", id: 0 });
      } catch {
        // channel already closed
      }
      await Promise.race([this.exited, sleep(cpuProfDir === undefined ? 1000 : 10_000)]);
      if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined) process.kill(this.proc.pid, "SIGKILL");
      await this.exited;
    }
    children.delete(this.proc);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function start(script: string, args: string[], core: number, label: string, profileName: string): Child {
  const nodeArgs = ["--expose-gc"];
  if (cpuProfDir !== undefined) nodeArgs.push("--cpu-prof", "--cpu-prof-dir", resolve(cpuProfDir), "--cpu-prof-name", `${profileName}.cpuprofile`);
  const cmd = [process.execPath, ...nodeArgs, join(here, script), ...args];
  const [file, ...rest] = taskset ? ["taskset", "-c", String(core), ...cmd] : cmd;
  const proc = spawn(file!, rest, { stdio: ["ignore", "inherit", "inherit", "ipc"], cwd: root });
  return new Child(proc, label);
}

// ---- one run
async function runOne(impl: ImplName, scenario: Scenario, round: number): Promise<Metrics> {
  const tag = `${scenario.id}-${impl}-r${round}`;
  const server = start("server.js", [impl], 0, `${impl} server`, `${tag}-server`);
  let client: Child | undefined;
  try {
    const ready = await server.event((e) => e.type === "ready", 15_000);
    const port = (ready as { port: number }).port;
    client = start("client.js", [impl, String(port), scenario.id, JSON.stringify(config)], 1, `${impl} client`, `${tag}-client`);
    const budget = config.warmupMs * 2 + config.durationMs + 30_000;
    switch (scenario.id) {
      case "idle-streams":
        return await idleStreams(server, client);
      case "stalled-reader":
        return await stalledReader(server, client);
      default: {
        const e = await client.event((e) => e.type === "result", budget);
        return (e as { metrics: Metrics }).metrics;
      }
    }
  } finally {
    await Promise.all([client?.stop(), server.stop()]);
  }
}

async function idleStreams(server: Child, client: Child): Promise<Metrics> {
  const n = config.idleStreams;
  await client.event((e) => e.type === "event" && e.name === "connected", 30_000);
  const before = await server.request<MemReport>({ type: "mem", gc: true });
  const t0 = performance.now();
  await client.request({ type: "step", step: "open" });
  let mem: MemReport;
  for (;;) {
    mem = await server.request<MemReport>({ type: "mem", gc: false });
    if (mem.sinks >= n) break;
    if (performance.now() - t0 > 60_000) throw new Error(`only ${mem.sinks} of ${n} streams opened in 60 s`);
    await sleep(5);
  }
  const openMs = performance.now() - t0;
  await sleep(200); // lets the last handlers settle before the heap is read
  const after = await server.request<MemReport>({ type: "mem", gc: true });
  const fan = await server.request<FanoutReport>({ type: "fanout" });
  const done = await client.event((e) => e.type === "event" && (e.name === "fanout-done" || e.name === "fanout-timeout"), 65_000);
  const data = (done as { name: string; data: Metrics }).data;
  if ((done as { name: string }).name !== "fanout-done") throw new Error(`fan-out reached ${data.received} of ${n} streams`);
  return {
    heapPerStream: (after.heapUsed - before.heapUsed) / n,
    rssPerStream: (after.rss - before.rss) / n,
    fanoutMs: data.t1! - fan.t0,
    fanoutWriteMs: fan.writeMs,
    openMs,
  };
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

// ---- report
type Results = Record<string, Record<string, { runs: Array<Metrics | { error: string }>; median: Metrics; ratio: Metrics }>>;

function format(value: number, spec: MetricSpec): string {
  if (!Number.isFinite(value)) return "—";
  const group = (x: number, digits = 0): string => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  switch (spec.unit) {
    case "rate":
      return value >= 1e6 ? `${group(value / 1e6, 2)} M` : value >= 1e4 ? `${group(value / 1e3, 0)} k` : group(value);
    case "us":
      return `${group(value)} µs`;
    case "mbps":
      return group(value);
    case "kb":
      return `${group(value / 1000, 1)} KB`;
    case "ms":
      return `${group(value, value < 10 ? 1 : 0)} ms`;
    case "mb":
      return `${value >= 0 ? "+" : ""}${group(value)} MB`;
    case "count":
      return group(value);
  }
}

function table(results: Results): string {
  const lines = [
    `| scenario | metric | ${impls.map((i) => (i === "raw" ? "raw node:http2" : i === "connect" ? "connect-node" : i === "grpc-js" ? "@grpc/grpc-js" : i === "raw-tuned" ? "raw, 4/16 MiB windows" : "Rill")).join(" | ")} |`,
    `|---|---|${impls.map(() => "---:").join("|")}|`,
  ];
  for (const s of selected) {
    for (const spec of s.metrics.filter((x) => x.shown)) {
      const cells = impls.map((impl) => {
        const r = results[s.id]?.[impl];
        if (r === undefined) return "—";
        const v = r.median[spec.key] ?? NaN;
        const ratio = r.ratio[spec.key];
        const failed = r.runs.filter((x) => "error" in x).length;
        const note = failed > 0 ? ` (${failed} failed)` : "";
        return impl === "raw" || !spec.ratio || ratio === undefined || !Number.isFinite(ratio) ? `${format(v, spec)}${note}` : `${format(v, spec)} (${ratio.toFixed(2)}×)${note}`;
      });
      lines.push(`| ${s.title} | ${spec.label} | ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

// ---- main
const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`;
const startedAt = new Date();
console.error(
  `[bench] ${quick ? "quick" : "full"} run: ${impls.join(", ")}; ${rounds} rounds (${memoryRounds} for memory${quick ? " and bulk" : ""} scenarios), ` +
    `warm-up ${config.warmupMs} ms, measure ${config.durationMs} ms; ${taskset ? "server on core 0, client on core 1 (taskset)" : "no taskset: processes not pinned"}`,
);
const results: Results = {};
for (const s of selected) {
  const memory = s.id === "idle-streams" || s.id === "stalled-reader";
  // --quick keeps under ~2 minutes by giving the bulk-bandwidth rows (those with extra
  // implementations) one round, like the memory rows: bandwidth moves less run to run.
  const single = memory || (quick && s.extraImpls !== undefined);
  const runsOf: Record<string, Array<Metrics | { error: string }>> = {};
  for (let round = 1; round <= (single ? memoryRounds : rounds); round++) {
    for (const impl of implsOf(s)) {
      const t0 = Date.now();
      let r: Metrics | { error: string };
      try {
        r = await runOne(impl, s, round);
      } catch (e) {
        r = { error: e instanceof Error ? e.message : String(e) };
      }
      (runsOf[impl] ??= []).push(r);
      const summary =
        "error" in r
          ? `FAILED: ${r.error}`
          : s.metrics
              .filter((m) => m.shown)
              .map((m) => `${m.label} ${format(r[m.key] ?? NaN, m)}`)
              .join(", ");
      console.error(`[bench] ${s.id} round ${round} ${impl}: ${summary} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
  results[s.id] = {};
  const medians: Record<string, Metrics> = {};
  for (const impl of implsOf(s)) {
    const ok = runsOf[impl]!.filter((r): r is Metrics => !("error" in r));
    const keys = new Set(ok.flatMap((r) => Object.keys(r)));
    medians[impl] = Object.fromEntries([...keys].map((k) => [k, median(ok.map((r) => r[k] ?? NaN))]));
  }
  for (const impl of implsOf(s)) {
    const base = medians.raw;
    const ratio: Metrics = {};
    if (base !== undefined) for (const [k, v] of Object.entries(medians[impl]!)) if (base[k] !== undefined && base[k] !== 0) ratio[k] = v / base[k]!;
    results[s.id]![impl] = { runs: runsOf[impl]!, median: medians[impl]!, ratio };
  }
}
killAll();

const markdown = table(results);
const seconds = (Date.now() - startedAt.getTime()) / 1000;
console.log(`\n${markdown}\n\nMedians of ${rounds} rounds (${memoryRounds} for the memory${quick ? " and bulk-bandwidth" : ""} scenarios); (n×) = ratio to raw node:http2 in the same run. ${seconds.toFixed(0)} s.\nCommand: \`${command}\``);
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
