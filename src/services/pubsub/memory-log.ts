/**
 * The in-memory event log: the default, for one server process.
 *
 * Ids are `<seq>@<epoch>`: `seq` counts a topic's events from 1, `epoch` is random per log
 * instance. A client resuming with an id from an earlier process (the log restarted and its
 * events are gone) therefore gets DATA_LOSS instead of silently skipping what the new log
 * numbers the same. A topic's origin (its head before any event) is `0@<epoch>`.
 */
import { randomBytes } from "node:crypto";
import {
  malformedIdError,
  trimmedError,
  unknownPositionError,
  type AppendResult,
  type EventLog,
  type FollowListener,
  type Follower,
  type RetentionOptions,
  type StoredEvent,
  type TopicInfo,
} from "./event-log.js";

/** Options of `createMemoryLog`. */
export interface MemoryLogOptions extends RetentionOptions {
  /** Clock in epoch ms, for tests of age retention. Default Date.now. */
  now?: () => number;
}

interface MemoryEvent extends StoredEvent {
  readonly seq: number;
}

class TopicLog {
  /** Retained events, oldest first, from `events[start]` (the front is compacted lazily). */
  events: MemoryEvent[] = [];
  start = 0;
  lastSeq = 0;
  /** Highest seq removed by retention (0: none). */
  trimmedThrough = 0;
  readonly byKey = new Map<string, MemoryEvent>();
  readonly listeners = new Set<FollowListener>();

  get size(): number {
    return this.events.length - this.start;
  }

  first(): MemoryEvent | undefined {
    return this.events[this.start];
  }

  dropFirst(): void {
    const ev = this.events[this.start]!;
    this.events[this.start] = undefined as never;
    this.start++;
    this.trimmedThrough = ev.seq;
    if (ev.key !== undefined && this.byKey.get(ev.key) === ev) this.byKey.delete(ev.key);
    if (this.start > 1024 && this.start * 2 > this.events.length) {
      this.events = this.events.slice(this.start);
      this.start = 0;
    }
  }
}

/** Creates an in-memory event log with retention by count and age (see `RetentionOptions`). */
export function createMemoryLog(options: MemoryLogOptions = {}): EventLog {
  const maxEvents = options.maxEvents ?? 10_000;
  const maxAgeMs = options.maxAgeMs ?? 3_600_000;
  const now = options.now ?? Date.now;
  if (!(maxEvents >= 0 && maxAgeMs >= 0)) throw new Error("memory log: maxEvents and maxAgeMs must be >= 0");
  const epoch = randomBytes(6).toString("hex");
  const topics = new Map<string, TopicLog>();
  const idOf = (seq: number) => `${seq}@${epoch}`;

  const topicLog = (name: string): TopicLog => {
    let t = topics.get(name);
    if (t === undefined) topics.set(name, (t = new TopicLog()));
    return t;
  };

  const trim = (t: TopicLog): void => {
    if (maxEvents > 0) while (t.size > maxEvents) t.dropFirst();
    if (maxAgeMs > 0) {
      const oldest = now() - maxAgeMs;
      while (t.size > 0 && t.first()!.publishedAt < oldest) t.dropFirst();
    }
  };

  /** The seq of an id of this log; throws the right error for ids it cannot place. */
  const seqOf = (topic: string, id: string): number => {
    const m = /^(\d{1,15})@([0-9a-f]{12})$/.exec(id);
    if (m === null) throw malformedIdError(id, "memory");
    if (m[2] !== epoch) throw unknownPositionError(topic, id, "it comes from an earlier or another in-memory log (the server restarted)");
    return Number(m[1]);
  };

  return {
    kind: "memory",

    async append(topic, payload, key) {
      const t = topicLog(topic);
      trim(t);
      if (key !== undefined) {
        const prior = t.byKey.get(key);
        if (prior !== undefined) return { event: prior, duplicate: true } satisfies AppendResult;
      }
      const seq = ++t.lastSeq;
      const ev: MemoryEvent = { id: idOf(seq), seq, topic, payload, publishedAt: now(), key };
      t.events.push(ev);
      if (key !== undefined) t.byKey.set(key, ev);
      trim(t);
      for (const l of t.listeners) l.onEvent(ev);
      return { event: ev, duplicate: false };
    },

    async head(topic) {
      return idOf(topics.get(topic)?.lastSeq ?? 0);
    },

    async read(topic, after, limit) {
      const seq = seqOf(topic, after);
      const t = topics.get(topic);
      if (t === undefined) {
        if (seq !== 0) throw unknownPositionError(topic, after, "this log has no such event");
        return [];
      }
      trim(t);
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
      return {
        stop: () => {
          t.listeners.delete(listener);
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
        if (t.lastSeq > 0) out.push({ name, lastEventId: t.size > 0 ? t.events[t.events.length - 1]!.id : "" });
      }
      return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    },

    async close() {
      for (const t of topics.values()) t.listeners.clear();
    },
  };
}
