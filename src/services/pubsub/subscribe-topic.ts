/** `subscribeTopic`: the resuming client helper (`subscribe`) applied to the hub's Subscribe. */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { BackoffOptions } from "../../channel/backoff.js";
import type { Client } from "../../client/client.js";
import { subscribe, type SubscribeOptions } from "../../client/subscribe.js";
import type { Event, PubSubService } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
import type { CallOptions } from "../../client/call-options.js";
import { minBookmarkIntervalMs, subscriptionStartKey } from "./hub.js";

/** Options of `subscribeTopic`. */
export interface SubscribeTopicOptions {
  /** Start after this event id. Default: where `from` says. */
  after?: string | undefined;
  /**
   * Without `after`: `"oldest"` replays every event the hub retains, a `Date` starts with the
   * first event published at or after it (OUT_OF_RANGE if retention trimmed one). Default: the
   * next event published.
   */
  from?: "oldest" | Date | undefined;
  /**
   * Snapshot, then changes: events that were in the log when the subscription began come with
   * `history` set, and `onHistoryEnd(position)` is called once they are all out (before any live
   * event). A resubscribe before that point asks again; after it, never.
   */
  history?: boolean | undefined;
  onHistoryEnd?: ((position: string) => void) | undefined;
  /** Aborting ends the iteration. */
  signal?: AbortSignal | undefined;
  /** Wait between resubscribe attempts (gRPC connection backoff by default). */
  backoff?: BackoffOptions | undefined;
  /** Told about each failure recovered from. */
  onRetry?: SubscribeOptions<unknown, Event>["onRetry"];
  /**
   * Ask the hub for a bookmark after this long without an event (at least 100 ms): the position
   * advances on quiet topics, proxies see traffic, and a stream silent for three intervals is
   * taken as dead and replaced. Default: none.
   */
  bookmarkIntervalMs?: number | undefined;
  /** Called with each stream's response headers (`rill-subscription-id` is there). */
  onHeader?: SubscribeOptions<unknown, Event>["callOptions"] extends infer C ? (C extends { onHeader?: infer H } ? H : never) : never;
}

/**
 * The events of one hub topic, each once and in order, across reconnects and server restarts;
 * throws OUT_OF_RANGE / DATA_LOSS when the hub can no longer resume. Ends when the
 * subscription is ended with Unsubscribe.
 *
 *   for await (const ev of subscribeTopic(client, "orders", { signal })) handle(ev);
 */
export function subscribeTopic(client: Client<typeof PubSubService>, topic: string, options: SubscribeTopicOptions = {}): AsyncIterable<Event> {
  const interval = options.bookmarkIntervalMs ?? 0;
  const callOptions: CallOptions = {};
  if (options.onHeader !== undefined) callOptions.onHeader = options.onHeader;
  if (interval > 0) callOptions.idleTimeoutMs = 3 * Math.max(minBookmarkIntervalMs, interval);
  if (options.after !== undefined && options.from !== undefined) throw new TypeError("subscribeTopic: give `after` or `from`, not both");
  const from = options.from;
  const start = from === undefined ? {} : from === "oldest" ? { fromOldest: true } : { since: timestampFromMs(from.getTime()) };
  let historyPending = options.history === true;
  return subscribe(client.subscribe, {
    makeRequest: (after) => ({ topic, bookmarkIntervalMs: interval, markHistory: historyPending, ...(after === undefined ? start : { afterEventId: after }) }),
    idOf: (ev) => ev.eventId,
    isBookmark: (ev) => {
      if (ev.historyEnd && historyPending) {
        historyPending = false;
        options.onHistoryEnd?.(ev.eventId);
      }
      return ev.bookmark;
    },
    after: options.after,
    signal: options.signal,
    backoff: options.backoff,
    onRetry: options.onRetry,
    positionFromHeader: (md) => {
      const v = md.get(subscriptionStartKey);
      return typeof v === "string" && v !== "" ? v : undefined;
    },
    callOptions,
  });
}
