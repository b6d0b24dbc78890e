/**
 * Subscriptions that survive failure: `subscribe()` wraps any server-streaming method whose
 * events carry an id and whose request can say "after this id", and turns it into one
 * iterable that resubscribes after the last event it delivered whenever the stream breaks.
 *
 * Invariants:
 * - The application sees each event once, in order, across reconnects and server restarts,
 *   provided the server resumes exactly after the id it is given (Rill's hub does).
 * - It resubscribes only for failures a new stream can fix (`retryOn`: UNAVAILABLE — lost
 *   connection, GOAWAY, server shutdown —, RESOURCE_EXHAUSTED — fell behind —, ABORTED,
 *   INTERNAL, UNKNOWN, and CANCELLED not caused by its own signal), waiting between attempts
 *   with the gRPC connection backoff (`ConnectionBackoff`), reset once a stream is accepted.
 * - Anything else is thrown as the `RpcError` it is. In particular OUT_OF_RANGE (the position
 *   was trimmed; the hub names the first available id in the message and in the
 *   `rill-first-event-id` trailer) and DATA_LOSS (the server's log no longer knows the id) are
 *   never papered over by skipping ahead.
 * - A stream that ends with OK (for example after Unsubscribe) ends the iteration.
 * - Bookmarks (`isBookmark`) move the position without reaching the application. With an idle
 *   timeout in `callOptions`, a stream silent for that long (no event, no bookmark) is taken as
 *   dead and replaced, like a lost connection.
 * - Aborting `signal`, or leaving the loop, cancels the current stream and any wait.
 *
 * How to use it with your own method: give `makeRequest(after)` (the request that resumes after
 * `after`, or starts fresh when it is undefined) and `idOf(event)`. If your server tells the
 * start position in a response header, give `positionFromHeader` so a subscriber that has not
 * seen an event yet resumes from there instead of "from now" (the header must name the position
 * the stream starts after: the one requested, or the head).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectionBackoff, type BackoffOptions } from "../channel/backoff.js";
import { IdleTimeoutError, RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { Metadata } from "../protocol/metadata.js";
import type { CallOptions } from "./call-options.js";

/** A server-streaming client method: `client.someMethod`. */
export type StreamingMethod<Req, Ev> = (request: Req, options?: CallOptions) => AsyncIterable<Ev>;

/** Options of `subscribe`. */
export interface SubscribeOptions<Req, Ev> {
  /** The request that starts the stream after `after` (undefined: no position yet). */
  makeRequest: (after: string | undefined) => Req;
  /** The id of an event, as the request's "after" takes it. */
  idOf: (event: Ev) => string;
  /** Start after this id. Default: whatever the server does without one (usually "from now"). */
  after?: string | undefined;
  /** Aborting ends the iteration (the pending `next()` rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
  /** The wait between attempts. Default: the gRPC connection backoff's (1 s, ×1.6, ±20 %, ≤ 120 s). */
  backoff?: BackoffOptions | undefined;
  /** Reads the stream's start position from its response headers (used until an event arrives). */
  positionFromHeader?: ((header: Metadata) => string | undefined) | undefined;
  /** Status codes that make it resubscribe. Default: see the module comment. */
  retryOn?: readonly Code[] | undefined;
  /** Options of every call (timeouts make little sense here). `waitForReady` defaults to true. */
  callOptions?: CallOptions | undefined;
  /** Tells a bookmark (a position without an event) from an event; bookmarks are not yielded. */
  isBookmark?: ((event: Ev) => boolean) | undefined;
  /** Told about each failure it recovers from, with the delay before the next attempt. */
  onRetry?: ((error: RpcError, delayMs: number, after: string | undefined) => void) | undefined;
}

const defaultRetryOn: readonly Code[] = [Code.Unavailable, Code.ResourceExhausted, Code.Aborted, Code.Internal, Code.Unknown, Code.Canceled];

/**
 * Subscribes through `method` and keeps the subscription alive across failures: see the module
 * comment. Nothing is sent until the iteration starts.
 */
export function subscribe<Req, Ev>(method: StreamingMethod<Req, Ev>, options: SubscribeOptions<Req, Ev>): AsyncIterable<Ev> {
  const retryOn = new Set(options.retryOn ?? defaultRetryOn);
  const signal = options.signal;
  return {
    async *[Symbol.asyncIterator]() {
      const backoff = new ConnectionBackoff(options.backoff);
      let after = options.after;
      for (;;) {
        signal?.throwIfAborted();
        backoff.begin();
        const base = options.callOptions ?? {};
        const callOptions: CallOptions = {
          waitForReady: true,
          ...base,
          onHeader: (md) => {
            backoff.reset();
            // The server's name for where this stream starts: the position asked for, or now. Taken
            // even when we asked for one, since it may say more (a Redis hub names "0-0" with the
            // history's epoch, so a restart that loses that history is DATA_LOSS, not a new start).
            after = options.positionFromHeader?.(md) ?? after;
            base.onHeader?.(md);
          },
        };
        if (signal !== undefined) callOptions.signal = signal;
        try {
          for await (const ev of method(options.makeRequest(after), callOptions)) {
            after = options.idOf(ev);
            if (options.isBookmark?.(ev) !== true) yield ev;
          }
          return;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          const error = RpcError.from(e, Code.Unknown);
          // A stream silent past its idle timeout is dead to us, whatever the code says.
          if (!retryOn.has(error.code) && !(error instanceof IdleTimeoutError)) throw error;
          const delay = backoff.fail();
          options.onRetry?.(error, delay, after);
          await sleep(delay, undefined, signal === undefined ? {} : { signal }).catch(() => {
            throw signal!.reason;
          });
        }
      }
    },
  };
}
