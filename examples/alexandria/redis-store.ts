/**
 * The library's store on Redis, with lent files' bytes on local disk: entries, bindings and
 * partial lends survive a restart of the server process (and of Redis, given its persistence),
 * and several Alexandria servers can share one Redis.
 *
 * Keys, under `prefix` (default "alexandria:"):
 *   e:<agent>   a hash: path → entry (JSON)
 *   b           a hash: [hash, lender, borrower] (JSON) → "<seq>\n<binding JSON>", `seq` being
 *               the binding's entry id in the stream `s`
 *   a:<agent>   a list: the keys (in `b`) of the bindings `agent` takes part in, oldest first
 *   s           a stream: one entry per new binding (`l` lender, `r` borrower, `v` binding JSON),
 *               trimmed to `maxStreamLength` entries
 *   trimmed     the id of the newest entry trimming removed from `s`
 * A binding is added by one Lua script, so two servers adding the same one at once get the same
 * id, and the stream, the lists and the trim watermark change together.
 *
 * Watchers read the stream with XREAD BLOCK from the last id they saw (one connection each), so a
 * Redis reconnect or restart loses nothing: they reconnect and read on from there. A watcher that
 * falls more than `maxStreamLength` bindings behind (e.g. while Redis was away) sees
 * `trimmed` pass its position and reads what it missed from its agent's list instead (each
 * binding keeps its `seq`), so trimming bounds Redis's memory without losing bindings.
 *
 * File bytes never go to Redis: a lent file is `<filesDir>/<hash>` once verified, and
 * `<filesDir>/<hash>.part` until then (Rill's `fileSink`), whose size is where a lend resumes,
 * also after the server process restarts. Servers sharing a Redis each hold their own files.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, mkdirSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis, RedisOptions } from "ioredis";
import { Code, RpcError } from "../../src/index.js";
import { fileSink, type ChunkSink, type ChunkSource } from "../../src/transfer/index.js";
import type { Binding, LibraryEntry } from "./domain.js";
import type { LibraryStore } from "./store.js";
// Stream ids are ordered as the pub/sub log orders them.
import { compareIds } from "../../src/services/pubsub/redis-stream.js";

// ioredis is an optional peer dependency: only a server configured for Redis needs it.
const ioredis = await import("ioredis").catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));

/** Options of `redisStore`. */
export interface RedisStoreOptions {
  /** `redis://host:port/db`. Default: the ALEXANDRIA_REDIS_URL environment variable. */
  url?: string;
  /**
   * Extra ioredis options (its `RedisOptions`), passed as they are. Typed loosely so that these
   * declarations do not need ioredis installed.
   */
  redis?: Readonly<Record<string, unknown>>;
  /** Prefix of every key. Default "alexandria:". */
  prefix?: string;
  /** Where lent files are kept (created if missing). */
  filesDir: string;
  /** Bindings the stream keeps for watchers; older ones are read from the lists. Default 10,000. */
  maxStreamLength?: number;
  /** How long a watcher retries a Redis that is away before failing with UNAVAILABLE. Default 60 s. */
  watchOutageMs?: number;
}

/** A stream entry id, "<ms>-<seq>". */
type StreamId = string;

function unavailable(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  return new RpcError(Code.Unavailable, `the library's Redis store is unavailable: ${(e as Error).message}`, { cause: e });
}

// KEYS: b, a:<lender>, a:<borrower>, s, trimmed. ARGV: binding key, binding JSON, max stream
// length, lender, borrower. Returns the stored "<seq>\n<binding JSON>" (the existing one if any).
const ADD_BINDING = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then return old end
local maxlen = tonumber(ARGV[3])
local len = redis.call('XLEN', KEYS[4])
if len >= maxlen then
  local gone = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', len - maxlen + 1)
  redis.call('SET', KEYS[5], gone[#gone][1])
end
local seq = redis.call('XADD', KEYS[4], 'MAXLEN', maxlen, '*', 'l', ARGV[4], 'r', ARGV[5], 'v', ARGV[2])
local value = seq .. '\\n' .. ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('RPUSH', KEYS[2], ARGV[1])
if KEYS[3] ~= KEYS[2] then redis.call('RPUSH', KEYS[3], ARGV[1]) end
return value
`;

type StreamEntry = [StreamId, string[]];
/** XREAD's reply for one stream: null (nothing), or [key, entries], nested once more or not by the ioredis version. */
type XreadReply = [string, StreamEntry[]][] | [string, StreamEntry[]] | null;

function entriesOf(reply: XreadReply): StreamEntry[] {
  if (reply === null || reply.length === 0) return [];
  return typeof reply[0] === "string" ? (reply as [string, StreamEntry[]])[1] : (reply as [string, StreamEntry[]][])[0]![1];
}

/** A stored binding: "<seq>\n<JSON>". */
function parseStored(value: string): { seq: StreamId; binding: Binding } {
  const nl = value.indexOf("\n");
  return { seq: value.slice(0, nl), binding: JSON.parse(value.slice(nl + 1)) as Binding };
}

/** A library store on Redis (entries, bindings) and disk (files). Call `close()` when done. */
export function redisStore(options: RedisStoreOptions): LibraryStore {
  if (ioredis instanceof Error) {
    throw new Error(`redisStore needs the ioredis package, which is not installed: run \`npm install ioredis\` (${ioredis.message.split("\n")[0]})`);
  }
  const url = options.url ?? process.env.ALEXANDRIA_REDIS_URL;
  if (url === undefined || url === "") throw new Error("redisStore needs a Redis URL: pass `url` or set ALEXANDRIA_REDIS_URL");
  const prefix = options.prefix ?? "alexandria:";
  const maxStreamLength = options.maxStreamLength ?? 10_000;
  if (!(maxStreamLength >= 1)) throw new RangeError(`maxStreamLength must be at least 1, got ${maxStreamLength}`);
  const watchOutageMs = options.watchOutageMs ?? 60_000;
  const filesDir = options.filesDir;
  mkdirSync(filesDir, { recursive: true });

  // One retry per command: a call fails fast (UNAVAILABLE) while Redis is away, and the agent's
  // own resume decides when to try again.
  const redisOptions: RedisOptions = { maxRetriesPerRequest: 1, ...(options.redis as RedisOptions | undefined) };
  const redis: Redis = new ioredis.Redis(url, redisOptions as never);
  redis.on("error", () => {
    // ioredis reconnects by itself; failed commands reject with the reason.
  });
  const keys = {
    entries: (agent: string) => `${prefix}e:${agent}`,
    bindings: `${prefix}b`,
    agent: (agent: string) => `${prefix}a:${agent}`,
    stream: `${prefix}s`,
    trimmed: `${prefix}trimmed`,
  };
  const watchers = new Set<Redis>();
  const sinks = new Map<string, ChunkSink>();
  let closed = false;

  async function stored(agent: string): Promise<{ seq: StreamId; binding: Binding }[]> {
    const ids = await redis.lrange(keys.agent(agent), 0, -1);
    if (ids.length === 0) return [];
    const values = await redis.hmget(keys.bindings, ...ids);
    return values.flatMap((v) => (v === null ? [] : [parseStored(v)]));
  }

  /** The watch loop: bindings of `agent` after stream id `start`, until `signal` aborts or the store closes. */
  async function* watch(agent: string, start: Promise<StreamId>, signal: AbortSignal): AsyncGenerator<Binding> {
    let last: StreamId;
    try {
      last = await start;
    } catch (e) {
      throw unavailable(e);
    }
    let conn: Redis | undefined;
    const disconnect = () => {
      if (conn === undefined) return;
      watchers.delete(conn);
      conn.disconnect();
      conn = undefined;
    };
    signal.addEventListener("abort", disconnect, { once: true });
    let failingSince: number | undefined;
    let delay = 50;
    try {
      while (!signal.aborted && !closed) {
        const batch: Binding[] = [];
        try {
          if (conn === undefined) {
            // No reconnects of its own: this loop reconnects, then reads on from `last`.
            conn = redis.duplicate({ retryStrategy: () => null, maxRetriesPerRequest: 0 });
            conn.on("error", () => {});
            watchers.add(conn);
          }
          const read = (await conn.call("XREAD", "COUNT", 1000, "BLOCK", 0, "STREAMS", keys.stream, last)) as XreadReply;
          // Read after the entries: a trim that removed entries before the XREAD shows here.
          const trimmed = await redis.get(keys.trimmed);
          if (trimmed !== null && compareIds(trimmed, last) > 0) {
            for (const s of await stored(agent)) if (compareIds(s.seq, last) > 0 && compareIds(s.seq, trimmed) <= 0) batch.push(s.binding);
            last = trimmed;
          }
          for (const [seq, fields] of entriesOf(read)) {
            if (compareIds(seq, last) <= 0) continue;
            last = seq;
            const f = new Map<string, string>();
            for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
            if (f.get("l") === agent || f.get("r") === agent) batch.push(JSON.parse(f.get("v")!) as Binding);
          }
          failingSince = undefined;
          delay = 50;
        } catch (e) {
          if (signal.aborted || closed) return;
          disconnect();
          failingSince ??= Date.now();
          if (Date.now() - failingSince > watchOutageMs) throw unavailable(e);
          await sleep(delay, undefined, { signal }).catch(() => {});
          delay = Math.min(1000, delay * 2);
        }
        yield* batch;
      }
    } finally {
      signal.removeEventListener("abort", disconnect);
      disconnect();
    }
  }

  return {
    async saveEntry(agent, entry) {
      await redis.hset(keys.entries(agent), entry.path, JSON.stringify(entry)).catch((e: unknown) => {
        throw unavailable(e);
      });
    },
    async entries(agent) {
      const values = await redis.hvals(keys.entries(agent)).catch((e: unknown) => {
        throw unavailable(e);
      });
      // HVALS's order is Redis's; by path, the same on every call.
      return values.map((v) => JSON.parse(v) as LibraryEntry).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    },
    async addBinding(b) {
      const binding: Binding = { id: randomUUID(), hash: b.hash, path: b.path, size: b.size, lender: b.lender, borrower: b.borrower };
      const value = (await redis
        .eval(
          ADD_BINDING,
          5,
          keys.bindings,
          keys.agent(b.lender),
          keys.agent(b.borrower),
          keys.stream,
          keys.trimmed,
          JSON.stringify([b.hash, b.lender, b.borrower]),
          JSON.stringify(binding),
          maxStreamLength,
          b.lender,
          b.borrower,
        )
        .catch((e: unknown) => {
          throw unavailable(e);
        })) as string;
      return parseStored(value).binding;
    },
    async bindings(agent) {
      return (await stored(agent).catch((e: unknown) => {
        throw unavailable(e);
      })).map((s) => s.binding);
    },
    watchBindings(agent, signal) {
      // The starting point is asked for now, on the main connection: it is ordered before
      // whatever the caller sends next (the listing of existing bindings), so no binding falls
      // between the two.
      const start = redis.xrevrange(keys.stream, "+", "-", "COUNT", 1).then((r) => r[0]?.[0] ?? "0-0");
      start.catch(() => {});
      return watch(agent, start, signal);
    },
    fileSink(hash) {
      let sink = sinks.get(hash);
      if (sink === undefined) sinks.set(hash, (sink = heldFile(filesDir, hash)));
      return sink;
    },
    async file(hash) {
      const path = join(filesDir, hash);
      return (await sizeOf(path)) === undefined ? undefined : (path satisfies ChunkSource);
    },
    async close() {
      closed = true;
      for (const w of watchers) w.disconnect();
      watchers.clear();
      // QUIT only to a Redis that is there: one that is away would leave ioredis retrying (and
      // its timers running) until QUIT gives up.
      if (redis.status === "ready") await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    },
  };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * File `hash` in `dir`: Rill's file sink (bytes in `<hash>.part` until verified, then renamed to
 * `<hash>`), which once the file is whole reports its full size and reads it back, as the memory
 * store's sink does, so lending a file the library holds sends no bytes again.
 */
function heldFile(dir: string, hash: string): ChunkSink {
  const path = join(dir, hash);
  const partial = fileSink(path);
  return {
    async size() {
      return (await sizeOf(path)) ?? (await partial.size());
    },
    async *read() {
      yield* (await sizeOf(path)) !== undefined ? createReadStream(path) : partial.read!();
    },
    write: (data) => partial.write(data),
    async complete(sha256) {
      // Whole already: the receiver has just re-hashed it against the offered hash.
      if ((await sizeOf(path)) !== undefined) return;
      await partial.complete!(sha256);
    },
    async discard() {
      await partial.discard!();
      await rm(path, { force: true });
    },
    close: () => partial.close!(),
  };
}
