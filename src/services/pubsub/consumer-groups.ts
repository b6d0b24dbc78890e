/**
 * Consumer groups: competing consumers sharing one topic's events, each event handed to one
 * member and kept until some member acknowledges it (Redis Streams' XREADGROUP/XACK/XCLAIM, Kafka
 * consumer groups, JetStream work queues).
 *
 * A group has a cursor (the newest event it has handed out) and pending entries (handed out, not
 * acknowledged: who holds it, since when, how many times delivered). `claim` gives a member first
 * the pending entries idle past the ack deadline (a redelivery: the count goes up), then events
 * after the cursor. At-least-once: an event is acknowledged once (the first ack wins), but a member
 * that acks late, or not at all, may have its event delivered to another.
 *
 * The log keeps the state: one process's memory (`createMemoryGroups`), or Redis for every
 * process sharing it (redis-groups.ts). What a delivery does past `maxDeliveries` (the dead-letter
 * topic) is the hub's, once, for both.
 */
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import { oldestPositionKey, type EventLog, type StoredEvent } from "./event-log.js";

/** One event handed to a member, and how many times the group has handed it out (1 the first time). */
export interface GroupDelivery {
  readonly event: StoredEvent;
  readonly deliveries: number;
}

/** Where a group that does not exist yet starts. */
export type GroupStart = "next" | "oldest";

/** The consumer-group state of a log (see the module comment). */
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

/** The error for a claim on a group nobody joined. */
export function noGroupError(topic: string, group: string): RpcError {
  return new RpcError(Code.FailedPrecondition, `topic "${topic}" has no consumer group "${group}"; join it first`);
}

interface Pending {
  readonly event: StoredEvent;
  consumer: string;
  deliveries: number;
  /** When it was last handed out (ms), -Infinity once released. */
  at: number;
}

class MemoryGroup {
  readonly pending = new Map<string, Pending>();
  /** Claims run one at a time: two reading after one cursor would hand out the same events. */
  turn: Promise<unknown> = Promise.resolve();
  constructor(public cursor: string) {}
}

/**
 * Consumer groups kept in this process, over any log that one process owns (the memory log).
 * At most `maxGroups` (default 10,000; 0 = no limit) exist at once, so clients joining ever new
 * group names cannot grow the process without bound; past it a new group is RESOURCE_EXHAUSTED.
 */
export function createMemoryGroups(log: Pick<EventLog, "head" | "oldest" | "read">, now: () => number = Date.now, maxGroups = 10_000): ConsumerGroups {
  const groups = new Map<string, MemoryGroup>();
  const keyOf = (topic: string, group: string) => `${group}\u0000${topic}`;
  const get = (topic: string, group: string) => {
    const g = groups.get(keyOf(topic, group));
    if (g === undefined) throw noGroupError(topic, group);
    return g;
  };
  const serially = <T>(g: MemoryGroup, f: () => Promise<T>): Promise<T> => {
    const run = g.turn.then(f, f);
    g.turn = run.catch(() => {});
    return run;
  };

  return {
    async join(topic, group, start) {
      const key = keyOf(topic, group);
      if (groups.has(key)) return false;
      if (maxGroups > 0 && groups.size >= maxGroups) {
        throw new RpcError(Code.ResourceExhausted, `cannot create consumer group "${group}" of topic "${topic}": the log already holds maxGroups (${maxGroups}) groups; join an existing group, or raise maxGroups`);
      }
      const cursor = start === "oldest" ? await log.oldest(topic) : await log.head(topic);
      if (groups.has(key)) return false;
      groups.set(key, new MemoryGroup(cursor));
      return true;
    },

    claim(topic, group, consumer, count, idleMs, readNew = true) {
      const g = get(topic, group);
      return serially(g, async () => {
        const out: GroupDelivery[] = [];
        const t = now();
        for (const p of g.pending.values()) {
          if (out.length >= count) break;
          if (t - p.at < (p.consumer === consumer ? 2 * idleMs : idleMs)) continue;
          p.consumer = consumer;
          p.deliveries++;
          p.at = t;
          out.push({ event: p.event, deliveries: p.deliveries });
        }
        if (out.length >= count || !readNew) return out;
        let events: StoredEvent[];
        try {
          events = await log.read(topic, g.cursor, count - out.length);
        } catch (e) {
          // Trimmed before the group had them: say so once, and go on after the loss.
          const resume = e instanceof RpcError && e.code === Code.OutOfRange ? e.metadata.get(oldestPositionKey) : undefined;
          if (typeof resume === "string") g.cursor = resume;
          throw e;
        }
        for (const event of events) {
          g.pending.set(event.id, { event, consumer, deliveries: 1, at: t });
          g.cursor = event.id;
          out.push({ event, deliveries: 1 });
        }
        return out;
      });
    },

    async ack(topic, group, ids) {
      const g = get(topic, group);
      return ids.filter((id) => g.pending.delete(id));
    },

    async release(topic, group, consumer, ids) {
      const g = groups.get(keyOf(topic, group));
      for (const id of ids) {
        const p = g?.pending.get(id);
        if (p !== undefined && p.consumer === consumer) p.at = Number.NEGATIVE_INFINITY;
      }
    },

    async pending(topic, group) {
      return get(topic, group).pending.size;
    },
  };
}
