/**
 * Large unary messages against grpcio (issues #19/#20): one 100 MiB request with an 8 B response
 * (upload) and one 8 B request with a 100 MiB response (download), on
 * `grpc.testing.TestService/UnaryCall` of a Python grpcio (C-core) server, from three clients in
 * the same run: grpcio's own Python client (the baseline), Rill's and @grpc/grpc-js.
 *
 *   npm run bench:large-unary                        # 100 MiB, 3 rounds of 3 calls per run
 *   npm run bench:large-unary -- --quick             # 1 round
 *   npm run bench:large-unary -- --mib 32 --rounds 5 --only grpcio,rill
 *
 * Method as in run.ts and transfer.ts: per run a fresh server process (`taskset -c 0`) and a
 * fresh client process (`taskset -c 1`) on 127.0.0.1, both killed by PID at the end; the clients
 * take turns run by run; each run makes one warm-up call and then `--calls` timed calls one after
 * another on one connection (large-unary/client.py and large-unary/client.ts, the same
 * contract), and reports their median. The table shows the median over the rounds with the
 * range in brackets and the ratio to grpcio's client (above 1× is slower); every call of every
 * run is in bench/results/large-unary.json. The server answers with a pre-built body, so its
 * cost is the same for every client. Needs `npm run setup-peers` (grpcio from Debian).
 *
 * Options: --quick, --mib N, --rounds N, --calls N, --only grpcio,rill,grpc-js, --no-taskset,
 * --out FILE, --cpu-prof DIR (profiles the Node clients: `<direction>-<client>-r<round>.cpuprofile`),
 * --server rill (Rill's server, large-unary/server.ts, instead of grpcio's: here grpcio's
 * Python server is the limit at ~40–60 MB/s for every client, which hides the clients' costs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sleep } from "./common.js";
import type { Metrics } from "./ipc.js";
import { hasTaskset } from "./processes.js";
import { measure, summarize, table, type Results, type RunResult } from "./report.js";
import { metric, type Scenario } from "./scenarios.js";
import { median } from "./stats.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const python = "/usr/bin/python3";
const clients = ["grpcio", "rill", "grpc-js"] as const;
type ClientName = (typeof clients)[number];

const { values: v } = parseArgs({
  options: {
    quick: { type: "boolean" },
    mib: { type: "string" },
    rounds: { type: "string" },
    calls: { type: "string" },
    only: { type: "string" },
    "no-taskset": { type: "boolean" },
    "cpu-prof": { type: "string" },
    out: { type: "string" },
    server: { type: "string" },
  },
});
const only = v.only === undefined ? [...clients] : clients.filter((c) => v.only!.split(",").includes(c));
const o = {
  bytes: Number(v.mib ?? 100) * 1024 * 1024,
  rounds: Number(v.rounds ?? (v.quick === true ? 1 : 3)),
  calls: Number(v.calls ?? 3),
  only,
  taskset: v["no-taskset"] !== true && hasTaskset(),
  cpuProf: v["cpu-prof"] === undefined ? undefined : resolve(v["cpu-prof"]),
  server: v.server ?? "grpcio",
  out: v.out ?? join(root, "bench", "results", v.server === undefined || v.server === "grpcio" ? "large-unary.json" : `large-unary-${v.server}.json`),
};
if (o.server !== "grpcio" && o.server !== "rill") throw new Error("--server must be grpcio or rill");
for (const [k, n] of [["--mib", o.bytes], ["--rounds", o.rounds], ["--calls", o.calls]] as const)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${k} must be a positive integer`);
if (!only.includes("grpcio")) throw new Error("--only must include grpcio: it is the baseline");
if (o.cpuProf !== undefined) mkdirSync(o.cpuProf, { recursive: true });

const mib = (o.bytes / 1024 ** 2).toLocaleString("en-US");
const rowMetrics = [metric("ms", "ms per call", "ms", false), metric("mbps", "MB/s", "mbps", true)];
const upload: Scenario = { id: "upload", title: `${mib} MiB request, 8 B response`, metrics: rowMetrics, baseline: "grpcio", spread: true };
const download: Scenario = { id: "download", title: `8 B request, ${mib} MiB response`, metrics: rowMetrics, baseline: "grpcio", spread: true };

const running = new Set<ChildProcess>();
function killRunning(): void {
  for (const c of running) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, "SIGKILL");
}
process.on("exit", killRunning);
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => {
    killRunning();
    process.exit(130);
  });

/** Starts `cmd` on `core` (when pinning) and resolves with the first stdout line that parses as JSON with `type`. */
function start(cmd: string[], core: number, what: string, timeoutMs: number): { proc: ChildProcess; message: Promise<Record<string, unknown>> } {
  const [file, ...args] = o.taskset ? ["taskset", "-c", String(core), ...cmd] : cmd;
  const proc = spawn(file!, args, { stdio: ["ignore", "pipe", "inherit"], cwd: root });
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
  const message = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
    proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
      buffered += s;
      for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (line.startsWith("{")) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal})`));
    });
  });
  return { proc, message };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  if (proc.pid !== undefined) process.kill(proc.pid, "SIGKILL");
  await exited;
}

function clientCommand(client: ClientName, port: number, direction: string, tag: string): string[] {
  const args = [String(port), direction, String(o.bytes), String(o.calls), "1"];
  if (client === "grpcio") return [python, join(root, "bench", "large-unary", "client.py"), ...args];
  const prof = o.cpuProf === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", o.cpuProf, "--cpu-prof-name", `${tag}.cpuprofile`];
  return [process.execPath, ...prof, join(here, "large-unary", "client.js"), client, ...args];
}

async function runOne(client: ClientName, s: Scenario, round: number): Promise<Metrics> {
  const serverCmd = o.server === "rill" ? [process.execPath, join(here, "large-unary", "server.js")] : [python, join(root, "bench", "large-unary", "server.py")];
  const server = start(serverCmd, 0, `${o.server} server`, 15_000);
  try {
    const port = Number((await server.message).port);
    // Generous: four calls at 20 MB/s, plus start-up.
    const c = start(clientCommand(client, port, s.id, `${s.id}-${client}-r${round}`), 1, `${client} client`, 20_000 + ((o.calls + 1) * o.bytes) / 20e3);
    try {
      const ms = (await c.message).ms as number[];
      const m = median(ms);
      await new Promise((r) => (c.proc.exitCode === null ? c.proc.once("exit", r) : r(undefined)));
      return { ms: m, mbps: o.bytes / 1e6 / (m / 1000), msMin: Math.min(...ms), msMax: Math.max(...ms) };
    } finally {
      await stop(c.proc);
    }
  } finally {
    await stop(server.proc);
  }
}

const started = Date.now();
const runsOf: Record<string, Record<string, RunResult[]>> = { upload: {}, download: {} };
for (let round = 1; round <= o.rounds; round++)
  for (const s of [upload, download])
    for (const client of o.only) {
      (runsOf[s.id]![client] ??= []).push(await measure("large-unary", s, round, client, () => runOne(client, s, round)));
      await sleep(200);
    }

const results: Results = { upload: summarize(runsOf.upload!, "grpcio"), download: summarize(runsOf.download!, "grpcio") };
const markdown = table(results, [upload, download], o.only);
const command = `node dist/bench/large-unary.js ${process.argv.slice(2).join(" ")}`.trimEnd();
const seconds = (Date.now() - started) / 1000;
console.log(
  `\n${markdown}\n\nMedians of ${o.rounds} round(s) of ${o.calls} call(s) after one warm-up call, [range over the rounds]; ` +
    `MB/s = 10⁶ bytes/s; (n×) = ratio to grpcio's own client in the same run (ms: above 1× is slower). Server: ${o.server === "rill" ? "Rill" : "Python grpcio"}. ` +
    `${seconds.toFixed(0)} s, ${o.taskset ? "server on core 0, client on core 1" : "not pinned"}.\nCommand: \`${command}\``,
);
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(
  o.out,
  JSON.stringify({ date: new Date().toISOString(), command, seconds, machine: { node: process.version, cpus: cpus().map((c) => c.model), totalMem: totalmem() }, config: o, table: markdown, results }, null, 2) +
    "\n",
);
console.log(`JSON: ${o.out}`);
