/**
 * Parallel parts benchmark (issue 20): one payload file downloaded through Rill's ready
 * TransferService with `downloadRanges` — per-chunk CRC32C, the file written in place, the
 * SHA-256 of the whole verified — as 1 part from 1 server, 4 parts from 1 server and 4 parts
 * from 2 servers (separate processes serving copies of the same file), scenarios alternating
 * within each round; medians and spreads over the rounds.
 *
 *   npm run bench:transfer-parts                    # 512 MiB, 3 rounds
 *   npm run bench:transfer-parts -- --size 256 --rounds 5
 *   npm run bench:transfer-parts -- --path-mbps 100 --size 256 --out bench/results/transfer-parts-paths.json
 *
 * Everything runs on this machine: 2 cores shared by the servers and the client, so on loopback
 * this measures what parts buy when one stream is bound by its window or one server process.
 * `--path-mbps N` puts each server behind its own path limited to N MB/s per connection (the
 * tests' fault proxy, throttling what the server sends, in a process of its own per server): the
 * case parts from several servers are for, mirrors each reached over a path slower than the
 * client. Results in bench/results/transfer-parts.json (or `--out`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { TransferService } from "../gen/rill/transfer/v1/transfer_pb.js";
import { createChannel, createClient, createServer, type Channel } from "../src/index.js";
import { downloadRanges, transferFetcher, transferService } from "../src/transfer/index.js";
import { startFaultProxy } from "../test/support/faults/fault-proxy.js";

const here = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;

if (process.argv[2] === "--serve") {
  // A child: serves the directory given and prints its port.
  const server = createServer().add(TransferService, transferService({ dir: process.argv[3]! }));
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  process.stdout.write(`${port}\n`);
} else if (process.argv[2] === "--path") {
  // A child: a path to the server on port argv[3], limited to argv[4] bytes/s per connection
  // towards the client; prints its port.
  const proxy = await startFaultProxy(Number(process.argv[3]), { queueBytes: 4 * MiB });
  proxy.throttle(Number(process.argv[4]), "toClient");
  process.stdout.write(`${proxy.port}\n`);
} else {
  await main();
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({ options: { size: { type: "string" }, rounds: { type: "string" }, out: { type: "string" }, "path-mbps": { type: "string" } } });
  const pathMBps = Number(v["path-mbps"] ?? 0);
  const size = Number(v.size ?? 512) * MiB;
  const rounds = Number(v.rounds ?? 3);
  const work = await mkdtemp(join(tmpdir(), "rill-bench-parts-"));
  const children: ChildProcess[] = [];
  const channels: Channel[] = [];
  try {
    // Two copies of one payload: a random 1 MiB block repeated.
    const block = randomFillSync(Buffer.allocUnsafe(MiB));
    const hash = createHash("sha256");
    const dirs = [join(work, "a"), join(work, "b")];
    for (const d of dirs) await mkdir(d);
    const files = await Promise.all(dirs.map((d) => open(join(d, "payload"), "w")));
    for (let pos = 0; pos < size; pos += MiB) {
      const piece = block.subarray(0, Math.min(MiB, size - pos));
      hash.update(piece);
      for (const f of files) await f.write(piece, 0, piece.byteLength, pos);
    }
    await Promise.all(files.map((f) => f.close()));
    const sha256 = hash.digest();

    const serverPorts = await Promise.all(dirs.map((d) => child(["--serve", d], children)));
    const ports = pathMBps > 0 ? await Promise.all(serverPorts.map((p) => child(["--path", String(p), String(pathMBps * 1e6)], children))) : serverPorts;
    const clients = ports.map((p) => {
      const channel = createChannel(`127.0.0.1:${p}`);
      channels.push(channel);
      return createClient(TransferService, channel);
    });
    const scenarios: Array<{ name: string; parts: number; servers: number }> = [
      { name: "1 part, 1 server", parts: 1, servers: 1 },
      { name: "4 parts, 1 server", parts: 4, servers: 1 },
      { name: "4 parts, 2 servers", parts: 4, servers: 2 },
    ];
    const results = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
    // A warm-up download of each scenario is not counted.
    for (let round = 0; round <= rounds; round++) {
      for (const s of scenarios) {
        const dest = join(work, `dl-${round}-${s.parts}-${s.servers}`);
        const t0 = performance.now();
        await downloadRanges({ sources: clients.slice(0, s.servers).map((c) => transferFetcher(c, "payload")), dest, totalSize: size, sha256, parts: s.parts });
        const seconds = (performance.now() - t0) / 1000;
        await rm(dest);
        if (round > 0) results.get(s.name)!.push(size / seconds / 1e6);
        process.stderr.write(`[parts] round ${round}${round === 0 ? " (warm-up)" : ""}: ${s.name}: ${(size / seconds / 1e6).toFixed(0)} MB/s\n`);
      }
    }
    const base = median(results.get(scenarios[0]!.name)!);
    const rows = scenarios.map((s) => {
      const r = results.get(s.name)!;
      return { scenario: s.name, medianMBps: Math.round(median(r)), minMBps: Math.round(Math.min(...r)), maxMBps: Math.round(Math.max(...r)), ratio: Number((median(r) / base).toFixed(2)) };
    });
    const path = pathMBps > 0 ? `each server behind a path of ${pathMBps} MB/s per connection` : "loopback";
    console.log(`\n${(size / MiB).toFixed(0)} MiB, ${rounds} rounds, ${path}, Node ${process.versions.node}, ${cpus().length} cores\n`);
    console.log("| scenario | MB/s median | min–max | vs 1 part |\n|---|---|---|---|");
    for (const r of rows) console.log(`| ${r.scenario} | ${r.medianMBps} | ${r.minMBps}–${r.maxMBps} | ${r.ratio.toFixed(2)}× |`);
    const out = v.out ?? join(dirname(here), "..", "..", "bench", "results", "transfer-parts.json");
    await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.versions.node, sizeMiB: size / MiB, rounds, pathMBps: pathMBps > 0 ? pathMBps : undefined, rows }, null, 2)}\n`);
  } finally {
    for (const c of channels) c.close();
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
    await rm(work, { recursive: true, force: true });
  }
}

/** Starts this script as a child (`--serve DIR` or `--path PORT RATE`) and resolves with the port it prints. */
function child(args: string[], children: ChildProcess[]): Promise<number> {
  const proc = spawn(process.execPath, [here, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once("exit", (code) => reject(new Error(`a child (${args[0]}) exited with ${code}`)));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
