/**
 * ByteStream figures (issue 20 item 4): one blob written through Write (SHA-256 verified on
 * finish_write), read back through Read, then read by a reader that stalls after 4 chunks while
 * the server process's RSS is sampled. The server is a child process (this file with --serve),
 * so its memory is its own.
 *
 *   npm run bench:bytestream                          # 256 MiB blob, 256 KiB WriteRequests, 3 rounds
 *   npm run bench:bytestream -- --size-mib 512 --chunk-kib 16 --rounds 5
 *
 * Prints one JSON line per round and the medians. Loopback, one client; write MiB/s includes
 * the server's SHA-256 and disk writes, read MiB/s the server's disk reads.
 */
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ByteStream } from "../gen/google/bytestream/bytestream_pb.js";
import { createChannel, createClient, createServer, silentLogger } from "../src/index.js";
import { serveByteStream } from "../src/services/bytestream/index.js";

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { serve: { type: "string" }, "size-mib": { type: "string", default: "256" }, "chunk-kib": { type: "string", default: "256" }, rounds: { type: "string", default: "3" } },
});

if (values.serve !== undefined) {
  const server = createServer({ logger: silentLogger });
  serveByteStream(server, { dir: values.serve });
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  console.log(port);
} else {
  const size = Number(values["size-mib"]) * MiB;
  const chunk = Number(values["chunk-kib"]) * 1024;
  const rounds = Number(values.rounds);
  const piece = Buffer.alloc(chunk, 0).map((_, i) => (i * 13) & 0xff);
  const hash = createHash("sha256");
  for (let p = 0; p < size; p += chunk) hash.update(piece.subarray(0, Math.min(chunk, size - p)));
  const digest = hash.digest("hex");
  const results: Array<Record<string, number>> = [];
  for (let round = 0; round < rounds; round++) {
    const dir = mkdtempSync(join(tmpdir(), "rill-bench-bytestream-"));
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--serve", dir], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = await new Promise<number>((resolve) => child.stdout.once("data", (d) => resolve(Number(String(d).trim()))));
      const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
      const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger });
      const client = createClient(ByteStream, channel);
      const name = `uploads/${randomUUID()}/blobs/${digest}/${size}`;
      async function* requests() {
        for (let p = 0; p < size; p += chunk) {
          const n = Math.min(chunk, size - p);
          yield { resourceName: p === 0 ? name : "", writeOffset: BigInt(p), data: piece.subarray(0, n), finishWrite: p + n === size };
        }
      }
      const r: Record<string, number> = { serverRssIdleMiB: rss() };
      let t = performance.now();
      await client.write(requests());
      r.writeMiBs = size / MiB / ((performance.now() - t) / 1000);
      t = performance.now();
      let got = 0;
      for await (const m of client.read({ resourceName: `blobs/${digest}/${size}` })) got += m.data.byteLength;
      if (got !== size) throw new Error(`read ${got} of ${size} bytes`);
      r.readMiBs = size / MiB / ((performance.now() - t) / 1000);
      const stalled = client.read({ resourceName: `blobs/${digest}/${size}` })[Symbol.asyncIterator]();
      for (let i = 0; i < 4; i++) await stalled.next();
      const before = rss();
      await sleep(3000);
      r.stalledReaderRssGrowthMiB = rss() - before;
      r.serverRssMiB = rss();
      await stalled.return?.();
      channel.close();
      for (const k of Object.keys(r)) r[k] = Math.round(r[k]! * 10) / 10;
      console.log(JSON.stringify({ round, sizeMiB: size / MiB, chunkKiB: chunk / 1024, ...r }));
      results.push(r);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const median = (k: string) => results.map((r) => r[k]!).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  console.log(JSON.stringify({ medians: { writeMiBs: median("writeMiBs"), readMiBs: median("readMiBs"), stalledReaderRssGrowthMiB: median("stalledReaderRssGrowthMiB"), serverRssMiB: median("serverRssMiB") } }));
}
