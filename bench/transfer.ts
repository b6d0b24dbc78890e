/**
 * Chunked-transfer benchmark (issue 8 item 4, issue 5 item 6): a large payload downloaded over a
 * server stream as 64 KiB chunks, SHA-256 computed by the sender and verified by the receiver,
 * end to end; and a 64 B bidi ping-pong on the same connection while that download runs.
 *
 *   npm run bench:transfer                        # 1 GiB, 3 rounds
 *   npm run bench:transfer -- --quick             # 256 MiB, 1 round
 *   npm run bench:transfer -- --size 512MiB --rounds 5 --only rill,raw
 *
 * The implementations (transfer/: raw, rill, grpc-js, connect, raw-tuned) serve the same bytes
 * on the wire (transfer/common.ts); the child processes are transfer/server.ts and
 * transfer/client.ts. Method and report as in run.ts (processes.ts, report.ts): per run a fresh
 * server process (`taskset -c 0`) and client process (`taskset -c 1`); within a round the
 * download alone, then with the ping-pong, implementations alternating run by run; medians over
 * the rounds and ratios to raw in one table, everything in bench/results/transfer.json.
 *
 * Options: --quick, --size SIZE, --warmup SIZE, --rounds N, --only raw,rill,…, --ping-impls …,
 * --no-taskset, --out FILE, --cpu-prof DIR.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { implNames, sleep, type ImplName } from "./common.js";
import type { Metrics } from "./ipc.js";
import { hasTaskset, killAll, runPair, type SpawnOptions } from "./processes.js";
import { measure, summarize, table, type Results, type RunResult } from "./report.js";
import { metric, type Scenario } from "./scenarios.js";
import { BLOCK, CHUNK, PING_BYTES } from "./transfer/common.js";

const here = dirname(fileURLToPath(import.meta.url));

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|kb|mb|gb)?$/i.exec(s.trim());
  if (m === null) throw new Error(`bad --size ${s} (e.g. 1GiB, 256MiB, 1073741824)`);
  const unit = (m[2] ?? "b").toLowerCase();
  const mul: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 };
  return Math.round(Number(m[1]) * mul[unit]!);
}

// ---- options
const { values: v } = parseArgs({
  options: {
    size: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    quick: { type: "boolean" },
    only: { type: "string" },
    "ping-impls": { type: "string" },
    "no-taskset": { type: "boolean" },
    "cpu-prof": { type: "string" },
    out: { type: "string" },
  },
});
const quick = v.quick === true;
const size = parseSize(v.size ?? (quick ? "256MiB" : "1GiB"));
const list = (s: string | undefined, d: readonly ImplName[]): ImplName[] => {
  if (s === undefined) return [...d];
  const names = s.split(",").map((x) => x.trim()) as ImplName[];
  for (const n of names) if (!implNames.includes(n)) throw new Error(`unknown implementation ${n} (known: ${implNames.join(", ")})`);
  return implNames.filter((i) => names.includes(i));
};
// rill-observed is the main suite's (its overhead rows come from `npm run bench -- --observed`).
const only = list(v.only, implNames.filter((i) => i !== "rill-observed"));
const o = {
  size,
  warmup: v.warmup !== undefined ? parseSize(v.warmup) : Math.min(size, quick ? 32 * 1024 ** 2 : 64 * 1024 ** 2),
  rounds: v.rounds !== undefined ? Number(v.rounds) : quick ? 1 : 3,
  only,
  pingImpls: list(v["ping-impls"], only).filter((i) => only.includes(i)),
  taskset: v["no-taskset"] !== true && hasTaskset(),
  cpuProf: v["cpu-prof"],
  out: v.out ?? join(here, "..", "..", "bench", "results", "transfer.json"),
};
if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error("--rounds must be a positive integer");
if (o.cpuProf !== undefined) mkdirSync(o.cpuProf, { recursive: true });
const spawnOptions: SpawnOptions = { taskset: o.taskset, cpuProfDir: o.cpuProf };

// ---- the two rows: the download alone, and with the ping-pong beside it
const mib = (size / 1024 ** 2).toLocaleString("en-US");
const alone: Scenario = {
  id: "alone",
  title: `${mib} MiB chunked download alone (64 KiB chunks, SHA-256 both ends)`,
  metrics: [metric("mbps", "MB/s", "mbps", true)],
};
const ping: Scenario = {
  id: "ping",
  title: `${mib} MiB download with a ${PING_BYTES} B ping-pong on its connection`,
  metrics: [
    metric("mbps", "MB/s", "mbps", true, true, false),
    metric("p50Us", "ping-pong p50", "latency", false, true, false),
    metric("p99Us", "ping-pong p99", "latency", false),
    metric("maxUs", "ping-pong max", "latency", false, true, false),
    metric("pings", "round trips", "count", true, true, false),
  ],
};

function runOne(impl: ImplName, mode: Scenario, round: number): Promise<Metrics> {
  return runPair(
    {
      label: impl,
      tag: `${mode.id}-${impl}-r${round}`,
      server: { script: "transfer/server.js", args: [impl] },
      client: (port) => ({ script: "transfer/client.js", args: [impl, String(port), String(o.size), String(o.warmup), mode.id] }),
      // Generous: the slowest stack at 50 MB/s, plus start-up.
      resultTimeoutMs: 30_000 + ((o.size + o.warmup) / 50e6) * 1000,
    },
    spawnOptions,
  );
}

// ---- main
const started = Date.now();
const runsOf: Record<string, Record<string, RunResult[]>> = { alone: {}, ping: {} };
for (let round = 1; round <= o.rounds; round++) {
  for (const mode of [alone, ping]) {
    for (const impl of mode === ping ? o.pingImpls : o.only) {
      (runsOf[mode.id]![impl] ??= []).push(await measure("transfer", mode, round, impl, () => runOne(impl, mode, round)));
      await sleep(200);
    }
  }
}
killAll();

const results: Results = { alone: summarize(runsOf.alone!), ping: summarize(runsOf.ping!) };
const markdown = table(results, [alone, ping], o.only);
const command = `node dist/bench/transfer.js ${process.argv.slice(2).join(" ")}`.trimEnd();
const seconds = (Date.now() - started) / 1000;
console.log(
  `\n${markdown}\n\nMedians of ${o.rounds} round(s); MB/s = 10⁶ bytes/s; (n×) = ratio to raw node:http2 in the same run. ` +
    `${seconds.toFixed(0)} s, ${o.taskset ? "server on core 0, client on core 1" : "not pinned"}.\nCommand: \`${command}\``,
);
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(
  o.out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      command,
      seconds,
      machine: { node: process.version, cpus: cpus().map((c) => c.model), totalMem: totalmem() },
      config: { ...o, chunkBytes: CHUNK, blockBytes: BLOCK, pingBytes: PING_BYTES },
      table: markdown,
      results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`JSON: ${o.out}`);
