/**
 * What the raw baseline would pay if it had an RPC library's API: the floor under any stack whose
 * handlers and callers are async generators and `for await` loops over decoded messages.
 *
 * raw-iter (../impl/raw-iter.ts) keeps raw's wire code (hand framing, 16 KiB batches, `write()`
 * backpressure) and adds only the contract: each received message becomes an object handed out
 * through an async iterator, and each sent message is pulled from an async generator. The queue
 * and the writer are the least that contract allows (an array and one waiting resolver; a batch
 * buffer written when full), so the difference between raw and raw-iter is what V8's promises,
 * await and async generators cost per message, and the difference between raw-iter and Rill is
 * Rill's own (codec, framing, budgets, cancellation).
 */
import type * as http2 from "node:http2";
import type { Payload } from "../../gen/bench/v1/bench_pb.js";
import { payloadFrameSize, writePayloadFrame } from "../wire.js";

/** Received messages as an async iterator; pauses the HTTP/2 stream while `highWater` wait unread. */
export class MessageIterator implements AsyncIterableIterator<{ data: Uint8Array }> {
  private readonly items: Array<{ data: Uint8Array }> = [];
  private head = 0;
  private ended = false;
  private waiter: ((r: IteratorResult<{ data: Uint8Array }>) => void) | undefined;

  constructor(
    private readonly stream: http2.Http2Stream,
    private readonly highWater = 4096,
  ) {}

  push(data: Uint8Array): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w({ value: { data }, done: false });
      return;
    }
    if (this.items.push({ data }) - this.head === this.highWater) this.stream.pause();
  }

  end(): void {
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<{ data: Uint8Array }>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as unknown as { data: Uint8Array };
      if (this.head === this.items.length) {
        this.items.length = 0;
        this.head = 0;
        if (this.stream.isPaused()) this.stream.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Writes the messages `source` yields, framed into batches of up to `batchBytes` per `write()`, then ends `stream`. */
export async function writeIterated(stream: http2.Http2Stream, source: AsyncIterable<Payload>, batchBytes: number): Promise<void> {
  let buf = Buffer.allocUnsafe(batchBytes);
  let off = 0;
  for await (const m of source) {
    if (stream.destroyed) return;
    const fs = payloadFrameSize(m.data.byteLength);
    if (off + fs > buf.byteLength) {
      if (off > 0 && !stream.write(buf.subarray(0, off))) await drained(stream);
      buf = Buffer.allocUnsafe(Math.max(batchBytes, fs));
      off = 0;
    }
    off = writePayloadFrame(buf, off, m.data);
  }
  if (stream.destroyed) return;
  if (off > 0) stream.write(buf.subarray(0, off));
  stream.end();
}

function drained(stream: http2.Http2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
