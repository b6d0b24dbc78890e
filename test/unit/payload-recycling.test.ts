import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { allocatePayload, isRecyclablePayload, recyclePayload } from "../../src/protocol/frame.js";
import { FrameWriter } from "../../src/stream/frame-writer.js";
import { slowStream, type SlowStream } from "../support/slow-stream.js";

async function drain(s: SlowStream): Promise<void> {
  for (let i = 0; i < 10_000; i++) if (!s.take()) await tick();
}

test("a recycled payload is handed out again for the same size, and only payloads allocatePayload made are taken", () => {
  const a = allocatePayload(100_003);
  a.fill(1);
  recyclePayload(a);
  recyclePayload(a); // twice: still handed out once
  const foreign = new Uint8Array(100_003);
  recyclePayload(foreign);
  assert.equal(isRecyclablePayload(foreign), false);
  assert.equal(allocatePayload(100_003), a, "the recycled buffer comes back");
  assert.notEqual(allocatePayload(100_003), a, "and only once");
  assert.notEqual(allocatePayload(100_003), foreign);
});

test("the pool keeps at most 8 MiB: a payload larger than that is never kept", () => {
  const big = allocatePayload(8 * 1024 * 1024 + 1);
  recyclePayload(big);
  assert.notEqual(allocatePayload(8 * 1024 * 1024 + 1), big);
});

test("a recycling writer gives a payload back only after the stream reported its last slice written, and the bytes sent are the ones written", async () => {
  const s = slowStream();
  const size = 300_001; // paced in 64 KiB slices past a 64 KiB high-water mark
  const writer = new FrameWriter(s.stream, 64 * 1024, true, undefined, { recycle: true });
  const first = allocatePayload(size).fill(1);
  writer.writeMessage(first);
  // Until every slice is taken, a new payload of that size must be fresh memory.
  for (let i = 0; i < 3; i++) {
    s.take();
    await tick();
    assert.notEqual(allocatePayload(size), first, `reused after ${i + 1} slice(s)`);
  }
  await drain(s);
  const second = allocatePayload(size);
  assert.equal(second, first, "reused once written");
  second.fill(2);
  writer.writeMessage(second);
  await drain(s);
  const sent = Buffer.concat(s.got);
  assert.equal(sent.byteLength, 2 * (5 + size));
  assert.ok(sent.subarray(5, 5 + size).every((b) => b === 1), "the first message went out as written");
  assert.ok(sent.subarray(10 + size).every((b) => b === 2));
});

test("a writer without recycling, or a failed write, gives nothing back", async () => {
  const s = slowStream();
  const size = 70_001;
  const writer = new FrameWriter(s.stream, 1024 * 1024, true, undefined, { recycle: false });
  const p = allocatePayload(size);
  writer.writeMessage(p);
  await drain(s);
  assert.notEqual(allocatePayload(size), p);

  const failing = new Writable({ write: (_c, _e, cb) => cb(new Error("reset")) });
  failing.on("error", () => {});
  const w2 = new FrameWriter(failing, 1024 * 1024, true, undefined, { recycle: true });
  const q = allocatePayload(size);
  w2.writeMessage(q);
  await tick();
  await tick();
  assert.notEqual(allocatePayload(size), q);
});
