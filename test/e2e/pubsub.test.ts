import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, RpcError, createServer, silentLogger, type Channel } from "../../src/index.js";
import { PubSubService, type Event } from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import {
  createHub,
  createMemoryLog,
  createRedisLog,
  firstEventIdKey,
  oldestPositionKey,
  subscribeTopic,
  subscriptionIdKey,
  type EventLog,
  type Hub,
  type StoredEvent,
} from "../../src/services/pubsub/index.js";
import { createClient } from "../../src/client/client.js";
import { eventually, useHarness, type Harness } from "../support/harness.js";
import { origin } from "../support/event-log.js";
import { fakeClock } from "../support/fake-clock.js";
import { statusOf } from "../support/assertions.js";
import { useRedis } from "../support/redis.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** Reads `n` events from an iterator. */
async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) throw new Error(`the stream ended after ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

/** The behaviours every backend must show; `makeLog` gives a fresh log per test. */
function backendSuite(makeLog: (retention?: { maxEvents?: number }) => EventLog): Harness {
  const hubs: Hub[] = [];
  // Registered before the harness's hook so the hubs (and their Redis connections) are closed
  // before its leak check runs.
  test.afterEach(async () => {
    for (const hub of hubs.splice(0)) await hub.close();
  });
  const h = useHarness();

  async function start(retention?: { maxEvents?: number }) {
    const hub = createHub({ log: makeLog(retention) });
    hubs.push(hub);
    const { server, target } = await h.server((s) => s.add(PubSubService, hub.service));
    const channel = h.channel(target);
    return { hub, server, target, port: Number(target.split(":")[1]), channel, client: createClient(PubSubService, channel) };
  }

  test("delivers every published event to every subscriber of the topic, in order, and nothing of other topics", async () => {
    const { hub, client } = await start();
    const ac = new AbortController();
    const a = client.subscribe({ topic: "t" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const b = client.subscribe({ topic: "t" }, { signal: ac.signal })[Symbol.asyncIterator]();
    await eventually(() => hub.subscriberCount("t") === 2, 2000, "two subscribers");
    await client.publish({ topic: "other", payload: text("x") });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await client.publish({ topic: "t", payload: text(`m${i}`) })).eventId);
    for (const it of [a, b]) {
      const got = await take(it, 20);
      assert.deepEqual(got.map((e) => e.eventId), ids);
      assert.deepEqual(got.map((e) => str(e.payload)), ids.map((_, i) => `m${i}`));
      assert.ok(got.every((e) => e.topic === "t" && e.publishedAt !== undefined));
    }
    const topics = await client.listTopics({});
    assert.deepEqual(topics.topics.map((t) => [t.name, t.lastEventId, t.subscribers]), [["other", topics.topics[0]!.lastEventId, 0], ["t", ids[19], 2]]);
    ac.abort();
  });

  test("resumes exactly after the given event id", async () => {
    const { client } = await start();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await client.publish({ topic: "r", payload: text(`${i}`) })).eventId);
    const ac = new AbortController();
    const it = client.subscribe({ topic: "r", afterEventId: ids[3]! }, { signal: ac.signal })[Symbol.asyncIterator]();
    const got = await take(it, 6);
    assert.deepEqual(got.map((e) => e.eventId), ids.slice(4));
    const live = (await client.publish({ topic: "r", payload: text("live") })).eventId;
    assert.equal((await take(it, 1))[0]!.eventId, live);
    ac.abort();
  });

  test("a publish repeated with the same key appends once and returns the first event id", async () => {
    const { client, hub } = await start();
    const a = await client.publish({ topic: "k", payload: text("1"), key: "order-7" });
    const b = await client.publish({ topic: "k", payload: text("1"), key: "order-7" });
    const c = await client.publish({ topic: "k", payload: text("2"), key: "order-8" });
    assert.equal(a.eventId, b.eventId);
    assert.notEqual(a.eventId, c.eventId);
    const all = await hub.log.read("k", await origin(hub.log), 10);
    assert.deepEqual(all.map((e) => e.id), [a.eventId, c.eventId]);
    assert.equal(all[0]!.key, "order-7");
  });

  test("Unsubscribe ends the named stream with OK and leaves the others running", async () => {
    const { hub, client } = await start();
    const ids: string[] = [];
    const ac = new AbortController();
    const a = client.subscribe({ topic: "u" }, { signal: ac.signal, onHeader: (md) => ids.push(String(md.get(subscriptionIdKey))) })[Symbol.asyncIterator]();
    const first = a.next();
    await eventually(() => ids.length === 1, 2000, "the first subscription's headers");
    const b = client.subscribe({ topic: "u" }, { signal: ac.signal, onHeader: (md) => ids.push(String(md.get(subscriptionIdKey))) })[Symbol.asyncIterator]();
    const bFirst = b.next();
    await eventually(() => ids.length === 2 && hub.subscriberCount("u") === 2, 2000, "the second subscription");
    assert.notEqual(ids[0], ids[1]);
    await client.unsubscribe({ subscriptionId: ids[0]! });
    assert.deepEqual(await first, { done: true, value: undefined }, "the unsubscribed stream ends cleanly");
    assert.equal(hub.subscriberCount("u"), 1);
    const e = await client.publish({ topic: "u", payload: text("still here") });
    assert.equal((await bFirst).value?.eventId, e.eventId);
    const missing = await statusOf(client.unsubscribe({ subscriptionId: ids[0]! }));
    assert.equal(missing.code, Code.NotFound);
    ac.abort();
  });

  test("a subscriber whose client goes away is removed from the fan-out within 1 s", async () => {
    const { hub, client } = await start();
    const ac = new AbortController();
    const it = client.subscribe({ topic: "gone" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const pending = it.next().catch(() => undefined);
    await eventually(() => hub.subscriberCount("gone") === 1, 2000, "the subscriber");
    const t0 = Date.now();
    ac.abort();
    await eventually(() => hub.subscriberCount("gone") === 0, 1000, "the fan-out to forget the cancelled subscriber");
    assert.ok(Date.now() - t0 <= 1000);
    await pending;
    await client.publish({ topic: "gone", payload: text("nobody listens") });
  });

  test("a subscriber whose connection drops is removed from the fan-out within 1 s", async () => {
    const { hub, port } = await start();
    const proxy = await startTcpProxy(port);
    try {
      const ch: Channel = h.channel(`127.0.0.1:${proxy.port}`);
      const client = createClient(PubSubService, ch);
      const it = client.subscribe({ topic: "dropped" })[Symbol.asyncIterator]();
      const pending = it.next().catch((e: unknown) => e);
      await eventually(() => hub.subscriberCount("dropped") === 1, 2000, "the subscriber");
      proxy.cut();
      await eventually(() => hub.subscriberCount("dropped") === 0, 1000, "the fan-out to forget the disconnected subscriber");
      assert.equal(((await pending) as RpcError).code, Code.Unavailable);
      ch.close();
    } finally {
      await proxy.close();
    }
  });

  test("resuming after a trimmed event fails with OUT_OF_RANGE naming the first available id", async () => {
    const { client } = await start({ maxEvents: 5 });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await client.publish({ topic: "trim", payload: text(`${i}`) })).eventId);
    let trailer: string | undefined;
    const err = await statusOf(
      (async () => {
        for await (const _ of client.subscribe({ topic: "trim", afterEventId: ids[2]! }, { onTrailer: (md) => (trailer = String(md.get(firstEventIdKey))) }));
      })(),
    );
    assert.equal(err.code, Code.OutOfRange);
    assert.match(err.message, new RegExp(`first available event is ${ids[7]} \\(resume after ${ids[6]} to continue from it\\)`));
    assert.equal(trailer, ids[7]);
    assert.equal(err.metadata.get(oldestPositionKey), ids[6]);
    // The last trimmed event is still a valid position: nothing after it is gone.
    const ac = new AbortController();
    const it = client.subscribe({ topic: "trim", afterEventId: ids[6]! }, { signal: ac.signal })[Symbol.asyncIterator]();
    assert.deepEqual((await take(it, 5)).map((e) => e.eventId), ids.slice(7));
    ac.abort();
    // The resuming helper throws the same error instead of skipping ahead.
    const helperErr = await statusOf(
      (async () => {
        for await (const _ of subscribeTopic(client, "trim", { after: ids[0]!, backoff: { initialMs: 10 } }));
      })(),
    );
    assert.equal(helperErr.code, Code.OutOfRange);
  });

  test("from_oldest replays every retained event, then live ones; with trimming it starts at the oldest kept, without OUT_OF_RANGE", async () => {
    const { hub, client } = await start({ maxEvents: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await hub.publish("replay", text(`${i}`))).id);
    const ac = new AbortController();
    const it = client.subscribe({ topic: "replay", fromOldest: true }, { signal: ac.signal })[Symbol.asyncIterator]();
    assert.deepEqual((await take(it, 3)).map((e) => e.eventId), ids.slice(2));
    ids.push((await hub.publish("replay", text("5"))).id);
    assert.equal((await take(it, 1))[0]!.eventId, ids[5]);
    ac.abort();
  });

  test("since starts with the first event published at or after that time, and is OUT_OF_RANGE once one of those was trimmed", async () => {
    const { hub, client } = await start({ maxEvents: 3 });
    const events: StoredEvent[] = [];
    for (let i = 0; i < 5; i++) {
      // Distinct publish times (Redis ids carry the millisecond of its clock, the same machine's).
      while (i > 0 && Date.now() <= events[i - 1]!.publishedAt + 1) await sleep(1);
      events.push(await hub.publish("since", text(`${i}`)));
    }
    const ac = new AbortController();
    const since = timestampFromMs(events[3]!.publishedAt);
    const it = client.subscribe({ topic: "since", since }, { signal: ac.signal })[Symbol.asyncIterator]();
    assert.deepEqual((await take(it, 2)).map((e) => e.eventId), [events[3]!.id, events[4]!.id]);
    ac.abort();
    // events[1] was trimmed (3 kept): starting at its time would skip it.
    const err = await statusOf((async () => { for await (const _ of client.subscribe({ topic: "since", since: timestampFromMs(events[1]!.publishedAt) })); })());
    assert.equal(err.code, Code.OutOfRange);
    assert.match(err.message, /events published since then were trimmed/);
    assert.equal(err.metadata.get(firstEventIdKey), events[2]!.id);
    assert.equal(err.metadata.get(oldestPositionKey), events[1]!.id);
    // A time after the newest event (even in the future): from the next event.
    await eventually(() => hub.subscriberCount("since") === 0, 2000, "the first subscriber to leave");
    const ac2 = new AbortController();
    const later = client.subscribe({ topic: "since", since: timestampFromMs(events[4]!.publishedAt + 60_000) }, { signal: ac2.signal })[Symbol.asyncIterator]();
    const next = later.next();
    await eventually(() => hub.subscriberCount("since") === 1, 2000, "the subscriber");
    const e5 = await hub.publish("since", text("5"));
    assert.equal(((await next).value as Event).eventId, e5.id);
    ac2.abort();
  });

  test("mark_history: the retained events come marked, then one history_end bookmark at the dividing position, then live events unmarked", async () => {
    const { hub, client } = await start();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await hub.publish("snap", text(`${i}`))).id);
    const ac = new AbortController();
    const it = client.subscribe({ topic: "snap", fromOldest: true, markHistory: true }, { signal: ac.signal })[Symbol.asyncIterator]();
    const history = await take(it, 4);
    assert.deepEqual(history.slice(0, 3).map((e) => [e.eventId, e.history, e.bookmark]), ids.map((id) => [id, true, false]));
    assert.deepEqual([history[3]!.eventId, history[3]!.bookmark, history[3]!.historyEnd, history[3]!.payload.length], [ids[2], true, true, 0]);
    ids.push((await hub.publish("snap", text("3"))).id);
    const live = (await take(it, 1))[0]!;
    assert.deepEqual([live.eventId, live.history, live.bookmark], [ids[3], false, false]);
    ac.abort();
    // No history (a start at the head): the bookmark comes at once.
    const ac2 = new AbortController();
    const empty = client.subscribe({ topic: "snap", markHistory: true }, { signal: ac2.signal })[Symbol.asyncIterator]();
    const end = (await take(empty, 1))[0]!;
    assert.deepEqual([end.eventId, end.historyEnd], [ids[3], true]);
    ac2.abort();
  });

  test("subscribeTopic from the oldest event with history: marked events, onHistoryEnd once before live ones, no bookmark yielded", async () => {
    const { hub, client } = await start();
    for (let i = 0; i < 3; i++) await hub.publish("snap2", text(`${i}`));
    const ac = new AbortController();
    const seen: string[] = [];
    const reader = (async () => {
      for await (const ev of subscribeTopic(client, "snap2", { from: "oldest", history: true, onHistoryEnd: (p) => seen.push(`end@${p}`), signal: ac.signal })) {
        seen.push(`${str(ev.payload)}:${ev.history}`);
        if (seen.length === 5) return;
      }
    })();
    await eventually(() => seen.length === 4, 2000, "the history and its end");
    const third = (await hub.log.read("snap2", await hub.log.oldest("snap2"), 3))[2]!.id;
    await hub.publish("snap2", text("3"));
    await reader;
    ac.abort();
    assert.deepEqual(seen, ["0:true", "1:true", "2:true", `end@${third}`, "3:false"]);
  });

  test("Subscribe with two starts (after_event_id and from_oldest or since) is INVALID_ARGUMENT", async () => {
    const { hub, client } = await start();
    const id = (await hub.publish("two", text("x"))).id;
    for (const req of [{ afterEventId: id, fromOldest: true }, { fromOldest: true, since: timestampFromMs(0) }, { afterEventId: id, since: timestampFromMs(0) }]) {
      const err = await statusOf((async () => { for await (const _ of client.subscribe({ topic: "two", ...req })); })());
      assert.equal(err.code, Code.InvalidArgument);
      assert.match(err.message, /Subscribe takes one start/);
    }
    assert.throws(() => subscribeTopic(client, "two", { after: id, from: "oldest" }), /give `after` or `from`, not both/);
  });

  test("a malformed event id is INVALID_ARGUMENT and an empty topic is INVALID_ARGUMENT", async () => {
    const { client } = await start();
    const bad = await statusOf((async () => { for await (const _ of client.subscribe({ topic: "x", afterEventId: "not an id" })); })());
    assert.equal(bad.code, Code.InvalidArgument);
    const empty = await statusOf(client.publish({ topic: "", payload: text("x") }));
    assert.equal(empty.code, Code.InvalidArgument);
  });

  test("subscribeTopic resumes across a server restart with every event once, in order", async () => {
    const log = makeLog();
    const hub1 = createHub({ log });
    const s1 = createServer({ logger: silentLogger }).add(PubSubService, hub1.service);
    const { port } = await s1.listen({ host: "127.0.0.1", port: 0 });
    const channel = h.channel(`127.0.0.1:${port}`);
    const client = createClient(PubSubService, channel);
    const ac = new AbortController();
    const got: Event[] = [];
    let retries = 0;
    const reader = (async () => {
      for await (const ev of subscribeTopic(client, "restart", { signal: ac.signal, backoff: { initialMs: 20, maxMs: 100 }, onRetry: () => retries++ })) {
        got.push(ev);
      }
    })().catch((e: unknown) => e);
    await eventually(() => hub1.subscriberCount("restart") === 1, 2000, "the subscriber");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await hub1.publish("restart", text(`${i}`))).id);
    await eventually(() => got.length === 5, 2000, "the first events");
    hub1.drain();
    s1.forceShutdown();
    // Published while no server runs: the log keeps them, the helper must fetch them on resume.
    for (let i = 5; i < 10; i++) ids.push((await log.append("restart", text(`${i}`))).event.id);
    const hub2 = createHub({ log });
    const s2 = createServer({ logger: silentLogger }).add(PubSubService, hub2.service);
    await s2.listen({ host: "127.0.0.1", port });
    try {
      await eventually(() => got.length === 10, 5000, "the events published during the outage");
      for (let i = 10; i < 15; i++) ids.push((await hub2.publish("restart", text(`${i}`))).id);
      await eventually(() => got.length === 15, 2000, "the events after the restart");
      assert.deepEqual(got.map((e) => e.eventId), ids);
      assert.ok(retries >= 1);
      ac.abort();
      await reader;
    } finally {
      await hub2.close();
      await s2.shutdown({ graceMs: 100 });
    }
  });
  return h;
}

describe("pub/sub hub on the memory log", () => {
  backendSuite((r) => createMemoryLog({ ...r }));

  test("an id from another (restarted) memory log is DATA_LOSS, not a silent skip", async () => {
    const old = createMemoryLog();
    const { event } = await old.append("t", text("x"));
    const log = createMemoryLog();
    await log.append("t", text("y"));
    await assert.rejects(log.read("t", event.id, 10), (e: unknown) => e instanceof RpcError && e.code === Code.DataLoss && /restarted/.test(e.message));
  });

  test("age retention trims old events", async () => {
    const clock = fakeClock(1_000_000);
    const log = createMemoryLog({ maxAgeMs: 1000, now: clock.now });
    const a = await log.append("t", text("old"));
    clock.advance(2000);
    const b = await log.append("t", text("new"));
    await assert.rejects(log.read("t", await origin(log), 10), (e: unknown) => e instanceof RpcError && e.code === Code.OutOfRange);
    assert.deepEqual((await log.read("t", a.event.id, 10)).map((e) => e.id), [b.event.id]);
  });
});

describe("pub/sub hub on the Redis log", () => {
  const redis = useRedis();
  let n = 0;
  const h = backendSuite((r) => createRedisLog({ url: redis.get().url, prefix: `test${n++}:`, ...r }));

  test("Unsubscribe through one instance ends a stream held by another instance sharing the Redis log", async () => {
    const url = redis.get().url;
    const a = createHub({ log: createRedisLog({ url, prefix: "unsub:" }) });
    const b = createHub({ log: createRedisLog({ url, prefix: "unsub:" }) });
    try {
      const sa = await h.server((s) => s.add(PubSubService, a.service));
      const sb = await h.server((s) => s.add(PubSubService, b.service));
      const viaA = createClient(PubSubService, h.channel(sa.target));
      const viaB = createClient(PubSubService, h.channel(sb.target));
      let id = "";
      const ac = new AbortController();
      const it = viaB.subscribe({ topic: "held-by-b" }, { signal: ac.signal, onHeader: (md) => (id = String(md.get(subscriptionIdKey))) })[Symbol.asyncIterator]();
      const first = it.next();
      await eventually(() => id !== "" && b.subscriberCount("held-by-b") === 1, 2000, "the subscription on b");
      await viaA.unsubscribe({ subscriptionId: id });
      assert.deepEqual(await first, { done: true, value: undefined }, "b ended the stream with OK");
      assert.equal(b.subscriberCount(), 0);
      const missing = await statusOf(viaA.unsubscribe({ subscriptionId: "no-such-subscription" }));
      assert.equal(missing.code, Code.NotFound);
      // Ending a whole topic counts the streams of every instance.
      const more = [viaA, viaB, viaB].map((c) => c.subscribe({ topic: "both" }, { signal: ac.signal })[Symbol.asyncIterator]().next());
      await eventually(() => a.subscriberCount("both") === 1 && b.subscriberCount("both") === 2, 2000, "subscriptions on both");
      assert.equal(await a.unsubscribeTopic("both"), 3);
      for (const r of await Promise.all(more)) assert.equal(r.done, true);
      ac.abort();
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("200 followed topics share 4 tail connections, a topic followed while the read is blocked gets its events at once, and the connections close with the last tail", async () => {
    const url = redis.get().url;
    const log = createRedisLog({ url, prefix: "tails:", tailTopicsPerConnection: 64 });
    const check = new Redis(url);
    const clients = async () => ((await check.call("CLIENT", "LIST")) as string).trim().split("\n").length;
    try {
      const before = await clients();
      const got = new Map<string, string[]>();
      const followers = [];
      for (let i = 0; i < 200; i++) {
        const topic = `t${i}`;
        got.set(topic, []);
        followers.push(log.follow(topic, await log.head(topic), { onEvent: (ev) => got.get(topic)!.push(str(ev.payload)), onError: (e) => assert.fail(e) }));
      }
      // Tails join connections whose XREAD may already block: every publish must arrive.
      for (let i = 0; i < 200; i += 37) await log.append(`t${i}`, text(`e${i}`));
      await log.append("t199", text("last"));
      await eventually(() => got.get("t199")!.length === 1 && [0, 37, 74, 111, 148, 185].every((i) => got.get(`t${i}`)!.length === 1), 3000, "events on every tail");
      const during = await clients();
      // The log's own connection counts once; tails: ⌈200 / 64⌉ = 4.
      assert.ok(during - before <= 5, `${during - before} connections for 200 tails`);
      // One more topic while every connection is blocked in XREAD: CLIENT UNBLOCK lets it join.
      const late: string[] = [];
      const f = log.follow("late", await log.head("late"), { onEvent: (ev) => late.push(str(ev.payload)), onError: (e) => assert.fail(e) });
      await log.append("late", text("now"));
      await eventually(() => late.length === 1, 2000, "the late tail's event");
      f.stop();
      for (const x of followers) x.stop();
      let after = await clients();
      for (let i = 0; i < 100 && after > before + 1; i++) {
        await new Promise((r) => setTimeout(r, 10));
        after = await clients();
      }
      assert.ok(after <= before + 1, `tail connections closed (${after - before} left besides the log's own)`);
    } finally {
      check.disconnect();
      await log.close();
    }
  });

  test("a hub on one process sees events published through another hub sharing the Redis log", async () => {
    const url = redis.get().url;
    const a = createHub({ log: createRedisLog({ url, prefix: "shared:" }) });
    const b = createHub({ log: createRedisLog({ url, prefix: "shared:" }) });
    const h2 = { s: createServer({ logger: silentLogger }).add(PubSubService, b.service) };
    const { port } = await h2.s.listen({ host: "127.0.0.1", port: 0 });
    const check = new Redis(url);
    try {
      const { createChannel } = await import("../../src/index.js");
      const ch = createChannel(`127.0.0.1:${port}`, { logger: silentLogger });
      const client = createClient(PubSubService, ch);
      const ac = new AbortController();
      const it = client.subscribe({ topic: "x" }, { signal: ac.signal })[Symbol.asyncIterator]();
      await eventually(() => b.subscriberCount("x") === 1, 2000, "the subscriber on b");
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await a.publish("x", text(`${i}`))).id);
      assert.deepEqual((await take(it, 5)).map((e) => e.eventId), ids);
      assert.equal(await check.xlen("shared:t:x"), 5);
      ac.abort();
      ch.close();
    } finally {
      check.disconnect();
      await a.close();
      await b.close();
      await h2.s.shutdown({ graceMs: 100 });
    }
  });
});

