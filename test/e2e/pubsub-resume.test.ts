import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, createClient, createServer, silentLogger, subscribe, type RpcError } from "../../src/index.js";
import { createHub, createMemoryLog, subscribeTopic, subscriptionStartKey, PubSubService } from "../../src/services/pubsub/index.js";
import { Longlived, type Response } from "../../gen/longlived/longlived_pb.js";
import { createLonglived } from "../../examples/longlived/server.js";
import { IdleTimeoutError } from "../../src/protocol/errors.js";
import { eventually, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

const h = useHarness();

test("a subscriber cut off for falling behind resumes from the log and still sees every event once, in order", async () => {
  const hub = createHub({ log: createMemoryLog({ maxEvents: 10_000 }), maxQueuedEvents: 8 });
  // A small send buffer so that falling behind happens after a few events, not megabytes.
  const { target } = await h.server((s) => s.add(PubSubService, hub.service), { sendHighWaterMark: 1024 });
  const client = createClient(PubSubService, h.channel(target, { receiveHighWaterMark: 1024 }));
  const ac = new AbortController();
  const cuts: RpcError[] = [];
  const got: string[] = [];
  const total = 2000;
  const reader = (async () => {
    for await (const ev of subscribeTopic(client, "busy", { after: (await hub.log.head("busy")), signal: ac.signal, backoff: { initialMs: 1 }, onRetry: (e) => cuts.push(e) })) {
      got.push(ev.eventId);
      if (got.length % 100 === 0) await sleep(20);
      if (got.length === total) return;
    }
  })();
  await eventually(() => hub.subscriberCount("busy") === 1, 2000, "the subscriber");
  const ids: string[] = [];
  for (let i = 0; i < total; i++) {
    ids.push((await hub.publish("busy", new Uint8Array(64))).id);
    if (i % 200 === 0) await sleep(1);
  }
  await reader;
  ac.abort();
  assert.deepEqual(got, ids);
  assert.ok(cuts.length >= 1, "the subscriber was cut off at least once");
  assert.ok(cuts.every((e) => e.code === Code.ResourceExhausted));
  await hub.close();
});

test("a reader cut for falling behind learns it at once, not after reading what was buffered for it, and resumes losing nothing", async () => {
  // Default send and receive buffers (256 KiB each) hold thousands of 64-byte events: a status
  // queued behind them reached a reader taking 20 ms per event only minutes later, by which time
  // its position may be trimmed. The cut is a reset that overtakes them.
  const hub = createHub({ log: createMemoryLog({ maxEvents: 100_000 }), maxQueuedEvents: 64 });
  const { target } = await h.server((s) => s.add(PubSubService, hub.service));
  const client = createClient(PubSubService, h.channel(target));
  const ac = new AbortController();
  const got: string[] = [];
  const cuts: RpcError[] = [];
  let readAtRetry = -1;
  const total = 20_000;
  const reader = (async () => {
    const after = await hub.log.head("firehose");
    const onRetry = (e: RpcError) => {
      cuts.push(e);
      if (readAtRetry < 0) readAtRetry = got.length;
    };
    for await (const ev of subscribeTopic(client, "firehose", { after, signal: ac.signal, backoff: { initialMs: 1 }, onRetry })) {
      got.push(ev.eventId);
      if (got.length === total) return;
      if (cuts.length === 0) await sleep(20); // slow until cut, then it keeps up
    }
  })();
  await eventually(() => hub.subscriberCount("firehose") === 1, 2000, "the subscriber");
  const ids: string[] = [];
  let readAtCut = -1;
  const watchCut = setInterval(() => {
    if (readAtCut < 0 && hub.stats.cutSubscribers > 0) readAtCut = got.length;
  }, 5);
  try {
    for (let i = 0; i < total; i++) {
      ids.push((await hub.publish("firehose", new Uint8Array(64))).id);
      if (i % 500 === 0) await sleep(1);
    }
    await eventually(() => readAtCut >= 0, 5000, "the slow reader to be cut");
    await eventually(() => readAtRetry >= 0, 5000, "the cut to reach the reader (it read 1 event per 20 ms)");
  } finally {
    clearInterval(watchCut);
  }
  // Before the reset, the reader went on reading the ~5,000 events buffered for it first.
  assert.ok(readAtRetry - readAtCut < 50, `the reader learned of the cut after ${readAtRetry - readAtCut} more events`);
  assert.equal(cuts[0]!.code, Code.ResourceExhausted);
  assert.match(cuts[0]!.message, /ENHANCE_YOUR_CALM/);
  await reader;
  ac.abort();
  assert.deepEqual(got, ids, "every event once, in order, across the cut");
  await hub.close();
});

test("the generic subscribe() helper drives the Longlived demo: periodic data per client, Unsubscribe ends the iteration", async () => {
  const hub = createHub();
  const longlived = createLonglived(hub, { intervalMs: 20 });
  const { target } = await h.server((s) => s.add(Longlived, longlived.service));
  const client = createClient(Longlived, h.channel(target));
  const seen = new Map<number, Response[]>([[1, []], [2, []]]);
  const readers = [1, 2].map(async (id) => {
    const events = subscribe(client.subscribe, {
      makeRequest: (after) => (after === undefined ? { id } : { id, afterEventId: after }),
      idOf: (r) => r.eventId,
      positionFromHeader: (md) => md.get(subscriptionStartKey) as string | undefined,
      backoff: { initialMs: 10 },
    });
    for await (const r of events) seen.get(id)!.push(r);
  });
  await eventually(() => seen.get(1)!.length >= 3 && seen.get(2)!.length >= 3, 3000, "data for both clients");
  const answer = await client.unsubscribe({ id: 1 });
  assert.match(answer.data, /unsubscribed client 1 \(1 stream ended\)/);
  await readers[0]; // ended by Unsubscribe: the iteration finishes without error
  const n1 = seen.get(1)!.length;
  const n2 = seen.get(2)!.length;
  await eventually(() => seen.get(2)!.length >= n2 + 2, 3000, "client 2 to keep receiving");
  assert.equal(seen.get(1)!.length, n1, "client 1 receives nothing after Unsubscribe");
  assert.ok(seen.get(1)!.every((r) => r.data.startsWith("data for client 1 at ")));
  assert.ok(seen.get(2)!.every((r) => r.data.startsWith("data for client 2 at ")));
  await client.unsubscribe({ id: 2 });
  await readers[1];
  longlived.stop();
  await hub.close();
});

test("a graceful shutdown (GOAWAY, then the grace period runs out) makes subscribeTopic resume on the next server without loss", async () => {
  const log = createMemoryLog();
  const hub1 = createHub({ log });
  const s1 = createServer({ logger: silentLogger }).add(PubSubService, hub1.service);
  const { port } = await s1.listen({ host: "127.0.0.1", port: 0 });
  const client = createClient(PubSubService, h.channel(`127.0.0.1:${port}`, { backoff: { initialMs: 20, maxMs: 100 } }));
  const ac = new AbortController();
  const got: string[] = [];
  const errors: RpcError[] = [];
  const reader = (async () => {
    for await (const ev of subscribeTopic(client, "g", { signal: ac.signal, backoff: { initialMs: 20, maxMs: 100 }, onRetry: (e) => errors.push(e) })) got.push(ev.eventId);
  })().catch(() => undefined);
  await eventually(() => hub1.subscriberCount("g") === 1, 2000, "the subscriber");
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await hub1.publish("g", new Uint8Array([i]))).id);
  await eventually(() => got.length === 3, 2000, "the first events");
  await s1.shutdown({ graceMs: 100 });
  for (let i = 3; i < 6; i++) ids.push((await log.append("g", new Uint8Array([i]))).event.id);
  const hub2 = createHub({ log });
  const s2 = createServer({ logger: silentLogger }).add(PubSubService, hub2.service);
  await s2.listen({ host: "127.0.0.1", port });
  try {
    await eventually(() => got.length === 6, 5000, "the events published while no server ran");
    ids.push((await hub2.publish("g", new Uint8Array([6]))).id);
    await eventually(() => got.length === 7, 2000, "a live event on the new server");
    assert.deepEqual(got, ids);
    assert.ok(errors.length >= 1 && errors.every((e) => e.code === Code.Unavailable), `resubscribed after UNAVAILABLE (${errors.map((e) => e.code).join(",")})`);
  } finally {
    ac.abort();
    await reader;
    await hub2.close();
    await s2.shutdown({ graceMs: 100 });
  }
});

test("a stalled subscriber of large events is cut at maxQueuedBytes, long before maxQueuedEvents", async () => {
  const hub = createHub({ log: createMemoryLog({ maxEvents: 10_000 }), maxQueuedEvents: 1024, maxQueuedBytes: 256 * 1024 });
  const { target } = await h.server((s) => s.add(PubSubService, hub.service), { sendHighWaterMark: 1024 });
  const client = createClient(PubSubService, h.channel(target, { receiveHighWaterMark: 1024 }));
  const ac = new AbortController();
  let cut: RpcError | undefined;
  let resume!: () => void;
  const stalled = new Promise<void>((resolve) => (resume = resolve));
  // Reads one event, then stops reading until the hub has cut it; then reads on to see why.
  const reader = (async () => {
    const it = subscribeTopic(client, "big", { signal: ac.signal, onRetry: (e) => ((cut ??= e), ac.abort()) })[Symbol.asyncIterator]();
    await it.next();
    await stalled;
    try {
      while (!(await it.next()).done);
    } catch {
      // aborted
    }
  })();
  await eventually(() => hub.subscriberCount("big") === 1, 2000, "the subscriber");
  let published = 0;
  while (published < 60 && hub.subscriberCount("big") === 1) {
    await hub.publish("big", new Uint8Array(64 * 1024));
    published++;
    await sleep(5);
  }
  await eventually(() => hub.subscriberCount("big") === 0, 5000, "the slow subscriber to be cut");
  assert.ok(published < 60, `still subscribed after ${published} events of 64 KiB`);
  resume();
  await eventually(() => cut !== undefined, 5000, "the client to read why it was cut");
  await reader;
  assert.equal(cut!.code, Code.ResourceExhausted);
  assert.match(cut!.message, /ENHANCE_YOUR_CALM/, "cut with a reset (no status can overtake what is buffered)");
  assert.equal(hub.stats.cutSubscribers, 1);
  await hub.close();
});

test("bookmarks: a quiet subscription that asked for them gets its position every interval, one that did not gets nothing", async () => {
  const hub = createHub({ log: createMemoryLog() });
  const { target } = await h.server((s) => s.add(PubSubService, hub.service));
  const client = createClient(PubSubService, h.channel(target));
  const ac = new AbortController();
  let start = "";
  const withBookmarks = client.subscribe({ topic: "quiet", bookmarkIntervalMs: 100 }, { signal: ac.signal, onHeader: (md) => (start = String(md.get(subscriptionStartKey))) })[Symbol.asyncIterator]();
  const plain = client.subscribe({ topic: "quiet" }, { signal: ac.signal })[Symbol.asyncIterator]();
  const plainFirst = plain.next();
  const t0 = Date.now();
  const first = (await withBookmarks.next()).value!;
  assert.equal(first.bookmark, true);
  assert.equal(first.eventId, start, "a bookmark before any event names the start position");
  assert.ok(Date.now() - t0 >= 90, "not before the interval");
  await eventually(() => hub.subscriberCount("quiet") === 2, 2000, "both subscribers");
  const published = await hub.publish("quiet", new Uint8Array([1]));
  const ev = (await withBookmarks.next()).value!;
  assert.deepEqual([ev.bookmark, ev.eventId], [false, published.id]);
  const after = (await withBookmarks.next()).value!;
  assert.deepEqual([after.bookmark, after.eventId, after.payload.length], [true, published.id, 0], "the next bookmark names the event just sent");
  const p = (await plainFirst).value!;
  assert.deepEqual([p.bookmark, p.eventId], [false, published.id], "the subscriber without bookmarks got the event and nothing before it");
  ac.abort();
  await hub.close();
});

test("subscribeTopic with bookmarks yields only events, and replaces a stream that goes silent (no event, no bookmark) without loss", async () => {
  const hub = createHub({ log: createMemoryLog() });
  const { target } = await h.server((s) => s.add(PubSubService, hub.service));
  const proxy = await startTcpProxy(Number(target.split(":")[1]));
  try {
    const client = createClient(PubSubService, h.channel(proxy.target));
    const ac = new AbortController();
    const got: string[] = [];
    const retries: unknown[] = [];
    const reader = (async () => {
      for await (const ev of subscribeTopic(client, "t", { bookmarkIntervalMs: 100, signal: ac.signal, backoff: { initialMs: 20, maxMs: 50 }, onRetry: (e) => retries.push(e) })) {
        got.push(ev.eventId);
      }
    })().catch((e: unknown) => e);
    await eventually(() => hub.subscriberCount("t") === 1, 2000, "the subscriber");
    const ids = [(await hub.publish("t", new Uint8Array([0]))).id];
    await eventually(() => got.length === 1, 2000, "the first event");
    // The server's bytes stop reaching the client (a proxy holding them): the stream goes silent.
    proxy.delay(1500, "toClient");
    ids.push((await hub.publish("t", new Uint8Array([1]))).id);
    await eventually(() => retries.some((e) => e instanceof IdleTimeoutError), 3000, "the silent stream to be given up");
    proxy.restore();
    ids.push((await hub.publish("t", new Uint8Array([2]))).id);
    await eventually(() => got.length === 3, 5000, "every event after the silence");
    await new Promise((r) => setTimeout(r, 350)); // a bookmark or three: none may be yielded
    assert.deepEqual(got, ids, "each event once, in order, and no bookmark among them");
    ac.abort();
    await reader;
  } finally {
    await proxy.close();
    await hub.close();
  }
});
