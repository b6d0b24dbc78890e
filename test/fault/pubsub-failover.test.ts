/**
 * Many instances on one Redis: two hub server processes share topics; a client balancing
 * round_robin over both loses one to SIGKILL, and its subscribers resume on the other with no
 * gap and no duplicate.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { PubSubService, subscribeTopic, type Event } from "../../src/services/pubsub/index.js";
import { eventually } from "../support/harness.js";
import { useRedis } from "../support/redis.js";
import { startPublisher } from "./fixtures/publisher.js";
import { startChildServer } from "./fixtures/child-server.js";

const redis = useRedis();

test("two instances on Redis behind round_robin: killing one moves its subscribers to the other with no gap or duplicate", async () => {
  const url = redis.get().url;
  const args = ["--port", "0", "--redis", url, "--prefix", "fo:"];
  const [a, b] = await Promise.all([startChildServer(args), startChildServer(args)]);
  const channel = createChannel([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], {
    logger: silentLogger,
    loadBalancingPolicy: "round_robin",
    backoff: { initialMs: 50, maxMs: 200 },
  });
  const client = createClient(PubSubService, channel);
  const topic = "shared";
  const ac = new AbortController();
  // Both backends connected before the subscriptions start, so round_robin spreads them.
  for (let i = 0; i < 4; i++) await client.listTopics({}, { waitForReady: true });
  await eventually(() => channel.state === "READY", 5000, "the channel");
  await sleep(100);
  const subscribers = Array.from({ length: 6 }, () => ({ events: [] as Event[], retries: 0 }));
  const readersDone = Promise.allSettled(
    subscribers.map(async (s) => {
      for await (const ev of subscribeTopic(client, topic, { after: "0-0", signal: ac.signal, backoff: { initialMs: 50, maxMs: 200 }, onRetry: () => s.retries++ })) {
        s.events.push(ev);
      }
    }),
  );
  const publisher = startPublisher(client, topic);
  try {
    const stats = (s: typeof a) => s.ask<{ subscribers: number }>({ cmd: "stats" });
    await eventually(() => publisher.published >= 40, 10_000, "the first events");
    const [onA, onB] = [(await stats(a)).subscribers, (await stats(b)).subscribers];
    assert.equal(onA + onB, 6, "every subscription is open on one of the instances");
    assert.ok(onA > 0 && onB > 0, `round_robin spread the subscriptions (${onA} on a, ${onB} on b)`);
    await a.kill();
    const afterKill = publisher.published;
    await eventually(() => publisher.published >= afterKill + 60, 10_000, "publishing through the survivor");
    await publisher.stop();
    await eventually(() => subscribers.every((s) => s.events.length >= publisher.published), 10_000, "every subscriber to catch up on the survivor");
    await sleep(100);
    assert.equal((await stats(b)).subscribers, 6, "every subscription now lives on the survivor");

    const check = new Redis(url);
    const entries = await check.xrange(`fo:t:${topic}`, "-", "+");
    // Event ids are the stream entry ids with the topic's epoch (one history throughout).
    const epoch = await check.hget(`fo:m:${topic}`, "epoch");
    check.disconnect();
    const expectedIds = entries.map(([id]) => `${id}@${epoch}`);
    assert.equal(expectedIds.length, publisher.published);
    for (const [i, s] of subscribers.entries()) {
      assert.deepEqual(s.events.map((e) => e.eventId), expectedIds, `subscriber ${i}: no gap, no duplicate`);
    }
    assert.equal(subscribers.filter((s) => s.retries > 0).length, onA, "exactly the subscribers of the killed instance resubscribed");
  } finally {
    await publisher.stop();
    ac.abort();
    await readersDone;
    channel.close();
    await a.kill();
    await b.kill();
  }
});
