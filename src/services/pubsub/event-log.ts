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
import { RpcError } from "../../protocol/errors.js";
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

/**
 * Retention and limits shared by the backends. Retention trims a topic's oldest events when any
 * of its limits is passed (a subscriber resuming before them gets OUT_OF_RANGE); the size and
 * topic limits refuse a publish with RESOURCE_EXHAUSTED instead, since trimming cannot help.
 */
export interface RetentionOptions {
  /** Events kept per topic. Default 10_000; 0 = no count limit. */
  maxEvents?: number;
  /** Age after which events are trimmed, in ms. Default 3_600_000 (1 h); 0 = no age limit. */
  maxAgeMs?: number;
  /**
   * Bytes kept per topic (see `eventBytes`): the oldest events are trimmed past it, so one busy
   * topic cannot hold more. Default 16 MiB; 0 = no limit.
   */
  maxTopicBytes?: number;
  /** Largest payload accepted, in bytes; a larger publish is RESOURCE_EXHAUSTED. Default 4 MiB; 0 = no limit. */
  maxEventBytes?: number;
  /**
   * Topics the log keeps. Publishing to (or following) a new topic past it first drops a topic
   * with no retained event and no follower; when there is none, it is RESOURCE_EXHAUSTED.
   * Default 10_000; 0 = no limit.
   */
  maxTopics?: number;
}

/** Defaults of `RetentionOptions`, shared by the backends. */
export const retentionDefaults = {
  maxEvents: 10_000,
  maxAgeMs: 3_600_000,
  maxTopicBytes: 16 * 1024 * 1024,
  maxEventBytes: 4 * 1024 * 1024,
  maxTopics: 10_000,
} as const satisfies Required<RetentionOptions>;

/** Retention options with their defaults applied and checked. */
export function resolveRetention(options: RetentionOptions, who: string): Required<RetentionOptions> {
  const r: Required<RetentionOptions> = {
    maxEvents: options.maxEvents ?? retentionDefaults.maxEvents,
    maxAgeMs: options.maxAgeMs ?? retentionDefaults.maxAgeMs,
    maxTopicBytes: options.maxTopicBytes ?? retentionDefaults.maxTopicBytes,
    maxEventBytes: options.maxEventBytes ?? retentionDefaults.maxEventBytes,
    maxTopics: options.maxTopics ?? retentionDefaults.maxTopics,
  };
  for (const [k, v] of Object.entries(r)) {
    if (!(Number.isSafeInteger(v) && v >= 0)) throw new Error(`${who}: ${k} must be an integer >= 0 (0 = no limit), got ${String(v)}`);
  }
  return r;
}

/**
 * What one retained event counts for in the byte limits: its payload, its key, and a fixed
 * allowance for the id, the record and the index entries around them, so a flood of tiny
 * events is bounded too.
 */
export const eventOverheadBytes = 100;

/** The bytes an event counts for (see `eventOverheadBytes`). */
export function eventBytes(payload: Uint8Array, key: string | undefined): number {
  return payload.byteLength + (key === undefined ? 0 : Buffer.byteLength(key)) + eventOverheadBytes;
}

/** An empty idempotency key is no key, on every backend. */
export function normalizeKey(key: string | undefined): string | undefined {
  return key === "" ? undefined : key;
}

/**
 * Refuses an event no retention could keep: a payload over `maxEventBytes`, or an event that
 * alone passes a byte budget of its topic (`maxTopicBytes`) or of the log (`maxTotalBytes`).
 */
export function checkEventSize(topic: string, payload: Uint8Array, key: string | undefined, limits: { maxEventBytes: number; maxTopicBytes: number; maxTotalBytes?: number }): void {
  if (limits.maxEventBytes > 0 && payload.byteLength > limits.maxEventBytes) {
    throw new RpcError(
      Code.ResourceExhausted,
      `event of ${payload.byteLength} bytes for topic "${topic}" is larger than the hub's maxEventBytes (${limits.maxEventBytes}); send smaller events (or a reference to the data), or raise maxEventBytes`,
    );
  }
  const size = eventBytes(payload, key);
  for (const [name, limit] of [["maxTopicBytes", limits.maxTopicBytes], ["maxTotalBytes", limits.maxTotalBytes ?? 0]] as const) {
    if (limit > 0 && size > limit) {
      throw new RpcError(
        Code.ResourceExhausted,
        `event of ${size} bytes (payload, key and ${eventOverheadBytes} bytes of record) for topic "${topic}" is larger than the hub's ${name} (${limit}), so it could not be retained; send smaller events, or raise ${name}`,
      );
    }
  }
}

/** The error for a publish (or subscribe) to a new topic when the log holds `maxTopics` busy ones. */
export function tooManyTopicsError(topic: string, maxTopics: number, why: string): RpcError {
  return new RpcError(
    Code.ResourceExhausted,
    `cannot add topic "${topic}": the event log already holds maxTopics (${maxTopics}) topics ${why}; use an existing topic, or raise maxTopics`,
  );
}

/** What a log holds, by its own accounting (bytes as `eventBytes` counts them). */
export interface LogUsage {
  topics: number;
  events: number;
  bytes: number;
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
   * returns the earlier event with `duplicate: true`; an empty key is no key. Rejects with
   * RESOURCE_EXHAUSTED when the event or a new topic passes a limit (`RetentionOptions`).
   */
  append(topic: string, payload: Uint8Array, key?: string): Promise<AppendResult>;
  /** The position just before the topic's next event: its newest id, or its origin when empty. */
  head(topic: string): Promise<string>;
  /**
   * The position before the oldest event the topic retains: reading after it gives the topic's
   * whole retained history (its origin when nothing was ever trimmed).
   */
  oldest(topic: string): Promise<string>;
  /**
   * The position before the first retained event published at or after `ms` (epoch ms, by the
   * log's clock), or the head when there is none. OUT_OF_RANGE when retention has already trimmed
   * an event published at or after `ms`: starting there would skip it.
   */
  positionAt(topic: string, ms: number): Promise<string>;
  /**
   * The same position, named so that it holds to this history only (Redis: a bare entry id such
   * as "0-0" gets the topic's epoch). Absent where every position already does.
   */
  anchor?(topic: string, position: string): Promise<string>;
  /** Up to `limit` retained events after `after`, oldest first (see the module invariants). */
  read(topic: string, after: string, limit: number): Promise<StoredEvent[]>;
  /** Tails the topic from `after` (a position from `head`). */
  follow(topic: string, after: string, listener: FollowListener): Follower;
  /** Orders two ids of this log (negative, zero, positive). */
  compare(a: string, b: string): number;
  /** Topics that hold events. */
  topics(): Promise<TopicInfo[]>;
  /** What the log retains, by its own accounting (for limits, tests and metrics). */
  usage?(): Promise<LogUsage>;
  /** Consumer groups of the log's topics, kept where the log keeps its events. */
  readonly groups: ConsumerGroups;
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
  return outOfRange(`cannot resume topic "${topic}" after event ${after}: events after it were trimmed from the log`, firstId, lastTrimmed);
}

/** The error for a start time (`positionAt`) from which events were already trimmed. */
export function trimmedSinceError(topic: string, ms: number, firstId: string, lastTrimmed: string): RpcError {
  return outOfRange(`cannot start topic "${topic}" at ${new Date(ms).toISOString()}: events published since then were trimmed from the log`, firstId, lastTrimmed);
}

function outOfRange(what: string, firstId: string, lastTrimmed: string): RpcError {
  const md = new Metadata();
  md.set(firstEventIdKey, firstId);
  md.set(oldestPositionKey, lastTrimmed);
  return new RpcError(
    Code.OutOfRange,
    `${what}; the first available event is ${firstId === "" ? "(none retained)" : firstId} (resume after ${lastTrimmed} to continue from it)`,
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

/** One event handed to a member, and how many times the group has handed it out (1 the first time). */
export interface GroupDelivery {
  readonly event: StoredEvent;
  readonly deliveries: number;
}

/** Where a group that does not exist yet starts. */
export type GroupStart = "next" | "oldest";

/** The consumer-group state of a log (see consumer-groups.ts for what a group is). */
export interface ConsumerGroups {
  /** Creates the group when missing, starting at `start`; an existing group is left as it is. Resolves true when it created it. */
  join(topic: string, group: string, start: GroupStart): Promise<boolean>;
  /**
   * Up to `count` events for `consumer`: pending ones idle for at least `idleMs` (claimed for it
   * now; its own only after twice that, so that another member gets them first), then ones no
   * member has had (unless `readNew` is false). FAILED_PRECONDITION for a group never joined;
   * OUT_OF_RANGE once when retention trimmed events the group had not handed out (it continues
   * after them).
   */
  claim(topic: string, group: string, consumer: string, count: number, idleMs: number, readNew?: boolean): Promise<GroupDelivery[]>;
  /** Acknowledges events; resolves with those the ack completed (an event already acknowledged is not among them). */
  ack(topic: string, group: string, ids: readonly string[]): Promise<string[]>;
  /** `consumer` left: its unacknowledged `ids` may be claimed by the other members at once. */
  release(topic: string, group: string, consumer: string, ids: readonly string[]): Promise<void>;
  /** Events handed out and not acknowledged yet. */
  pending(topic: string, group: string): Promise<number>;
}
