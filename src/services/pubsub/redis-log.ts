/**
 * The Redis Streams event log: one stream per topic, so several Rill server processes share
 * topics (publish on one, subscribe on another, resume anywhere).
 *
 * Event ids are `<ms>-<seq>@<epoch>`: the stream entry id (assigned by XADD `*` on Redis's
 * clock; `published_at` is the `<ms>` part) and the epoch of the topic's history. Entry ids are
 * time-based, so a stream that is deleted, or lost when Redis restarts without persistence,
 * accepts old positions as valid once it is recreated: without the epoch, a resume after `old4`
 * would silently skip old5..old9. The epoch is new whenever a topic's stream is created, and a
 * position of another epoch is DATA_LOSS. A Redis restart starts new epochs too (see `durable`).
 * A position that is not an id the stream holds nor at or before its trim watermark is DATA_LOSS
 * as well. Keys, under `prefix` (default "rill:pubsub:"):
 *   t:<topic>        the stream: fields `p` (payload), `e` (epoch) and, if given, `k` (key)
 *   m:<topic>        a hash; `epoch`; `run`, the Redis run_id that last touched it; `trimmed`,
 *                    the highest id retention has removed; `bytes`, what the retained entries
 *                    count for (`eventBytes`); `stream`, set once the epoch has had a stream
 *                    (before that, the hash holds an epoch that head() gave out for a topic
 *                    with no event yet, and expires)
 *   k:<topic>:<key>  an idempotency key's event id (with its epoch), expiring with the
 *                    retention age
 *   topics           a set of topic names
 * Appends and reads are Lua scripts (redis-scripts.ts), so trimming, the `trimmed` watermark and idempotency keys
 * change together and a read sees one consistent state. Redis's own `max-deleted-entry-id` is
 * not used: XTRIM does not advance it.
 *
 * Bounds (`RetentionOptions`) are exact per topic: the append script trims the oldest entries
 * past `maxEvents`, `maxAgeMs` or `maxTopicBytes`, and refuses a new topic past `maxTopics`
 * (SCARD of the topics set); `maxEventBytes` is checked before anything is sent. There is no
 * budget across topics here (`maxTotalBytes` of the memory log): trimming other topics' streams
 * would make the script touch keys it does not declare, which Redis Cluster forbids, and the
 * bytes live in Redis, not in this process. Redis holds at most about `maxTopics` ×
 * `maxTopicBytes` of events (plus its own overhead); set Redis `maxmemory` for a hard cap.
 *
 * Live tails use XREAD BLOCK on extra connections, up to 16 followed topics each (redis-tails.ts); the control channel
 * (`control`) is Redis pub/sub on `<prefix>control`, on one more connection once listened to.
 * Redis errors reach callers as UNAVAILABLE.
 */
import { randomBytes } from "node:crypto";
import type { Redis, RedisOptions } from "ioredis";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import {
  checkEventSize,
  eventOverheadBytes,
  normalizeKey,
  resolveRetention,
  tooManyTopicsError,
  trimmedError,
  trimmedSinceError,
  unknownPositionError,
  type EventLog,
  type Follower,
  type LogUsage,
  type RetentionOptions,
  type StoredEvent,
  type TopicInfo,
} from "./event-log.js";
import { appendScript, readScript } from "./redis-scripts.js";
import { createRedisGroups } from "./redis-groups.js";
import { RedisTails } from "./redis-tails.js";
import { compareEntries, compareIds, parseOrThrow, type Entry } from "./redis-stream.js";

// ioredis is an optional peer dependency: a server without a Redis log never needs it, so a
// missing package only matters (with a message saying what to install) when a Redis log is made.
const ioredis = await import("ioredis").catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
function redisClass(): typeof Redis {
  if (ioredis instanceof Error) {
    throw new Error(`createRedisLog needs the ioredis package, which is not installed: run \`npm install ioredis\` (an optional peer dependency of rill) (${ioredis.message.split("\n")[0]})`);
  }
  return ioredis.Redis;
}

/** Options of `createRedisLog`. */
export interface RedisLogOptions extends RetentionOptions {
  /** `redis://host:port/db`. Default: the REDIS_URL environment variable. */
  url?: string;
  /** Prefix of every key. Default "rill:pubsub:". */
  prefix?: string;
  /**
   * Extra ioredis options (its `RedisOptions`), passed as they are. Typed loosely on purpose:
   * naming ioredis's type here would make `rill/pubsub`'s declarations need ioredis installed,
   * which is an optional peer dependency.
   */
  redis?: Readonly<Record<string, unknown>>;
  /**
   * Set only when Redis loses no acknowledged write across a restart (`appendonly yes` with
   * `appendfsync always`). By default a Redis restart starts a new history for every topic as it
   * is next touched, and a resume from a position before it is DATA_LOSS: after a restart from an
   * RDB snapshot or an `everysec` AOF the stream may lack events that were acknowledged, and
   * nothing in Redis tells which. Default false.
   */
  durable?: boolean;
  /**
   * Followed topics per XREAD BLOCK connection (redis-tails.ts). More: fewer Redis clients
   * (10,000 topics at 16 are 625 per process, within Redis's default maxclients of 10,000 for
   * several processes); fewer: less sent per read (each XREAD names all its streams again).
   * Default 16.
   */
  tailTopicsPerConnection?: number;
}

/** A new epoch: 12 hex digits, random (a stream recreated in the same millisecond still differs). */
function newEpoch(): string {
  return randomBytes(6).toString("hex");
}

function unavailable(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  return new RpcError(Code.Unavailable, `the Redis event log is unavailable: ${(e as Error).message}`, { cause: e });
}

/** A stream entry's fields, read once. */
interface ParsedEntry {
  readonly entry: string;
  readonly payload: Uint8Array;
  readonly key: string | undefined;
  /**
   * The epoch it was written in (its `e` field; undefined for entries older than epochs). A live
   * tail compares it with the epoch it started in: XREAD goes on across a stream deleted and
   * recreated (or lost and rewritten), where the ids would still look like one history.
   */
  readonly written: string | undefined;
}

function parseEntry([rawId, fields]: Entry): ParsedEntry {
  let payload: Uint8Array = new Uint8Array(0);
  let key: string | undefined;
  let written: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString();
    const v = fields[i + 1]!;
    if (f === "p") payload = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    else if (f === "e") written = v.toString();
    else if (f === "k") key = v.toString();
  }
  return { entry: rawId.toString(), payload, key, written };
}

/** An entry as an event of the history `epoch` (undefined: a stream from before epochs, ids bare). */
function toEvent(topic: string, { entry, payload, key }: ParsedEntry, epoch: string | undefined): StoredEvent {
  return { id: epoch === undefined ? entry : `${entry}@${epoch}`, topic, payload, publishedAt: Number(entry.slice(0, entry.indexOf("-"))), key };
}

/** The error for a position of a history the topic no longer has. */
function lostHistoryError(topic: string, after: string, epoch: string): RpcError {
  return unknownPositionError(
    topic,
    after,
    `the topic's history in Redis is not the one that position belongs to (now epoch ${epoch}): Redis lost it (a restart without persistence, or a restore) or its stream was deleted and recreated`,
  );
}

/**
 * Creates an event log on Redis Streams (Redis >= 6.2). Throws at once without a URL; Redis
 * being down shows later, as UNAVAILABLE from the log's calls.
 */
export function createRedisLog(options: RedisLogOptions = {}): EventLog {
  const url = options.url ?? process.env.REDIS_URL;
  if (url === undefined || url === "") throw new Error("createRedisLog: no Redis URL (pass `url` or set REDIS_URL)");
  const limits = resolveRetention(options, "createRedisLog");
  const prefix = options.prefix ?? "rill:pubsub:";
  // One retry per command: a publish or a resume fails fast (UNAVAILABLE) while Redis is away,
  // and the client's own backoff decides when to try again.
  const redisOptions: RedisOptions = { maxRetriesPerRequest: 1, lazyConnect: false, ...(options.redis as RedisOptions | undefined) };
  // (cast: ioredis's option types do not allow `undefined` under exactOptionalPropertyTypes)
  const redis = new (redisClass())(url, redisOptions as never);
  redis.on("error", () => {
    // ioredis reconnects by itself; failed commands reject with the reason.
  });
  // The run_id of the Redis this connection talks to, learnt once per connection ("?" until then:
  // the scripts then read it themselves). A restart is a new connection, so a stale id cannot
  // outlive it, except in a command written before the restart and sent again after it, which
  // the scripts catch: they ask Redis when an id is not the one the topic last saw.
  let runId = "?";
  let connection = 0;
  redis.on("close", () => {
    connection++;
    runId = "?";
  });
  redis.on("ready", () => {
    const current = connection;
    redis.info("server").then(
      (text) => {
        if (current === connection) runId = /run_id:([0-9a-f]+)/.exec(text)?.[1] ?? "?";
      },
      () => {},
    );
  });
  const tailTopics = options.tailTopicsPerConnection ?? 16;
  if (!(Number.isSafeInteger(tailTopics) && tailTopics >= 1)) throw new Error("createRedisLog: tailTopicsPerConnection must be an integer >= 1");
  // Live tails, several topics per connection (redis-tails.ts).
  const tails = new RedisTails({
    redis,
    streamKey: (topic) => streamKey(topic),
    parse: (topic, e) => {
      const parsed = parseEntry(e);
      return { entry: parsed.entry, written: parsed.written, event: (epoch) => toEvent(topic, parsed, epoch) };
    },
    lostHistory: (topic, position, epoch) => lostHistoryError(topic, position, epoch),
    unavailable,
  }, tailTopics);
  const streamKey = (topic: string) => `${prefix}t:${topic}`;
  const metaKey = (topic: string) => `${prefix}m:${topic}`;

  // How long a topic with no stream keeps the epoch head() gave out (a position older than that,
  // on a topic that never had an event, is DATA_LOSS: the log cannot tell it from a lost history).
  const pendingEpochTtlMs = limits.maxAgeMs > 0 ? limits.maxAgeMs : 86_400_000;
  const durable = options.durable === true ? "1" : "0";

  async function readRaw(topic: string, after: string, limit: number) {
    let r: [number, Buffer, Buffer, Entry[], Buffer, number];
    try {
      r = (await readScript.run(redis, [streamKey(topic), metaKey(topic)], [after, limit, newEpoch(), durable, pendingEpochTtlMs, runId])) as typeof r;
    } catch (e) {
      throw unavailable(e);
    }
    return { exists: r[0], trimmed: r[1].toString(), last: r[2].toString(), entries: r[3], epoch: r[4].toString(), found: r[5] === 1 };
  }

  const controlChannel = `${prefix}control`;
  let listener: Redis | undefined;
  const handlers = new Set<(message: string) => void>();

  const groups = createRedisGroups({ redis, streamKey, metaKey, unavailable, toEvent: (topic, e) => {
      const parsed = parseEntry(e);
      return toEvent(topic, parsed, parsed.written);
    },
  });

  return {
    kind: "redis",
    groups,

    control: {
      async publish(message) {
        try {
          return (await redis.call("PUBLISH", controlChannel, message)) as number;
        } catch (e) {
          throw unavailable(e);
        }
      },
      async listen(handler) {
        if (listener === undefined) {
          const conn = (listener = redis.duplicate());
          conn.on("error", () => {});
          conn.on("message", (channel: string, message: string) => {
            if (channel === controlChannel) for (const h of handlers) h(message);
          });
          await conn.subscribe(controlChannel);
        }
        handlers.add(handler);
        return () => {
          handlers.delete(handler);
        };
      },
    },

    async append(topic, payload, rawKey) {
      const key = normalizeKey(rawKey);
      checkEventSize(topic, payload, key, limits);
      let r: [Buffer, number];
      try {
        r = (await appendScript.run(
          redis,
          [streamKey(topic), metaKey(topic), key === undefined ? `${prefix}k:` : `${prefix}k:${topic}:${key}`, `${prefix}topics`],
          [
            topic,
            Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
            key ?? "",
            limits.maxEvents,
            limits.maxAgeMs,
            limits.maxTopicBytes,
            limits.maxTopics,
            eventOverheadBytes,
            newEpoch(),
            durable,
            runId,
          ],
        )) as [Buffer, number];
      } catch (e) {
        throw unavailable(e);
      }
      if (r[1] === 2) throw tooManyTopicsError(topic, limits.maxTopics, "in Redis (the Redis log never drops a topic: its stream and trim watermark are what make old positions answerable)");
      const id = r[0].toString();
      const position = parseOrThrow(id);
      return { event: { id, topic, payload, publishedAt: Number(position.ms), key }, duplicate: r[1] === 1 };
    },

    async head(topic) {
      const r = await readRaw(topic, "0-0", 1);
      return `${r.last}@${r.epoch}`;
    },

    async anchor(topic, position) {
      const p = parseOrThrow(position);
      if (p.epoch !== undefined) return position;
      const r = await readRaw(topic, "0-0", 1);
      return `${p.entry}@${r.epoch}`;
    },

    async oldest(topic) {
      const r = await readRaw(topic, "0-0", 1);
      return `${r.trimmed}@${r.epoch}`;
    },

    async positionAt(topic, ms) {
      const r = await readRaw(topic, "0-0", 1);
      if (r.exists === 0) return `${r.last}@${r.epoch}`;
      if (r.trimmed !== "0-0" && parseOrThrow(r.trimmed).ms >= BigInt(ms)) {
        throw trimmedSinceError(topic, ms, r.entries[0] === undefined ? "" : `${r.entries[0][0].toString()}@${r.epoch}`, `${r.trimmed}@${r.epoch}`);
      }
      // Entry ids are publish times: the newest entry before `ms`, or the watermark when none is
      // retained. (A read from there checks the epoch and the watermark again.)
      if (ms <= 0) return `${r.trimmed}@${r.epoch}`;
      let before: Entry[];
      try {
        before = (await redis.callBuffer("XREVRANGE", streamKey(topic), `${ms - 1}-18446744073709551615`, "-", "COUNT", 1)) as Entry[];
      } catch (e) {
        throw unavailable(e);
      }
      const entry = before[0]?.[0].toString();
      return `${entry === undefined || compareIds(entry, r.trimmed) < 0 ? r.trimmed : entry}@${r.epoch}`;
    },

    async read(topic, after, limit) {
      const position = parseOrThrow(after);
      const r = await readRaw(topic, position.entry, limit);
      // "0-0" without an epoch is the start of whatever history the topic has.
      if (position.epoch !== undefined ? position.epoch !== r.epoch : position.entry !== "0-0" && r.exists === 0) {
        throw lostHistoryError(topic, after, r.epoch);
      }
      if (r.exists === 0) return [];
      const last = parseOrThrow(r.last);
      const trimmed = parseOrThrow(r.trimmed);
      if (compareEntries(position, last) > 0) throw unknownPositionError(topic, after, `the stream's newest id is ${r.last}@${r.epoch}: Redis lost the events after it (a restore from an older snapshot?)`);
      if (compareEntries(position, trimmed) < 0) {
        throw trimmedError(topic, after, r.entries[0] === undefined ? "" : `${r.entries[0][0].toString()}@${r.epoch}`, `${r.trimmed}@${r.epoch}`);
      }
      // Past the trim watermark, a position is an event the stream holds, or it never held it.
      if (position.entry !== r.trimmed && position.entry !== "0-0" && !r.found) {
        throw unknownPositionError(topic, after, `the topic's stream in Redis has no event ${position.entry}: Redis lost it (a restore from an older snapshot?)`);
      }
      return r.entries.map((e) => toEvent(topic, parseEntry(e), r.epoch));
    },

    follow(topic, after, listener): Follower {
      const start = parseOrThrow(after);
      return tails.follow(topic, start.entry, start.epoch, listener);
    },

    compare: compareIds,

    async topics(): Promise<TopicInfo[]> {
      try {
        const names = ((await redis.callBuffer("SMEMBERS", `${prefix}topics`)) as Buffer[]).map((b) => b.toString()).sort();
        const out: TopicInfo[] = [];
        for (const name of names) {
          const last = (await redis.callBuffer("XREVRANGE", streamKey(name), "+", "-", "COUNT", 1)) as Entry[];
          const epoch = (await redis.call("HGET", metaKey(name), "epoch")) as string | null;
          out.push({ name, lastEventId: last[0] === undefined ? "" : toEvent(name, parseEntry(last[0]), epoch ?? undefined).id });
        }
        return out;
      } catch (e) {
        throw unavailable(e);
      }
    },

    async usage(): Promise<LogUsage> {
      try {
        const names = ((await redis.callBuffer("SMEMBERS", `${prefix}topics`)) as Buffer[]).map((b) => b.toString());
        let events = 0;
        let bytes = 0;
        for (const name of names) {
          events += Number(await redis.call("XLEN", streamKey(name)));
          bytes += Number((await redis.call("HGET", metaKey(name), "bytes")) ?? 0);
        }
        return { topics: names.length, events, bytes };
      } catch (e) {
        throw unavailable(e);
      }
    },

    async close() {
      handlers.clear();
      listener?.disconnect();
      tails.close();
      redis.disconnect();
    },
  };
}
