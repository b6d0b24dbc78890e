/**
 * Consumer groups (Consume): competing members share a topic's events, acks complete them, the
 * ack deadline and a leaving member hand events to others, and max_deliveries sends an event to
 * the dead-letter topic. Each behaviour on the memory log and on Redis (shared by two hubs).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, RpcError, createChannel, createClient, createPushable, createServer, silentLogger } from "../../src/index.js";
import { PubSubService, type ConsumeRequest } from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import { consumeGroup, createHub, createMemoryLog, createRedisLog, memberIdKey, subscribeTopic, type EventLog, type GroupMessage, type Hub } from "../../src/services/pubsub/index.js";
import { eventually, useHarness } from "../support/harness.js";
import { statusOf } from "../support/assertions.js";
import { useRedis } from "../support/redis.js";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A member reading with consumeGroup in the background; `auto` acks everything it gets. */
function member(client: ReturnType<typeof createClient<typeof PubSubService>>, topic: string, group: string, options: { auto?: boolean; ackDeadlineMs?: number; maxDeliveries?: number; maxInFlight?: number } = {}) {
  const ac = new AbortController();
  const got: GroupMessage[] = [];
  const acked: string[] = [];
  const done = (async () => {
    for await (const m of consumeGroup(client, topic, group, {
      signal: ac.signal,
      ackDeadlineMs: options.ackDeadlineMs ?? 30_000,
      maxDeliveries: options.maxDeliveries ?? 0,
      maxInFlight: options.maxInFlight ?? 0,
      backoff: { initialMs: 20, maxMs: 100 },
      onAcked: (ids) => acked.push(...ids),
    })) {
      got.push(m);
      if (options.auto !== false) m.ack();
    }
  })().catch((e: unknown) => e);
  return { got, acked, ac, done, payloads: () => got.map((m) => str(m.event.payload)) };
}

function groupSuite(makeLog: (retention?: { maxEvents?: number }) => EventLog) {
  const hubs: Hub[] = [];
  test.afterEach(async () => {
    for (const hub of hubs.splice(0)) await hub.close();
  });
  const h = useHarness();
  async function start(retention?: { maxEvents?: number }) {
    const hub = createHub({ log: makeLog(retention) });
    hubs.push(hub);
    const { target } = await h.server((s) => s.add(PubSubService, hub.service));
    return { hub, client: createClient(PubSubService, h.channel(target)) };
  }

  test("three members share the events: each is delivered to one member and acknowledged exactly once", async () => {
    const { hub, client } = await start();
    const members = [0, 1, 2].map(() => member(client, "jobs", "workers", { maxInFlight: 4 }));
    await eventually(() => hub.stats.groupMembers === 3, 3000, "three members");
    const total = 300;
    for (let i = 0; i < total; i++) await hub.publish("jobs", text(`${i}`));
    await eventually(() => members.reduce((n, m) => n + m.acked.length, 0) === total, 10_000, "every event acknowledged");
    const all = members.flatMap((m) => m.payloads()).map(Number).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: total }, (_, i) => i), "each event once, to one member");
    const ackedIds = members.flatMap((m) => m.acked);
    assert.equal(new Set(ackedIds).size, total, "acknowledged exactly once each");
    assert.ok(members.every((m) => m.got.length > 0), `the work was shared (${members.map((m) => m.got.length).join("/")})`);
    assert.ok(members.every((m) => m.got.every((g) => g.deliveries === 1)));
    for (const m of members) m.ac.abort();
    await Promise.all(members.map((m) => m.done));
    assert.equal(await hub.log.groups.pending("jobs", "workers"), 0);
  });

  test("an event not acknowledged within the ack deadline goes to another member, counted as a second delivery; the late ack completes nothing", async () => {
    const { hub, client } = await start();
    const slow = member(client, "deadline", "g", { auto: false, ackDeadlineMs: 300 });
    await eventually(() => hub.stats.groupMembers === 1, 3000, "the slow member");
    await hub.publish("deadline", text("x"));
    await eventually(() => slow.got.length === 1, 3000, "the first delivery");
    const other = member(client, "deadline", "g", { ackDeadlineMs: 300 });
    await eventually(() => other.acked.length === 1, 5000, "the redelivery to the other member, acknowledged");
    assert.equal(other.got[0]!.deliveries, 2);
    assert.equal(other.got[0]!.event.eventId, slow.got[0]!.event.eventId);
    slow.got[0]!.ack();
    await eventually(() => hub.stats.redelivered >= 1, 2000, "the redelivery counted");
    assert.deepEqual(slow.acked, [], "the late ack completed nothing");
    slow.ac.abort();
    other.ac.abort();
    await Promise.all([slow.done, other.done]);
  });

  test("a member that leaves hands its unacknowledged events to the others at once, long before the ack deadline", async () => {
    const { hub, client } = await start();
    const leaving = member(client, "leave", "g", { auto: false, ackDeadlineMs: 60_000, maxInFlight: 10 });
    await eventually(() => hub.stats.groupMembers === 1, 3000, "the first member");
    for (let i = 0; i < 5; i++) await hub.publish("leave", text(`${i}`));
    await eventually(() => leaving.got.length === 5, 3000, "five deliveries held");
    const staying = member(client, "leave", "g", { ackDeadlineMs: 60_000 });
    await eventually(() => hub.stats.groupMembers === 2, 3000, "the second member");
    leaving.ac.abort();
    await leaving.done;
    await eventually(() => staying.acked.length === 5, 5000, "the held events, redelivered at once");
    assert.deepEqual(staying.payloads().sort(), ["0", "1", "2", "3", "4"]);
    assert.ok(staying.got.every((m) => m.deliveries === 2));
    staying.ac.abort();
    await staying.done;
  });

  test("past max_deliveries an event goes to the dead-letter topic, once, and the group moves on", async () => {
    const { hub, client } = await start();
    const dead: string[] = [];
    const dlAc = new AbortController();
    const after = await hub.log.head("poison.dead-letter");
    const dl = (async () => {
      for await (const ev of subscribeTopic(client, "poison.dead-letter", { after, signal: dlAc.signal })) dead.push(str(ev.payload));
    })().catch(() => {});
    const never = member(client, "poison", "g", { auto: false, ackDeadlineMs: 100, maxDeliveries: 3 });
    await eventually(() => hub.stats.groupMembers === 1, 3000, "the member");
    await hub.publish("poison", text("bad"));
    await eventually(() => dead.length === 1, 5000, "the dead letter");
    assert.deepEqual(never.got.map((m) => m.deliveries), [1, 2, 3], "delivered max_deliveries times, then no more");
    // Counted once the dead letter is stored and the event acked, which may be after a
    // subscriber of the dead-letter topic already has it.
    await eventually(() => hub.stats.deadLettered === 1, 3000, "the dead-letter count");
    // The group goes on with the next event.
    await hub.publish("poison", text("good"));
    await eventually(() => never.got.length === 4, 3000, "the next event");
    assert.equal(str(never.got[3]!.event.payload), "good");
    never.ac.abort();
    dlAc.abort();
    await Promise.all([never.done, dl]);
    assert.deepEqual(dead, ["bad"]);
  });

  test("a new group from_oldest starts with the retained history; a later join of the same group does not start it again", async () => {
    const { hub, client } = await start();
    for (let i = 0; i < 3; i++) await hub.publish("hist", text(`${i}`));
    const first = member(client, "hist", "g", {});
    // fromOldest through the raw JoinGroup (the helper passes it on): the group is new here.
    first.ac.abort();
    await first.done;
    const m = consumeGroup(client, "hist", "g2", { fromOldest: true, backoff: { initialMs: 20 } })[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await m.next();
      got.push(str(r.value!.event.payload));
      r.value!.ack();
    }
    await m.return?.();
    assert.deepEqual(got, ["0", "1", "2"]);
  });

  test("events trimmed before the group had them: OUT_OF_RANGE to a member, once, naming the loss; the group goes on after them", async () => {
    const { hub, client } = await start({ maxEvents: 3 });
    await hub.log.groups.join("lossy", "g", "next");
    for (let i = 0; i < 10; i++) await hub.publish("lossy", text(`${i}`));
    const err = await statusOf((async () => { for await (const _ of consumeGroup(client, "lossy", "g", { backoff: { initialMs: 20 } })); })());
    assert.equal(err.code, Code.OutOfRange);
    assert.match(err.message, /trimmed/);
    const m = consumeGroup(client, "lossy", "g", { backoff: { initialMs: 20 } })[Symbol.asyncIterator]();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await m.next();
      got.push(str(r.value!.event.payload));
      r.value!.ack();
    }
    await m.return?.();
    assert.deepEqual(got, ["7", "8", "9"], "the retained events, once the loss was said");
  });

  test("a Consume stream must start with join and go on with acks; it says who the member is in a header", async () => {
    const { client } = await start();
    const reqs = createPushable<ConsumeRequest>();
    void reqs.push({ kind: { case: "ack", value: { eventIds: [] } } } as unknown as ConsumeRequest);
    const err = await statusOf((async () => { for await (const _ of client.consume(reqs)); })());
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.message, /first ConsumeRequest must be `join`/);
    let memberId: unknown;
    const reqs2 = createPushable<ConsumeRequest>();
    void reqs2.push({ kind: { case: "join", value: { topic: "hdr", group: "g" } } } as unknown as ConsumeRequest);
    const it = client.consume(reqs2, { onHeader: (md) => (memberId = md.get(memberIdKey)) })[Symbol.asyncIterator]();
    const next = it.next();
    await eventually(() => typeof memberId === "string", 3000, "the member header");
    reqs2.end();
    assert.equal((await next).done, true, "closing the request stream leaves the group with OK");
    const bad = createPushable<ConsumeRequest>();
    void bad.push({ kind: { case: "join", value: { topic: "hdr", group: "" } } } as unknown as ConsumeRequest);
    assert.equal((await statusOf((async () => { for await (const _ of client.consume(bad)); })())).code, Code.InvalidArgument);
    // An ack cannot name more events than the member may hold: no amplification into the log.
    const flood = createPushable<ConsumeRequest>();
    void flood.push({ kind: { case: "join", value: { topic: "hdr", group: "g", maxInFlight: 2 } } } as unknown as ConsumeRequest);
    void flood.push({ kind: { case: "ack", value: { eventIds: ["1-1", "1-2", "1-3"] } } } as unknown as ConsumeRequest);
    const floodErr = await statusOf((async () => { for await (const _ of client.consume(flood)); })());
    assert.equal(floodErr.code, Code.InvalidArgument);
    assert.match(floodErr.message, /at most max_in_flight \(2\)/);
  });
}

describe("consumer groups on the memory log", () => {
  groupSuite((r) => createMemoryLog({ ...r }));

  test("a member that rejoins after its hub restarted (memory log: the group's state is gone) gets DATA_LOSS, not a silent new group", async () => {
    const hub1 = createHub({ log: createMemoryLog() });
    const s1 = createServer({ logger: silentLogger }).add(PubSubService, hub1.service);
    const { port } = await s1.listen({ host: "127.0.0.1", port: 0 });
    const client = createClient(PubSubService, createChannel(`127.0.0.1:${port}`, { logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } }));
    const got: string[] = [];
    const ended = (async () => {
      for await (const m of consumeGroup(client, "restart", "g", { backoff: { initialMs: 20, maxMs: 100 } })) {
        got.push(str(m.event.payload));
        m.ack();
      }
    })().then(() => undefined, (e: unknown) => e);
    await eventually(() => hub1.stats.groupMembers === 1, 3000, "the member");
    await hub1.publish("restart", text("before"));
    await eventually(() => got.length === 1, 3000, "the first event");
    await hub1.close();
    s1.forceShutdown();
    const hub2 = createHub({ log: createMemoryLog() });
    const s2 = createServer({ logger: silentLogger }).add(PubSubService, hub2.service);
    await s2.listen({ host: "127.0.0.1", port });
    try {
      const err = await ended;
      assert.ok(err instanceof RpcError, `the member's loop ended with ${String(err)}`);
      assert.equal(err.code, Code.DataLoss);
      assert.match(err.message, /was gone when this member rejoined/);
    } finally {
      await hub2.close();
      await s2.shutdown({ graceMs: 100 });
    }
  });

  test("acks made in one turn go out as one Ack message", async () => {
    const hub = createHub({ log: createMemoryLog() });
    let received = 0;
    const server = createServer({
      logger: silentLogger,
      observers: [{ start: (call) => (call.method.name === "Consume" ? { onMessage: (direction) => void (direction === "received" && received++) } : undefined) }],
    }).add(PubSubService, hub.service);
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger });
    try {
      const client = createClient(PubSubService, channel);
      const m = consumeGroup(client, "batch", "g", { maxInFlight: 20 })[Symbol.asyncIterator]();
      const first = m.next();
      await eventually(() => hub.stats.groupMembers === 1, 3000, "the member");
      for (let i = 0; i < 20; i++) await hub.publish("batch", text(`${i}`));
      const held: GroupMessage[] = [(await first).value!];
      while (held.length < 20) held.push((await m.next()).value!);
      for (const g of held) g.ack();
      await eventually(() => hub.stats.acknowledged === 20, 3000, "the acks");
      assert.equal(received, 2, "the join and one Ack naming 20 events");
      await m.return?.();
    } finally {
      channel.close();
      await hub.close();
      await server.shutdown({ graceMs: 100 });
    }
  });

  test("new group names past maxGroups are RESOURCE_EXHAUSTED: joining cannot grow the process without bound", async () => {
    const log = createMemoryLog({ maxGroups: 2 });
    await log.groups.join("t", "a", "next");
    await log.groups.join("t", "b", "next");
    await log.groups.join("t", "a", "next"); // an existing group is not a new one
    await assert.rejects(log.groups.join("t", "c", "next"), (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted && /maxGroups \(2\)/.test(e.message));
    await log.close();
  });
});

describe("consumer groups on the Redis log", () => {
  const redis = useRedis();
  let n = 0;
  groupSuite((r) => createRedisLog({ url: redis.get().url, prefix: `groups${++n}:`, ...r }));
});
