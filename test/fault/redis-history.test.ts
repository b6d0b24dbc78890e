/**
 * The Redis log never resumes across a lost history in silence: a stream deleted and recreated,
 * a Redis restarted empty, a Redis restored from an older snapshot. Entry ids are time-based, so
 * each of these used to accept an old position and quietly skip what was lost (issue 16, hole 1).
 * Real redis-server processes, killed with SIGKILL and started again on the same port.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redis } from "ioredis";
import { PubSubService } from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import { createClient } from "../../src/client/client.js";
import { Code, RpcError } from "../../src/index.js";
import { createHub, createRedisLog, subscribeTopic, type EventLog, type Hub } from "../../src/services/pubsub/index.js";
import { eventually, useHarness } from "../support/harness.js";
import { startRedisServer, useRedis, type RedisInstance } from "../support/redis.js";

const text = (s: string) => new TextEncoder().encode(s);

async function publishAll(log: EventLog, topic: string, names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const n of names) ids.push((await log.append(topic, text(n))).event.id);
  return ids;
}

/** Appends once Redis answers again (a log reconnects by itself; calls fail fast meanwhile). */
async function appendWhenBack(log: EventLog, topic: string, payload: string): Promise<string> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      return (await log.append(topic, text(payload))).event.id;
    } catch (e) {
      if (!(e instanceof RpcError) || e.code !== Code.Unavailable || Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function isDataLoss(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, `expected an RpcError, got ${String(e)}`);
    assert.equal(Code[e.code], "DataLoss", e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

const old = Array.from({ length: 10 }, (_, i) => `old${i}`);

describe("the Redis log and a stream deleted under it", () => {
  const redis = useRedis();
  const logs: EventLog[] = [];
  test.afterEach(async () => {
    for (const l of logs.splice(0)) await l.close();
  });
  const makeLog = (prefix: string) => {
    const log = createRedisLog({ url: redis.get().url, prefix });
    logs.push(log);
    return log;
  };

  test("a resume after an event of a stream that was deleted and recreated is DATA_LOSS, not a skip to the new events", async () => {
    const log = makeLog("deleted:");
    const ids = await publishAll(log, "t", old);
    const admin = new Redis(redis.get().url);
    try {
      assert.equal(await admin.del("deleted:t:t"), 1);
    } finally {
      admin.disconnect();
    }
    const fresh = await appendWhenBack(log, "t", "new0");
    // Before epochs this returned [new0]: old5..old9 skipped without a word.
    await assert.rejects(log.read("t", ids[4]!, 100), isDataLoss(/deleted and recreated/));
    // The bare entry id (a position from before epochs) is no more resumable: the stream never held it.
    await assert.rejects(log.read("t", ids[4]!.split("@")[0]!, 100), isDataLoss(/has no event/));
    // The new history resumes as usual, and its start is "0-0".
    assert.deepEqual((await log.read("t", "0-0", 100)).map((e) => e.id), [fresh]);
    assert.deepEqual(await log.read("t", fresh, 100), []);
  });

  test("a key published again after its stream was deleted appends anew (its first event is gone with the stream)", async () => {
    const log = makeLog("rekey:");
    const first = await log.append("t", text("a"), "order-1");
    const admin = new Redis(redis.get().url);
    try {
      await admin.del("rekey:t:t");
    } finally {
      admin.disconnect();
    }
    const again = await log.append("t", text("a"), "order-1");
    assert.equal(again.duplicate, false);
    assert.notEqual(again.event.id, first.event.id);
    assert.equal((await log.append("t", text("a"), "order-1")).duplicate, true);
  });

  describe("through the hub", () => {
    const hubs: Hub[] = [];
    test.afterEach(async () => {
      for (const hub of hubs.splice(0)) await hub.close();
    });
    const h = useHarness();

    test("a live subscriber ends with DATA_LOSS when the topic's stream is deleted and recreated under it", async () => {
      const hub = createHub({ log: createRedisLog({ url: redis.get().url, prefix: "live-deleted:" }) });
      hubs.push(hub);
      const { target } = await h.server((s) => s.add(PubSubService, hub.service));
      const client = createClient(PubSubService, h.channel(target));
      const ac = new AbortController();
      const it = client.subscribe({ topic: "t" }, { signal: ac.signal })[Symbol.asyncIterator]();
      await eventually(() => hub.subscriberCount("t") === 1, 2000, "the subscriber");
      await hub.publish("t", text("before"));
      assert.equal(new TextDecoder().decode((await it.next()).value!.payload), "before");
      const admin = new Redis(redis.get().url);
      try {
        await admin.del("live-deleted:t:t");
      } finally {
        admin.disconnect();
      }
      await hub.publish("t", text("after"));
      await assert.rejects(it.next(), isDataLoss(/deleted and recreated|lost/));
      ac.abort();
    });

    test("a live subscriber behind the tail when the stream is deleted gets DATA_LOSS naming the last event it received, not the tail's", async () => {
      const hub = createHub({ log: createRedisLog({ url: redis.get().url, prefix: "behind-deleted:" }) });
      hubs.push(hub);
      const { target } = await h.server((s) => s.add(PubSubService, hub.service));
      // Small windows: what it does not read backs up into the hub's queue for it.
      const client = createClient(PubSubService, h.channel(target, { initialStreamWindowBytes: 65_535, bdpProbe: false, receiveHighWaterMark: 16_384 }));
      const ac = new AbortController();
      const it = client.subscribe({ topic: "t" }, { signal: ac.signal })[Symbol.asyncIterator]();
      await eventually(() => hub.subscriberCount("t") === 1, 2000, "the subscriber");
      await hub.publish("t", text("first"));
      let last = (await it.next()).value!.eventId;
      // 600 KB it does not read yet: beyond its window and the hub's send buffer, some wait in its queue.
      const burst = await Promise.all(Array.from({ length: 600 }, (_, i) => hub.publish("t", text(`old${i}`.padEnd(1000, ".")))));
      await eventually(() => hub.stats.maxQueuedEvents > 0, 2000, "events queued for the subscriber");
      const admin = new Redis(redis.get().url);
      try {
        await admin.del("behind-deleted:t:t");
      } finally {
        admin.disconnect();
      }
      await hub.publish("t", text("after"));
      let received = 1;
      const failure = await (async () => {
        try {
          for (let r = await it.next(); !r.done; r = await it.next()) {
            last = r.value.eventId;
            received++;
          }
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(received < 1 + burst.length, `it was behind the tail (${received} of ${1 + burst.length} received)`);
      assert.ok(isDataLoss(/lost/)(failure));
      // Before: the message named the tail's last event (burst's last), beyond what it had received.
      assert.match((failure as RpcError).message, new RegExp(`after event ${last}:`));
      ac.abort();
    });
  });
});

describe("the Redis log across Redis restarts", () => {
  const started: RedisInstance[] = [];
  const logs: EventLog[] = [];
  const hubs: Hub[] = [];
  // Registered before the harness's hooks: hubs, logs and redis-servers are gone before its leak check.
  test.afterEach(async () => {
    for (const hub of hubs.splice(0)) await hub.close();
    for (const l of logs.splice(0)) await l.close();
    for (const r of started.splice(0)) await r.stop();
  });
  const h = useHarness();
  const start = async (o: { port?: number; dir?: string } = {}) => {
    const r = await startRedisServer(o);
    started.push(r);
    return r;
  };
  const makeLog = (url: string, durable = false) => {
    const log = createRedisLog({ url, prefix: "restart:", durable });
    logs.push(log);
    return log;
  };

  test("Redis restarted without persistence: every position from before is DATA_LOSS, the empty topic's head too", async () => {
    const first = await start();
    const log = makeLog(first.url);
    // A subscriber that took its position on a topic with no event yet.
    const emptyHead = await log.head("t");
    const ids = await publishAll(log, "t", old);
    await first.stop();
    await start({ port: first.port });
    const fresh = await appendWhenBack(log, "t", "new0");
    await assert.rejects(log.read("t", ids[4]!, 100), isDataLoss(/lost|restart/));
    await assert.rejects(log.read("t", ids[9]!, 100), isDataLoss(/lost|restart/));
    await assert.rejects(log.read("t", emptyHead, 100), isDataLoss(/lost|restart/));
    assert.deepEqual((await log.read("t", "0-0", 100)).map((e) => e.id), [fresh]);
  });

  test("Redis restarted from an older snapshot: positions after the snapshot and before it are DATA_LOSS", async () => {
    const first = await start();
    const dir = first.dir;
    const log = makeLog(first.url);
    const ids = await publishAll(log, "t", old.slice(0, 5));
    const admin = new Redis(first.url);
    await admin.save();
    admin.disconnect();
    ids.push(...(await publishAll(log, "t", old.slice(5))));
    await stopKeepingDir(first);
    await start({ port: first.port, dir });
    await appendWhenBack(log, "t", "new0");
    // old5..old9 were acknowledged and are gone: a resume after any position must say so.
    await assert.rejects(log.read("t", ids[7]!, 100), isDataLoss(/lost|restart/));
    await assert.rejects(log.read("t", ids[2]!, 100), isDataLoss(/lost|restart/));
  });

  test("with durable: true (Redis loses no write), a restart keeps positions resumable", async () => {
    const first = await start();
    const dir = first.dir;
    const log = makeLog(first.url, true);
    const ids = await publishAll(log, "t", old);
    const admin = new Redis(first.url);
    await admin.save();
    admin.disconnect();
    await stopKeepingDir(first);
    await start({ port: first.port, dir });
    const fresh = await appendWhenBack(log, "t", "new0");
    assert.deepEqual((await log.read("t", ids[4]!, 100)).map((e) => e.id), [...ids.slice(5), fresh]);
  });

  test("an append in flight when Redis restarts, sent again by ioredis to the new Redis, is an event of the new history, not of one ended by the next append", async () => {
    const first = await start();
    // A fixed reconnect delay longer than the restart takes: ioredis reconnects once, to the new
    // Redis, and sends the unanswered command again there (autoResendUnfulfilledCommands).
    const log = createRedisLog({ url: first.url, prefix: "resent:", redis: { retryStrategy: () => 300 } });
    logs.push(log);
    await publishAll(log, "t", old);
    const admin = new Redis(first.url);
    let inFlight: Promise<string>;
    try {
      // Redis takes the append and holds it (writes paused) until it is killed.
      await admin.call("CLIENT", "PAUSE", "10000", "WRITE");
      inFlight = log.append("t", text("new0")).then((r) => r.event.id);
      const held = async () => ((await admin.call("CLIENT", "LIST")) as string).split("\n").some((l) => / cmd=evalsha /.test(l) && / flags=\S*b/.test(l));
      for (let i = 0; i < 400 && !(await held()); i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(await held(), "the append is held by Redis");
    } finally {
      admin.disconnect();
    }
    await first.stop();
    await start({ port: first.port });
    const resent = await inFlight; // answered by the new Redis
    const next = await appendWhenBack(log, "t", "new1");
    // Before: the resent append carried the old Redis's run_id and started an epoch that the next
    // append (with the new run_id) took for one from before a restart, and replaced: `resent`,
    // acknowledged and in the stream, was DATA_LOSS to resume after.
    assert.equal(next.split("@")[1], resent.split("@")[1], "one history after the restart");
    assert.deepEqual((await log.read("t", resent, 100)).map((e) => e.id), [next]);
    assert.deepEqual((await log.read("t", "0-0", 100)).map((e) => e.id), [resent, next]);
  });

  test("a subscriber of subscribeTopic gets DATA_LOSS naming its position after Redis restarts empty under the hub", async () => {
    const first = await start();
    const hub = createHub({ log: createRedisLog({ url: first.url, prefix: "restart-hub:" }) });
    hubs.push(hub);
    {
      const { target } = await h.server((s) => s.add(PubSubService, hub.service));
      const client = createClient(PubSubService, h.channel(target));
      const ac = new AbortController();
      const seen: string[] = [];
      let failure: unknown;
      const done = (async () => {
        try {
          for await (const ev of subscribeTopic(client, "t", { signal: ac.signal, backoff: { initialMs: 50, maxMs: 200 } })) seen.push(ev.eventId);
        } catch (e) {
          failure = e;
        }
      })();
      await eventually(() => hub.subscriberCount("t") === 1, 2000, "the subscriber");
      const ids: string[] = [];
      for (const n of old) ids.push((await hub.publish("t", text(n))).id);
      await eventually(() => seen.length === 10, 2000, "the ten events");
      await first.stop();
      await start({ port: first.port });
      await eventually(() => failure !== undefined, 10_000, "the subscription to end");
      assert.ok(isDataLoss(/lost|restart/)(failure));
      assert.match((failure as RpcError).message, new RegExp(ids[9]!));
      ac.abort();
      await done;
    }
  });

  test("a subscriber that started after \"0-0\" and had received nothing gets DATA_LOSS when Redis restarts empty, not the next history", async () => {
    const first = await start();
    const hub = createHub({ log: createRedisLog({ url: first.url, prefix: "restart-zero:" }) });
    hubs.push(hub);
    for (const n of old) await hub.publish("z", text(n));
    const { target } = await h.server((s) => s.add(PubSubService, hub.service));
    const client = createClient(PubSubService, h.channel(target));
    // Its stream is open and named its start, but it reads nothing (the window is never opened).
    const ac = new AbortController();
    let start0: unknown;
    const opened = client.subscribe({ topic: "z", afterEventId: "0-0" }, { signal: ac.signal, onHeader: (md) => (start0 = md.get("rill-subscription-start")) })[Symbol.asyncIterator]();
    const pending = opened.next();
    await eventually(() => start0 !== undefined, 2000, "the subscription's start");
    assert.match(String(start0), /^0-0@[0-9a-f]+$/, "\"0-0\" named with the history's epoch");
    ac.abort();
    await pending.catch(() => {});
    await first.stop();
    await start({ port: first.port });
    await appendWhenBack(hub.log, "z", "new0");
    // What subscribeTopic resumes with: the start the hub named.
    await assert.rejects(hub.log.read("z", String(start0), 100), isDataLoss(/lost|restart/));
    const err = await (async () => {
      try {
        for await (const _ of subscribeTopic(client, "z", { after: String(start0), backoff: { initialMs: 50, maxMs: 200 } }));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(isDataLoss(/lost|restart/)(err), `got ${String(err)}`);
  });
});

/** SIGKILL, keeping the dir (its dump.rdb is what the next start loads). */
async function stopKeepingDir(r: RedisInstance): Promise<void> {
  process.kill(r.pid, "SIGKILL");
  await eventually(() => !alive(r.pid), 5000, "redis-server to exit");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
