/**
 * The pub/sub hub: `rill.pubsub.v1.PubSubService` over an `EventLog`, and the fan-out that any
 * other server-streaming service can reuse (`hub.stream`).
 *
 * Per topic with local subscribers, one follower tails the log (for Redis: one XREAD BLOCK
 * connection) and offers each event to every subscriber's bounded queue (`Subscription`). The
 * follower starts before any subscriber reads history, so the handover from history to live
 * events has no gap. The last subscriber to leave stops the follower.
 *
 * Subscribe's response headers, sent before any event: `rill-subscription-id` (for
 * Unsubscribe) and `rill-subscription-start` (the position the stream starts after; a client
 * that saw no event resumes from it).
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, PubSubService, type Event } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { HandlerContext } from "../../handler-context.js";
import type { ServiceImpl } from "../../server/service-impl.js";
import { unknownPositionError, type EventLog, type Follower, type RetentionOptions, type StoredEvent } from "./event-log.js";
import { createMemoryLog, type MemoryLogOptions } from "./memory-log.js";
import { createRedisLog } from "./redis-log.js";
import { createControl, type EndTarget } from "./hub-control.js";
import { Subscription, type EventMapper } from "./subscription.js";
import { Bookmarks } from "./bookmarks.js";
import type { GroupMember } from "./group-member.js";
import { serveConsume, type ConsumeHost } from "./consume-stream.js";

/** Response header naming a subscription (for Unsubscribe). */
export const subscriptionIdKey = "rill-subscription-id";
/** Response header naming the position a subscription's stream starts after. */
export const subscriptionStartKey = "rill-subscription-start";

/**
 * Options of `createHub`. The retention and limit options (`maxEvents`, `maxAgeMs`,
 * `maxTopicBytes`, `maxTotalBytes`, `maxEventBytes`, `maxTopics`; see `MemoryLogOptions`, defaults
 * 10,000 events, 1 h, 16 MiB, 64 MiB, 4 MiB, 10,000 topics) configure the log the hub creates;
 * with `log` given, configure that log instead. `maxTotalBytes` applies to the memory log only
 * (see redis-log.ts for the Redis bound).
 */
export interface HubOptions extends RetentionOptions, Pick<MemoryLogOptions, "maxTotalBytes"> {
  /** The event log. Default: Redis Streams when REDIS_URL is set, else in memory. */
  log?: EventLog;
  /**
   * Events queued per subscriber beyond its call's send buffer (`sendHighWaterMark`) before it
   * is ended with RESOURCE_EXHAUSTED. Default 1024.
   */
  maxQueuedEvents?: number;
  /**
   * Payload bytes queued per subscriber beyond its send buffer before it is ended the same way
   * (whichever of this and `maxQueuedEvents` comes first; one event is always taken). Default
   * 8 MiB: without it, 1024 events of 4 MiB let one stalled subscriber hold 4 GiB.
   */
  maxQueuedBytes?: number;
  /** Events read from the log per step of a catch-up. Default 256. */
  catchUpBatch?: number;
  /** Longest topic name, in UTF-16 units. Default 256. */
  maxTopicLength?: number;
}

/** What `hub.stream` needs to serve one subscription. */
export interface StreamOptions<M> {
  topic: string;
  /** Resume after this id; undefined starts where `from` says. */
  after?: string | undefined;
  /**
   * Where to start without `after`: `"oldest"`, the oldest retained event (replay all that is
   * kept), or `{ sinceMs }`, the first event published at or after that time (OUT_OF_RANGE if
   * retention trimmed one). Default: the next event published.
   */
  from?: "oldest" | { readonly sinceMs: number } | undefined;
  /**
   * Snapshot, then changes: the events that were in the log when the stream began go out through
   * `map` (marked as history), then `end(position)`, the position dividing history from live.
   */
  history?: { readonly map: EventMapper<M>; readonly end: (position: string) => M } | undefined;
  /** Turns stored events into the stream's messages. Keep one function per message type: results are cached per event. */
  map: EventMapper<M>;
  /**
   * Bookmarks: with both given, a stream with nothing sent for `bookmarkIntervalMs` (at least
   * `minBookmarkIntervalMs`) gets `bookmark(position)`, the position it has reached.
   */
  bookmarkIntervalMs?: number | undefined;
  bookmark?: ((position: string) => M) | undefined;
}

const lostUnderTail = "the event log lost or replaced the topic's history while it was followed (a Redis restart or restore, or its stream deleted)";

/** The shortest bookmark interval served: a client asking for less gets this. */
export const minBookmarkIntervalMs = 100;

/** A hub's subscribers at a glance. */
export interface HubStats {
  /** Open subscriptions on this instance. */
  readonly subscribers: number;
  /** Events queued for subscribers whose streams have not taken them yet, all together. */
  readonly queuedEvents: number;
  /** The most any one subscriber has queued: the worst lag. */
  readonly maxQueuedEvents: number;
  /** Subscribers ended (RESOURCE_EXHAUSTED, resumable) for falling behind, since the hub started. */
  readonly cutSubscribers: number;
  /** Consumer-group members (Consume streams) open on this instance. */
  readonly groupMembers: number;
  /** Events delivered to them and not acknowledged yet. */
  readonly unacknowledged: number;
  /** Deliveries of an event a member had already been given (ack deadline passed, member left), since the hub started. */
  readonly redelivered: number;
  /** Events sent to a dead-letter topic after `max_deliveries`, since the hub started. */
  readonly deadLettered: number;
  /** Acks that completed an event (the first ack of each), since the hub started. */
  readonly acknowledged: number;
}

/** The hub. */
export interface Hub {
  /** The event log it serves. */
  readonly log: EventLog;
  /** The `PubSubService` implementation, for `server.add(PubSubService, hub.service)`. */
  readonly service: ServiceImpl<typeof PubSubService>;
  /** Publishes from inside the server process. */
  publish(topic: string, payload: Uint8Array, key?: string): Promise<StoredEvent>;
  /**
   * Serves a subscription on a push-style server-streaming handler's `ctx`: returns the
   * promise the handler returns. Sets the subscription headers and sends them.
   */
  stream<M>(ctx: HandlerContext<M>, options: StreamOptions<M>): Promise<void>;
  /**
   * Ends a subscription with OK, wherever it is open: here, or (when the log is shared, as with
   * Redis) on another instance, asked over the log's control channel. Resolves false when no
   * instance has it (after at most 1 s of waiting for their answers).
   */
  unsubscribe(subscriptionId: string): Promise<boolean>;
  /** Ends every subscription of `topic` with OK, on every instance sharing the log; resolves with how many. */
  unsubscribeTopic(topic: string): Promise<number>;
  /** Open subscriptions registered in the fan-out (of `topic`, or all). */
  subscriberCount(topic?: string): number;
  /** How far behind subscribers are and how many were cut for it, read at once (for metrics). */
  readonly stats: HubStats;
  /**
   * Ends every subscription with UNAVAILABLE (clients resubscribe, elsewhere if they can)
   * and refuses new ones. Call before `server.shutdown()`: streams that never end would
   * otherwise hold the graceful shutdown for its whole grace period.
   */
  drain(): void;
  /** `drain()`, then closes the log. */
  close(): Promise<void>;
}

type AnySubscription = Subscription<unknown>;

class TopicState {
  readonly subs = new Set<AnySubscription>();
  /** Consumer-group members on this topic, woken by each new event. */
  readonly members = new Set<GroupMember>();
  refs = 0;
  follower: Follower | undefined;
  ready!: Promise<void>;
  stopped = false;
}

const retentionKeys = ["maxEvents", "maxAgeMs", "maxTopicBytes", "maxTotalBytes", "maxEventBytes", "maxTopics"] as const;

/** The log `createHub` makes: Redis Streams when REDIS_URL is set, else in memory, with the retention options. */
function defaultLog(options: HubOptions): EventLog {
  const retention: MemoryLogOptions = {};
  for (const k of retentionKeys) if (options[k] !== undefined) retention[k] = options[k];
  if (!process.env.REDIS_URL) return createMemoryLog(retention);
  // Redis bounds each topic and the number of topics, not their sum (see redis-log.ts).
  const { maxTotalBytes: _perProcessOnly, ...perTopic } = retention;
  return createRedisLog(perTopic);
}

/** Creates a hub. */
export function createHub(options: HubOptions = {}): Hub {
  const log = options.log ?? defaultLog(options);
  const maxQueued = options.maxQueuedEvents ?? 1024;
  const maxQueuedBytes = options.maxQueuedBytes ?? 8 * 1024 * 1024;
  if (!(maxQueuedBytes >= 1)) throw new Error("createHub: maxQueuedBytes must be >= 1");
  const batch = options.catchUpBatch ?? 256;
  const maxTopicLength = options.maxTopicLength ?? 256;
  if (!(maxQueued >= 1 && batch >= 1)) throw new Error("createHub: maxQueuedEvents and catchUpBatch must be >= 1");
  if (options.log !== undefined) {
    const given = retentionKeys.filter((k) => options[k] !== undefined);
    if (given.length > 0) throw new Error(`createHub: ${given.join(", ")} configure the log createHub makes; you passed \`log\`, so give them to createMemoryLog / createRedisLog instead`);
  }
  const topics = new Map<string, TopicState>();
  const subscriptions = new Map<string, AnySubscription>();
  const members = new Set<GroupMember>();
  let cutSubscribers = 0;
  /** Of members that have left (those still open add their own in `stats`). */
  const groupCounters = { acknowledged: 0, redelivered: 0, deadLettered: 0 };
  const bookmarks = new Bookmarks();
  const mapped = new Map<EventMapper<unknown>, WeakMap<StoredEvent, unknown>>();
  let draining = false;
  const control = createControl(log, (target) => endLocal(target));

  const checkTopic = (topic: string) => {
    if (topic === "") throw new RpcError(Code.InvalidArgument, "topic is empty");
    if (topic.length > maxTopicLength) throw new RpcError(Code.InvalidArgument, `topic is longer than ${maxTopicLength} characters`);
  };

  const memo = <M>(map: EventMapper<M>): EventMapper<M> => {
    let cache = mapped.get(map as EventMapper<unknown>);
    if (cache === undefined) mapped.set(map as EventMapper<unknown>, (cache = new WeakMap()));
    const c = cache;
    return (ev) => {
      let m = c.get(ev) as M | undefined;
      if (m === undefined) c.set(ev, (m = map(ev)));
      return m;
    };
  };

  const stopTopic = (topic: string, t: TopicState) => {
    t.stopped = true;
    t.follower?.stop();
    if (topics.get(topic) === t) topics.delete(topic);
  };

  /** Counts a subscriber in and waits until the topic's follower runs. */
  const attach = async (topic: string): Promise<TopicState> => {
    let t = topics.get(topic);
    if (t === undefined) {
      const state = (t = new TopicState());
      topics.set(topic, state);
      state.ready = log.head(topic).then((head) => {
        if (state.stopped) return;
        state.follower = log.follow(topic, head, {
          onEvent: (ev) => {
            for (const s of state.subs) s.offer(ev);
            for (const m of state.members) m.wake();
          },
          onError: (e) => {
            stopTopic(topic, state);
            // A tail's DATA_LOSS names the tail's position; a subscriber catching up or with events
            // queued has received less, and is told the last event its stream was handed.
            for (const s of [...state.subs]) s.fail(e.code === Code.DataLoss ? unknownPositionError(topic, s.cursor, lostUnderTail) : e);
            for (const m of state.members) m.fail(e);
          },
        });
      });
      state.ready.catch(() => stopTopic(topic, state));
    }
    t.refs++;
    try {
      await t.ready;
    } catch (e) {
      t.refs--;
      throw RpcError.from(e, Code.Unavailable);
    }
    if (t.stopped) {
      t.refs--;
      throw new RpcError(Code.Unavailable, `the event log stopped following topic "${topic}"; resubscribe`);
    }
    return t;
  };

  const detach = (topic: string, t: TopicState) => {
    if (--t.refs === 0) stopTopic(topic, t);
  };

  const stream = async <M>(ctx: HandlerContext<M>, o: StreamOptions<M>): Promise<void> => {
    checkTopic(o.topic);
    if (draining) throw new RpcError(Code.Unavailable, "the server is shutting down; subscribe again (on another instance, if there is one)");
    const t = await attach(o.topic);
    let start: string;
    let historyUntil: string | undefined;
    try {
      start =
        o.after ??
        (o.from === undefined ? await log.head(o.topic) : o.from === "oldest" ? await log.oldest(o.topic) : await log.positionAt(o.topic, o.from.sinceMs));
      // "0-0" is "whatever history the topic has": named with that history's epoch, a resume
      // after its loss is DATA_LOSS instead of a silent start in the next history.
      if (o.after !== undefined && log.anchor !== undefined) start = await log.anchor(o.topic, start);
      // Read after the start, so that everything up to it counts as history.
      if (o.history !== undefined) historyUntil = await log.head(o.topic);
    } catch (e) {
      detach(o.topic, t);
      throw RpcError.from(e, Code.Unavailable);
    }
    const id = randomBytes(9).toString("base64url");
    const sub = new Subscription<M>(id, o.topic, start, ctx, log, memo(o.map), maxQueued, (s) => {
      if (s.cutForLag) cutSubscribers++;
      t.subs.delete(s as unknown as AnySubscription);
      bookmarks.delete(s as unknown as AnySubscription);
      subscriptions.delete(s.id);
      ctx.signal.removeEventListener("abort", onAbort);
      detach(o.topic, t);
    }, maxQueuedBytes);
    if (o.history !== undefined) sub.history = { until: historyUntil!, map: memo(o.history.map), end: o.history.end };
    const anySub = sub as unknown as AnySubscription;
    // A client that goes away is forgotten at once, not at the next event.
    const onAbort = () => sub.fail(RpcError.from(ctx.signal.reason, Code.Canceled));
    if (ctx.signal.aborted) {
      onAbort();
      return sub.done;
    }
    ctx.signal.addEventListener("abort", onAbort);
    t.subs.add(anySub);
    subscriptions.set(id, anySub);
    if (o.bookmark !== undefined && o.bookmarkIntervalMs !== undefined && o.bookmarkIntervalMs > 0) {
      bookmarks.add(anySub, Math.max(minBookmarkIntervalMs, o.bookmarkIntervalMs), o.bookmark as (position: string) => unknown);
    }
    ctx.responseHeader.set(subscriptionIdKey, id);
    ctx.responseHeader.set(subscriptionStartKey, start);
    ctx.sendHeader();
    void sub.catchUp(batch);
    return sub.done;
  };

  /** What a Consume stream needs of the hub (see consume-stream.ts). */
  const consumeHost: ConsumeHost = {
    log,
    maxTopicLength,
    checkTopic,
    get draining() {
      return draining;
    },
    async watch(topic, member) {
      const t = await attach(topic);
      t.members.add(member);
      members.add(member);
      return () => {
        t.members.delete(member);
        members.delete(member);
        detach(topic, t);
      };
    },
    toEvent: (ev) => toEvent(ev),
    counters: groupCounters,
  };

  /** Ends local subscriptions named by `target`; returns how many. */
  function endLocal(target: EndTarget): number {
    if (target.sub !== undefined) {
      const s = subscriptions.get(target.sub);
      s?.end();
      return s === undefined ? 0 : 1;
    }
    const t = target.topic === undefined ? undefined : topics.get(target.topic);
    if (t === undefined) return 0;
    const subs = [...t.subs];
    for (const s of subs) s.end();
    return subs.length;
  }

  const toBookmark = (topic: string) => (position: string) => create(EventSchema, { eventId: position, topic, bookmark: true });
  const toHistoryEnd = (topic: string) => (position: string) => create(EventSchema, { eventId: position, topic, bookmark: true, historyEnd: true });

  const eventOf = (ev: StoredEvent, history: boolean): Event =>
    create(EventSchema, {
      eventId: ev.id,
      topic: ev.topic,
      payload: ev.payload,
      publishedAt: timestampFromMs(ev.publishedAt),
      ...(ev.key === undefined ? {} : { key: ev.key }),
      history,
    });
  const toEvent: EventMapper<Event> = (ev) => eventOf(ev, false);
  const toHistoryEvent: EventMapper<Event> = (ev) => eventOf(ev, true);

  const hub: Hub = {
    log,
    async publish(topic, payload, key) {
      checkTopic(topic);
      return (await log.append(topic, payload, key)).event;
    },
    stream,
    async unsubscribe(subscriptionId) {
      return (await control.end({ sub: subscriptionId })) > 0;
    },
    unsubscribeTopic(topic) {
      return control.end({ topic });
    },
    get stats() {
      let queuedEvents = 0;
      let maxQueuedEvents = 0;
      for (const sub of subscriptions.values()) {
        queuedEvents += sub.queued;
        if (sub.queued > maxQueuedEvents) maxQueuedEvents = sub.queued;
      }
      let unacknowledged = 0;
      let memberRedelivered = groupCounters.redelivered;
      let memberDeadLettered = groupCounters.deadLettered;
      for (const m of members) {
        unacknowledged += m.unacknowledged;
        memberRedelivered += m.redelivered;
        memberDeadLettered += m.deadLettered;
      }
      return {
        subscribers: subscriptions.size,
        queuedEvents,
        maxQueuedEvents,
        cutSubscribers,
        groupMembers: members.size,
        unacknowledged,
        redelivered: memberRedelivered,
        deadLettered: memberDeadLettered,
        acknowledged: groupCounters.acknowledged,
      };
    },
    subscriberCount(topic) {
      if (topic !== undefined) return topics.get(topic)?.subs.size ?? 0;
      let n = 0;
      for (const t of topics.values()) n += t.subs.size;
      return n;
    },
    drain() {
      draining = true;
      const e = new RpcError(Code.Unavailable, "the server is shutting down; subscribe again (on another instance, if there is one)");
      for (const s of [...subscriptions.values()]) s.fail(e);
      for (const m of members) m.fail(e);
    },
    async close() {
      hub.drain();
      bookmarks.stop();
      control.stop();
      for (const [name, t] of [...topics]) stopTopic(name, t);
      await log.close();
    },
    service: {
      async publish(req) {
        const ev = await hub.publish(req.topic, req.payload, req.key);
        return { eventId: ev.id };
      },
      subscribe(req, ctx) {
        const starts = [req.afterEventId !== undefined && "after_event_id", req.fromOldest && "from_oldest", req.since !== undefined && "since"].filter((x) => x !== false);
        if (starts.length > 1) throw new RpcError(Code.InvalidArgument, `Subscribe takes one start, got ${starts.join(" and ")}`);
        return stream(ctx, {
          topic: req.topic,
          after: req.afterEventId,
          from: req.fromOldest ? "oldest" : req.since !== undefined ? { sinceMs: timestampMs(req.since) } : undefined,
          map: toEvent,
          ...(req.markHistory ? { history: { map: toHistoryEvent, end: toHistoryEnd(req.topic) } } : {}),
          ...(req.bookmarkIntervalMs > 0 ? { bookmarkIntervalMs: req.bookmarkIntervalMs, bookmark: toBookmark(req.topic) } : {}),
        });
      },
      async unsubscribe(req) {
        if (!(await hub.unsubscribe(req.subscriptionId))) {
          throw new RpcError(Code.NotFound, `no subscription "${req.subscriptionId}" is open on this server`);
        }
        return {};
      },
      consume(requests, ctx) {
        return serveConsume(requests, ctx, consumeHost);
      },
      async listTopics() {
        const list = await log.topics();
        return { topics: list.map((t) => ({ name: t.name, lastEventId: t.lastEventId, subscribers: hub.subscriberCount(t.name) })) };
      },
    },
  };
  return hub;
}
