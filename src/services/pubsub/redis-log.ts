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
import { createHash, randomBytes } from "node:crypto";
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
  /**
   * Set only when Redis loses no acknowledged write across a restart (`appendonly yes` with
   * `appendfsync always`). By default a Redis restart starts a new history for every topic as it
   * is next touched, and a resume from a position before it is DATA_LOSS: after a restart from an
   * RDB snapshot or an `everysec` AOF the stream may lack events that were acknowledged, and
   * nothing in Redis tells which. Default false.
   */
  durable?: boolean;
}

// The topic's epoch (shared by the scripts). A topic's history starts anew, with a new epoch,
// when its stream is created or recreated (deleted, or lost with Redis's memory), and when Redis
// restarted since the topic was last touched (its run_id changed) unless the log was told Redis
// keeps every acknowledged write (`durable`): a restart from an RDB snapshot or an everysec AOF
// may have lost events after positions subscribers hold. `run`: the run_id the caller learnt
// on connecting, or "?" when it does not know it yet (INFO here costs a third of an append).
// `writing`: the caller adds to the stream, which adopts an epoch that head() gave out before the
// stream existed; otherwise such an epoch expires after `pendingTtl` ms.
const epochLua = `
local function topicEpoch(stream, meta, candidate, durable, run, writing, pendingTtl)
  if run == '?' then run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') end
  local exists = redis.call('EXISTS', stream) == 1
  local m = redis.call('HMGET', meta, 'epoch', 'stream', 'run')
  local epoch, hadStream, lastRun = m[1], m[2] ~= false, m[3]
  if not exists and (not epoch or hadStream) then
    redis.call('DEL', meta)
    epoch, hadStream, lastRun = false, false, false
  end
  if not epoch or (lastRun ~= run and durable ~= '1') then
    epoch = candidate
    redis.call('HSET', meta, 'epoch', epoch)
  end
  if lastRun ~= run then redis.call('HSET', meta, 'run', run) end
  if writing then
    if not hadStream then
      redis.call('HSET', meta, 'stream', '1')
      redis.call('PERSIST', meta)
    end
  elseif not exists then
    redis.call('PEXPIRE', meta, pendingTtl)
  end
  return epoch
end
`;

// KEYS: stream, meta, dedupe key (or ""), topics set. ARGV: topic, payload, key ("" for none),
// maxEvents, maxAgeMs, maxTopicBytes, maxTopics, overhead, candidate epoch, durable (1|0), run_id. Returns
// {id@epoch, duplicate(0|1)}, or {"", 2} when the topic is new and the log holds maxTopics topics.
// An entry counts #payload + #key + overhead bytes (eventBytes); meta's `bytes` sums the stream's.
const appendLua = epochLua + `
local stream, meta, dedupe, topics = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local topic, payload, key = ARGV[1], ARGV[2], ARGV[3]
local maxEvents, maxAge = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxBytes, maxTopics, overhead = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if maxTopics > 0 and redis.call('SISMEMBER', topics, topic) == 0 and redis.call('SCARD', topics) >= maxTopics then
  return {'', 2}
end
local epoch = topicEpoch(stream, meta, ARGV[9], ARGV[10], ARGV[11], true, 0)
local suffix = '@' .. epoch
if key ~= '' then
  local prior = redis.call('GET', dedupe)
  -- A key of a lost history names an event nobody can read any more: it is published again.
  if prior and string.sub(prior, -#suffix) == suffix then return {prior, 1} end
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
  id = redis.call('XADD', stream, '*', 'p', payload, 'e', epoch, 'k', key)
else
  id = redis.call('XADD', stream, '*', 'p', payload, 'e', epoch)
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
local full = id .. suffix
if key ~= '' then
  if maxAge > 0 then redis.call('SET', dedupe, full, 'PX', maxAge) else redis.call('SET', dedupe, full) end
end
return {full, 0}
`;

// KEYS: stream, meta. ARGV: after (an entry id), count, candidate epoch, durable (1|0), ttl of
// an epoch given out for a topic with no stream (ms), run_id. Returns {exists(0|1), trimmed,
// lastGenerated, entries, epoch, afterFound(0|1)}. A topic without a stream gets an epoch here, so
// a subscriber that takes its position before the first event still learns if that history is lost.
const readLua = epochLua + `
local stream, meta = KEYS[1], KEYS[2]
local epoch = topicEpoch(stream, meta, ARGV[3], ARGV[4], ARGV[6], false, tonumber(ARGV[5]))
if redis.call('EXISTS', stream) == 0 then return {0, '0-0', '0-0', {}, epoch, 0} end
local info = redis.call('XINFO', 'STREAM', stream)
local last = '0-0'
for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
local trimmed = redis.call('HGET', meta, 'trimmed') or '0-0'
local entries = redis.call('XRANGE', stream, '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local found = 0
if ARGV[1] ~= '0-0' and #redis.call('XRANGE', stream, ARGV[1], ARGV[1]) > 0 then found = 1 end
return {1, trimmed, last, entries, epoch, found}
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

const idPattern = /^(\d{1,20})-(\d{1,20})(?:@([0-9a-f]{1,32}))?$/;

/** A position: the entry id, its parts, and the epoch (undefined for a bare entry id such as "0-0"). */
interface Position {
  readonly entry: string;
  readonly ms: bigint;
  readonly seq: bigint;
  readonly epoch: string | undefined;
}

function parseId(id: string): Position | undefined {
  const m = idPattern.exec(id);
  return m === null ? undefined : { entry: `${m[1]}-${m[2]}`, ms: BigInt(m[1]!), seq: BigInt(m[2]!), epoch: m[3] };
}

function parseOrThrow(id: string): Position {
  const p = parseId(id);
  if (p === undefined) throw malformedIdError(id, "redis");
  return p;
}

/** Orders entry ids; the epochs are not compared (ids of one follow or one read share one). */
function compareIds(a: string, b: string): number {
  const x = parseOrThrow(a);
  const y = parseOrThrow(b);
  return compareEntries(x, y);
}

function compareEntries(x: Position, y: Position): number {
  return x.ms !== y.ms ? (x.ms < y.ms ? -1 : 1) : x.seq === y.seq ? 0 : x.seq < y.seq ? -1 : 1;
}

/** A new epoch: 12 hex digits, random (a stream recreated in the same millisecond still differs). */
function newEpoch(): string {
  return randomBytes(6).toString("hex");
}

function unavailable(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  return new RpcError(Code.Unavailable, `the Redis event log is unavailable: ${(e as Error).message}`, { cause: e });
}

type Entry = [Buffer, Buffer[]];

/** An entry as an event of the history `epoch` (undefined: a stream from before epochs, ids bare). */
function toEvent(topic: string, [rawId, fields]: Entry, epoch: string | undefined): StoredEvent {
  const entry = rawId.toString();
  let payload: Uint8Array = new Uint8Array(0);
  let key: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString();
    if (f === "p") payload = new Uint8Array(fields[i + 1]!.buffer, fields[i + 1]!.byteOffset, fields[i + 1]!.byteLength);
    else if (f === "k") key = fields[i + 1]!.toString();
  }
  return { id: epoch === undefined ? entry : `${entry}@${epoch}`, topic, payload, publishedAt: Number(entry.slice(0, entry.indexOf("-"))), key };
}

/**
 * The epoch an entry was written in (its `e` field; undefined for entries older than epochs). A
 * live tail compares it with the epoch it started in: XREAD goes on across a stream deleted and
 * recreated (or lost and rewritten), where the ids would still look like one history.
 */
function entryEpoch([, fields]: Entry): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === "e") return fields[i + 1]!.toString();
  return undefined;
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
  // outlive it, except in a command written before the restart and sent again after it, which a
  // later call with the new id corrects.
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
  const followers = new Set<Redis>();
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
      return r.entries.map((e) => toEvent(topic, e, r.epoch));
    },

    follow(topic, after, listener): Follower {
      const start = parseOrThrow(after);
      // A tail's connection does not reconnect: a lost connection ends the tail (UNAVAILABLE) and
      // subscribers resume through read(), which checks the history. (ioredis would otherwise
      // send the blocked XREAD again after a reconnect, to a Redis that may have restarted, or
      // with autoResendUnfulfilledCommands off leave its promise pending forever.)
      const conn = redis.duplicate({ retryStrategy: () => null });
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
        let last = start.entry;
        let epoch = start.epoch;
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
                const written = entryEpoch(e) ?? epoch;
                if (epoch === undefined) epoch = written;
                else if (written !== undefined && written !== epoch) {
                  stop();
                  listener.onError(lostHistoryError(topic, `${last}@${epoch}`, written));
                  return;
                }
                const ev = toEvent(topic, e, epoch);
                last = e[0].toString();
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
          const epoch = (await redis.call("HGET", metaKey(name), "epoch")) as string | null;
          out.push({ name, lastEventId: last[0] === undefined ? "" : toEvent(name, last[0], epoch ?? undefined).id });
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
