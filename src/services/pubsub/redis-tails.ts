/**
 * Live tails of Redis streams, many per connection: one XREAD BLOCK names up to
 * `topicsPerConnection` (default 16) streams, so a process following 1,000 topics holds 63
 * connections instead of 1,000, and one following the log's default maxTopics (10,000) 625:
 * three such hub processes fit Redis's default maxclients (10,000), where one per topic did not.
 *
 * Why not one connection for all: each XREAD sends its whole list of keys and positions again,
 * and a busy process issues one per event it is woken for. `npm run bench:pubsub-scale` (30,000
 * subscriptions, 1,000 topics, 15,000 deliveries/s) measured hub CPU per delivery about the same
 * with 1 and 16 topics per connection, and 1.1–1.3× with 64 on three hubs.
 *
 * A new tail must join a read that may already be blocked: the loop re-reads its list before
 * each XREAD, and `kick` interrupts a blocked one with CLIENT UNBLOCK (from the log's main
 * connection). An UNBLOCK that arrives before the XREAD has blocked does nothing, so it is repeated
 * until the loop has read with the new list. A stopped tail is only dropped from the next read.
 *
 * Per tail, as before: events after its position, in order; an entry written in another epoch
 * (the stream was deleted and recreated, or lost and rewritten, under a blocked XREAD) ends that
 * tail with DATA_LOSS. A connection lost ends every tail on it (UNAVAILABLE); connections do not
 * reconnect (a resend after a Redis restart could skip what the restart lost): subscribers resume
 * through read(), which checks the history, and a later tail opens a new connection.
 */
import type { Redis } from "ioredis";
import type { RpcError } from "../../protocol/errors.js";
import type { FollowListener, Follower, StoredEvent } from "./event-log.js";
import { compareIds, streamsOf, type Entry } from "./redis-stream.js";

/** One entry, read once: its id, its epoch field, and the event it is for a tail of `epoch`. */
export interface TailEntry {
  readonly entry: string;
  readonly written: string | undefined;
  event(epoch: string | undefined): StoredEvent;
}

/** What the log lends its tails. */
export interface TailsHost {
  readonly redis: Redis;
  streamKey(topic: string): string;
  parse(topic: string, e: Entry): TailEntry;
  lostHistory(topic: string, position: string, epoch: string): RpcError;
  unavailable(e: unknown): RpcError;
}

class Tail {
  stopped = false;
  constructor(
    readonly topic: string,
    /** The entry id of the last event delivered (or the start). */
    public last: string,
    public epoch: string | undefined,
    readonly listener: FollowListener,
  ) {}
}

/** One connection's XREAD loop over its tails. */
class TailConnection {
  readonly tails = new Set<Tail>();
  private conn: Redis | undefined;
  private clientId: number | undefined;
  /** Bumped by every change of the tails; the loop reads with the list of one generation. */
  private generation = 0;
  private readingGeneration = -1;
  private blockedRead = false;
  private kicking = false;
  closed = false;

  constructor(
    private readonly host: TailsHost,
    private readonly onEmpty: (c: TailConnection) => void,
  ) {}

  add(tail: Tail): void {
    this.tails.add(tail);
    this.generation++;
    if (this.conn === undefined) void this.loop();
    else this.kick();
  }

  remove(tail: Tail): void {
    this.tails.delete(tail);
    this.generation++;
    if (this.tails.size === 0) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.disconnect();
    this.onEmpty(this);
  }

  /** Interrupts a blocked XREAD that reads an older list (see the module comment). */
  private kick(): void {
    if (this.kicking || this.closed) return;
    if (!this.blockedRead || this.readingGeneration === this.generation || this.clientId === undefined) return;
    this.kicking = true;
    this.host.redis.call("CLIENT", "UNBLOCK", this.clientId).then(
      (n) => {
        this.kicking = false;
        // Not blocked yet (the XREAD was still on its way): try again in a moment.
        if (Number(n) === 0) setTimeout(() => this.kick(), 2).unref();
      },
      () => {
        this.kicking = false;
      },
    );
  }

  private async loop(): Promise<void> {
    const conn = (this.conn = this.host.redis.duplicate({ retryStrategy: () => null }));
    // Kept to say why the connection closed: ioredis's own error for a command on it is only
    // "Connection is closed", which hides e.g. "max number of clients reached".
    let lastError: unknown;
    conn.on("error", (e: unknown) => (lastError = e));
    try {
      this.clientId = Number(await conn.call("CLIENT", "ID"));
      while (!this.closed && this.tails.size > 0) {
        // One position per stream: the oldest of its tails (a topic normally has one).
        const from = new Map<string, Tail[]>();
        for (const t of this.tails) {
          const list = from.get(t.topic);
          if (list === undefined) from.set(t.topic, [t]);
          else list.push(t);
        }
        const keys: string[] = [];
        const ids: string[] = [];
        for (const [topic, list] of from) {
          keys.push(this.host.streamKey(topic));
          ids.push(list.reduce((min, t) => (compareIds(t.last, min) < 0 ? t.last : min), list[0]!.last));
        }
        this.readingGeneration = this.generation;
        this.blockedRead = true;
        const r = (await conn.callBuffer("XREAD", "COUNT", 1000, "BLOCK", 0, "STREAMS", ...keys, ...ids)) as [Buffer, Entry[]][] | [Buffer, Entry[]] | null;
        this.blockedRead = false;
        if (this.closed) return;
        for (const [rawKey, entries] of streamsOf(r)) {
          const topic = [...from.keys()][keys.indexOf(rawKey.toString())];
          const tails = topic === undefined ? undefined : from.get(topic);
          if (tails === undefined) continue;
          for (const e of entries) this.deliver(tails, this.host.parse(topic!, e));
        }
      }
    } catch (e) {
      if (this.closed) return;
      const error = this.host.unavailable(lastError instanceof Error && lastError !== e ? new Error(`${(e as Error).message} (${lastError.message})`) : e);
      const tails = [...this.tails];
      this.tails.clear();
      this.close();
      for (const t of tails) {
        if (t.stopped) continue;
        t.stopped = true;
        t.listener.onError(error);
      }
    }
  }

  private deliver(tails: Tail[], e: TailEntry): void {
    for (const t of tails) {
      if (t.stopped || compareIds(e.entry, t.last) <= 0) continue;
      const written = e.written ?? t.epoch;
      if (t.epoch === undefined) t.epoch = written;
      else if (written !== undefined && written !== t.epoch) {
        const position = `${t.last}@${t.epoch}`;
        this.stop(t);
        t.listener.onError(this.host.lostHistory(t.topic, position, written));
        continue;
      }
      t.last = e.entry;
      t.listener.onEvent(e.event(t.epoch));
    }
  }

  stop(t: Tail): void {
    if (t.stopped) return;
    t.stopped = true;
    this.remove(t);
  }
}

/** The tails of one log: connections of up to `topicsPerConnection` streams each. */
export class RedisTails {
  private readonly connections = new Set<TailConnection>();

  constructor(
    private readonly host: TailsHost,
    private readonly topicsPerConnection = 16,
  ) {}

  /** Tails `topic` after entry `last` of history `epoch` (undefined: a bare position such as "0-0"). */
  follow(topic: string, last: string, epoch: string | undefined, listener: FollowListener): Follower {
    const tail = new Tail(topic, last, epoch, listener);
    let conn: TailConnection | undefined;
    for (const c of this.connections) {
      if (c.tails.size < this.topicsPerConnection) {
        conn = c;
        break;
      }
    }
    if (conn === undefined) {
      conn = new TailConnection(this.host, (c) => this.connections.delete(c));
      this.connections.add(conn);
    }
    const owner = conn;
    owner.add(tail);
    return { stop: () => owner.stop(tail) };
  }

  /** Connections open for tails (for tests and metrics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  close(): void {
    for (const c of [...this.connections]) {
      for (const t of c.tails) t.stopped = true;
      c.close();
    }
    this.connections.clear();
  }
}
