import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { encodeFrame } from "../../src/protocol/frame.js";
import { FrameWriter, type WriteBudget } from "../../src/stream/frame-writer.js";
import { slowStream } from "../support/slow-stream.js";

/** A budget that only counts, so the test sees what the writer adds and releases. */
function countingBudget(): WriteBudget & { used: number } {
  return {
    used: 0,
    add(bytes) {
      this.used += bytes;
    },
    release(bytes) {
      this.used -= bytes;
    },
    over: false,
    saturated: false,
    whenAdmits(_bytes, fn) {
      fn();
    },
  };
}

/** `payload`'s encoder for writeEncoded: copies it in, as the flat encoder writes a message. */
const encoderOf = (payload: Uint8Array) => (out: Buffer, pos: number) => {
  out.set(payload, pos);
  return pos + payload.byteLength;
};

test("writeEncoded messages mixed with whole frames, small and large payloads reach the stream in order, byte for byte what encodeFrame makes, and the budget returns to zero", async () => {
  const s = slowStream();
  const budget = countingBudget();
  const writer = new FrameWriter(s.stream, 1 << 20, true, budget);
  const expected: Uint8Array[] = [];
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000; i++) {
      const r = rand();
      const size = r < 0.9 ? Math.floor(rand() * 200) : r < 0.97 ? 1000 + Math.floor(rand() * 9000) : 16_000 + Math.floor(rand() * 70_000);
      const payload = Buffer.alloc(size, i & 0xff);
      expected.push(encodeFrame(payload));
      const how = rand();
      if (how < 0.7) writer.writeEncoded(size, encoderOf(payload));
      else if (how < 0.85) writer.writeMessage(payload);
      else writer.write(encodeFrame(payload));
    }
    // Let some batches go out between rounds, and some writes complete.
    for (let i = 0; i < 50; i++) s.take();
    await tick();
  }
  writer.close();
  while (s.take()) await tick();
  assert.deepEqual(Buffer.concat(s.got), Buffer.concat(expected));
  assert.equal(writer.buffered, 0);
  assert.equal(budget.used, 0);
});

test("on an idle stream a writeEncoded message goes out at once; batched ones go in writes that grow from 1 KiB to 64 KiB", async () => {
  const s = slowStream();
  const writer = new FrameWriter(s.stream, 1 << 30);
  const one = Buffer.from("first");
  writer.writeEncoded(one.byteLength, encoderOf(one));
  assert.equal(s.stream.writableLength, 5 + one.byteLength, "written at once");
  writer.writeEncoded(64, encoderOf(Buffer.alloc(64)));
  assert.equal(s.stream.writableLength, 5 + one.byteLength, "the next is batched");
  for (let i = 1; i < 3000; i++) writer.writeEncoded(64, encoderOf(Buffer.alloc(64, i)));
  assert.equal(writer.buffered, 5 + one.byteLength + 3000 * 69);
  await tick();
  while (s.take()) await tick();
  const sizes = s.got.map((c) => c.byteLength);
  assert.equal(sizes[0], 5 + one.byteLength);
  // Each batch buffer is twice the last, up to 64 KiB: a few small writes first, then full batches.
  assert.ok(sizes.length <= 12, `${sizes.length} writes: ${sizes.join(" ")}`);
  assert.ok(Math.max(...sizes) > 60 * 1024 && Math.max(...sizes) <= 64 * 1024, sizes.join(" "));
  assert.equal(Buffer.concat(s.got).byteLength, 5 + one.byteLength + 3000 * 69);
  assert.equal(writer.buffered, 0);
});

test("writeEncoded reports full at the high-water mark like writeMessage", () => {
  const s = slowStream();
  const writer = new FrameWriter(s.stream, 1000);
  let accepted = 0;
  while (writer.writeEncoded(64, encoderOf(Buffer.alloc(64)))) accepted++;
  assert.equal(accepted, Math.ceil(1000 / 69) - 1);
  assert.ok(writer.full);
});
