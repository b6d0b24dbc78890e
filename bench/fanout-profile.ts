/**
 * The fan-out of the idle-streams row with its client in this process, to look at the client
 * alone: `node dist/bench/fanout-profile.js <impl> [--sample]`. Starts the implementation's bench
 * server as a child (`server.js`, over IPC), opens 10,000 idle server streams on one connection,
 * waits until the server holds them all, then has it write one 64 B message to each and prints
 * how long until every one arrived, this process's CPU time over that stretch and its garbage
 * collections (`perf_hooks`); with `--sample`, also what the client allocated over it, by
 * function (V8's sampling heap profiler, objects collected since included), per stream; with
 * `--cpu FILE`, a CPU profile of that stretch alone (`profile-summary.js FILE` reads it); with
 * `--server-cpu DIR`, the server's CPU profile (its whole life) in DIR.
 */
import { fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { IDLE, encodeStreamSpec, type ImplName } from "./common.js";
import { loadImpl } from "./impl/index.js";
import type { MemReport } from "./ipc.js";

const impl = process.argv[2] as ImplName;
const sample = process.argv.includes("--sample");
const cpuAt = process.argv.indexOf("--cpu");
const cpuFile = cpuAt > 0 ? process.argv[cpuAt + 1] : undefined;
const streams = 10_000;

const serverCpuAt = process.argv.indexOf("--server-cpu");
const serverProf = serverCpuAt > 0 ? ["--cpu-prof", "--cpu-prof-interval", "100", "--cpu-prof-dir", process.argv[serverCpuAt + 1]!] : [];
const server = fork(fileURLToPath(new URL("server.js", import.meta.url)), [impl], { execArgv: ["--expose-gc", ...serverProf] });
let nextId = 1;
const ask = <T>(request: object): Promise<T> =>
  new Promise((resolve) => {
    const id = nextId++;
    const onReply = (reply: { id?: number }): void => {
      if (reply.id !== id) return;
      server.off("message", onReply);
      resolve(reply as T);
    };
    server.on("message", onReply);
    server.send({ ...request, id });
  });
const port = await new Promise<number>((resolve) => server.on("message", (m: { type?: string; port?: number }) => m.type === "ready" && resolve(m.port!)));

try {
  const client = await (await loadImpl(impl)).connectClient(port);
  let received = 0;
  let allArrived!: (at: number) => void;
  const arrived = new Promise<number>((resolve) => (allArrived = resolve));
  const spec = encodeStreamSpec(IDLE, 0);
  for (let i = 0; i < streams; i++) client.serverStream(spec, () => ++received === streams && allArrived(performance.now()));
  for (let i = 0; (await ask<MemReport>({ type: "mem", gc: false })).sinks < streams; i++) {
    if (i === 600) throw new Error(`the ${impl} server holds fewer than ${streams} streams after 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));

  let gcMs = 0;
  let gcs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcs++;
    }
  });
  gc.observe({ entryTypes: ["gc"] });
  const inspector = new Session();
  inspector.connect();
  if (sample) await inspector.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  if (cpuFile !== undefined) {
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.setSamplingInterval", { interval: 50 });
    await inspector.post("Profiler.start");
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  server.send({ type: "fanout", id: 0 });
  const t1 = await arrived;
  const cpu = process.cpuUsage(cpu0);
  // The GC entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  gc.disconnect();
  if (cpuFile !== undefined) writeFileSync(cpuFile, JSON.stringify(((await inspector.post("Profiler.stop")) as { profile: unknown }).profile));
  console.log(`${impl}: ${streams} messages in ${(t1 - t0).toFixed(1)} ms; client CPU ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms, of it ${gcs} GCs = ${gcMs.toFixed(1)} ms`);

  if (sample) {
    interface SampleNode {
      callFrame: { functionName: string; url: string; lineNumber: number };
      selfSize: number;
      children: SampleNode[];
    }
    const { profile } = (await inspector.post("HeapProfiler.stopSampling")) as { profile: { head: SampleNode } };
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: SampleNode): void => {
      if (n.selfSize > 0) {
        const site = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/.*\/(dist|node_modules)\//, "")}:${n.callFrame.lineNumber}`;
        bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      n.children.forEach(walk);
    };
    walk(profile.head);
    console.log(`allocated (sampled): ${(total / streams).toFixed(0)} B per stream`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${String(Math.round(bytes / streams)).padStart(6)} B  ${site}`);
  }
  inspector.disconnect();
  client.close();
} finally {
  server.send({ type: "exit", id: 0 });
  setTimeout(() => {
    server.kill();
    process.exit(0);
  }, 300).unref();
}
