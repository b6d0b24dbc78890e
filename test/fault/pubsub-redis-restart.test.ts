/**
 * Issue 16's target: the hub server killed with SIGKILL five times and Redis restarted once,
 * during 20,000 events, and every subscriber ends with no event lost and none duplicated, or
 * with an explicit DATA_LOSS naming the first missing position — never a silent gap.
 *
 * Real processes, all on 127.0.0.1 and stopped by PID: a redis-server (killed with SIGKILL and
 * started again on the same port, in the same dir), a hub server child on it (killed and started
 * again on the same port), and in this process a publisher (sixteen events in flight, each retried
 * with its idempotency key until acknowledged) and three subscribers (subscribeTopic, from
 * "0-0") compared event by event with what Redis holds. The third subscriber has a channel of
 * its own with small flow-control windows and stops reading for a while, so that it is thousands
 * of events behind, resuming from the log rather than live, when Redis restarts. With several
 * events in flight, one retried after a failure may be stored after later ones: the log's order
 * is the order, and the payloads 0..N-1 must each be in it once.
 *
 *  1. Redis without persistence: the restart loses the topic's history. Every subscriber gets
 *     a prefix of that history exactly once, in order, then DATA_LOSS naming the last event it
 *     received; none goes on into the new history. (Writes are paused for the instant between
 *     reading the doomed stream and the kill, so what was lost is known exactly.)
 *  2. Redis with an AOF fsynced before every reply, and the log made with `durable: true`: the
 *     restart loses nothing, and every subscriber gets every event exactly once, in order.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Redis } from "ioredis";
import { Code, createChannel, createClient, RpcError, silentLogger, type Channel, type Client } from "../../src/index.js";
import { PubSubService, subscribeTopic, type Event } from "../../src/services/pubsub/index.js";
import { eventually, steady } from "../support/harness.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, type RedisInstance } from "../support/redis.js";
import { startPublisher, type RetryingPublisher } from "./fixtures/publisher.js";
import { startChildServer, type ChildServer } from "./fixtures/child-server.js";

const total = 20_000;
const topic = "restarts";
const prefix = "restart:";
const streamKey = `${prefix}t:${topic}`;
const metaKey = `${prefix}m:${topic}`;
const backoff = { initialMs: 50, maxMs: 200 };

/** A stream entry as ioredis's XRANGE gives it: the id and the fields (p payload, e epoch, k key). */
type Entry = [string, string[]];

function field(entry: Entry, name: string): string | undefined {
  const fields = entry[1];
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

const payloadOf = (ev: Event) => new TextDecoder().decode(ev.payload);
/** "0", …, String(n - 1): the payloads of events 0..n-1. */
const numbered = (n: number) => Array.from({ length: n }, (_, i) => String(i));
const runIdOf = (info: string) => /run_id:([0-9a-f]+)/.exec(info)?.[1] ?? "";
/** How many of `payloads` come after a greater one. */
const outOfOrder = (payloads: readonly string[]) => payloads.filter((p, i) => i > 0 && Number(p) < Number(payloads[i - 1])).length;
/** Payloads in numeric order. */
const sorted = (payloads: readonly string[]) => [...payloads].sort((a, b) => Number(a) - Number(b));

/** A history read from Redis: its epoch, and its entries' ids (with the epoch) and payloads, in log order. */
interface History {
  readonly epoch: string;
  readonly ids: string[];
  readonly payloads: string[];
}

async function readHistory(r: Redis): Promise<History> {
  const entries = (await r.xrange(streamKey, "-", "+")) as Entry[];
  const epoch = await r.hget(metaKey, "epoch");
  assert.ok(epoch !== null, "the topic has an epoch");
  for (const e of entries) assert.equal(field(e, "e"), epoch, `entry ${e[0]} was written in the topic's epoch`);
  return { epoch, ids: entries.map(([id]) => `${id}@${epoch}`), payloads: entries.map((e) => field(e, "p") ?? "") };
}

/** Asserts that the publisher's acknowledged id for each event is that event's id in one of `histories`. */
function assertAcknowledgedIds(ids: readonly string[], histories: readonly History[]): void {
  const idOf = new Map<string, string>();
  for (const h of histories) h.payloads.forEach((p, i) => idOf.set(`${p}@${h.epoch}`, h.ids[i]!));
  for (let n = 0; n < total; n++) {
    const id = ids[n];
    assert.ok(id !== undefined, `event ${n} was acknowledged`);
    assert.equal(id, idOf.get(`${n}@${id.slice(id.indexOf("@") + 1)}`), `event ${n}'s acknowledged id ${id} is event ${n} in the history it names`);
  }
}

interface Subscriber {
  readonly events: Event[];
  retries: number;
  /** While set, it takes no further event (its stream backs up, then the hub cuts it). */
  held: Promise<void> | undefined;
  /** What its loop threw (undefined while it runs, or if it ended without an error). */
  error: unknown;
  ended: boolean;
}

/**
 * A redis-server in a dir of the test's own, a hub server child on it, a channel and a client to
 * the hub, three subscribers from "0-0" and a publisher of `total` events; `close()` stops all.
 */
class Rig {
  readonly subscribers: Subscriber[] = Array.from({ length: 3 }, () => ({ events: [], retries: 0, held: undefined, error: undefined, ended: false }));
  hubKills = 0;
  private readonly ac = new AbortController();
  private readers: Promise<unknown> = Promise.resolve();
  private publisherStarted: RetryingPublisher | undefined;
  private readonly releases: (() => void)[] = [];

  private constructor(
    readonly durable: boolean,
    readonly dir: string,
    public redis: RedisInstance,
    public hub: ChildServer,
    private readonly hubArgs: string[],
    readonly channel: Channel,
    readonly client: Client<typeof PubSubService>,
    /** Subscriber 2's own channel, with small windows: when it stops reading, the hub's stream to it backs up. */
    readonly narrowChannel: Channel,
  ) {}

  static async start(durable: boolean): Promise<Rig> {
    const dir = mkdtempSync(join(tmpdir(), "rill-redis-restart-"));
    let redis: RedisInstance | undefined;
    try {
      redis = await startRedisServer({ dir, appendonly: durable });
      const port = await freePort();
      // No count limit: the stream keeps all 20,000 events, so it is the whole expected sequence.
      const hubArgs = ["--port", String(port), "--redis", redis.url, "--prefix", prefix, "--max-events", "0", ...(durable ? ["--durable"] : [])];
      const hub = await startChildServer(hubArgs);
      const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger, backoff });
      const narrow = { initialStreamWindowBytes: 65_535, bdpProbe: false, receiveHighWaterMark: 16_384 };
      const narrowChannel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger, backoff, ...narrow });
      return new Rig(durable, dir, redis, hub, hubArgs, channel, createClient(PubSubService, channel), narrowChannel);
    } catch (e) {
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Starts the three subscribers, from the topic's first event. */
  subscribe(): void {
    const narrowClient = createClient(PubSubService, this.narrowChannel);
    this.readers = Promise.allSettled(
      this.subscribers.map(async (s, i) => {
        try {
          const events = subscribeTopic(i === 2 ? narrowClient : this.client, topic, { after: "0-0", signal: this.ac.signal, backoff, onRetry: () => s.retries++ });
          for await (const ev of events) {
            s.events.push(ev);
            if (s.held !== undefined) await s.held;
          }
        } catch (e) {
          s.error = e;
        } finally {
          s.ended = true;
        }
      }),
    );
  }

  /** Starts publishing events 0..total-1, sixteen at a time, as fast as they are acknowledged. */
  publish(): RetryingPublisher {
    return (this.publisherStarted = startPublisher(this.client, topic, { count: total, pauseMs: 0, inFlight: 16 }));
  }

  /** Makes subscriber `i` stop taking events; the function returned lets it go on. */
  hold(i: number): () => void {
    const s = this.subscribers[i]!;
    let release!: () => void;
    s.held = new Promise<void>((resolve) => (release = resolve));
    const go = () => {
      s.held = undefined;
      release();
    };
    this.releases.push(go);
    return go;
  }

  /** SIGKILL of the hub server, then the same server started again on its port. */
  async killHub(): Promise<void> {
    await this.hub.kill();
    this.hubKills++;
    this.hub = await startChildServer(this.hubArgs);
  }

  /** SIGKILL of redis-server, then one started again on the same port in the same dir. */
  async restartRedis(): Promise<void> {
    await this.redis.stop(); // the dir was given: it is kept
    this.redis = await startRedisServer({ port: this.redis.port, dir: this.dir, appendonly: this.durable });
  }

  /** Runs `f` on a connection of its own to Redis. */
  async admin<T>(f: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis(this.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    r.on("error", () => {});
    try {
      await r.connect();
      return await f(r);
    } finally {
      r.disconnect();
    }
  }

  /** Stops the subscribers, the publisher and every process, by PID, and removes the dir. */
  async close(): Promise<void> {
    await this.publisherStarted?.stop();
    this.ac.abort();
    for (const go of this.releases) go();
    await this.readers;
    this.channel.close();
    this.narrowChannel.close();
    await this.hub.kill();
    await this.redis.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Waits until `publisher` has `n` events acknowledged and every subscriber not held has received all but the newest `slack`. */
async function progress(rig: Rig, publisher: RetryingPublisher, n: number, what: string, slack = 500): Promise<void> {
  try {
    const received = () => rig.subscribers.every((s) => s.held !== undefined || s.events.length >= n - slack);
    await eventually(() => publisher.published >= n && received(), 20_000, `${what}: ${n} events published and received`);
  } catch (e) {
    throw new Error(`${(e as Error).message} (published ${publisher.published}; subscribers at ${rig.subscribers.map((s) => s.events.length).join(", ")})`);
  }
  for (const [i, s] of rig.subscribers.entries()) assert.equal(s.ended, false, `subscriber ${i} ended early: ${String(s.error)}`);
}

test("Redis restarted without persistence amid five kill -9s of the hub: every subscriber gets the history up to the restart once, in order, then DATA_LOSS naming its last event", async () => {
  const t0 = Date.now();
  const rig = await Rig.start(false);
  try {
    rig.subscribe();
    const publisher = rig.publish();
    // The five hub kills while the first history is written, so every subscriber lives through
    // them. Subscriber 2 stops reading at the fourth: what its small windows hold is all it has
    // when the fifth kills the hub serving it, thousands of events behind when Redis restarts.
    let release2 = () => {};
    for (let kill = 1; kill <= 5; kill++) {
      await progress(rig, publisher, (kill * total) / 10, `before hub kill ${kill}`);
      if (kill === 4) release2 = rig.hold(2);
      await rig.killHub();
    }
    await progress(rig, publisher, (6 * total) / 10, "before the Redis restart");

    // The history the restart loses, exactly: writes are paused (reads go on: the hub's live tails
    // still deliver), the stream is read, and redis-server is killed before any other write runs.
    const lost = await rig.admin(async (r) => {
      await r.call("CLIENT", "PAUSE", "10000", "WRITE");
      return readHistory(r);
    });
    await rig.restartRedis();
    release2();

    await eventually(() => rig.subscribers.every((s) => s.ended), 20_000, "every subscriber to end after the Redis restart");
    await publisher.done;
    assert.equal(publisher.published, total);

    // The publisher went on in a new history (a new epoch). Each history holds an event at most
    // once (idempotent retries across hub kills), and together they hold every event.
    const kept = await rig.admin(readHistory);
    assert.notEqual(kept.epoch, lost.epoch, "the topic has a new epoch after the restart");
    assert.equal(new Set(lost.payloads).size, lost.payloads.length, "the lost history holds each event once");
    assert.equal(new Set(kept.payloads).size, kept.payloads.length, "the new history holds each event once");
    assert.deepEqual(sorted([...new Set([...lost.payloads, ...kept.payloads])]), numbered(total), "every event is in one of the histories");
    assertAcknowledgedIds(publisher.ids, [lost, kept]);
    assert.ok(lost.payloads.length >= (6 * total) / 10, `the lost history holds what was published before the restart (${lost.payloads.length})`);

    for (const [i, s] of rig.subscribers.entries()) {
      const k = s.events.length;
      assert.ok(s.error instanceof RpcError, `subscriber ${i} ended with an RpcError, not ${String(s.error)}`);
      assert.equal(Code[s.error.code], "DataLoss", `subscriber ${i}: ${s.error.message}`);
      assert.ok(k > 0, `subscriber ${i} received events before the restart`);
      // Exactly a prefix of the lost history: no gap, no duplicate, nothing of the new history.
      assert.deepEqual(s.events.map((e) => e.eventId), lost.ids.slice(0, k), `subscriber ${i} received the first ${k} lost events, each once, in order`);
      assert.deepEqual(s.events.map(payloadOf), lost.payloads.slice(0, k), `subscriber ${i} received their payloads`);
      // The error names the position it resumed after: the last event it received.
      const last = s.events[k - 1]!.eventId;
      assert.ok(s.error.message.includes(`cannot resume topic "${topic}" after event ${last}:`), `subscriber ${i}'s DATA_LOSS names its last event ${last}: ${s.error.message}`);
      // Subscriber 2 read on through the first three hub kills only.
      const kills = i === 2 ? 3 : 5;
      assert.ok(s.retries >= kills, `subscriber ${i} resubscribed after each of ${kills} hub kills (${s.retries} retries)`);
    }
    assert.ok(rig.subscribers[2]!.events.length < lost.ids.length, "subscriber 2 was behind when Redis restarted");
    console.log(
      `no persistence: ${total} events in ${Date.now() - t0} ms; ${rig.hubKills} hub kills; ${lost.payloads.length} lost with the restart, ${kept.payloads.length} in the new history; ` +
        `subscribers got ${rig.subscribers.map((s) => s.events.length).join(", ")} then DATA_LOSS (retries ${rig.subscribers.map((s) => s.retries).join(", ")}); ${publisher.failures} failed publish attempts; ${outOfOrder(lost.payloads) + outOfOrder(kept.payloads)} events stored after a later one`,
    );
  } finally {
    await rig.close();
  }
});

test("Redis restarted with appendfsync always (durable: true) amid five kill -9s of the hub: every subscriber gets every acknowledged event exactly once, in order", async () => {
  const t0 = Date.now();
  const rig = await Rig.start(true);
  try {
    rig.subscribe();
    const publisher = rig.publish();
    let epochBefore: string | null = null;
    let runBefore = "";
    // Hub kills at 1/6, 2/6 and 3/6; Redis restarted at 4/6 and the hub killed again just after,
    // while subscribers resume; the last hub kill at 5/6. Subscriber 2 stops reading from the
    // third hub kill to the last: it catches up from the log across both restarts.
    let release2 = () => {};
    let behind = 0;
    for (let step = 1; step <= 5; step++) {
      await progress(rig, publisher, (step * total) / 6, `step ${step}`);
      if (step === 3) release2 = rig.hold(2);
      if (step === 5) {
        behind = publisher.published - rig.subscribers[2]!.events.length;
        release2();
      }
      if (step === 4) {
        [epochBefore, runBefore] = await rig.admin(async (r) => [await r.hget(metaKey, "epoch"), runIdOf(await r.info("server"))] as const);
        await rig.restartRedis();
        const at = publisher.published;
        await eventually(() => publisher.published >= at + 50, 20_000, "publishing after the Redis restart");
        await rig.killHub();
      } else {
        await rig.killHub();
      }
    }
    await publisher.done;
    assert.equal(publisher.published, total);
    await eventually(() => rig.subscribers.every((s) => s.events.length >= total || s.ended), 20_000, "every subscriber to catch up");
    // Anything extra (a duplicate) would arrive now.
    await steady(() => rig.subscribers.map((s) => s.events.length).join(","), 300, 5000, "the subscribers' counts");

    const [log, runAfter] = await rig.admin(async (r) => [await readHistory(r), runIdOf(await r.info("server"))] as const);
    assert.notEqual(runAfter, runBefore, "Redis restarted (a new run_id)");
    assert.equal(log.epoch, epochBefore, "the restart kept the topic's history (durable)");
    assert.deepEqual(sorted(log.payloads), numbered(total), "the log holds each event once");
    assertAcknowledgedIds(publisher.ids, [log]);
    for (const [i, s] of rig.subscribers.entries()) {
      assert.equal(s.error, undefined, `subscriber ${i} ended with ${String(s.error)}`);
      assert.equal(s.ended, false, `subscriber ${i} is still subscribed`);
      assert.deepEqual(s.events.map((e) => e.eventId), log.ids, `subscriber ${i} received the log's events exactly once, in order`);
      assert.deepEqual(s.events.map(payloadOf), log.payloads, `subscriber ${i} received payloads 0..${total - 1} in the log's order`);
      // Subscriber 2 was away for three of the six outages (its stream failed once meanwhile).
      const outages = i === 2 ? 3 : 6;
      assert.ok(s.retries >= outages, `subscriber ${i} resubscribed after each of ${outages} outages (${s.retries} retries)`);
    }
    assert.ok(behind > total / 6, `subscriber 2 was ${behind} events behind across the Redis restart`);
    console.log(
      `appendfsync always: ${total} events in ${Date.now() - t0} ms; ${rig.hubKills} hub kills and a Redis restart; ` +
        `subscriber retries ${rig.subscribers.map((s) => s.retries).join(", ")}; subscriber 2 caught up from ${behind} behind; ${publisher.failures} failed publish attempts; ${outOfOrder(log.payloads)} events stored after a later one`,
    );
  } finally {
    await rig.close();
  }
});
