/**
 * How long an implementation takes to reach its steady cost per call: `node
 * dist/bench/warmup-curve.js IMPL [IMPL…] [--seconds N] [--in-flight N] [--out FILE] [--cpu-prof
 * DIR [--cpu-prof-interval µs]] [--alloc]`. For each implementation, a fresh bench server
 * (`server.js`, pinned to core 0 like the bench's) and a client process of its own (pinned to
 * core 1) keeping N unary calls of 64 B in flight (100 by default, the `unary-100` row) for N
 * seconds (10); each second prints the calls made in it and the CPU time per call of the server
 * and of the client. The bench measures after a fixed warm-up (1 s; `--observed` runs 5 s, see
 * run.ts): this shows whether that is enough for each implementation. Clients do not share a
 * process: instrumentation-grpc must be registered before @grpc/grpc-js loads.
 *
 * With `--cpu-prof DIR` the server is profiled for its whole life and the client over the last
 * half of the curve, and the end prints the server profile's window for that half and its calls,
 * for `profile-summary.js --from --to --per`. With `--alloc`, what each process allocated per
 * call over that half, by code area and Rill function (alloc-sampler.ts).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { payloadOf, type ImplName } from "./common.js";
import { AllocSampler, type AllocReport } from "./alloc-sampler.js";
import { loadImpl } from "./impl/index.js";
import type { CpuReport } from "./ipc.js";
import { hasTaskset, startChild, type Child } from "./processes.js";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const text = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const valued = new Set(["--seconds", "--in-flight", "--out", "--cpu-prof", "--cpu-prof-interval"]);
const outFile = text("--out");
const cpuProfDir = text("--cpu-prof");
/** µs between samples: V8's default (1,000) sees a 30 µs call only now and then. */
const cpuProfIntervalUs = option("--cpu-prof-interval", 200);
const alloc = argv.includes("--alloc");
const seconds = option("--seconds", 10);
const inFlight = option("--in-flight", 100);
const impls = argv.filter((a, i) => !a.startsWith("--") && !(i > 0 && valued.has(argv[i - 1]!))) as ImplName[];
if (impls.length === 0 || !(seconds >= 2)) {
  console.error("usage: node dist/bench/warmup-curve.js IMPL [IMPL…] [--seconds N] [--in-flight N] [--out FILE] [--cpu-prof DIR [--cpu-prof-interval µs]] [--alloc] (at least 2 seconds)");
  process.exit(2);
}
/** Set in the process that runs one implementation's client (started by the one named on the command line). */
const child = process.env.RILL_WARMUP_CHILD === "1";

export interface WarmupSecond {
  second: number;
  calls: number;
  serverCpuUsPerCall: number;
  clientCpuUsPerCall: number;
  /** When the second ended, in seconds of the server process (≈ of its CPU profile). */
  serverAtS: number;
}

async function curve(impl: ImplName): Promise<WarmupSecond[]> {
  const server: Child = startChild("server.js", [impl], 0, `${impl} server`, `warmup-${impl}-server`, {
    taskset: hasTaskset(),
    cpuProfDir,
    nodeArgs: cpuProfDir === undefined ? [] : ["--cpu-prof-interval", String(cpuProfIntervalUs)],
  });
  try {
    const { port } = (await server.event((e) => e.type === "ready", 15_000)) as unknown as { port: number };
    const client = await (await loadImpl(impl)).connectClient(port);
    const data = payloadOf(64).data;
    let calls = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        await client.unary(data);
        calls++;
      }
    };
    const workers = Array.from({ length: inFlight }, worker);
    const serverCpu = (): Promise<CpuReport> => server.request<CpuReport>({ type: "cpu" });
    const rows: WarmupSecond[] = [];
    const profiler = cpuProfDir === undefined ? undefined : new Session();
    const halfAt = Math.floor(seconds / 2);
    const allocSampler = alloc ? new AllocSampler() : undefined;
    let c0 = calls;
    let own0 = process.cpuUsage();
    let s0 = (await serverCpu()).cpuUs;
    for (let s = 1; s <= seconds; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      const c1 = calls;
      const own1 = process.cpuUsage();
      const { cpuUs: s1, at } = await serverCpu();
      const n = Math.max(1, c1 - c0);
      const row: WarmupSecond = {
        second: s,
        calls: c1 - c0,
        serverCpuUsPerCall: (s1 - s0) / n,
        clientCpuUsPerCall: (own1.user + own1.system - own0.user - own0.system) / n,
        serverAtS: at / 1000,
      };
      rows.push(row);
      console.log(`${impl} t=${s}s: ${row.calls} calls, server ${row.serverCpuUsPerCall.toFixed(1)} µs/call, client ${row.clientCpuUsPerCall.toFixed(1)} µs/call`);
      c0 = c1;
      own0 = own1;
      s0 = s1;
      if (allocSampler !== undefined && s === halfAt) {
        await Promise.all([allocSampler.start(), server.request({ type: "alloc", action: "start" })]);
      }
      if (profiler !== undefined && s === halfAt) {
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.setSamplingInterval", { interval: cpuProfIntervalUs });
        await profiler.post("Profiler.start");
      }
    }
    if (profiler !== undefined) {
      const { profile } = await profiler.post("Profiler.stop");
      profiler.disconnect();
      mkdirSync(cpuProfDir!, { recursive: true });
      writeFileSync(join(cpuProfDir!, `warmup-${impl}-client.cpuprofile`), JSON.stringify(profile));
    }
    const allocs =
      allocSampler === undefined ? undefined : await Promise.all([server.request<AllocReport>({ type: "alloc", action: "stop" }), allocSampler.stop()]);
    stop = true;
    await Promise.allSettled(workers);
    client.close();
    // The profiles and samples cover the seconds after `halfAt`.
    const lastHalf = rows.slice(halfAt);
    const callsIn = lastHalf.reduce((sum, r) => sum + r.calls, 0);
    if (cpuProfDir !== undefined) {
      const from = rows[halfAt - 1]!.serverAtS;
      const to = rows.at(-1)!.serverAtS;
      console.log(
        `${impl}: profiles in ${cpuProfDir}; the last ${lastHalf.length} s are --from ${from.toFixed(2)} --to ${to.toFixed(2)} of the server's, all of the client's, --per ${callsIn}`,
      );
    }
    if (allocs !== undefined) (["server", "client"] as const).forEach((side, i) => printAllocs(impl, side, allocs[i]!, callsIn));
    return rows;
  } finally {
    await server.stop();
  }
}

/** Bytes allocated per call over the last half, by area (the top 12) and Rill's functions (the top 8). */
function printAllocs(impl: string, side: string, report: AllocReport, calls: number): void {
  const perCall = (m: Record<string, number>, n: number): string =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, bytes]) => `  ${String(Math.round(bytes / calls)).padStart(6)} B  ${k}`)
      .join("\n");
  const total = Object.values(report.areas).reduce((a, b) => a + b, 0);
  console.log(`${impl} ${side}: ${Math.round(total / calls)} B allocated per call (sampled, ${calls} calls)\n${perCall(report.areas, 12)}\n  Rill's functions:\n${perCall(report.rillFunctions, 8)}`);
}

if (child) {
  const rows = await curve(impls[0]!);
  if (outFile !== undefined) writeFileSync(outFile, JSON.stringify(rows));
} else {
  const results: Record<string, WarmupSecond[]> = {};
  const dir = mkdtempSync(join(tmpdir(), "rill-warmup-"));
  try {
    for (const impl of impls) {
      const rowsFile = join(dir, `${impl}.json`);
      const rest = argv.filter((a, i) => !impls.includes(a as ImplName) && a !== "--out" && !(i > 0 && argv[i - 1] === "--out"));
      const cmd = [process.execPath, ...process.execArgv, process.argv[1]!, impl, ...rest, "--out", rowsFile];
      // Pinned to core 1, the server to core 0 (processes.ts), as in the bench.
      const [file, ...args] = hasTaskset() ? ["taskset", "-c", "1", ...cmd] : cmd;
      const run = spawnSync(file!, args, { stdio: "inherit", env: { ...process.env, RILL_WARMUP_CHILD: "1" } });
      if (run.status !== 0) throw new Error(`the ${impl} run failed (exit ${run.status ?? run.signal})`);
      results[impl] = JSON.parse(readFileSync(rowsFile, "utf8")) as WarmupSecond[];
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (outFile !== undefined) writeFileSync(outFile, JSON.stringify({ node: process.version, date: new Date().toISOString(), inFlight, results }, null, 2) + "\n");
}
