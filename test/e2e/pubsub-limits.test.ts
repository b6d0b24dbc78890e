/**
 * The hub's bounds on what it keeps: bytes per topic and across topics, the largest event, the
 * number of topics; and an empty idempotency key meaning no key. Counted through the log's own
 * accounting (`usage()`); test/fault/pubsub-memory.test.ts checks the process's memory.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, RpcError } from "../../src/index.js";
import { PubSubService } from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import {
  createHub,
  createMemoryLog,
  createRedisLog,
  eventOverheadBytes,
  oldestPositionKey,
  type EventLog,
  type Hub,
  type HubOptions,
} from "../../src/services/pubsub/index.js";
import { createClient } from "../../src/client/client.js";
import { useHarness } from "../support/harness.js";
import { fakeClock } from "../support/fake-clock.js";
import { statusOf } from "../support/assertions.js";
import { useRedis } from "../support/redis.js";
import { origin } from "../support/event-log.js";

const MiB = 1024 * 1024;
const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

/** Behaviours both logs share; `makeLog` takes the log's options. */
function limitsSuite(makeLog: (o?: Omit<HubOptions, "log">) => EventLog) {
  const hubs: Hub[] = [];
  test.afterEach(async () => {
    for (const hub of hubs.splice(0)) await hub.close();
  });
  const h = useHarness();

  async function start(o?: Omit<HubOptions, "log">) {
    const hub = createHub({ log: makeLog(o) });
    hubs.push(hub);
    const { target } = await h.server((s) => s.add(PubSubService, hub.service), { maxReceiveMessageBytes: 8 * MiB });
    return { hub, client: createClient(PubSubService, h.channel(target, { maxSendMessageBytes: 8 * MiB })) };
  }

  test("an event larger than maxEventBytes is refused with RESOURCE_EXHAUSTED naming the option", async () => {
    const { hub, client } = await start({ maxEventBytes: 1000 });
    await client.publish({ topic: "big", payload: bytes(1000) });
    const err = await statusOf(client.publish({ topic: "big", payload: bytes(1001) }));
    assert.equal(err.code, Code.ResourceExhausted);
    assert.match(err.message, /event of 1001 bytes for topic "big" is larger than the hub's maxEventBytes \(1000\).*raise maxEventBytes/);
    assert.equal((await hub.log.usage!()).events, 1, "nothing of the refused event is kept");
  });

  test("an event that alone passes maxTopicBytes is refused, naming maxTopicBytes", async () => {
    const { client } = await start({ maxTopicBytes: 10_000, maxEventBytes: 0 });
    const err = await statusOf(client.publish({ topic: "t", payload: bytes(10_000) }));
    assert.equal(err.code, Code.ResourceExhausted);
    assert.match(err.message, /larger than the hub's maxTopicBytes \(10000\).*raise maxTopicBytes/);
  });

  test("a topic keeps at most maxTopicBytes, trimming its oldest events; resuming before them is OUT_OF_RANGE", async () => {
    const size = 1000;
    const each = size + eventOverheadBytes;
    const { hub, client } = await start({ maxTopicBytes: 5 * each });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await client.publish({ topic: "t", payload: bytes(size, i) })).eventId);
    await client.publish({ topic: "other", payload: bytes(size) });
    const usage = await hub.log.usage!();
    assert.deepEqual(usage, { topics: 2, events: 6, bytes: 6 * each });
    const kept = await hub.log.read("t", ids[6]!, 100);
    assert.deepEqual(kept.map((e) => e.id), ids.slice(7));
    assert.deepEqual(kept.map((e) => e.payload[0]), [7, 8, 9, 10, 11]);
    await assert.rejects(hub.log.read("t", ids[2]!, 100), (e: unknown) => e instanceof RpcError && e.code === Code.OutOfRange && e.metadata.get(oldestPositionKey) === ids[6]);
  });

  test("a new topic past maxTopics is RESOURCE_EXHAUSTED naming maxTopics", async () => {
    const { client } = await start({ maxTopics: 3 });
    for (const t of ["a", "b", "c"]) await client.publish({ topic: t, payload: bytes(10) });
    const err = await statusOf(client.publish({ topic: "d", payload: bytes(10) }));
    assert.equal(err.code, Code.ResourceExhausted);
    assert.match(err.message, /cannot add topic "d": the event log already holds maxTopics \(3\) topics.*raise maxTopics/);
    await client.publish({ topic: "a", payload: bytes(10) });
  });

  test("an empty idempotency key is no key: every such publish appends, and so do later keyless ones", async () => {
    const { hub, client } = await start();
    const a = await client.publish({ topic: "k", payload: bytes(1), key: "" });
    const b = await client.publish({ topic: "k", payload: bytes(1), key: "" });
    const c = await client.publish({ topic: "k", payload: bytes(1) });
    const d = await client.publish({ topic: "k", payload: bytes(1), key: "" });
    assert.equal(new Set([a.eventId, b.eventId, c.eventId, d.eventId]).size, 4);
    const all = await hub.log.read("k", await origin(hub.log), 10);
    assert.deepEqual(all.map((e) => e.id), [a.eventId, b.eventId, c.eventId, d.eventId]);
    assert.ok(all.every((e) => e.key === undefined), "no event carries an empty key");
    const direct = await hub.log.append("k", bytes(1), "");
    assert.equal(direct.duplicate, false);
    assert.equal(direct.event.key, undefined);
  });

  test("createHub refuses retention options beside a log of your own, saying where they go", async () => {
    const log = makeLog();
    assert.throws(() => createHub({ log, maxTopicBytes: 1 }), /maxTopicBytes configure the log createHub makes; you passed `log`, so give them to createMemoryLog \/ createRedisLog instead/);
    await log.close();
  });

  return { start };
}

describe("pub/sub limits on the memory log", () => {
  const { start } = limitsSuite((o) => createMemoryLog({ ...o }));

  test("150 publishes of 2 MiB keep the log within its default 64 MiB budget and 16 MiB per topic", async () => {
    const { hub, client } = await start();
    const payload = bytes(2 * MiB);
    for (let i = 0; i < 150; i++) await client.publish({ topic: `big-${i % 5}`, payload });
    const usage = await hub.log.usage!();
    assert.ok(usage.bytes <= 64 * MiB, `retained ${usage.bytes} bytes`);
    assert.equal(usage.events, Math.floor((64 * MiB) / (2 * MiB + eventOverheadBytes)), "the budget is used, not emptied");
    // The newest events of every topic are the ones kept.
    const topics = await hub.log.topics();
    assert.equal(topics.length, 5);
    assert.ok(topics.every((t) => t.lastEventId !== ""));
  });

  test("over maxTotalBytes the log trims its oldest events whatever their topic", async () => {
    const each = 1000 + eventOverheadBytes;
    const log = createMemoryLog({ maxTotalBytes: 10 * each, maxTopicBytes: 0 });
    const quiet = await log.append("quiet", bytes(1000));
    const busy: string[] = [];
    for (let i = 0; i < 10; i++) busy.push((await log.append("busy", bytes(1000))).event.id);
    assert.deepEqual(await log.usage!(), { topics: 2, events: 10, bytes: 10 * each });
    // The quiet topic's event was the oldest of the log: it went first.
    await assert.rejects(log.read("quiet", await origin(log), 10), (e: unknown) => e instanceof RpcError && e.code === Code.OutOfRange);
    assert.deepEqual(await log.read("quiet", quiet.event.id, 10), []);
    for (let i = 0; i < 5; i++) await log.append("quiet", bytes(1000));
    assert.deepEqual((await log.usage!()).events, 10);
    assert.deepEqual((await log.read("busy", busy[4]!, 100)).map((e) => e.id), busy.slice(5));
    await log.close();
  });

  test("past maxTopics an expired topic without subscribers is dropped to make room, and its old ids are OUT_OF_RANGE", async () => {
    const clock = fakeClock(1_000_000);
    const log = createMemoryLog({ maxTopics: 2, maxAgeMs: 1000, now: clock.now });
    const old: string[] = [];
    for (let i = 0; i < 3; i++) old.push((await log.append("a", bytes(10))).event.id);
    await log.append("b", bytes(10));
    const following = log.follow("b", await log.head("b"), { onEvent: () => {}, onError: () => {} });
    clock.advance(2000);
    // "a" expired and has no follower; "b" expired too but is followed: "a" is dropped.
    const c = await log.append("c", bytes(10));
    assert.deepEqual((await log.topics()).map((t) => t.name), ["b", "c"]);
    await assert.rejects(log.append("d", bytes(10)), (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted && /maxTopics \(2\)/.test(e.message));
    // A recreated "a" never reissues an id: a position from before the drop is OUT_OF_RANGE.
    const again = await log.append("a", bytes(10)).catch((e: unknown) => e);
    assert.ok(again instanceof RpcError && again.code === Code.ResourceExhausted, "still full: b is followed, c is fresh");
    following.stop();
    clock.advance(2000);
    const a2 = await log.append("a", bytes(10));
    assert.ok(!old.includes(a2.event.id), `${a2.event.id} is new`);
    assert.ok(log.compare(a2.event.id, old[2]!) > 0);
    await assert.rejects(log.read("a", old[0]!, 10), (e: unknown) => e instanceof RpcError && e.code === Code.OutOfRange);
    void c;
    await log.close();
  });

  test("a topic only subscribed to is dropped when its last follower leaves and room is needed", async () => {
    const log = createMemoryLog({ maxTopics: 1 });
    const f = log.follow("watched", await log.head("watched"), { onEvent: () => {}, onError: () => {} });
    await assert.rejects(log.append("x", bytes(1)), (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted);
    f.stop();
    await log.append("x", bytes(1));
    assert.equal((await log.usage!()).topics, 1);
    await log.close();
  });
});

describe("pub/sub limits on the Redis log", () => {
  const redis = useRedis();
  let n = 0;
  const { start } = limitsSuite((o) => {
    const { maxTotalBytes: _ignored, ...rest } = o ?? {};
    return createRedisLog({ url: redis.get().url, prefix: `limits${n++}:`, ...rest });
  });

  test("age trimming keeps the Redis byte count exact", async () => {
    const log = createRedisLog({ url: redis.get().url, prefix: `limits${n++}:`, maxAgeMs: 100 });
    try {
      const first = await log.append("t", bytes(1000));
      await log.append("t", bytes(1000));
      await new Promise((r) => setTimeout(r, 300));
      const last = await log.append("t", bytes(500), "k");
      assert.deepEqual(await log.usage!(), { topics: 1, events: 1, bytes: 500 + 1 + eventOverheadBytes });
      await assert.rejects(log.read("t", first.event.id, 10), (e: unknown) => e instanceof RpcError && e.code === Code.OutOfRange);
      assert.equal(last.duplicate, false);
    } finally {
      await log.close();
    }
  });

  test("40 publishes of 2 MiB keep a Redis topic within its default 16 MiB", async () => {
    const { hub, client } = await start();
    const payload = bytes(2 * MiB);
    for (let i = 0; i < 40; i++) await client.publish({ topic: "big", payload });
    const usage = await hub.log.usage!();
    assert.ok(usage.bytes <= 16 * MiB && usage.bytes > 12 * MiB, `retained ${usage.bytes} bytes`);
    assert.equal(usage.events, 7);
  });
});
