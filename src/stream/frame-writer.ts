import type { Writable } from "node:stream";

/** Frames smaller than this are coalesced; larger ones are written as they are (no copy). */
const COALESCE_BELOW = 16 * 1024;
/** A coalesced batch is written out once it reaches this size, even within one event-loop turn. */
const BATCH_LIMIT = 64 * 1024;

/**
 * Writes gRPC frames to one HTTP/2 stream with byte-accurate backpressure and write coalescing.
 *
 * Backpressure: `buffered` counts bytes handed to the stream whose write callback has not fired
 * yet (node:http2 fires it once the data went to the session, i.e. within the peer's flow-control
 * window) plus the batch not yet written. `write()` returns false at `highWaterMark`; producers
 * then await `writable()`. So a stalled reader costs at most window + high-water mark.
 *
 * Coalescing: small frames written in one event-loop turn are joined and written once (at the
 * end of the turn, via setImmediate, or as soon as the batch reaches 64 KiB): many small messages
 * become few DATA frames and syscalls, and a lone message waits at most until the loop's check
 * phase. Order is always preserved.
 */
export class FrameWriter {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private inflight = 0;
  private scheduled = false;
  private waiters: Array<() => void> = [];
  private closed = false;
  private readonly flushLater = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly stream: Writable,
    readonly highWaterMark: number,
    private readonly coalesce = true,
  ) {}

  /** Bytes accepted but not yet taken by the HTTP/2 session. */
  get buffered(): number {
    return this.inflight + this.batchBytes;
  }

  /** True while `buffered` is at or above the high-water mark. */
  get full(): boolean {
    return this.inflight + this.batchBytes >= this.highWaterMark;
  }

  /** Queues one whole frame. Returns false when the caller should wait for `writable()`. */
  write(frame: Uint8Array): boolean {
    if (this.closed) return true;
    if (!this.coalesce || frame.byteLength >= COALESCE_BELOW) {
      this.flush();
      this.writeOut(frame);
    } else {
      this.batch.push(frame);
      this.batchBytes += frame.byteLength;
      if (this.batchBytes >= BATCH_LIMIT) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushLater);
      }
    }
    return !this.full;
  }

  /** Writes the pending batch now (before ending the stream, for instance). */
  flush(): void {
    const n = this.batchBytes;
    if (n === 0) return;
    const batch = this.batch;
    const buf = batch.length === 1 ? batch[0]! : Buffer.concat(batch, n);
    this.batch = [];
    this.batchBytes = 0;
    this.writeOut(buf);
  }

  /** Resolves once `buffered` is below the high-water mark, or the writer closed. */
  writable(): Promise<void> {
    if (!this.full || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Flushes and stops: later writes are dropped and every waiter is released. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.release();
  }

  /** Drops everything unsent (the stream is gone) and releases waiters. */
  abort(): void {
    this.batch = [];
    this.batchBytes = 0;
    this.closed = true;
    this.release();
  }

  private writeOut(buf: Uint8Array): void {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return;
    const n = buf.byteLength;
    this.inflight += n;
    stream.write(buf, () => {
      this.inflight -= n;
      if (this.waiters.length > 0 && !this.full) this.release();
    });
  }

  private release(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}
