/**
 * `npm run bench:hostile`: the attacks of test/support/attacks.ts against each implementation's
 * benchmark server (Rill, @grpc/grpc-js, connect-node, raw node:http2), one fresh server process
 * per attack and implementation, with a legitimate node:http2 client measured throughout.
 *
 * Per attack it reports the server's RSS growth (peak during the attack, each sample after a
 * full GC, minus the RSS before) and the legitimate client's p50/p99 and failures, and prints a
 * markdown table with Rill's ratio to each other implementation. Bounded: every attack stops by
 * itself in seconds; children are killed by PID at the end.
 *
 *   node dist/bench/hostile.js [--only rill,grpc-js] [--rounds N] [--out FILE]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { toBinary, create } from "@bufbuild/protobuf";
import { PayloadSchema } from "../gen/bench/v1/bench_pb.js";
import { percentile, rapidReset, stalledBidi, streamFlood, unaryLoad } from "../test/support/attacks.js";
import { grpcMessage } from "../test/support/h2-raw.js";
import type { ImplName } from "./common.js";
import type { MemReport } from "./ipc.js";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const impls = (flag("--only")?.split(",") ?? ["rill", "grpc-js", "connect", "raw"]) as ImplName[];
const rounds = Number(flag("--rounds") ?? 1);
const out = flag("--out") ?? join(here, "..", "..", "bench", "results", "hostile.json");
const MB = 1024 * 1024;
const service = "/bench.v1.BenchService/";
const smallRequest = toBinary(PayloadSchema, create(PayloadSchema, { data: new Uint8Array(64) }));
const bigRequest = grpcMessage(toBinary(PayloadSchema, create(PayloadSchema, { data: new Uint8Array(64 * 1024).fill(0x61) })));

interface Row {
  attack: string;
  impl: ImplName;
  round: number;
  rssMB: number;
  p50: number;
  p99: number;
  failures: number;
  detail: string;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
});

/** A fresh benchmark server child of `impl`; `mem()` asks it for its memory after a GC. */
async function startServer(impl: ImplName): Promise<{ port: number; mem(): Promise<MemReport>; stop(): Promise<void> }> {
  const proc = spawn(process.execPath, ["--expose-gc", join(here, "server.js"), impl], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(proc);
  let next = 1;
  const replies = new Map<number, (m: MemReport) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    proc.on("message", (m: { type?: string; port?: number; id?: number }) => {
      if (m.type === "ready") resolve(m.port!);
      else if (typeof m.id === "number") replies.get(m.id)?.(m as unknown as MemReport);
    });
    proc.once("exit", () => reject(new Error(`${impl} server exited`)));
  });
  return {
    port,
    mem: () =>
      new Promise((resolve) => {
        const id = next++;
        replies.set(id, resolve);
        proc.send({ type: "mem", gc: true, id });
      }),
    async stop() {
      if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, "SIGKILL");
      await new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.once("exit", () => resolve())));
      children.delete(proc);
    },
  };
}

const attacks: Array<{ name: string; legitMs: number; run(port: number): Promise<string> }> = [
  {
    name: "200 stalled bidi streams, 64 KiB requests, 1 connection",
    legitMs: 3500,
    run: async (port) => `${((await stalledBidi(port, `${service}Bidi`, bigRequest, 200, 4000)).written / MB).toFixed(0)} MB written`,
  },
  {
    name: "200 stalled bidi streams on each of 4 connections",
    legitMs: 3500,
    run: async (port) => {
      const r = await Promise.all([0, 1, 2, 3].map(() => stalledBidi(port, `${service}Bidi`, bigRequest, 200, 4000)));
      return `${(r.reduce((a, b) => a + b.written, 0) / MB).toFixed(0)} MB written`;
    },
  },
  {
    name: "20,000 streams opened at once on 1 connection",
    legitMs: 2000,
    run: async (port) => {
      const r = await streamFlood(port, `${service}Unary`, 20_000, 1500);
      return `${r.refused} refused, GOAWAY ${r.goawayCode ?? "none"}`;
    },
  },
  {
    name: "100,000 rapid resets on 4 connections",
    legitMs: 2500,
    run: async (port) => {
      const r = await rapidReset(port, `${service}Unary`, 100_000, 4, 4000);
      return `${r.sent} pairs on ${r.connections} connections`;
    },
  },
];

const rows: Row[] = [];
for (const attack of attacks) {
  for (let round = 1; round <= rounds; round++) {
    for (const impl of impls) {
      const server = await startServer(impl);
      try {
        await unaryLoad(server.port, `${service}Unary`, smallRequest, 300); // warm-up
        const base = (await server.mem()).rss;
        let peak = 0;
        let done = false;
        const legit = unaryLoad(server.port, `${service}Unary`, smallRequest, attack.legitMs);
        const running = attack.run(server.port).finally(() => (done = true));
        while (!done) {
          peak = Math.max(peak, (await server.mem()).rss - base);
          await sleep(200);
        }
        peak = Math.max(peak, (await server.mem()).rss - base);
        const detail = await running;
        const { latencies, failures } = await legit;
        const row: Row = { attack: attack.name, impl, round, rssMB: peak / MB, p50: percentile(latencies, 50), p99: percentile(latencies, 99), failures: failures.length, detail };
        rows.push(row);
        console.error(`[hostile] ${attack.name} · ${impl} · round ${round}: +${row.rssMB.toFixed(1)} MB, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, ${row.failures} failed (${detail})`);
      } finally {
        await server.stop();
      }
    }
  }
}

const median = (xs: number[]): number => percentile(xs, 50);
const lines = [
  `Hostile peers, Node ${process.versions.node}, ${rounds} round(s); medians. RSS: the server's peak growth (after GC); p50/p99: a legitimate client's unary calls during the attack.`,
  "",
  `| attack | ${impls.map((i) => `${i} RSS / p99 / failed`).join(" | ")} |`,
  `|---|${impls.map(() => "---:").join("|")}|`,
];
for (const attack of attacks) {
  const cells = impls.map((impl) => {
    const rs = rows.filter((r) => r.attack === attack.name && r.impl === impl);
    return `+${median(rs.map((r) => r.rssMB)).toFixed(0)} MB / ${median(rs.map((r) => r.p99)).toFixed(1)} ms / ${median(rs.map((r) => r.failures))}`;
  });
  lines.push(`| ${attack.name} | ${cells.join(" | ")} |`);
}
console.log(lines.join("\n"));
writeFileSync(out, `${JSON.stringify({ node: process.versions.node, rounds, rows }, null, 2)}\n`);
console.error(`[hostile] results in ${out}`);
process.exit(0);
