/**
 * `rill/web`'s resuming subscription, driven from Node with connect-node's transports (the
 * Chromium suite drives it from a page): every event once and in order across a server restart
 * and a stream a proxy silently dropped, over the Connect protocol and gRPC-Web; and a module
 * graph a browser can load (no `node:` import anywhere in it).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createServer, silentLogger, type Server } from "../../src/index.js";
import { createHub, PubSubService, type Hub } from "../../src/services/pubsub/index.js";
import { subscribeTopic, type SubscriptionState } from "../../src/web/index.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { eventually } from "../support/harness.js";

const text = new TextEncoder();
const backoff = { initialMs: 50, maxMs: 200 };

/** A hub server on `port` (0: any); the hub outlives the server, as a Redis log outlives a process. */
async function serve(hub: Hub, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer({ logger: silentLogger });
  server.add(PubSubService, hub.service);
  const addr = await server.listen({ port });
  return { server, port: addr.port };
}

describe("rill/web: a browser-safe module graph", () => {
  test("nothing reachable from rill/web imports a node: module or uses Buffer or process", () => {
    const entry = fileURLToPath(new URL("../../src/web/index.js", import.meta.url));
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, "utf8");
      for (const m of source.matchAll(/(?:import|export)[^'"]*?from\s*["']([^"']+)["']/g)) {
        const spec = m[1]!;
        if (spec.startsWith("node:")) offenders.push(`${file} imports ${spec}`);
        else if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      }
      if (/\bBuffer\.|\bprocess\./.test(source.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ""))) offenders.push(`${file} uses Buffer or process`);
    };
    visit(entry);
    assert.ok(seen.size >= 3, `walked ${seen.size} modules`);
    assert.deepEqual(offenders, []);
  });
});

for (const [name, make] of [
  ["Connect over HTTP/1.1", (url: string) => createConnectTransport({ baseUrl: url, httpVersion: "1.1" })],
  ["gRPC-Web over HTTP/1.1", (url: string) => createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" })],
] as const) {
  describe(`rill/web subscribeTopic (${name})`, () => {
    test("every event once and in order across a server restart, with the states a page shows", async () => {
      const hub = createHub();
      let { server, port } = await serve(hub);
      const states: SubscriptionState[] = [];
      const abort = new AbortController();
      const got: string[] = [];
      const published: string[] = [];
      const reading = (async () => {
        for await (const ev of subscribeTopic(make(`http://127.0.0.1:${port}`), "ticks", { signal: abort.signal, backoff, onState: (s) => states.push(s) })) {
          got.push(new TextDecoder().decode(ev.payload));
          if (got.length === 30) return;
        }
      })();
      await eventually(() => states.includes("live"), 5000, "the subscription to go live");
      for (let i = 0; i < 10; i++) published.push((await hub.publish("ticks", text.encode(`e${i}`))).id);
      await eventually(() => got.length === 10, 5000, "the first 10 events");
      await server.shutdown({ graceMs: 0 });
      // Published while no server runs: the resumed subscription must still deliver them.
      for (let i = 10; i < 20; i++) published.push((await hub.publish("ticks", text.encode(`e${i}`))).id);
      ({ server } = await serve(hub, port));
      await eventually(() => got.length === 20, 10_000, "the events published while the server was down");
      for (let i = 20; i < 30; i++) published.push((await hub.publish("ticks", text.encode(`e${i}`))).id);
      await reading;
      abort.abort();
      await server.shutdown({ graceMs: 100 });
      assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => `e${i}`));
      assert.ok(states.includes("reconnecting"), `states: ${states.join(" → ")}`);
      assert.equal(states.at(-1), "live");
    });

    test("snapshot then changes: the retained events marked as history, onHistoryEnd once, then live events", async () => {
      const hub = createHub();
      const { server, port } = await serve(hub);
      for (let i = 0; i < 3; i++) await hub.publish("snap", text.encode(`h${i}`));
      const abort = new AbortController();
      const seen: string[] = [];
      const reading = (async () => {
        const opts = { signal: abort.signal, backoff, from: "oldest" as const, history: true, onHistoryEnd: () => seen.push("end") };
        for await (const ev of subscribeTopic(make(`http://127.0.0.1:${port}`), "snap", opts)) {
          seen.push(`${new TextDecoder().decode(ev.payload)}:${ev.history}`);
          if (seen.length === 5) return;
        }
      })();
      await eventually(() => seen.length === 4, 5000, "the history and its end");
      await hub.publish("snap", text.encode("live"));
      await reading;
      abort.abort();
      await server.shutdown({ graceMs: 100 });
      await hub.close();
      assert.deepEqual(seen, ["h0:true", "h1:true", "h2:true", "end", "live:false"]);
    });
  });
}

describe("rill/web subscribeTopic heartbeat", () => {
  test("a stream a proxy silently stopped forwarding is replaced after three missed heartbeats, losing nothing", async () => {
    const hub = createHub();
    const { server, port } = await serve(hub);
    const proxy = await startTcpProxy(port);
    const abort = new AbortController();
    const got: string[] = [];
    const states: SubscriptionState[] = [];
    try {
      const reading = (async () => {
        for await (const ev of subscribeTopic(createConnectTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, httpVersion: "1.1" }), "quiet", {
          signal: abort.signal,
          bookmarkIntervalMs: 100,
          backoff,
          onState: (s) => states.push(s),
        })) {
          got.push(new TextDecoder().decode(ev.payload));
          if (got.length === 2) return;
        }
      })();
      await eventually(() => states.includes("live"), 5000, "live");
      await hub.publish("quiet", text.encode("before"));
      await eventually(() => got.length === 1, 5000, "the first event");
      // The connection stays open but nothing crosses it any more (a proxy that dropped it).
      proxy.blackhole();
      await hub.publish("quiet", text.encode("during"));
      await eventually(() => states.includes("reconnecting"), 3000, "the silent stream to be given up (3 × 100 ms)");
      proxy.restore();
      await reading;
      assert.deepEqual(got, ["before", "during"]);
    } finally {
      abort.abort();
      await proxy.close();
      await server.shutdown({ graceMs: 100 });
    }
  });
});
