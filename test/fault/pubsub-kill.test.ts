/**
 * Subscriptions survive a crashing server: a hub server process on Redis is killed with SIGKILL
 * five times while a publisher keeps publishing; every subscriber must see every event exactly
 * once, in order — checked against the Redis stream itself, event by event.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { PubSubService, subscribeTopic, type Event } from "../../src/services/pubsub/index.js";
import { eventually } from "../support/harness.js";
import { freePort } from "../support/ports.js";
import { useRedis } from "../support/redis.js";
import { startPublisher } from "./fixtures/publisher.js";
import { startChildServer, type ChildServer } from "./fixtures/child-server.js";

const redis = useRedis();

test("kill -9 of the server five times mid-stream: every subscriber receives every event exactly once, in order", async () => {
  const url = redis.get().url;
  const port = await freePort();
  const args = ["--port", String(port), "--redis", url, "--prefix", "kill:"];
  let server: ChildServer = await startChildServer(args);
  const channel = createChannel(`127.0.0.1:${port}`, { logger: silentLogger, backoff: { initialMs: 50, maxMs: 200 } });
  const client = createClient(PubSubService, channel);
  const topic = "crashy";
  const ac = new AbortController();
  const subscribers = Array.from({ length: 3 }, () => ({ events: [] as Event[], retries: 0 }));
  const readers = subscribers.map(async (s) => {
    // "0-0": from the very first event, so the stream's whole content is the expected sequence.
    for await (const ev of subscribeTopic(client, topic, { after: "0-0", signal: ac.signal, backoff: { initialMs: 50, maxMs: 200 }, onRetry: () => s.retries++ })) {
      s.events.push(ev);
    }
  });
  const readersDone = Promise.allSettled(readers);

  // Each event is retried with its idempotency key until acknowledged (see startPublisher).
  const publisher = startPublisher(client, topic);

  try {
    for (let kill = 0; kill < 5; kill++) {
      const before = publisher.published;
      await eventually(() => publisher.published >= before + 40 && subscribers.every((s) => s.events.length >= publisher.published - 5), 10_000, `progress before kill ${kill + 1}`);
      await server.kill();
      await sleep(150);
      server = await startChildServer(args);
    }
    const last = publisher.published;
    await eventually(() => publisher.published >= last + 40, 10_000, "publishing after the last restart");
    await publisher.stop();
    await eventually(() => subscribers.every((s) => s.events.length >= publisher.published), 10_000, "every subscriber to catch up");
    await sleep(100); // anything extra (a duplicate) would arrive now

    const check = new Redis(url);
    const entries = await check.xrange(`kill:t:${topic}`, "-", "+");
    // Event ids are the stream entry ids with the topic's epoch (one history throughout).
    const epoch = await check.hget(`kill:m:${topic}`, "epoch");
    check.disconnect();
    const expectedIds = entries.map(([id]) => `${id}@${epoch}`);
    const expectedPayloads = Array.from({ length: publisher.published }, (_, i) => String(i));
    assert.equal(expectedIds.length, publisher.published, "the log holds each acknowledged event once (idempotent retries)");
    for (const [i, s] of subscribers.entries()) {
      assert.deepEqual(s.events.map((e) => e.eventId), expectedIds, `subscriber ${i} saw the log's events exactly once, in order`);
      assert.deepEqual(s.events.map((e) => new TextDecoder().decode(e.payload)), expectedPayloads, `subscriber ${i} saw payloads 0..${publisher.published - 1}`);
      assert.ok(s.retries >= 5, `subscriber ${i} resubscribed after every kill (${s.retries} retries)`);
    }
    assert.ok(publisher.failures >= 1, "the publisher noticed the outages");
  } finally {
    await publisher.stop();
    ac.abort();
    await readersDone;
    channel.close();
    await server.kill();
  }
});
