/**
 * The hub's retention is bounded in bytes where it counts, in the server process: 150 publishes
 * of 2 MiB (300 MiB, which used to stay resident) through gRPC into a hub with default options
 * leave it holding no more than its 64 MiB budget, by the log's own count and by the process's
 * live memory after GC (measured with a generous margin: the machine is shared).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { PubSubService } from "../../src/services/pubsub/index.js";
import { startChildServer } from "./fixtures/child-server.js";

const MiB = 1024 * 1024;

interface Stats {
  heapUsed: number;
  rss: number;
}

test("150 publishes of 2 MiB leave the server's hub within its default 64 MiB byte budget", async () => {
  const server = await startChildServer(["--port", "0"]);
  const channel = createChannel(`127.0.0.1:${server.port}`, { logger: silentLogger });
  try {
    const client = createClient(PubSubService, channel);
    const before = await server.ask<Stats>({ cmd: "stats" });
    for (let i = 0; i < 150; i++) {
      // A fresh payload per publish, and five topics, so neither sharing nor the per-topic
      // limit (16 MiB) hides the total budget.
      await client.publish({ topic: `big-${i % 5}`, payload: new Uint8Array(2 * MiB).fill(i) });
    }
    const usage = await server.ask<{ topics: number; events: number; bytes: number }>({ cmd: "usage" });
    const after = await server.ask<Stats>({ cmd: "stats" });
    const grown = after.heapUsed - before.heapUsed;
    console.log(`retained ${usage.events} events, ${(usage.bytes / MiB).toFixed(1)} MiB by the log's count; live memory grew ${(grown / MiB).toFixed(1)} MiB (heap + external after GC), RSS ${(before.rss / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB`);
    assert.equal(usage.topics, 5);
    assert.ok(usage.bytes <= 64 * MiB, `the log counts ${usage.bytes} bytes`);
    assert.ok(grown < 96 * MiB, `the server's live memory grew by ${(grown / MiB).toFixed(1)} MiB (budget 64 MiB, margin 32 MiB)`);
  } finally {
    channel.close();
    await server.kill();
  }
});
