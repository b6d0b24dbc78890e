/**
 * What the Redis log's parts (redis-log.ts, redis-tails.ts, redis-groups.ts) share about a Redis
 * stream: its entries as ioredis returns them, positions (`<ms>-<seq>`, optionally `@<epoch>`)
 * and their order, and the shape of an XREAD / XREADGROUP reply.
 */
import { malformedIdError } from "./event-log.js";

/** A stream entry as `callBuffer` returns it: its id and its field/value list. */
export type Entry = [Buffer, Buffer[]];

const idPattern = /^(\d{1,20})-(\d{1,20})(?:@([0-9a-f]{1,32}))?$/;

/** A position: the entry id, its parts, and the epoch (undefined for a bare entry id such as "0-0"). */
export interface Position {
  readonly entry: string;
  readonly ms: bigint;
  readonly seq: bigint;
  readonly epoch: string | undefined;
}

export function parseId(id: string): Position | undefined {
  const m = idPattern.exec(id);
  return m === null ? undefined : { entry: `${m[1]}-${m[2]}`, ms: BigInt(m[1]!), seq: BigInt(m[2]!), epoch: m[3] };
}

export function parseOrThrow(id: string): Position {
  const p = parseId(id);
  if (p === undefined) throw malformedIdError(id, "redis");
  return p;
}

/** Orders ids (bare or with an epoch); the epochs are not compared (ids of one follow or one read share one). */
export function compareIds(a: string, b: string): number {
  return compareEntries(parseOrThrow(a), parseOrThrow(b));
}

export function compareEntries(x: Position, y: Position): number {
  return x.ms !== y.ms ? (x.ms < y.ms ? -1 : 1) : x.seq === y.seq ? 0 : x.seq < y.seq ? -1 : 1;
}

/** The streams of an XREAD / XREADGROUP reply: ioredis may hand back a single [key, entries] pair unwrapped. */
export function streamsOf(reply: [Buffer, Entry[]][] | [Buffer, Entry[]] | null): [Buffer, Entry[]][] {
  if (reply === null) return [];
  return Buffer.isBuffer(reply[0]) ? [reply as [Buffer, Entry[]]] : (reply as [Buffer, Entry[]][]);
}
