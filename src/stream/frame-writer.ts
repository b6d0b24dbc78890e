import { FRAME_HEADER_LENGTH, encodeFrameHeader, isRecyclablePayload, putHeader, recyclePayload } from "../protocol/frame.js";

/**
 * A shared byte budget the writer's buffered bytes count against (a server connection's): while
 * it is exceeded, a writer holding anything reports itself full, so producers wait.
 */
export interface WriteBudget {
  add(bytes: number): void;
  release(bytes: number): void;
  readonly over: boolean;
  /** Far over: even a writer holding nothing waits. */
  readonly saturated: boolean;
  /** Runs `fn` once `bytes` more fit (0: once the budget is no longer exceeded). */
  whenAdmits(bytes: number, fn: () => void): void;
}

/** What a writer writes to: a call's stream (node's Http2Stream or the in-process one), or any Writable. */
export interface FrameSink {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
  destroy(error?: Error): unknown;
}

/** Frames smaller than this are coalesced; larger ones are written as they are (no copy). */
const COALESCE_BELOW = 16 * 1024;
/** Messages (payload bytes) below this are batched, so worth `writeEncoded`: larger ones are written uncopied anyway. */
export const BATCHED_BELOW = COALESCE_BELOW - FRAME_HEADER_LENGTH;
/** A coalesced batch is written out once it reaches this size, even within one event-loop turn. */
const BATCH_LIMIT = 64 * 1024;
/** In `flags`: the part is a whole frame (header included), not a payload still to be framed. */
const WHOLE = -1;
/** Paced writes go to the stream in slices of this size. */
const SLICE = 64 * 1024;

/**
 * Writes gRPC frames to one HTTP/2 stream with byte-accurate backpressure and write coalescing.
 *
 * Backpressure: `buffered` counts bytes handed to the stream whose write callback has not fired
 * yet (node:http2 fires it once the data went to the session, i.e. within the peer's flow-control
 * window) plus the batch not yet written. `write()` returns false at `highWaterMark`; producers
 * then await `writable()`. So a stalled reader costs at most window + high-water mark.
 *
 * Coalescing: a message written while the stream is idle (nothing in flight, nothing batched)
 * goes out at once, so a lone message waits for nothing. Messages written while earlier ones are
 * still in flight are batched and written once per event-loop turn (via setImmediate), or as soon
 * as the batch reaches 64 KiB: a producer that keeps the stream busy gets few DATA frames and
 * syscalls. A batch is built in one buffer with each frame's header written in place, so a small
 * message is copied once; a payload of 16 KiB or more is never copied (its header and it are
 * written together, corked). A small message given as an encoder (`writeEncoded`) is encoded
 * straight into the batch's buffer, copied never: that buffer starts at 1 KiB and doubles up to
 * 64 KiB each time it fills (its batch is written then), and is dropped whenever the stream is
 * idle, so a stream holds at most one partly used buffer beyond the bytes it counts. Order is
 * always preserved.
 *
 * Pacing: a write that would take the bytes in flight past the high-water mark is handed to the
 * stream in slices as earlier ones are taken, never all at once. node keeps whatever a stream
 * was given in its session's memory until flow control lets it out; a 100 MiB message given in
 * one piece sat there whole, past node's session limit, refusing every other call on the
 * connection, and a stream the server closed early could never finish writing it.
 */
/** What a writer's owner may ask of it beyond the basics. */
export interface FrameWriterOptions {
  /**
   * Called (with the stream) when a write completes and the writer holds nothing and is waited
   * on by nobody, so its owner may drop it: an idle stream then keeps no writer. A shared
   * function, not a closure per writer.
   */
  onIdle?: (stream: FrameSink) => void;
  /**
   * Give payloads from `allocatePayload` back for reuse (`recyclePayload`) once the stream
   * reports their last byte written. Only for a sink that is done with a chunk when it calls
   * the write's callback (node's Http2Stream), never one that hands chunks on (in-process).
   */
  recycle?: boolean;
}

export class FrameWriter {
  // The batch, allocated on first use: an idle stream (most of 10,000 open streams) has none.
  private parts: Uint8Array[] | undefined;
  /** Per part: WHOLE, or the compressed flag (0/1) of a payload whose header is still to be written. */
  private flags: number[] | undefined;
  private batchBytes = 0;
  private inflight = 0;
  private scheduled = false;
  private waiters: Array<() => void> | undefined;
  private closed = false;

  /** Bytes counted against `budget` and not yet released. */
  private counted = 0;
  private budgetWait = false;

  constructor(
    private readonly stream: FrameSink,
    readonly highWaterMark: number,
    private readonly coalesce = true,
    private readonly budget?: WriteBudget,
    options: FrameWriterOptions = {},
  ) {
    this.onIdle = options.onIdle;
    this.recycle = options.recycle === true;
  }

  /** See FrameWriterOptions.onIdle. */
  private readonly onIdle: ((stream: FrameSink) => void) | undefined;
  /** See FrameWriterOptions.recycle. */
  private readonly recycle: boolean;

  /** Payloads to recycle, marked by writeMessage, until writeOut places them in the write order. */
  private marked: Set<Uint8Array> | undefined;
  /** Placed payloads, oldest first, each with the byte count (`completed`) at which its last write is done. */
  private recycling: Array<{ payload: Uint8Array; end: number }> | undefined;
  /** Bytes handed to the stream, and bytes whose write callbacks came back, since the start. */
  private handed = 0;
  private completed = 0;

  /** Bytes accepted but not yet taken by the HTTP/2 session. */
  get buffered(): number {
    return this.inflight + this.batchBytes + this.pacedBytes + this.heldBytes;
  }

  /**
   * True while `buffered` is at or above the high-water mark, or while the shared budget is
   * exceeded and this writer holds anything (a writer holding nothing may take one message unless
   * the budget is saturated).
   */
  get full(): boolean {
    const buffered = this.inflight + this.batchBytes + this.pacedBytes + this.heldBytes;
    if (buffered >= this.highWaterMark) return true;
    const budget = this.budget;
    return budget !== undefined && (buffered > 0 ? budget.over : budget.saturated);
  }

  /** Bytes waiting to be handed to the stream in slices (see Pacing), oldest first. */
  private paced: Uint8Array[] | undefined;
  private pacedBytes = 0;
  /** Called once everything paced is handed over, after close(then). */
  private onDrained: (() => void) | undefined;

  /**
   * Messages behind one still being compressed off the event loop, in order: nothing passes a
   * message whose bytes are not ready yet. While any is held, `close(then)` waits for them.
   */
  private held: HeldPart[] | undefined;
  private heldBytes = 0;
  /** A close() asked for while messages were held: done once they are out. */
  private closeWhenReleased: { then: (() => void) | undefined } | undefined;

  /** Whether messages wait for their compression: `close()` then needs a `then` to end the stream. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Queues one whole frame (header included). Returns false when the caller should wait for `writable()`. */
  write(frame: Uint8Array): boolean {
    if (this.held !== undefined) return this.hold(frame, WHOLE, frame.byteLength);
    return this.add(frame, WHOLE, frame.byteLength);
  }

  /**
   * Frames `payload` (a 5-byte header with the `compressed` flag and its length) and queues it;
   * the same as `write(encodeFrame(payload, compressed))` without the copy. Throws like
   * `encodeFrameHeader` for a payload that cannot be framed. A payload still being compressed (a
   * Promise; `sizeHint` bytes counted until it is ready) holds every later write behind it; if
   * it fails, the stream is destroyed with its error.
   */
  writeMessage(payload: Uint8Array | Promise<Uint8Array>, compressed = false, sizeHint = 0): boolean {
    if (payload instanceof Promise) {
      const part = new HeldPart(compressed ? 1 : 0, FRAME_HEADER_LENGTH + sizeHint);
      payload.then(
        (bytes) => {
          part.bytes = bytes;
          this.releaseHeld();
        },
        (e: unknown) => {
          this.abort();
          this.stream.destroy(e instanceof Error ? e : new Error(String(e)));
        },
      );
      return this.hold(part, compressed ? 1 : 0, part.size);
    }
    if (payload.byteLength > 0xffff_ffff) encodeFrameHeader(payload.byteLength, compressed);
    if (this.recycle && isRecyclablePayload(payload)) (this.marked ??= new Set()).add(payload);
    if (this.held !== undefined) return this.hold(payload, compressed ? 1 : 0, FRAME_HEADER_LENGTH + payload.byteLength);
    return this.add(payload, compressed ? 1 : 0, FRAME_HEADER_LENGTH + payload.byteLength);
  }

  /**
   * Queues an uncompressed message of `size` bytes that `encode(out, pos)` writes at `pos` in
   * `out` (returning the end): the same as `writeMessage(payload)` for the payload it would write,
   * but a message batched behind others is encoded straight into the batch's buffer, so small
   * messages cost no buffer of their own and no copy.
   */
  writeEncoded(size: number, encode: (out: Buffer, pos: number) => number): boolean {
    const frameSize = FRAME_HEADER_LENGTH + size;
    if (this.closed || this.held !== undefined || !this.coalesce || frameSize >= COALESCE_BELOW || (this.batchBytes === 0 && this.inflight === 0)) {
      const frame = Buffer.allocUnsafe(frameSize);
      putHeader(frame, 0, size, false);
      encode(frame, FRAME_HEADER_LENGTH);
      return this.write(frame);
    }
    if (this.budget !== undefined) {
      this.counted += frameSize;
      this.budget.add(frameSize);
    }
    let open = this.open;
    let outOfRoom = false;
    if (open === undefined || open.byteLength - this.openEnd < frameSize) {
      // Out of room: what the old buffer holds joins the batch, which goes out below, and the
      // next buffer is twice the last (up to a batch), so a stream that batches a few messages
      // holds a small buffer, not a batch's worth.
      this.seal();
      outOfRoom = this.batchBytes > 0;
      this.openCapacity = Math.min(BATCH_LIMIT, this.openCapacity * 2);
      open = this.open = Buffer.allocUnsafe(Math.max(frameSize, this.openCapacity));
      this.openStart = 0;
      this.openEnd = 0;
    }
    // Encoded before anything is written: a write can call back into code that sizes the next
    // message (a push-style handler woken by a completed write), and the encoder holds only one.
    putHeader(open, this.openEnd, size, false);
    this.openEnd = encode(open, this.openEnd + FRAME_HEADER_LENGTH);
    this.batchBytes += frameSize;
    if (outOfRoom || this.batchBytes >= BATCH_LIMIT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(flushLater, this);
    }
    return !this.full;
  }

  /**
   * The buffer `writeEncoded` encodes batched messages into; [openStart, openEnd) is batched and
   * not yet a part. Dropped whenever the stream is idle, so an idle stream holds none.
   */
  private open: Buffer | undefined;
  private openStart = 0;
  private openEnd = 0;
  private openCapacity = MIN_OPEN / 2;

  /** Makes the messages encoded into the open buffer a part of the batch, so parts queued after them stay after them. */
  private seal(): void {
    if (this.openEnd === this.openStart) return;
    (this.parts ??= []).push(this.open!.subarray(this.openStart, this.openEnd));
    (this.flags ??= []).push(WHOLE);
    this.openStart = this.openEnd;
  }

  private dropOpen(): void {
    this.open = undefined;
    this.openStart = 0;
    this.openEnd = 0;
    this.openCapacity = MIN_OPEN / 2;
  }

  private hold(part: Uint8Array | HeldPart, flag: number, size: number): boolean {
    if (this.closed || this.closeWhenReleased !== undefined) return true;
    const held = (this.held ??= []);
    held.push(part instanceof HeldPart ? part : new HeldPart(flag, size, part));
    this.heldBytes += size;
    if (this.budget !== undefined) {
      this.counted += size;
      this.budget.add(size);
    }
    return !this.full;
  }

  /** Writes the held parts whose bytes are ready, in order, up to the first still being compressed. */
  private releaseHeld(): void {
    const held = this.held;
    if (held === undefined || this.closed) return;
    while (held.length > 0 && held[0]!.bytes !== undefined) {
      const part = held.shift()!;
      this.heldBytes -= part.size;
      // Counted again below at its real size.
      if (this.budget !== undefined) this.uncount(part.size);
      const bytes = part.bytes!;
      if (part.flag === WHOLE) this.add(bytes, WHOLE, bytes.byteLength);
      else this.add(bytes, part.flag, FRAME_HEADER_LENGTH + bytes.byteLength);
    }
    if (held.length > 0) return;
    this.held = undefined;
    const pending = this.closeWhenReleased;
    if (pending !== undefined) {
      this.closeWhenReleased = undefined;
      this.close(pending.then);
    } else if (this.waiters !== undefined && this.waiters.length > 0 && !this.full) {
      this.release();
    }
  }

  private add(part: Uint8Array, flag: number, size: number): boolean {
    if (this.closed) return true;
    if (this.budget !== undefined) {
      this.counted += size;
      this.budget.add(size);
    }
    if (!this.coalesce || size >= COALESCE_BELOW) {
      this.flushWith(part, flag);
    } else if (this.batchBytes === 0 && this.inflight === 0) {
      // Idle stream: nothing to coalesce with, so no reason to wait.
      this.writeOut(flag === WHOLE ? part : frameOf(part, flag));
    } else {
      this.seal();
      (this.parts ??= []).push(part);
      (this.flags ??= []).push(flag);
      this.batchBytes += size;
      if (this.batchBytes >= BATCH_LIMIT) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(flushLater, this);
      }
    }
    return !this.full;
  }

  /** Writes the pending batch now (before ending the stream, for instance). */
  flush(): void {
    if (this.batchBytes === 0) return;
    this.writeOut(this.takeBatch());
  }

  /** Flushes the batch and writes one large part after it, without copying the part. */
  private flushWith(part: Uint8Array, flag: number): void {
    const stream = this.stream;
    if (flag === WHOLE) {
      this.flush();
      this.writeOut(part);
      return;
    }
    // The header joins the batch; the payload follows it in the same corked write.
    this.seal();
    (this.parts ??= []).push(EMPTY);
    (this.flags ??= []).push(flag === 1 ? HEADER_OF_COMPRESSED : HEADER_OF_PLAIN);
    (this.headerLengths ??= []).push(part.byteLength);
    this.batchBytes += FRAME_HEADER_LENGTH;
    stream.cork();
    this.flush();
    this.writeOut(part);
    stream.uncork();
  }

  /** Payload lengths for header-only parts (HEADER_OF_*), in order. */
  private headerLengths: number[] | undefined;

  /** Builds the batch into one buffer (or returns its only whole frame) and empties it. */
  private takeBatch(): Uint8Array {
    this.seal();
    const parts = this.parts!;
    const flags = this.flags!;
    const n = this.batchBytes;
    this.batchBytes = 0;
    if (parts.length === 1 && flags[0] === WHOLE) {
      const only = parts[0]!;
      parts.length = 0;
      flags.length = 0;
      return only;
    }
    const out = Buffer.allocUnsafe(n);
    let pos = 0;
    let h = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const flag = flags[i]!;
      if (flag === WHOLE) {
        out.set(part, pos);
        pos += part.byteLength;
        continue;
      }
      if (flag >= HEADER_OF_PLAIN) {
        pos = putHeader(out, pos, this.headerLengths![h++]!, flag === HEADER_OF_COMPRESSED);
        continue;
      }
      pos = putHeader(out, pos, part.byteLength, flag === 1);
      out.set(part, pos);
      pos += part.byteLength;
    }
    parts.length = 0;
    flags.length = 0;
    if (h > 0) this.headerLengths!.length = 0;
    return out;
  }

  /** Resolves once `buffered` is below the high-water mark, or the writer closed. */
  writable(): Promise<void> {
    if (!this.full || this.closed) return Promise.resolve();
    const p = new Promise<void>((resolve) => (this.waiters ??= []).push(resolve));
    this.waitForBudget();
    return p;
  }

  // Full because of the shared budget rather than our own buffer: our own drain may never come
  // (another call holds the bytes), so wait for the budget too.
  private waitForBudget(): void {
    const budget = this.budget;
    if (budget === undefined || this.budgetWait || !budget.over) return;
    this.budgetWait = true;
    budget.whenAdmits(0, () => {
      this.budgetWait = false;
      if (this.waiters !== undefined && this.waiters.length > 0) {
        if (!this.full) this.release();
        else this.waitForBudget();
      }
    });
  }

  private uncount(bytes: number): void {
    const n = Math.min(bytes, this.counted);
    if (n <= 0) return;
    this.counted -= n;
    this.budget!.release(n);
  }

  /**
   * Flushes and stops: later writes are dropped and every waiter is released. `then` runs once
   * every accepted byte was handed to the stream (at once when nothing is paced); the caller ends
   * the stream there. Without `then`, paced bytes are handed over now, unpaced, so the caller may
   * end the stream right after close().
   */
  close(then?: () => void): void {
    if (this.closed) return;
    if (this.held !== undefined) {
      this.closeWhenReleased ??= { then };
      return;
    }
    this.flush();
    this.closed = true;
    this.dropOpen();
    this.release();
    if (this.pacedBytes === 0) then?.();
    else if (then !== undefined) this.onDrained = then;
    else {
      const rest = this.paced!;
      this.paced = undefined;
      this.pacedBytes = 0;
      for (const part of rest) this.writeNow(part);
    }
  }

  /** The stream ended or was destroyed: nothing this writer counted is buffered any more. */
  detach(): void {
    if (this.budget !== undefined) this.uncount(this.counted);
  }

  /** Drops everything unsent (the stream is gone) and releases waiters. */
  abort(): void {
    this.marked = undefined;
    this.recycling = undefined;
    this.held = undefined;
    this.heldBytes = 0;
    this.closeWhenReleased = undefined;
    this.paced = undefined;
    this.pacedBytes = 0;
    this.onDrained = undefined;
    this.parts = undefined;
    this.flags = undefined;
    this.headerLengths = undefined;
    this.batchBytes = 0;
    this.dropOpen();
    this.closed = true;
    if (this.budget !== undefined) this.uncount(this.counted);
    this.release();
  }

  /** @internal the setImmediate callback. */
  flushScheduled(): void {
    this.scheduled = false;
    this.flush();
  }

  private writeOut(buf: Uint8Array): void {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return;
    if (this.marked?.delete(buf) === true) {
      // Paced bytes go out before it: its last byte is written after everything handed or paced now.
      (this.recycling ??= []).push({ payload: buf, end: this.handed + this.pacedBytes + buf.byteLength });
    }
    if (this.paced !== undefined || (buf.byteLength > SLICE && this.inflight + buf.byteLength > this.highWaterMark)) {
      (this.paced ??= []).push(buf);
      this.pacedBytes += buf.byteLength;
      this.pace();
      return;
    }
    this.writeNow(buf);
  }

  /** Hands paced bytes to the stream, a slice at a time, while the bytes in flight allow. */
  private pace(): void {
    const paced = this.paced;
    if (paced === undefined) return;
    const stream = this.stream;
    while (paced.length > 0 && this.inflight < this.highWaterMark) {
      if (stream.destroyed || stream.writableEnded) return;
      const head = paced[0]!;
      const slice = head.byteLength <= SLICE ? head : head.subarray(0, SLICE);
      if (slice === head) paced.shift();
      else paced[0] = head.subarray(SLICE);
      this.pacedBytes -= slice.byteLength;
      this.writeNow(slice);
    }
    if (paced.length > 0) return;
    this.paced = undefined;
    const then = this.onDrained;
    this.onDrained = undefined;
    then?.();
  }

  private writeNow(buf: Uint8Array): void {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return;
    const n = buf.byteLength;
    this.inflight += n;
    this.handed += n;
    // One callback per writer, not a closure per write: a stream calls its write callbacks in the
    // order of the writes, so the sizes in flight form a queue.
    if (this.sizes === undefined) {
      // Sized for one write: most streams (a unary response, an idle stream's fan-out) make few.
      this.sizes = [n];
      this.sizesTail = 1;
    } else {
      this.sizes[this.sizesTail++] = n;
    }
    stream.write(buf, (this.onWritten ??= (error) => this.written(error)));
  }

  /**
   * Sizes of the writes whose callbacks are still to come, in [sizesHead, sizesTail). The array
   * is never shortened, so a stream that writes again and again reuses its storage.
   */
  private sizes: number[] | undefined;
  private sizesHead = 0;
  private sizesTail = 0;
  private onWritten: ((error?: Error | null) => void) | undefined;

  private written(error?: Error | null): void {
    const sizes = this.sizes!;
    const n = sizes[this.sizesHead++]!;
    this.inflight -= n;
    this.completed += n;
    if (this.recycling !== undefined) this.recycleWritten(error);
    if (this.budget !== undefined) this.uncount(n);
    if (this.sizesHead === this.sizesTail) {
      this.sizesHead = 0;
      this.sizesTail = 0;
      // Idle: nothing in flight; with nothing batched either, the open buffer goes (see `open`).
      if (this.batchBytes === 0 && this.open !== undefined) this.dropOpen();
    } else if (this.sizesHead >= 1024) {
      // A stream that always has a write in flight never empties the queue: move the rest down.
      sizes.copyWithin(0, this.sizesHead, this.sizesTail);
      this.sizesTail -= this.sizesHead;
      this.sizesHead = 0;
    }
    if (this.paced !== undefined) this.pace();
    if (this.waiters !== undefined && this.waiters.length > 0 && !this.full) this.release();
    if (this.onIdle !== undefined && this.idle) this.onIdle(this.stream);
  }

  /** Nothing in flight, batched, paced, held or counted, nobody waiting, not closed. */
  private get idle(): boolean {
    return (
      this.inflight === 0 &&
      this.batchBytes === 0 &&
      !this.scheduled &&
      this.paced === undefined &&
      this.held === undefined &&
      this.waiters === undefined &&
      !this.budgetWait &&
      this.counted === 0 &&
      !this.closed
    );
  }

  private recycleWritten(error: Error | null | undefined): void {
    const recycling = this.recycling!;
    // A failed write, or a stream torn down, may leave node holding the bytes: reuse nothing.
    if (error != null || this.stream.destroyed) {
      this.recycling = undefined;
      return;
    }
    while (recycling.length > 0 && recycling[0]!.end <= this.completed) recyclePayload(recycling.shift()!.payload);
  }

  private release(): void {
    const w = this.waiters;
    if (w === undefined || w.length === 0) return;
    this.waiters = undefined;
    for (const resolve of w) resolve();
  }
}

/** A message held behind one being compressed; `bytes` is set once it is ready. */
class HeldPart {
  constructor(
    readonly flag: number,
    readonly size: number,
    public bytes?: Uint8Array,
  ) {}
}

const EMPTY = new Uint8Array(0);
/** The first open buffer's size (see writeEncoded): small enough to come from node's pool. */
const MIN_OPEN = 1024;
/** Flags of header-only parts (their payload is written separately, uncopied). */
const HEADER_OF_PLAIN = 2;
const HEADER_OF_COMPRESSED = 3;

function flushLater(writer: FrameWriter): void {
  writer.flushScheduled();
}

function frameOf(payload: Uint8Array, flag: number): Uint8Array {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.byteLength);
  putHeader(out, 0, payload.byteLength, flag === 1);
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}
