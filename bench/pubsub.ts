/**
 * Pub/sub fan-out benchmark: Rill's hub against the same scenario written directly on
 * @grpc/grpc-js server streams (same proto, same protobuf-es serializers, so only the RPC
 * stacks and the fan-out differ).
 *
 *   npm run bench:pubsub [-- --subs 10000 --topics 1000 --connections 8 --rate 1000 --seconds 5]
 *
 * Per implementation: a fresh server process; this process opens `--subs` subscriptions over
 * `--connections` client connections, spread evenly over `--topics` topics; then
 *  1. heap per idle subscription: the server's JS heap + external memory (after a full GC)
 *     with every subscription open, minus before any, divided by the count;
 *  2. fan-out latency: Publish at `--rate` per second (round robin over topics) for
 *     `--seconds`; each payload carries its send time, every delivery records now − then
 *     (p50/p99 over all deliveries), plus the achieved publish and delivery rates;
 *  3. max publish rate: Publish with 64 calls in flight for 2 s, same fan-out.
 * The grpc-js server keeps a Set of calls per topic and `write()`s each event to each (the
 * usual grpc-js code: no per-subscriber bound). Rill's hub is its memory-log default.
 * The machine is shared; treat the numbers as a comparison from one run, not absolutes.
 */
import { spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createChannel, createClient, silentLogger } from "../src/index.js";
import { protobufSerializer } from "./common.js";
import { now, percentile, serveRillHub } from "./pubsub-common.js";
import { createMemoryLog, PubSubService } from "../src/services/pubsub/index.js";
import {
  EventSchema,
  PublishRequestSchema,
  PublishResponseSchema,
  SubscribeRequestSchema,
  type Event,
  type PublishRequest,
  type PublishResponse,
  type SubscribeRequest,
} from "../gen/rill/pubsub/v1/pubsub_pb.js";

const { values } = parseArgs({
  options: {
    serve: { type: "string" },
    impl: { type: "string", default: "rill,grpc-js" },
    subs: { type: "string", default: "10000" },
    topics: { type: "string", default: "1000" },
    connections: { type: "string", default: "8" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "5" },
  },
});

// ---------- servers (child processes) ----------

const pubReq = protobufSerializer(PublishRequestSchema);
const pubRes = protobufSerializer(PublishResponseSchema);
const subReq = protobufSerializer(SubscribeRequestSchema);
const event = protobufSerializer(EventSchema);

const grpcDefinition = {
  Publish: {
    path: "/rill.pubsub.v1.PubSubService/Publish",
    requestStream: false,
    responseStream: false,
    requestSerialize: pubReq.serialize,
    requestDeserialize: pubReq.deserialize,
    responseSerialize: pubRes.serialize,
    responseDeserialize: pubRes.deserialize,
  },
  Subscribe: {
    path: "/rill.pubsub.v1.PubSubService/Subscribe",
    requestStream: false,
    responseStream: true,
    requestSerialize: subReq.serialize,
    requestDeserialize: subReq.deserialize,
    responseSerialize: event.serialize,
    responseDeserialize: event.deserialize,
  },
} satisfies grpc.ServiceDefinition;

async function serveRill(): Promise<{ port: number; subscribers: () => number }> {
  // maxConcurrentStreams raised (see serveRillHub): thousands of subscriptions share 8 connections.
  const { hub, port } = await serveRillHub(createMemoryLog({ maxEvents: 1000 }));
  return { port, subscribers: () => hub.subscriberCount() };
}

async function serveGrpcJs(): Promise<{ port: number; subscribers: () => number }> {
  const topics = new Map<string, Set<grpc.ServerWritableStream<SubscribeRequest, Event>>>();
  let seq = 0;
  let count = 0;
  const server = new grpc.Server();
  server.addService(grpcDefinition, {
    Subscribe(call: grpc.ServerWritableStream<SubscribeRequest, Event>) {
      const topic = call.request.topic;
      let set = topics.get(topic);
      if (set === undefined) topics.set(topic, (set = new Set()));
      set.add(call);
      count++;
      call.sendMetadata(new grpc.Metadata());
      const leave = () => {
        if (set.delete(call)) count--;
      };
      call.on("cancelled", leave);
      call.on("close", leave);
    },
    Publish(call: grpc.ServerUnaryCall<PublishRequest, PublishResponse>, callback: grpc.sendUnaryData<PublishResponse>) {
      const id = String(++seq);
      const ev = create(EventSchema, { eventId: id, topic: call.request.topic, payload: call.request.payload, publishedAt: timestampFromMs(Date.now()) });
      for (const c of topics.get(call.request.topic) ?? []) c.write(ev);
      callback(null, create(PublishResponseSchema, { eventId: id }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { port, subscribers: () => count };
}

async function serve(impl: string): Promise<void> {
  const s = impl === "rill" ? await serveRill() : await serveGrpcJs();
  process.stdout.write(`${JSON.stringify({ port: s.port })}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on("line", () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ heap: m.heapUsed + m.external, rss: m.rss, subscribers: s.subscribers() })}\n`);
  });
  lines.on("close", () => process.exit(0));
}

// ---------- clients (this process) ----------

interface Stats {
  heap: number;
  rss: number;
  subscribers: number;
}

interface Subscriber {
  /** Opens one subscription; `onEvent` gets each event's payload. Returns a closer. */
  subscribe(conn: number, topic: string, onEvent: (payload: Uint8Array) => void): void;
  publish(topic: string, payload: Uint8Array): Promise<void>;
  close(): void;
}

function rillClients(port: number, connections: number): Subscriber {
  const ac = new AbortController();
  // One signal ends all 10,000 subscriptions: each call listens on it.
  setMaxListeners(0, ac.signal);
  const channels = Array.from({ length: connections }, () => createChannel(`127.0.0.1:${port}`, { logger: silentLogger }));
  const clients = channels.map((c) => createClient(PubSubService, c));
  const publisher = createClient(PubSubService, createChannel(`127.0.0.1:${port}`, { logger: silentLogger }));
  return {
    subscribe(conn, topic, onEvent) {
      void (async () => {
        try {
          for await (const ev of clients[conn]!.subscribe({ topic }, { signal: ac.signal })) onEvent(ev.payload);
        } catch {
          // cancelled at the end
        }
      })();
    },
    async publish(topic, payload) {
      await publisher.publish({ topic, payload });
    },
    close() {
      ac.abort();
      for (const c of channels) c.close();
    },
  };
}

function grpcJsClients(port: number, connections: number): Subscriber {
  const Ctor = grpc.makeGenericClientConstructor(grpcDefinition, "PubSubService");
  // A local subchannel pool per client: one HTTP/2 connection each, as with Rill's channels.
  const make = () => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const clients = Array.from({ length: connections }, make);
  const publisher = make();
  const calls: grpc.ClientReadableStream<Event>[] = [];
  return {
    subscribe(conn, topic, onEvent) {
      const call = (clients[conn] as unknown as { Subscribe(r: SubscribeRequest): grpc.ClientReadableStream<Event> }).Subscribe(create(SubscribeRequestSchema, { topic }));
      call.on("data", (ev: Event) => onEvent(ev.payload));
      call.on("error", () => {});
      calls.push(call);
    },
    publish(topic, payload) {
      return new Promise((resolve, reject) =>
        (publisher as unknown as { Publish(r: PublishRequest, cb: (e: Error | null) => void): void }).Publish(create(PublishRequestSchema, { topic, payload }), (e) =>
          e ? reject(e) : resolve(),
        ),
      );
    },
    close() {
      for (const c of calls) c.cancel();
      for (const c of [...clients, publisher]) c.close();
    },
  };
}

async function run(impl: string) {
  const subs = Number(values.subs);
  const topicCount = Number(values.topics);
  const connections = Number(values.connections);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const child = spawn(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--serve", impl], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((l: string) => void)[] = [];
  lines.on("line", (l) => waiting.shift()?.(l));
  const nextLine = () => new Promise<string>((r) => waiting.push(r));
  const { port } = JSON.parse(await nextLine()) as { port: number };
  const stats = async (): Promise<Stats> => {
    const p = nextLine();
    child.stdin!.write("stats\n");
    return JSON.parse(await p) as Stats;
  };
  const client = impl === "rill" ? rillClients(port, connections) : grpcJsClients(port, connections);
  try {
    const base = await stats();
    const topics = Array.from({ length: topicCount }, (_, i) => `t${i}`);
    let latencies = new Float64Array(rate * seconds * (subs / topicCount) * 2);
    let n = 0;
    let recording = false;
    let delivered = 0;
    const onEvent = (payload: Uint8Array) => {
      delivered++;
      if (!recording || payload.byteLength !== 8) return;
      const sent = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0);
      if (n < latencies.length) latencies[n++] = now() - sent;
    };
    const t0 = now();
    for (let i = 0; i < subs; i++) {
      client.subscribe(i % connections, topics[i % topicCount]!, onEvent);
      if (i % 500 === 499) await sleep(1);
    }
    for (;;) {
      const s = await stats();
      if (s.subscribers === subs) break;
      await sleep(100);
    }
    const openMs = now() - t0;
    await sleep(500);
    const idle = await stats();
    const perSub = (idle.heap - base.heap) / subs;

    // Fan-out latency at a fixed publish rate.
    const stamp = () => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, now());
      return b;
    };
    let published = 0;
    let k = 0;
    const inflight = new Set<Promise<void>>();
    const publishOne = () => {
      const p = client.publish(topics[k++ % topicCount]!, stamp()).then(() => {
        published++;
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };
    // Warm-up, then the measured run; ticks of 10 ms keep the rate without a timer per event.
    for (const [phase, dur] of [["warm", 1], ["measure", seconds]] as const) {
      recording = phase === "measure";
      n = 0;
      published = 0;
      delivered = 0;
      const start = now();
      let due = 0;
      while (now() - start < dur * 1000) {
        const target = Math.floor(((now() - start) / 1000) * rate);
        while (due < target) {
          publishOne();
          due++;
        }
        await sleep(10);
      }
      await Promise.all(inflight);
      await sleep(200);
    }
    const measured = latencies.subarray(0, n).sort();
    const expected = published * (subs / topicCount);
    const result = {
      impl,
      subscriptions: subs,
      openSeconds: openMs / 1000,
      heapPerIdleSubscription: perSub,
      publishRate: published / seconds,
      deliveriesPerSecond: delivered / seconds,
      deliveredRatio: delivered / expected,
      p50: percentile(measured, 50),
      p99: percentile(measured, 99),
      maxPublishRate: 0,
    };
    latencies = new Float64Array(0);

    // Max publish rate: 64 in flight for 2 s.
    recording = false;
    let count = 0;
    const end = now() + 2000;
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        let j = w;
        while (now() < end) {
          await client.publish(topics[j++ % topicCount]!, new Uint8Array(8));
          count++;
        }
      }),
    );
    result.maxPublishRate = count / 2;
    return result;
  } finally {
    client.close();
    child.stdin!.end();
    await sleep(200);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

if (values.serve !== undefined) {
  await serve(values.serve);
} else {
  const results = [];
  for (const impl of values.impl!.split(",")) {
    console.error(`[bench:pubsub] ${impl}...`);
    results.push(await run(impl));
  }
  console.log(
    `\n${values.subs} subscriptions over ${values.topics} topics (${Number(values.subs) / Number(values.topics)} per topic), ${values.connections} client connections, publish ${values.rate}/s for ${values.seconds} s (one server process, clients in another)\n`,
  );
  console.log("| implementation | heap per idle subscription | fan-out p50 | fan-out p99 | deliveries/s (ratio of expected) | max publish rate (64 in flight) |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.impl} | ${(r.heapPerIdleSubscription / 1024).toFixed(1)} KiB | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${Math.round(r.deliveriesPerSecond)} (${r.deliveredRatio.toFixed(3)}) | ${Math.round(r.maxPublishRate)}/s |`,
    );
  }
  process.exit(0);
}
