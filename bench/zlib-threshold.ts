/**
 * Measures what sets the async-compression thresholds of src/codec/compression.ts: the event-loop time
 * of gzipSync / gunzipSync per message size, beside the cost of zlib's async API (a thread-pool
 * round trip). Run: `node dist/bench/zlib-threshold.js`. Data is half-compressible (every third
 * byte random), between JSON and media.
 */
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { gunzipSync, gzip, gzipSync } from "node:zlib";

const gzipAsync = promisify(gzip);

function sample(n: number): Buffer {
  const b = Buffer.alloc(n);
  const r = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = i % 3 === 0 ? r[i]! : 97 + (i % 26);
  return b;
}

for (const size of [1024, 4096, 16_384, 32_768, 65_536, 131_072, 262_144, 1_048_576, 4_194_304]) {
  const d = sample(size);
  const reps = Math.max(3, Math.min(200, Math.floor(8e6 / size)));
  gzipSync(d);
  let t = performance.now();
  for (let i = 0; i < reps; i++) gzipSync(d);
  const syncMs = (performance.now() - t) / reps;
  const z = gzipSync(d);
  t = performance.now();
  for (let i = 0; i < reps; i++) gunzipSync(z);
  const gunzipMs = (performance.now() - t) / reps;
  t = performance.now();
  for (let i = 0; i < reps; i++) await gzipAsync(d);
  const asyncMs = (performance.now() - t) / reps;
  console.log(`${String(size).padStart(8)} B  gzipSync ${syncMs.toFixed(3)} ms  gunzipSync ${gunzipMs.toFixed(3)} ms  async gzip ${asyncMs.toFixed(3)} ms`);
}
