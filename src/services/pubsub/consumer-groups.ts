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
import { oldestPositionKey, type ConsumerGroups, type EventLog, type GroupDelivery, type StoredEvent } from "./event-log.js";

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
