/**
 * Consumer groups on Redis Streams (see consumer-groups.ts for what a group is): the stream's
 * own consumer group, so every hub process sharing the Redis serves the same group, and a member
 * that dies with its process loses nothing (its pending entries stay in Redis until claimed).
 *
 *   join     XGROUP CREATE <stream> <group> $|0 MKSTREAM (an existing group is kept)
 *   claim    XPENDING … IDLE <deadline> (entries idle past the deadline, with their delivery
 *            counts), XCLAIM them (which counts a delivery), then XREADGROUP … > for new ones
 *   ack      XACK, one id per command in one pipeline, to know which ones completed an event
 *   release  XCLAIM … IDLE <long ago> JUSTID of the entries still the member's (XPENDING … <consumer>):
 *            they look abandoned, so any member's next claim takes them
 *
 * XCLAIM names a minimum idle time too, so two processes claiming the same entry at once cannot
 * both get it. An entry that retention trimmed while pending cannot be delivered: it is
 * acknowledged away (its payload is gone) and reported as lost, once, with OUT_OF_RANGE.
 */
import type { Redis } from "ioredis";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { ConsumerGroups, GroupDelivery, StoredEvent } from "./event-log.js";
import { noGroupError } from "./consumer-groups.js";
import { compareIds, parseId, streamsOf, type Entry } from "./redis-stream.js";

/** What the Redis log lends its groups: the connection, its key names, and how an entry becomes an event. */
export interface RedisGroupsHost {
  readonly redis: Redis;
  streamKey(topic: string): string;
  metaKey(topic: string): string;
  toEvent(topic: string, entry: Entry): StoredEvent;
  unavailable(e: unknown): RpcError;
}

/** The entry id of an event id (`<ms>-<seq>@<epoch>` → `<ms>-<seq>`); undefined for anything else. */
function entryOf(id: string): string | undefined {
  return parseId(id)?.entry;
}

/** A flat Redis reply of field, value, field, value… as a map. */
function fields(flat: unknown[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}

/** Idle time given to released entries: far past any ack deadline. */
const abandonedMs = 1e12;

export function createRedisGroups(host: RedisGroupsHost): ConsumerGroups {
  const { redis } = host;
  const call = async <T>(topic: string, group: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof RpcError) throw e;
      if (String((e as Error).message).startsWith("NOGROUP")) throw noGroupError(topic, group);
      throw host.unavailable(e);
    }
  };

  const groups: ConsumerGroups = {
    join(topic, group, start) {
      return call(topic, group, async () => {
        try {
          await redis.call("XGROUP", "CREATE", host.streamKey(topic), group, start === "oldest" ? "0" : "$", "MKSTREAM");
          return true;
        } catch (e) {
          if (!String((e as Error).message).startsWith("BUSYGROUP")) throw e;
          return false;
        }
      });
    },

    claim(topic, group, consumer, count, idleMs, readNew = true) {
      const key = host.streamKey(topic);
      return call(topic, group, async () => {
        const out: GroupDelivery[] = [];
        const listed = (await redis.call("XPENDING", key, group, "IDLE", Math.max(0, Math.floor(idleMs)), "-", "+", count + 64)) as [string, string, number, number][];
        // Its own expired entries only after twice the deadline: another member gets them first.
        const idle = listed.filter(([, owner, idleFor]) => owner !== consumer || Number(idleFor) >= 2 * idleMs).slice(0, count);
        let lost = 0;
        let missed: string | undefined;
        if (idle.length > 0) {
          const counts = new Map(idle.map(([id, , , times]) => [id, Number(times)]));
          const claimed = (await redis.callBuffer("XCLAIM", key, group, consumer, Math.max(0, Math.floor(idleMs)), ...counts.keys())) as (Entry | null)[];
          const delivered = new Set<string>();
          for (const e of claimed) {
            // A pending entry whose payload retention trimmed comes back empty (Redis 6.2) or not at all (7).
            if (e === null || e === undefined || e[1] === null || e[1].length === 0) continue;
            delivered.add(e[0].toString());
            out.push({ event: host.toEvent(topic, e), deliveries: (counts.get(e[0].toString()) ?? 0) + 1 });
          }
          // Not claimed: another process took it first, or it was trimmed (lost: acknowledged away).
          for (const id of counts.keys()) {
            if (delivered.has(id) || ((await redis.call("XRANGE", key, id, id)) as unknown[]).length > 0) continue;
            lost++;
            await redis.call("XACK", key, group, id);
          }
        }
        if (out.length < count && readNew) {
          // XREADGROUP skips what retention trimmed before the group read it: find that out first.
          const trimmed = (await redis.call("HGET", host.metaKey(topic), "trimmed")) as string | null;
          if (trimmed !== null) {
            const groups = (await redis.call("XINFO", "GROUPS", key)) as unknown[][];
            const info = groups.map((g) => fields(g)).find((g) => g.get("name") === group);
            const last = info?.get("last-delivered-id");
            if (typeof last === "string" && compareIds(last, trimmed) < 0) {
              await redis.call("XGROUP", "SETID", key, group, trimmed);
              missed = `events ${last} (exclusive) to ${trimmed}`;
            }
          }
          const r = (await redis.callBuffer("XREADGROUP", "GROUP", group, consumer, "COUNT", count - out.length, "STREAMS", key, ">")) as [Buffer, Entry[]][] | [Buffer, Entry[]] | null;
          for (const [, entries] of streamsOf(r)) {
            for (const e of entries) out.push({ event: host.toEvent(topic, e), deliveries: 1 });
          }
        }
        if (lost > 0 || missed !== undefined) {
          // Said once (the state no longer shows the loss); what this claim took goes back at once.
          await groups.release(topic, group, consumer, out.map((d) => d.event.id));
          const what = [lost > 0 ? `${lost} event(s) handed out and never acknowledged` : "", missed === undefined ? "" : `${missed}, never handed out`].filter((x) => x !== "").join(" and ");
          throw new RpcError(Code.OutOfRange, `consumer group "${group}" of topic "${topic}" lost ${what}: retention trimmed them first; raise the retention (above the ack deadline × max deliveries, and the group's lag)`);
        }
        return out;
      });
    },

    ack(topic, group, ids) {
      const key = host.streamKey(topic);
      return call(topic, group, async () => {
        const entries = ids.map((id) => [id, entryOf(id)] as const).filter((x): x is readonly [string, string] => x[1] !== undefined);
        if (entries.length === 0) return [];
        const pipe = redis.pipeline();
        for (const [, entry] of entries) pipe.xack(key, group, entry);
        const results = (await pipe.exec()) ?? [];
        const done: string[] = [];
        for (const [i, [err, n]] of results.entries()) {
          if (err !== null) throw err;
          if (Number(n) === 1) done.push(entries[i]![0]);
        }
        return done;
      });
    },

    release(topic, group, consumer, ids) {
      const entries = ids.map(entryOf).filter((e): e is string => e !== undefined);
      if (entries.length === 0) return Promise.resolve();
      const key = host.streamKey(topic);
      return call(topic, group, async () => {
        // Only what is still this consumer's: one another member claimed since is left alone.
        const owned = new Set(((await redis.call("XPENDING", key, group, "-", "+", entries.length + 1000, consumer)) as [string][]).map(([id]) => id));
        const mine = entries.filter((e) => owned.has(e));
        if (mine.length > 0) await redis.call("XCLAIM", key, group, consumer, 0, ...mine, "IDLE", abandonedMs, "JUSTID");
      });
    },

    pending(topic, group) {
      return call(topic, group, async () => {
        const summary = (await redis.call("XPENDING", host.streamKey(topic), group)) as [number, ...unknown[]];
        return Number(summary[0]);
      });
    },
  };
  return groups;
}
