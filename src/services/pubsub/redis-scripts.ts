/**
 * The Lua scripts of the Redis event log (redis-log.ts), each run atomically by Redis so that a
 * topic's stream, its meta hash (epoch, trim watermark, byte count) and its idempotency keys
 * change together and a read sees one consistent state. Each script's comment is its contract:
 * the KEYS and ARGV it takes and what it returns. Sent by SHA (EVALSHA), and in full the first
 * time a Redis has not seen it.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

// The topic's epoch (shared by the scripts). A topic's history starts anew, with a new epoch,
// when its stream is created or recreated (deleted, or lost with Redis's memory), and when Redis
// restarted since the topic was last touched (its run_id changed) unless the log was told Redis
// keeps every acknowledged write (`durable`): a restart from an RDB snapshot or an everysec AOF
// may have lost events after positions subscribers hold. `run`: the run_id the caller learnt
// on connecting, or "?" when it does not know it yet. It is taken only when it is the one the
// topic last saw; otherwise INFO says (it costs a third of an append, so once per topic after a
// restart): a command that ioredis sends again after reconnecting carries the old Redis's run_id,
// and taken as it is, it would start a history that the next call ended as one from before the
// restart. `writing`: the caller adds to the stream, which adopts an epoch that head() gave out
// before the stream existed; otherwise such an epoch expires after `pendingTtl` ms.
const epochLua = `
local function topicEpoch(stream, meta, candidate, durable, run, writing, pendingTtl)
  local exists = redis.call('EXISTS', stream) == 1
  local m = redis.call('HMGET', meta, 'epoch', 'stream', 'run')
  local epoch, hadStream, lastRun = m[1], m[2] ~= false, m[3]
  if not exists and (not epoch or hadStream) then
    redis.call('DEL', meta)
    epoch, hadStream, lastRun = false, false, false
  end
  if run ~= lastRun then run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') end
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

export const appendScript = new Script(appendLua);
export const readScript = new Script(readLua);
