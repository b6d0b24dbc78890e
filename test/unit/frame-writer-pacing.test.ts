import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { FrameWriter } from "../../src/stream/frame-writer.js";
import { slowStream } from "../support/slow-stream.js";

test("a frame far above the high-water mark reaches the stream in slices, never more than the mark plus one slice at a time, and the stream ends after it", async () => {
  const s = slowStream();
  const writer = new FrameWriter(s.stream, 256 * 1024);
  const frame = Buffer.alloc(4 * 1024 * 1024, 7);
  assert.equal(writer.write(frame), false, "the writer is full at once");
  assert.equal(writer.buffered, frame.length);
  writer.close(() => s.stream.end());
  let most = 0;
  for (let i = 0; i < 10_000 && !s.ended; i++) {
    most = Math.max(most, s.stream.writableLength);
    if (!s.take()) await tick();
  }
  assert.ok(s.ended, "the stream ended after the last slice");
  assert.ok(most <= 256 * 1024 + 64 * 1024, `the stream held ${most} bytes at once`);
  assert.deepEqual(Buffer.concat(s.got), frame);
});

test("abort drops paced bytes and releases a waiting producer", async () => {
  const s = slowStream();
  const writer = new FrameWriter(s.stream, 64 * 1024);
  writer.write(Buffer.alloc(1024 * 1024));
  let released = false;
  void writer.writable().then(() => (released = true));
  writer.abort();
  await tick();
  assert.ok(released);
  assert.equal(writer.buffered, s.stream.writableLength);
});

test("close without a callback hands paced bytes over at once, so a caller may end the stream right after", async () => {
  const s = slowStream();
  const writer = new FrameWriter(s.stream, 64 * 1024);
  const frame = Buffer.alloc(512 * 1024, 3);
  writer.write(frame);
  writer.close();
  s.stream.end();
  for (let i = 0; i < 1000 && !s.ended; i++) if (!s.take()) await tick();
  assert.deepEqual(Buffer.concat(s.got), frame);
});

test("a message still being compressed holds every later write behind it, and close(then) waits for it", async () => {
  const s = slowStream();
  const w = new FrameWriter(s.stream, 1 << 20);
  let resolve!: (b: Uint8Array) => void;
  const later = new Promise<Uint8Array>((r) => (resolve = r));
  w.writeMessage(Buffer.from("first"));
  w.writeMessage(later, true, 1000);
  assert.equal(w.holding, true);
  assert.ok(w.buffered >= 1000, "the held message counts at its uncompressed size");
  w.writeMessage(Buffer.from("third"));
  w.write(Buffer.from([0, 0, 0, 0, 1, 0x34]));
  let closed = false;
  w.close(() => {
    closed = true;
    s.stream.end();
  });
  w.writeMessage(Buffer.from("after close"));
  await tick();
  while (s.take());
  assert.equal(closed, false, "the stream may not end before the held message is out");
  resolve(Buffer.from("second"));
  await tick();
  await tick();
  while (s.take());
  await tick();
  const all = Buffer.concat(s.got);
  // Frames in the order written: plain "first", compressed "second", plain "third", the whole frame.
  const frames: Array<[number, string]> = [];
  for (let pos = 0; pos < all.length; ) {
    const len = all.readUInt32BE(pos + 1);
    frames.push([all[pos]!, all.subarray(pos + 5, pos + 5 + len).toString()]);
    pos += 5 + len;
  }
  assert.deepEqual(frames, [
    [0, "first"],
    [1, "second"],
    [0, "third"],
    [0, "4"],
  ]);
  assert.equal(closed, true);
  assert.equal(w.holding, false);
});

test("a compression that fails destroys the stream instead of sending what follows it", async () => {
  const s = slowStream();
  const w = new FrameWriter(s.stream, 1 << 20);
  let reject!: (e: Error) => void;
  w.writeMessage(new Promise<Uint8Array>((_r, j) => (reject = j)), true, 10);
  w.writeMessage(Buffer.from("never"));
  s.stream.on("error", () => {});
  reject(new Error("zlib failed"));
  await tick();
  assert.equal(s.stream.destroyed, true);
  while (s.take());
  assert.equal(Buffer.concat(s.got).length, 0);
});
