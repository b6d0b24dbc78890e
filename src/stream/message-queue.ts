import type { Frame } from "../protocol/frame.js";
import { loopTurn } from "./loop-turn.js";

/**
 * How long one queue's reader may work per turn of the event loop before its next message waits
 * for the next turn (see loop-turn.ts). Reader time is the time from handing a message over to
 * the reader's next `next()`, so a reader that takes large messages quickly is never slowed, and
 * one that hashes each 64 KiB transfer chunk (~65 µs) yields every few chunks. Only messages of
 * at least `fromBytes` are timed (two clock reads each); smaller ones are never deferred. The first
 * message of a turn always goes through.
 */
export interface TurnBudget {
  readonly ms: number;
  readonly fromBytes: number;
  readonly now: () => number;
}

export const defaultTurnBudget: TurnBudget = Object.freeze({ ms: 0.25, fromBytes: 16 * 1024, now: () => performance.now() });

/** How a queue tells its source to stop and start sending, and what to do when its reader leaves. */
export interface QueueSource {
  /** Stop delivering frames: the reader is `highWaterMark` bytes behind. */
  pause(): void;
  /** Deliver again: the reader caught up. */
  resume(): void;
  /** The reader stopped early (`break` out of `for await`, or `return()`); the source should cancel. */
  abandon(): void;
  /** The reader took queued bytes (for a source that accounts for what is buffered). */
  consumed?(): void;
}

/**
 * The inbound messages of one gRPC stream as an async iterator, with backpressure.
 *
 * Frames are pushed as they arrive and decoded only when the reader pulls them, so a decode
 * error surfaces in order, after every message before it. While more than `highWaterMark`
 * bytes wait unread, the source is paused: with HTTP/2 that stops WINDOW_UPDATEs, so the
 * peer's sender stalls and memory stays bounded by window + high-water mark.
 *
 * A reader is handed at most a `TurnBudget` per turn of the event loop: past that, the next
 * message waits for a `setImmediate`, so a reader that works hard per message (a transfer hashing
 * its chunks) does that work outside node's socket reads and another stream's message read in the
 * same burst is not held behind it. Deferred messages stay queued, so they count against the
 * high-water mark like any other.
 *
 * Invariants: messages come out in the order pushed; after `end()` the reader sees every
 * queued message and then `done`; after `fail(e)` it sees every queued message and then `e`,
 * unless `fail` was told to be immediate (our own cancellation, where the rest is moot). A waiting
 * reader with messages queued is one whose next message was deferred to the next turn.
 */
export class MessageQueue<T> implements AsyncIterableIterator<T> {
  private frames: Frame[] = [];
  private head = 0;
  private bytes = 0;
  private paused = false;
  private closed = false;
  private failure: unknown = undefined;
  // The waiting reader's resolve and reject, as two fields rather than an object per wait.
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private waiterReject: ((e: unknown) => void) | undefined;
  /**
   * The reader's time in `turn` (ms), when the message it works on was handed over (-1: not
   * timed), and whether a deferred reader's wake-up is scheduled.
   */
  private readerMs = 0;
  private turn = -1;
  private handedAt = -1;
  private waking = false;

  constructor(
    /** May answer with a Promise (a large compressed message decompressed off the event loop). */
    private readonly decode: (frame: Frame) => T | Promise<T>,
    private readonly source: QueueSource,
    private readonly highWaterMark: number,
    private readonly budget: TurnBudget = defaultTurnBudget,
  ) {}

  /** Adds a frame; wakes a waiting reader at once. */
  push(frame: Frame): void {
    if (this.closed) return;
    const w = this.waiter;
    if (w !== undefined && this.head === this.frames.length && this.withinTurn(frame.data.byteLength)) {
      const reject = this.waiterReject!;
      this.waiter = undefined;
      this.waiterReject = undefined;
      let value: T | Promise<T>;
      try {
        value = this.decode(frame);
      } catch (e) {
        this.closed = true;
        this.failure = e;
        reject(e);
        return;
      }
      if (value instanceof Promise) value.then((v) => w({ value: v, done: false }), (e: unknown) => reject(this.decodeFailed(e)));
      else w({ value, done: false });
      return;
    }
    this.frames.push(frame);
    this.bytes += frame.data.byteLength;
    if (!this.paused && this.bytes > this.highWaterMark) {
      this.paused = true;
      this.source.pause();
    }
    if (w !== undefined) this.wakeNextTurn();
  }

  /** No more frames will come; the reader gets `done` after the queued ones. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.settleWaiter();
  }

  /**
   * The stream failed with `error`. The reader sees it after the queued messages, or at once
   * when `immediate` (queued messages are dropped).
   */
  fail(error: unknown, immediate = false): void {
    if (this.closed && this.failure !== undefined) return;
    if (this.closed && !immediate) return;
    this.closed = true;
    this.failure = error;
    if (immediate) this.drop();
    this.settleWaiter();
  }

  /** True once the queue ended and its reader took everything and is not waiting: nothing left to tell it. */
  get drained(): boolean {
    return this.closed && this.head === this.frames.length && this.waiter === undefined;
  }

  /** Bytes of messages queued and not yet taken by the reader. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** True once `end` or `fail` was called. */
  get ended(): boolean {
    return this.closed;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.handedAt >= 0) {
      // The reader is back for more: what it spent on the last (timed) message counts.
      this.readerMs += this.budget.now() - this.handedAt;
      this.handedAt = -1;
    }
    if (this.head < this.frames.length) {
      const frame = this.frames[this.head]!;
      if (!this.withinTurn(frame.data.byteLength)) {
        this.wakeNextTurn();
        return this.wait();
      }
      this.frames[this.head++] = undefined as unknown as Frame;
      this.bytes -= frame.data.byteLength;
      if (this.head === this.frames.length) {
        this.frames.length = 0;
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.frames.length) {
        this.frames = this.frames.slice(this.head);
        this.head = 0;
      }
      if (this.paused && this.bytes <= this.highWaterMark / 2) {
        this.paused = false;
        this.source.resume();
      }
      this.source.consumed?.();
      let value: T | Promise<T>;
      try {
        value = this.decode(frame);
      } catch (e) {
        return Promise.reject(this.decodeFailed(e));
      }
      if (value instanceof Promise) {
        return value.then(
          (v) => ({ value: v, done: false }),
          (e: unknown) => {
            throw this.decodeFailed(e);
          },
        );
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) {
      return this.failure === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.failure);
    }
    if (this.paused) {
      this.paused = false;
      this.source.resume();
    }
    return this.wait();
  }

  private wait(): Promise<IteratorResult<T>> {
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.waiterReject = reject;
    });
  }

  /**
   * Whether a message of `bytes` may be handed over now: yes for a small one, for the first of a
   * turn, and while the reader's time in this turn is under budget. Times the message if large.
   */
  private withinTurn(bytes: number): boolean {
    const budget = this.budget;
    if (bytes < budget.fromBytes) return true;
    const turn = loopTurn();
    if (turn !== this.turn) {
      this.turn = turn;
      this.readerMs = 0;
    } else if (this.readerMs >= budget.ms) {
      return false;
    }
    this.handedAt = budget.now();
    return true;
  }

  /** Hands the waiting reader its next message in the next turn (after the turn itself advanced). */
  private wakeNextTurn(): void {
    if (this.waking) return;
    this.waking = true;
    setImmediate(wake, this);
  }

  /** @internal the deferred reader's wake-up. */
  wakeDeferred(): void {
    this.waking = false;
    const w = this.waiter;
    // Settled meanwhile (ended, failed, left): nothing to hand over.
    if (w === undefined || this.head === this.frames.length) return;
    const reject = this.waiterReject!;
    this.waiter = undefined;
    this.waiterReject = undefined;
    this.next().then(w, reject);
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.closed = true;
      this.drop();
      this.source.abandon();
    }
    this.settleWaiter();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** A message that cannot be decoded ends the queue: the reader sees the error, and nothing after it. */
  private decodeFailed(e: unknown): unknown {
    this.closed = true;
    this.failure = e;
    this.drop();
    return e;
  }

  private drop(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }

  private settleWaiter(): void {
    const w = this.waiter;
    if (w === undefined || this.head < this.frames.length) return;
    const reject = this.waiterReject!;
    this.waiter = undefined;
    this.waiterReject = undefined;
    if (this.failure === undefined) w({ value: undefined, done: true });
    else reject(this.failure);
  }
}

function wake(queue: { wakeDeferred(): void }): void {
  queue.wakeDeferred();
}
