/** `subscribeTopic`: the resuming client helper (`subscribe`) applied to the hub's Subscribe. */
import type { BackoffOptions } from "../../channel/backoff.js";
import type { Client } from "../../client/client.js";
import { subscribe, type SubscribeOptions } from "../../client/subscribe.js";
import type { Event, PubSubService } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
import type { CallOptions } from "../../client/call-options.js";
import { minBookmarkIntervalMs, subscriptionStartKey } from "./hub.js";

/** Options of `subscribeTopic`. */
export interface SubscribeTopicOptions {
  /** Start after this event id. Default: with the next event published. */
  after?: string | undefined;
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
  return subscribe(client.subscribe, {
    makeRequest: (after) => ({ topic, bookmarkIntervalMs: interval, ...(after === undefined ? {} : { afterEventId: after }) }),
    idOf: (ev) => ev.eventId,
    isBookmark: (ev) => ev.bookmark,
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
