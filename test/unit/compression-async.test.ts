/** Compression off the event loop above the measured thresholds, with the same limits and errors. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { asyncCompressThresholdBytes, asyncDecompressThresholdBytes, compressMessage, decompressMessage, deflate, gzip } from "../../src/codec/compression.js";
import { Code, RpcError } from "../../src/index.js";

const text = (n: number) => Buffer.from("abcdefghij".repeat(Math.ceil(n / 10)).slice(0, n));

test("small messages are compressed synchronously, large ones off the event loop (a Promise)", async () => {
  for (const c of [gzip, deflate]) {
    const small = compressMessage(c, text(asyncCompressThresholdBytes - 1));
    assert.ok(small instanceof Uint8Array, c.name);
    const large = compressMessage(c, text(asyncCompressThresholdBytes));
    assert.ok(large instanceof Promise, c.name);
    const packed = await large;
    assert.deepEqual(Buffer.from(c.decompress(packed, 1 << 20)), text(asyncCompressThresholdBytes));
  }
});

test("a 4 MiB gzip lets the event loop run while it compresses", async () => {
  const payload = Buffer.concat([randomBytes(2 << 20), text(2 << 20)]);
  let turns = 0;
  const ticker = setInterval(() => turns++, 1);
  const started = performance.now();
  const packed = await compressMessage(gzip, payload);
  const elapsed = performance.now() - started;
  clearInterval(ticker);
  // The loop kept turning during the work (a synchronous 4 MiB gzip gives it not one turn).
  assert.ok(turns >= 1, `no timer ran during ${elapsed.toFixed(1)} ms of compression`);
  const back = await decompressMessage(gzip, packed, 8 << 20);
  assert.ok(Buffer.from(back).equals(payload));
});

test("async decompression keeps the limit (RESOURCE_EXHAUSTED) and reports corrupt input (INTERNAL)", async () => {
  const bomb = gzipSync(Buffer.alloc(32 << 20)); // ~32 KiB of gzip, 32 MiB of zeros
  assert.ok(bomb.byteLength >= asyncDecompressThresholdBytes);
  const over = decompressMessage(gzip, bomb, 1 << 20);
  assert.ok(over instanceof Promise);
  await assert.rejects(over, (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted);
  const corrupt = Buffer.concat([bomb.subarray(0, 10), randomBytes(asyncDecompressThresholdBytes)]);
  await assert.rejects(Promise.resolve(decompressMessage(gzip, corrupt, 1 << 20)), (e: unknown) => e instanceof RpcError && e.code === Code.Internal);
});
