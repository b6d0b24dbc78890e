/**
 * A hub subscription for browsers: the events of one topic, each once and in order, across
 * network drops and server restarts, over any Connect-es transport (connect-web's
 * `createConnectTransport` or `createGrpcWebTransport` in a page; connect-node's elsewhere).
 *
 * The same rules as Rill's Node `subscribeTopic`, written without `node:` modules:
 * - It resubscribes after the last event it delivered (or from the position the hub named in
 *   `rill-subscription-start` when none arrived yet) on failures a new stream can fix:
 *   unavailable, resource_exhausted (fell behind), aborted, internal, unknown (a failed fetch),
 *   canceled not caused by `signal`, and a silent stream (below). Anything else is thrown:
 *   out_of_range and data_loss mean the hub can no longer resume, and skipping ahead would lose
 *   events silently.
 * - With `bookmarkIntervalMs`, the hub sends a position after that long without an event (a
 *   heartbeat proxies see as traffic), and a stream that brings nothing for three intervals is
 *   taken as dead and replaced: a proxy that silently dropped the connection cannot stall it.
 * - Waits between attempts follow gRPC's connection backoff (1 s, ×1.6, ±20 %, at most 120 s by
 *   default), reset once a stream is accepted.
 * - A stream the hub ends cleanly (Unsubscribe) ends the iteration.
 */
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { PubSubService, type Event } from "../../gen/rill/pubsub/v1/pubsub_pb.js";

/** What the subscription is doing, for a page that shows it. */
export type SubscriptionState = "connecting" | "live" | "reconnecting" | "ended";

/** Options of the browser `subscribeTopic`. */
export interface WebSubscribeOptions {
  /** Start after this event id. Default: where `from` says. */
  after?: string | undefined;
  /** Without `after`: `"oldest"` replays what the hub retains, a `Date` starts at the first event published since. Default: the next event. */
  from?: "oldest" | Date | undefined;
  /**
   * Snapshot, then changes: events already in the log come with `history` set, then
   * `onHistoryEnd(position)` is called once, before any live event (a page shows "loaded").
   */
  history?: boolean | undefined;
  onHistoryEnd?: ((position: string) => void) | undefined;
  /** Aborting ends the iteration (its pending `next()` rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
  /** Heartbeat: a bookmark after this long without an event (at least 100 ms); see the module comment. Default none. */
  bookmarkIntervalMs?: number | undefined;
  /** The wait between attempts. */
  backoff?: { initialMs?: number; multiplier?: number; jitter?: number; maxMs?: number } | undefined;
  /** Told of every change of state, with the error and the wait before the next attempt when reconnecting. */
  onState?: ((state: SubscriptionState, detail: { error?: ConnectError; delayMs?: number; after?: string | undefined }) => void) | undefined;
  /** Extra request headers of each attempt (authentication). */
  headers?: Record<string, string> | undefined;
}

const retryOn = new Set([Code.Unavailable, Code.ResourceExhausted, Code.Aborted, Code.Internal, Code.Unknown, Code.Canceled, Code.DeadlineExceeded]);
const startHeader = "rill-subscription-start";
const minBookmarkIntervalMs = 100;

/**
 * The events of `topic` from a Rill pub/sub hub, resuming after failures (see the module comment).
 *
 *   const transport = createConnectTransport({ baseUrl: location.origin });
 *   for await (const ev of subscribeTopic(transport, "news", { bookmarkIntervalMs: 5000 })) show(ev);
 */
export function subscribeTopic(transport: Transport, topic: string, options: WebSubscribeOptions = {}): AsyncIterable<Event> {
  const client = createClient(PubSubService, transport);
  const signal = options.signal;
  const interval = options.bookmarkIntervalMs ?? 0;
  const idleMs = interval > 0 ? 3 * Math.max(minBookmarkIntervalMs, interval) : 0;
  const b = { initialMs: 1000, multiplier: 1.6, jitter: 0.2, maxMs: 120_000, ...options.backoff };
  return {
    async *[Symbol.asyncIterator]() {
      let after = options.after;
      const from = options.from;
      const start = from === undefined ? {} : from === "oldest" ? { fromOldest: true } : { since: timestampFromMs(from.getTime()) };
      let historyPending = options.history === true;
      let wait = b.initialMs;
      let state = "connecting" as SubscriptionState;
      const report = (next: SubscriptionState, detail: { error?: ConnectError; delayMs?: number } = {}) => {
        state = next;
        options.onState?.(next, { ...detail, after });
      };
      report("connecting");
      for (;;) {
        signal?.throwIfAborted();
        const attempt = new AbortController();
        const onAbort = () => attempt.abort(signal?.reason);
        signal?.addEventListener("abort", onAbort, { once: true });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const touch = () => {
          if (idleMs === 0) return;
          if (timer !== undefined) clearTimeout(timer);
          timer = setTimeout(() => attempt.abort(new ConnectError(`no event or heartbeat for ${idleMs} ms`, Code.DeadlineExceeded)), idleMs);
        };
        touch();
        try {
          const request = { topic, bookmarkIntervalMs: interval, markHistory: historyPending, ...(after === undefined ? start : { afterEventId: after }) };
          const stream = client.subscribe(request, {
            signal: attempt.signal,
            headers: options.headers,
            onHeader: (h) => {
              wait = b.initialMs;
              // The hub's name for where this stream starts (a bare "0-0" comes back with its
              // history's epoch, so losing that history is DATA_LOSS, not a silent new start).
              after = h.get(startHeader) || after;
              report("live");
            },
          });
          for await (const ev of stream) {
            touch();
            after = ev.eventId;
            if (state !== "live") report("live");
            if (ev.historyEnd && historyPending) {
              historyPending = false;
              options.onHistoryEnd?.(ev.eventId);
            }
            if (!ev.bookmark) yield ev;
          }
          report("ended");
          return;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          const reason = attempt.signal.aborted ? attempt.signal.reason : e;
          const error = ConnectError.from(reason);
          if (!retryOn.has(error.code)) throw error;
          const delay = Math.min(wait, b.maxMs) * (1 + b.jitter * (Math.random() * 2 - 1));
          wait = Math.min(wait * b.multiplier, b.maxMs);
          report("reconnecting", { error, delayMs: Math.round(delay) });
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => {
              signal?.removeEventListener("abort", stop);
              resolve();
            }, delay);
            const stop = () => {
              clearTimeout(t);
              reject(signal?.reason);
            };
            signal?.addEventListener("abort", stop, { once: true });
          });
        } finally {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          attempt.abort();
        }
      }
    },
  };
}
