/**
 * CPU time per message on each side of a 64 B stream, for A/B comparisons on a noisy machine
 * (wall-clock rates move by ±30 % there; CPU per message much less):
 *
 *   node dist/bench/stream-cpu.js <scenario> <rounds> <warmupMs> <measureMs> <label>=<distDir>:<impl> …
 *   node dist/bench/stream-cpu.js server-stream-64 5 1000 2000 raw=dist:raw before=/tmp/old-dist:rill after=dist:rill
 *
 * Scenarios: server-stream-64, client-stream-64, bidi-pingpong. Each run starts the server child
 * (`<distDir>/bench/server.js <impl>`, pinned to core 0) and a client child (this file in client
 * mode, core 1); after the warm-up the client reads its own `process.cpuUsage()` and has the
 * server's read over IPC, counts messages for `measureMs` (received ones for server streams,
 * sent ones for client streams, round trips for the ping-pong), and reads both again. Variants
 * alternate run by run; the last lines are medians over the rounds. A distDir is a compiled
 * tree (a copy of `dist/` from another build is how to compare builds).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface RunResult {
  n: number;
  ms: number;
  clientCpuUs: number;
}

const self = fileURLToPath(import.meta.url);
const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** The client child: `stream-cpu.js client <distDir> <impl> <port> <scenario> <warmupMs> <measureMs>`. */
async function client(dist: string, impl: string, port: number, scenario: string, warmupMs: number, measureMs: number): Promise<void> {
  const load = (p: string) => import(pathToFileURL(resolve(dist, p)).href);
  const { loadImpl } = await load("bench/impl/index.js");
  const { encodeStreamSpec, payloadOf, UNLIMITED } = await load("bench/common.js");
  const ask = (m: object): Promise<unknown> =>
    new Promise((r) => {
      process.once("message", r);
      process.send!(m);
    });
  const c = await (await loadImpl(impl)).connectClient(port);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let count = 0;
  let c0 = 0;
  let cpu0 = 0;
  let t0 = 0;
  const start = async (): Promise<void> => {
    await ask({ type: "start" });
    cpu0 = cpu();
    t0 = performance.now();
    c0 = count;
  };
  const result = (): RunResult => ({ n: count - c0, ms: performance.now() - t0, clientCpuUs: cpu() - cpu0 });
  let r: RunResult;
  if (scenario === "server-stream-64") {
    const reading = c.serverStream(encodeStreamSpec(UNLIMITED, 64), () => void count++);
    await sleep(warmupMs);
    await start();
    await sleep(measureMs);
    r = result();
    reading.cancel();
  } else if (scenario === "client-stream-64") {
    let end = Number.POSITIVE_INFINITY;
    let starting: Promise<void> | undefined;
    const warmEnd = performance.now() + warmupMs;
    const more = (): boolean => {
      count++;
      // The clock is read once per 256 messages: the producer should cost next to nothing.
      if ((count & 255) !== 0) return true;
      const now = performance.now();
      if (starting === undefined && now >= warmEnd) starting = start().then(() => void (end = performance.now() + measureMs));
      return now < end;
    };
    await c.clientStream(payloadOf(64), more);
    r = result();
  } else if (scenario === "bidi-pingpong") {
    const pp = c.bidi();
    const data = payloadOf(64).data;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        await pp.roundTrip(data);
        count++;
      }
    })();
    await sleep(warmupMs);
    await start();
    await sleep(measureMs);
    r = result();
    stop = true;
    await loop;
    await pp.close();
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  await ask({ type: "end", result: r });
  c.close();
  process.exit(0);
}

function child(core: number, args: string[]): ChildProcess {
  return spawn("taskset", ["-c", String(core), process.execPath, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

let nextId = 1;
function request(p: ChildProcess, m: object): Promise<Record<string, number>> {
  const id = nextId++;
  return new Promise((resolveReply) => {
    const onMessage = (x: { id?: number }): void => {
      if (x.id !== id) return;
      p.off("message", onMessage);
      resolveReply(x as Record<string, number>);
    };
    p.on("message", onMessage);
    p.send({ id, ...m });
  });
}

async function orchestrate(scenario: string, rounds: number, warmupMs: number, measureMs: number, variants: string[]): Promise<void> {
  const rows = new Map<string, Array<{ rate: number; client: number; server: number }>>();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (let round = 0; round < rounds; round++) {
    for (const v of variants) {
      const [label, target] = v.split("=") as [string, string];
      const [dist, impl] = target.split(":") as [string, string];
      const server = child(0, [resolve(dist, "bench/server.js"), impl]);
      const port = await new Promise<number>((r) => server.on("message", (m: { type?: string; port?: number }) => m.type === "ready" && r(m.port!)));
      const cl = child(1, [self, "client", dist, impl, String(port), scenario, String(warmupMs), String(measureMs)]);
      let s0 = 0;
      const run = await new Promise<RunResult & { serverCpuUs: number }>((done) => {
        cl.on("message", async (m: { type?: string; result?: RunResult }) => {
          if (m.type === "start") {
            s0 = (await request(server, { type: "cpu" })).cpuUs!;
            cl.send({ ok: true });
          } else if (m.type === "end") {
            const s1 = (await request(server, { type: "cpu" })).cpuUs!;
            cl.send({ ok: true });
            done({ ...m.result!, serverCpuUs: s1 - s0 });
          }
        });
      });
      await request(server, { type: "exit" });
      for (const p of [server, cl]) if (p.pid !== undefined && p.exitCode === null) p.kill("SIGKILL");
      const row = { rate: (run.n / run.ms) * 1000, client: run.clientCpuUs / run.n, server: run.serverCpuUs / run.n };
      rows.set(label, [...(rows.get(label) ?? []), row]);
      console.log(`${scenario} r${round} ${label}: ${(row.rate / 1e6).toFixed(2)} M/s, CPU per message: client ${row.client.toFixed(3)} µs, server ${row.server.toFixed(3)} µs`);
    }
  }
  for (const [label, rs] of rows) {
    const rate = median(rs.map((r) => r.rate));
    console.log(
      `median ${scenario} ${label}: ${(rate / 1e6).toFixed(2)} M/s, CPU per message: client ${median(rs.map((r) => r.client)).toFixed(3)} µs, server ${median(rs.map((r) => r.server)).toFixed(3)} µs`,
    );
  }
}

const args = process.argv.slice(2);
if (args[0] === "client") {
  await client(args[1]!, args[2]!, Number(args[3]), args[4]!, Number(args[5]), Number(args[6]));
} else {
  const [scenario, rounds, warmupMs, measureMs, ...variants] = args;
  if (scenario === undefined || variants.length === 0) {
    console.error("usage: node dist/bench/stream-cpu.js <scenario> <rounds> <warmupMs> <measureMs> <label>=<distDir>:<impl> …");
    process.exit(2);
  }
  await orchestrate(scenario, Number(rounds), Number(warmupMs), Number(measureMs), variants);
}
