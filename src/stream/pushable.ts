import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";

/**
 * An async iterable that producers push into: the bridge from push-style code (events,
 * several concurrent producers) to the pull-style iterables that Rill sends.
 *
 * `push` resolves once the value is queued under `highWaterMark` values, so producers that
 * await it never run ahead of the reader; values from one producer keep their order, and each
 * value is delivered whole (boundaries are never mixed). Only one reader may iterate.
 */
export interface Pushable<T> extends AsyncIterable<T> {
  /** Queues a value; resolves when there is room. Rejects once the iterable was ended or its reader left. */
  push(value: T): Promise<void>;
  /** Queues a value if there is room now; false means full (wait with `writable()`) or ended. */
  tryPush(value: T): boolean;
  /** Resolves when `tryPush` would accept a value (or the iterable ended). */
  writable(): Promise<void>;
  /** Ends the iterable: the reader sees the queued values, then done. Idempotent. */
  end(): void;
  /** Ends the iterable with an error the reader sees after the queued values. */
  fail(error: unknown): void;
  /** True after `end`, `fail`, or the reader leaving. */
  readonly ended: boolean;
}

/** Creates a Pushable that holds at most `highWaterMark` values (default 16) before producers wait. */
export function createPushable<T>(options: { highWaterMark?: number } = {}): Pushable<T> {
  const highWaterMark = Math.max(1, options.highWaterMark ?? 16);
  const queue: T[] = [];
  let head = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let reader: ((r: IteratorResult<T>) => void) | undefined;
  let readerReject: ((e: unknown) => void) | undefined;
  let roomWaiters: Array<() => void> = [];
  let iterating = false;

  const size = () => queue.length - head;
  const wakeProducers = () => {
    if (roomWaiters.length === 0 || (size() >= highWaterMark && !ended)) return;
    const waiters = roomWaiters;
    roomWaiters = [];
    for (const w of waiters) w();
  };
  const closedError = () => new RpcError(Code.Canceled, "the stream was ended; no more messages can be sent");

  const tryPush = (value: T): boolean => {
    if (ended || size() >= highWaterMark) return false;
    if (reader !== undefined) {
      const r = reader;
      reader = undefined;
      readerReject = undefined;
      r({ value, done: false });
      return true;
    }
    queue.push(value);
    return true;
  };

  const writable = (): Promise<void> =>
    ended || size() < highWaterMark ? Promise.resolve() : new Promise((resolve) => roomWaiters.push(resolve));

  const push = async (value: T): Promise<void> => {
    for (;;) {
      if (ended) throw closedError();
      if (tryPush(value)) return;
      await writable();
    }
  };

  const finish = (f: { error: unknown } | undefined) => {
    if (ended) return;
    ended = true;
    pushable.ended = true;
    failure = f;
    if (reader !== undefined && size() === 0) {
      const r = reader;
      const j = readerReject!;
      reader = undefined;
      readerReject = undefined;
      if (f === undefined) r({ value: undefined, done: true });
      else j(f.error);
    }
    wakeProducers();
  };

  const iterator: AsyncIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (size() > 0) {
        const value = queue[head]!;
        queue[head++] = undefined as T;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        wakeProducers();
        return Promise.resolve({ value, done: false });
      }
      if (ended) return failure === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(failure.error);
      return new Promise((resolve, reject) => {
        reader = resolve;
        readerReject = reject;
      });
    },
    return(): Promise<IteratorResult<T>> {
      queue.length = 0;
      head = 0;
      finish(undefined);
      return Promise.resolve({ value: undefined, done: true });
    },
  };

  // `ended` is a data property that finish() keeps in step, not a getter: a getter in an object
  // literal is a new hidden class per object (see server/call-peer.ts).
  const pushable: { -readonly [K in keyof Pushable<T>]: Pushable<T>[K] } = {
    push,
    tryPush,
    writable,
    end: () => finish(undefined),
    fail: (error: unknown) => finish({ error }),
    ended: false,
    [Symbol.asyncIterator]() {
      if (iterating) throw new Error("a Pushable can be iterated only once");
      iterating = true;
      return iterator;
    },
  };
  return pushable;
}
