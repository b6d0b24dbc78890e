import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { FrameWriter, type FrameSink } from "../../src/stream/frame-writer.js";
import { slowStream } from "../support/slow-stream.js";

test("a writer tells its owner it is idle once every write it was given is taken, and not before", async () => {
  const s = slowStream();
  const idle: FrameSink[] = [];
  const writer = new FrameWriter(s.stream, 1024, true, undefined, { onIdle: (sink) => idle.push(sink) });
  writer.writeMessage(new Uint8Array(64));
  // Written while the first is in flight: batched for the next turn.
  writer.writeMessage(new Uint8Array(64));
  await tick();
  assert.equal(writer.buffered, 2 * 69);
  s.take();
  await tick();
  assert.equal(idle.length, 0, "the batch is still in flight");
  s.take();
  await tick();
  assert.deepEqual(idle, [s.stream]);
  assert.equal(writer.buffered, 0);
});

test("a writer with a producer waiting for room is not reported idle until the producer was released", async () => {
  const s = slowStream();
  let idle = 0;
  const writer = new FrameWriter(s.stream, 100, true, undefined, { onIdle: () => idle++ });
  assert.equal(writer.writeMessage(new Uint8Array(200)), false, "full");
  let released = false;
  const waiting = writer.writable().then(() => (released = true));
  s.take();
  await waiting;
  assert.ok(released);
  // Released in the same callback that emptied it: nothing waits any more, so it is idle.
  assert.equal(idle, 1);
});

test("a closed writer is never reported idle", async () => {
  const s = slowStream();
  let idle = 0;
  const writer = new FrameWriter(s.stream, 1024, true, undefined, { onIdle: () => idle++ });
  writer.writeMessage(new Uint8Array(64));
  writer.close();
  s.take();
  await tick();
  assert.equal(idle, 0);
});
