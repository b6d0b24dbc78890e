/**
 * The in-memory event log: the default, for one server process.
 *
 * Ids are `<seq>@<epoch>`: `seq` counts a topic's events, `epoch` is random per log instance. A
 * client resuming with an id from an earlier process (the log restarted and its events are gone)
 * therefore gets DATA_LOSS instead of silently skipping what the new log numbers the same.
 *
 * Memory is bounded in bytes: per topic (`maxTopicBytes`), across topics (`maxTotalBytes`), per
 * event (`maxEventBytes`) and in topics (`maxTopics`). Over the total budget the log trims the
 * oldest events of the whole log, whichever topic holds them, rather than refusing publishes:
 * retained history is what lets a subscriber that was away resume, while publishing is the hub's
 * job, so a full log must not stop live delivery (for up to `maxAgeMs`) to keep old events. This
 * is JetStream's `discard: old` (and Kafka's retention.bytes) applied to the whole log; every
 * topic then keeps at least the events newer than the log's oldest, and a subscriber resuming
 * before them gets the usual OUT_OF_RANGE.
 *
 * Dropping a topic (to make room under `maxTopics`: only one with no retained event and no
 * follower) forgets its numbering, so a topic created later starts numbering after the highest
 * seq any dropped topic reached (`floor`): no id is ever issued twice for a name, and a position
 * from before the drop is OUT_OF_RANGE (events after it may have been trimmed), never a silent
 * skip. A topic's origin (its head before any event) is `<floor>@<epoch>`.
 */
import { randomBytes } from "node:crypto";
import {
  checkEventSize,
  eventBytes,
  malformedIdError,
  normalizeKey,
  resolveRetention,
  tooManyTopicsError,
  trimmedError,
  trimmedSinceError,
  unknownPositionError,
  type AppendResult,
  type EventLog,
  type FollowListener,
  type Follower,
  type LogUsage,
  type RetentionOptions,
  type StoredEvent,
  type TopicInfo,
} from "./event-log.js";
import { createMemoryGroups } from "./consumer-groups.js";

/** Options of `createMemoryLog`. */
export interface MemoryLogOptions extends RetentionOptions {
  /**
   * Bytes kept across all topics (see `eventBytes`): past it, the oldest events of the whole log
   * are trimmed, whichever topic holds them. Default 64 MiB; 0 = no limit.
   */
  maxTotalBytes?: number;
  /** Consumer groups kept at once (see `createMemoryGroups`). Default 10,000; 0 = no limit. */
  maxGroups?: number;
  /** Clock in epoch ms, for tests of age retention. Default Date.now. */
  now?: () => number;
}

/** Default of `MemoryLogOptions.maxTotalBytes`. */
export const defaultMaxTotalBytes = 64 * 1024 * 1024;

interface MemoryEvent extends StoredEvent {
  readonly seq: number;
  /** What it counts for in the byte limits. */
  readonly bytes: number;
}

class TopicLog {
  /** Retained events, oldest first, from `events[start]` (the front is compacted lazily). */
  events: MemoryEvent[] = [];
  start = 0;
  lastSeq: number;
  /** Highest seq removed by retention (or, for a recreated topic, the floor it started after). */
  trimmedThrough: number;
  /** When the event at `trimmedThrough` was published (-Infinity when none was trimmed). */
  trimmedAt = Number.NEGATIVE_INFINITY;
  bytes = 0;
  readonly byKey = new Map<string, MemoryEvent>();
  readonly listeners = new Set<FollowListener>();

  constructor(
    readonly name: string,
    /** The seq its numbering starts after (the log's floor when it was created). */
    readonly base: number,
  ) {
    this.lastSeq = base;
    this.trimmedThrough = base;
  }

  get size(): number {
    return this.events.length - this.start;
  }

  first(): MemoryEvent | undefined {
    return this.events[this.start];
  }

  dropFirst(): MemoryEvent {
    const ev = this.events[this.start]!;
    this.events[this.start] = undefined as never;
    this.start++;
    this.trimmedThrough = ev.seq;
    this.trimmedAt = ev.publishedAt;
    this.bytes -= ev.bytes;
    if (ev.key !== undefined && this.byKey.get(ev.key) === ev) this.byKey.delete(ev.key);
    if (this.start > 1024 && this.start * 2 > this.events.length) {
      this.events = this.events.slice(this.start);
      this.start = 0;
    }
    return ev;
  }
}

/** Creates an in-memory event log with retention by count, age and bytes (see `RetentionOptions`). */
export function createMemoryLog(options: MemoryLogOptions = {}): EventLog {
  const { maxEvents, maxAgeMs, maxTopicBytes, maxEventBytes, maxTopics } = resolveRetention(options, "createMemoryLog");
  const maxTotalBytes = options.maxTotalBytes ?? defaultMaxTotalBytes;
  if (!(Number.isSafeInteger(maxTotalBytes) && maxTotalBytes >= 0)) throw new Error("createMemoryLog: maxTotalBytes must be an integer >= 0 (0 = no limit)");
  const now = options.now ?? Date.now;
  const epoch = randomBytes(6).toString("hex");
  const topics = new Map<string, TopicLog>();
  /** Topics with no retained event and no follower: what `maxTopics` may drop, oldest first. */
  const idle = new Set<string>();
  /** Seqs of new topics start after this (see the module comment). */
  let floor = 0;
  let totalBytes = 0;
  let totalEvents = 0;
  /**
   * Every retained event in append order (and events trimmed per topic since, skipped here and
   * compacted away), so the total budget and the age limit trim the log's oldest first.
   */
  let order: { t: TopicLog; ev: MemoryEvent }[] = [];
  let orderStart = 0;
  const idOf = (seq: number) => `${seq}@${epoch}`;

  const retained = (t: TopicLog, ev: MemoryEvent) => ev.seq > t.trimmedThrough && topics.get(t.name) === t;

  const markIdle = (t: TopicLog) => {
    if (t.size === 0 && t.listeners.size === 0 && topics.get(t.name) === t) idle.add(t.name);
    else idle.delete(t.name);
  };

  const drop = (t: TopicLog) => {
    const ev = t.dropFirst();
    totalBytes -= ev.bytes;
    totalEvents--;
    if (t.size === 0) markIdle(t);
  };

  /** Per-topic retention: count, bytes, age. */
  const trim = (t: TopicLog): void => {
    if (maxEvents > 0) while (t.size > maxEvents) drop(t);
    if (maxTopicBytes > 0) while (t.bytes > maxTopicBytes) drop(t);
    if (maxAgeMs > 0) {
      const oldest = now() - maxAgeMs;
      while (t.size > 0 && t.first()!.publishedAt < oldest) drop(t);
    }
  };

  /** Log-wide retention: the total budget and the age limit, oldest event of the log first. */
  const trimAll = (): void => {
    const oldest = maxAgeMs > 0 ? now() - maxAgeMs : Number.NEGATIVE_INFINITY;
    while (orderStart < order.length) {
      const { t, ev } = order[orderStart]!;
      if (retained(t, ev)) {
        if (!(ev.publishedAt < oldest || (maxTotalBytes > 0 && totalBytes > maxTotalBytes))) break;
        // Per-topic order is append order, so the log's oldest event is its topic's first.
        drop(t);
      }
      order[orderStart++] = undefined as never;
    }
    const live = order.length - orderStart;
    if (live > 1024 && live > 2 * totalEvents) {
      order = order.slice(orderStart).filter((e) => retained(e.t, e.ev));
      orderStart = 0;
    } else if (orderStart > 1024 && orderStart * 2 > order.length) {
      order = order.slice(orderStart);
      orderStart = 0;
    }
  };

  const existing = (name: string): TopicLog | undefined => {
    const t = topics.get(name);
    if (t !== undefined) trim(t);
    return t;
  };

  /** The topic, created when missing; under `maxTopics` an idle topic makes room or it is refused. */
  const topicLog = (name: string): TopicLog => {
    let t = topics.get(name);
    if (t !== undefined) return t;
    if (maxTopics > 0 && topics.size >= maxTopics) {
      // Expires old events in every topic (the age limit runs over the log's append order).
      trimAll();
      const victim = idle.values().next();
      if (victim.done === true) throw tooManyTopicsError(name, maxTopics, "and each still retains events or has subscribers");
      const gone = topics.get(victim.value)!;
      idle.delete(victim.value);
      topics.delete(victim.value);
      floor = Math.max(floor, gone.lastSeq);
    }
    topics.set(name, (t = new TopicLog(name, floor)));
    return t;
  };

  /** The seq of an id of this log; throws the right error for ids it cannot place. */
  const seqOf = (topic: string, id: string): number => {
    const m = /^(\d{1,15})@([0-9a-f]{12})$/.exec(id);
    if (m === null) throw malformedIdError(id, "memory");
    if (m[2] !== epoch) throw unknownPositionError(topic, id, "it comes from an earlier or another in-memory log (the server restarted)");
    return Number(m[1]);
  };

  const log: Omit<EventLog, "groups"> = {
    kind: "memory",

    async append(topic, original, rawKey) {
      const key = normalizeKey(rawKey);
      checkEventSize(topic, original, key, { maxEventBytes, maxTopicBytes, maxTotalBytes });
      const known = existing(topic);
      if (key !== undefined && known !== undefined) {
        const prior = known.byKey.get(key);
        if (prior !== undefined) return { event: prior, duplicate: true } satisfies AppendResult;
      }
      const t = known ?? topicLog(topic);
      // A view into a larger buffer (a received frame) would keep all of it alive: keep a copy.
      const payload = original.byteLength === original.buffer.byteLength ? original : new Uint8Array(original);
      const seq = ++t.lastSeq;
      const ev: MemoryEvent = { id: idOf(seq), seq, topic, payload, publishedAt: now(), key, bytes: eventBytes(payload, key) };
      t.events.push(ev);
      t.bytes += ev.bytes;
      totalBytes += ev.bytes;
      totalEvents++;
      order.push({ t, ev });
      idle.delete(topic);
      if (key !== undefined) t.byKey.set(key, ev);
      trim(t);
      trimAll();
      for (const l of t.listeners) l.onEvent(ev);
      return { event: ev, duplicate: false };
    },

    async head(topic) {
      return idOf(topics.get(topic)?.lastSeq ?? floor);
    },

    async oldest(topic) {
      return idOf(existing(topic)?.trimmedThrough ?? floor);
    },

    async positionAt(topic, ms) {
      const t = existing(topic);
      if (t === undefined) return idOf(floor);
      if (t.trimmedAt >= ms) throw trimmedSinceError(topic, ms, t.first()?.id ?? "", idOf(t.trimmedThrough));
      // Publish times follow append order (one clock): the first event at or after `ms`.
      let lo = t.start;
      let hi = t.events.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (t.events[mid]!.publishedAt < ms) lo = mid + 1;
        else hi = mid;
      }
      return idOf(lo < t.events.length ? t.events[lo]!.seq - 1 : t.lastSeq);
    },

    async read(topic, after, limit) {
      const seq = seqOf(topic, after);
      const t = existing(topic);
      if (t === undefined) {
        if (seq > floor) throw unknownPositionError(topic, after, "this log has no such event");
        // Before the floor: the topic may have had events since, trimmed and then dropped.
        if (seq < floor) throw trimmedError(topic, after, "", idOf(floor));
        return [];
      }
      if (seq > t.lastSeq) throw unknownPositionError(topic, after, `this log's newest event is ${idOf(t.lastSeq)}`);
      if (seq < t.trimmedThrough) throw trimmedError(topic, after, t.first()?.id ?? "", idOf(t.trimmedThrough));
      const first = t.first();
      if (first === undefined) return [];
      const from = t.start + (seq + 1 - first.seq);
      return t.events.slice(Math.max(from, t.start), Math.max(from, t.start) + limit);
    },

    follow(topic, _after, listener): Follower {
      // Appends notify synchronously, so a follower started at the head misses nothing.
      const t = topicLog(topic);
      t.listeners.add(listener);
      idle.delete(topic);
      return {
        stop: () => {
          t.listeners.delete(listener);
          markIdle(t);
        },
      };
    },

    compare(a, b) {
      return seqOf("", a) - seqOf("", b);
    },

    async topics(): Promise<TopicInfo[]> {
      const out: TopicInfo[] = [];
      for (const [name, t] of topics) {
        trim(t);
        if (t.lastSeq > t.base) {
          out.push({ name, lastEventId: t.size > 0 ? t.events[t.events.length - 1]!.id : "" });
        }
      }
      return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    },

    async usage(): Promise<LogUsage> {
      trimAll();
      return { topics: topics.size, events: totalEvents, bytes: totalBytes };
    },

    async close() {
      for (const t of topics.values()) t.listeners.clear();
    },
  };
  return { ...log, groups: createMemoryGroups(log, now, options.maxGroups ?? 10_000) };
}
