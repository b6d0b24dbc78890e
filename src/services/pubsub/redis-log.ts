/**
 * The Redis Streams event log: one stream per topic, so several Rill server processes share
 * topics (publish on one, subscribe on another, resume anywhere).
 *
 * Event ids are the stream entry ids (`<ms>-<seq>`, assigned by XADD `*` on Redis's clock;
 * `published_at` is the `<ms>` part). Keys, under `prefix` (default "rill:pubsub:"):
 *   t:<topic>        the stream: fields `p` (payload) and, if given, `k` (idempotency key)
 *   m:<topic>        a hash; `trimmed` is the highest id retention has removed, `bytes` what
 *                    the retained entries count for (`eventBytes`)
 *   k:<topic>:<key>  an idempotency key's event id, expiring with the retention age
 *   topics           a set of topic names
 * Appends and reads are Lua scripts, so trimming, the `trimmed` watermark and idempotency keys
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
 * Live tails use XREAD BLOCK on one extra connection per followed topic; the control channel
 * (`control`) is Redis pub/sub on `<prefix>control`, on one more connection once listened to.
 * Redis errors reach callers as UNAVAILABLE.
 */
import { createHash } from "node:crypto";
import type { Redis, RedisOptions } from "ioredis";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import {
  checkEventSize,
  eventOverheadBytes,
  malformedIdError,
  normalizeKey,
  resolveRetention,
  tooManyTopicsError,
  trimmedError,
  unknownPositionError,
  type EventLog,
  type Follower,
  type LogUsage,
  type RetentionOptions,
  type StoredEvent,
  type TopicInfo,
} from "./event-log.js";

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
}

// KEYS: stream, meta, dedupe key (or ""), topics set. ARGV: topic, payload, key ("" for none),
// maxEvents, maxAgeMs, maxTopicBytes, maxTopics, overhead. Returns {id, duplicate(0|1)}, or
// {"", 2} when the topic is new and the log holds maxTopics topics.
// An entry counts #payload + #key + overhead bytes (eventBytes); meta's `bytes` sums the stream's.
const appendLua = `
local stream, meta, dedupe, topics = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local topic, payload, key = ARGV[1], ARGV[2], ARGV[3]
local maxEvents, maxAge = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxBytes, maxTopics, overhead = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if key ~= '' then
  local prior = redis.call('GET', dedupe)
  if prior then return {prior, 1} end
end
if maxTopics > 0 and redis.call('SISMEMBER', topics, topic) == 0 and redis.call('SCARD', topics) >= maxTopics then
  return {'', 2}
end
local function sizeOf(fields)
  local s = overhead
  for i = 1, #fields, 2 do
    if fields[i] == 'p' or fields[i] == 'k' then s = s + #fields[i + 1] end
  end
  return s
end
local id
if key ~= '' then
  id = redis.call('XADD', stream, '*', 'p', payload, 'k', key)
else
  id = redis.call('XADD', stream, '*', 'p', payload)
end
redis.call('SADD', topics, topic)
local bytes = redis.call('HINCRBY', meta, 'bytes', #payload + #key + overhead)
local lastDeleted = nil
-- Removes the given (oldest) entries, keeping the byte count and the watermark.
local function remove(gone)
  for _, e in ipairs(gone) do
    bytes = bytes - sizeOf(e[2])
    redis.call('XDEL', stream, e[1])
    lastDeleted = e[1]
  end
end
if maxEvents > 0 then
  local n = redis.call('XLEN', stream)
  if n > maxEvents then remove(redis.call('XRANGE', stream, '-', '+', 'COUNT', n - maxEvents)) end
end
if maxAge > 0 then
  local t = redis.call('TIME')
  local minid = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - maxAge)
  remove(redis.call('XRANGE', stream, '-', '(' .. minid .. '-0'))
end
if maxBytes > 0 then
  while bytes > maxBytes do
    local gone = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
    if #gone == 0 then break end
    remove(gone)
  end
end
if lastDeleted then
  if bytes < 0 then bytes = 0 end
  redis.call('HSET', meta, 'trimmed', lastDeleted, 'bytes', bytes)
end
if key ~= '' then
  if maxAge > 0 then redis.call('SET', dedupe, id, 'PX', maxAge) else redis.call('SET', dedupe, id) end
end
return {id, 0}
`;

// KEYS: stream, meta. ARGV: after, count. Returns {exists(0|1), trimmed, lastGenerated, entries}.
const readLua = `
local stream, meta = KEYS[1], KEYS[2]
if redis.call('EXISTS', stream) == 0 then return {0, '0-0', '0-0', {}} end
local info = redis.call('XINFO', 'STREAM', stream)
local last = '0-0'
for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
local trimmed = redis.call('HGET', meta, 'trimmed') or '0-0'
local entries = redis.call('XRANGE', stream, '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
return {1, trimmed, last, entries}
`;

class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }
  async run(redis: Redis, keys: string[], args: (string | Buffer | number)[]): Promise<unknown> {
    try {
      return await redis.callBuffer("EVALSHA", this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!String((e as Error).message).startsWith("NOSCRIPT")) throw e;
      return await redis.callBuffer("EVAL", this.lua, keys.length, ...keys, ...args);
    }
  }
}

const appendScript = new Script(appendLua);
const readScript = new Script(readLua);

const idPattern = /^(\d{1,20})-(\d{1,20})$/;

function parseId(id: string): [bigint, bigint] | undefined {
  const m = idPattern.exec(id);
  return m === null ? undefined : [BigInt(m[1]!), BigInt(m[2]!)];
}

function compareIds(a: string, b: string): number {
  const x = parseId(a);
  const y = parseId(b);
  if (x === undefined) throw malformedIdError(a, "redis");
  if (y === undefined) throw malformedIdError(b, "redis");
  return x[0] !== y[0] ? (x[0] < y[0] ? -1 : 1) : x[1] === y[1] ? 0 : x[1] < y[1] ? -1 : 1;
}

function unavailable(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  return new RpcError(Code.Unavailable, `the Redis event log is unavailable: ${(e as Error).message}`, { cause: e });
}

type Entry = [Buffer, Buffer[]];

function toEvent(topic: string, [rawId, fields]: Entry): StoredEvent {
  const id = rawId.toString();
  let payload: Uint8Array = new Uint8Array(0);
  let key: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString();
    if (f === "p") payload = new Uint8Array(fields[i + 1]!.buffer, fields[i + 1]!.byteOffset, fields[i + 1]!.byteLength);
    else if (f === "k") key = fields[i + 1]!.toString();
  }
  return { id, topic, payload, publishedAt: Number(id.slice(0, id.indexOf("-"))), key };
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
  const followers = new Set<Redis>();
  const streamKey = (topic: string) => `${prefix}t:${topic}`;
  const metaKey = (topic: string) => `${prefix}m:${topic}`;

  const controlChannel = `${prefix}control`;
  let listener: Redis | undefined;
  const handlers = new Set<(message: string) => void>();

  return {
    kind: "redis",

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
          ],
        )) as [Buffer, number];
      } catch (e) {
        throw unavailable(e);
      }
      if (r[1] === 2) throw tooManyTopicsError(topic, limits.maxTopics, "in Redis (the Redis log never drops a topic: its stream and trim watermark are what make old positions answerable)");
      const id = r[0].toString();
      return { event: { id, topic, payload, publishedAt: Number(id.slice(0, id.indexOf("-"))), key }, duplicate: r[1] === 1 };
    },

    async head(topic) {
      try {
        const r = (await readScript.run(redis, [streamKey(topic), metaKey(topic)], ["0-0", 1])) as [number, Buffer, Buffer];
        return r[2].toString();
      } catch (e) {
        throw unavailable(e);
      }
    },

    async read(topic, after, limit) {
      if (parseId(after) === undefined) throw malformedIdError(after, "redis");
      let r: [number, Buffer, Buffer, Entry[]];
      try {
        r = (await readScript.run(redis, [streamKey(topic), metaKey(topic)], [after, limit])) as typeof r;
      } catch (e) {
        throw unavailable(e);
      }
      const [exists, trimmed, last, entries] = [r[0], r[1].toString(), r[2].toString(), r[3]];
      if (exists === 0) {
        if (after !== "0-0") throw unknownPositionError(topic, after, "the topic's stream does not exist in Redis (it was deleted)");
        return [];
      }
      if (compareIds(after, last) > 0) throw unknownPositionError(topic, after, `the stream's newest id is ${last} (it was deleted and recreated)`);
      if (compareIds(after, trimmed) < 0) throw trimmedError(topic, after, entries[0] === undefined ? "" : entries[0][0].toString(), trimmed);
      return entries.map((e) => toEvent(topic, e));
    },

    follow(topic, after, listener): Follower {
      const conn = redis.duplicate();
      conn.on("error", () => {});
      followers.add(conn);
      let stopped = false;
      const stop = () => {
        if (stopped) return;
        stopped = true;
        followers.delete(conn);
        conn.disconnect();
      };
      void (async () => {
        let last = after;
        try {
          while (!stopped) {
            const r = (await conn.callBuffer("XREAD", "COUNT", 1000, "BLOCK", 0, "STREAMS", streamKey(topic), last)) as
              | [Buffer, Entry[]][]
              | [Buffer, Entry[]]
              | null;
            if (stopped) return;
            // One stream read: ioredis may hand back the single [key, entries] pair unwrapped.
            const streams = r === null ? [] : Buffer.isBuffer(r[0]) ? [r as [Buffer, Entry[]]] : (r as [Buffer, Entry[]][]);
            for (const [, entries] of streams) {
              for (const e of entries) {
                const ev = toEvent(topic, e);
                last = ev.id;
                listener.onEvent(ev);
                if (stopped) return;
              }
            }
          }
        } catch (e) {
          if (stopped) return;
          stop();
          listener.onError(unavailable(e));
        }
      })();
      return { stop };
    },

    compare: compareIds,

    async topics(): Promise<TopicInfo[]> {
      try {
        const names = ((await redis.callBuffer("SMEMBERS", `${prefix}topics`)) as Buffer[]).map((b) => b.toString()).sort();
        const out: TopicInfo[] = [];
        for (const name of names) {
          const last = (await redis.callBuffer("XREVRANGE", streamKey(name), "+", "-", "COUNT", 1)) as Entry[];
          out.push({ name, lastEventId: last[0] === undefined ? "" : last[0][0].toString() });
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
      for (const c of followers) c.disconnect();
      followers.clear();
      redis.disconnect();
    },
  };
}
