/**
 * The event log behind the hub: per topic, an append-only sequence of events with ids that are
 * totally ordered and opaque to clients. Backends: `createMemoryLog` (one process) and
 * `createRedisLog` (Redis Streams, shared by many server processes).
 *
 * Invariants every backend keeps:
 * - `read(topic, after)` returns exactly the retained events with ids greater than `after`, in
 *   order. It never silently skips: when events after `after` were trimmed it throws
 *   OUT_OF_RANGE (trailers `rill-first-event-id` and `rill-oldest-position`), when the log cannot know `after` (another
 *   log, a reset one) DATA_LOSS, when `after` is not an id of this backend INVALID_ARGUMENT.
 * - `follow` delivers every event appended after its `after` position, in order, once, to the
 *   listener, whichever process appended it.
 */
import { RpcError } from "../../errors.js";
import { Code } from "../../protocol/code.js";
import { Metadata } from "../../protocol/metadata.js";

/** One event as the log stores it. */
export interface StoredEvent {
  readonly id: string;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** Epoch milliseconds at which the log accepted it. */
  readonly publishedAt: number;
  readonly key?: string | undefined;
}

/** What `append` did: the event, and whether it already existed (same idempotency key). */
export interface AppendResult {
  readonly event: StoredEvent;
  readonly duplicate: boolean;
}

/** A topic as the log knows it. */
export interface TopicInfo {
  readonly name: string;
  /** The newest event's id, or "" when none is retained. */
  readonly lastEventId: string;
}

/** A live tail of one topic; `stop()` ends it (the listener is not called afterwards). */
export interface Follower {
  stop(): void;
}

/** Receives followed events, in order; `onError` ends the tail (the log went away). */
export interface FollowListener {
  onEvent(event: StoredEvent): void;
  onError(error: RpcError): void;
}

/** Retention shared by the backends: whichever limit is hit first trims the oldest events. */
export interface RetentionOptions {
  /** Events kept per topic. Default 10_000; 0 = no count limit. */
  maxEvents?: number;
  /** Age after which events are trimmed, in ms. Default 3_600_000 (1 h); 0 = no age limit. */
  maxAgeMs?: number;
}

/**
 * A broadcast channel among every process sharing one log (Redis pub/sub), so an Unsubscribe
 * that reaches one instance can end a stream held by another. Messages are small strings.
 */
export interface ControlChannel {
  /** Sends to every listener, this process's included; resolves with how many received it. */
  publish(message: string): Promise<number>;
  /** Resolves once `handler` receives every later message; the returned function stops it. */
  listen(handler: (message: string) => void): Promise<() => void>;
}

/** An event log backend. */
export interface EventLog {
  /** Present when several processes share the log (Redis); absent for a one-process log. */
  readonly control?: ControlChannel;
  /** A short name for logs and ListTopics ("memory", "redis"). */
  readonly kind: string;
  /**
   * Appends an event. With a `key` the topic has seen (and still retains), appends nothing and
   * returns the earlier event with `duplicate: true`.
   */
  append(topic: string, payload: Uint8Array, key?: string): Promise<AppendResult>;
  /** The position just before the topic's next event: its newest id, or its origin when empty. */
  head(topic: string): Promise<string>;
  /** Up to `limit` retained events after `after`, oldest first (see the module invariants). */
  read(topic: string, after: string, limit: number): Promise<StoredEvent[]>;
  /** Tails the topic from `after` (a position from `head`). */
  follow(topic: string, after: string, listener: FollowListener): Follower;
  /** Orders two ids of this log (negative, zero, positive). */
  compare(a: string, b: string): number;
  /** Topics that hold events. */
  topics(): Promise<TopicInfo[]>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** Trailer key naming the first event still retained, on OUT_OF_RANGE. */
export const firstEventIdKey = "rill-first-event-id";

/** Trailer key, on OUT_OF_RANGE, of the position to resume from to get the oldest retained event next. */
export const oldestPositionKey = "rill-oldest-position";

/**
 * The error for a resume position whose successors were trimmed. `lastTrimmed` is the newest
 * trimmed id: resuming after it starts with the first retained event (accepting the loss).
 */
export function trimmedError(topic: string, after: string, firstId: string, lastTrimmed: string): RpcError {
  const md = new Metadata();
  md.set(firstEventIdKey, firstId);
  md.set(oldestPositionKey, lastTrimmed);
  return new RpcError(
    Code.OutOfRange,
    `cannot resume topic "${topic}" after event ${after}: events after it were trimmed from the log; the first available event is ${firstId === "" ? "(none retained)" : firstId} (resume after ${lastTrimmed} to continue from it)`,
    { metadata: md },
  );
}

/** The error for a resume position this log has never issued (another log, or a reset one). */
export function unknownPositionError(topic: string, after: string, why: string): RpcError {
  return new RpcError(Code.DataLoss, `cannot resume topic "${topic}" after event ${after}: ${why}; the events after it are lost`);
}

/** The error for a string that is not an event id of this log. */
export function malformedIdError(after: string, kind: string): RpcError {
  return new RpcError(Code.InvalidArgument, `"${after}" is not an event id of the ${kind} event log`);
}
