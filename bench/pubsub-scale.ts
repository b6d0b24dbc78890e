/**
 * Pub/sub scale-out on Redis (issue 16): one hub process against several hub processes sharing
 * one Redis, with the same subscriptions spread evenly over them and publishes sent round-robin
 * to all of them, in one invocation.
 *
 *   npm run bench:pubsub-scale [-- --subs 30000 --topics 1000 --hubs 3 --clients 2
 *                                  --connections 6 --rate 500 --seconds 10 --rounds 3]
 *
 * Processes, all on 127.0.0.1, all stopped by PID at the end (processes.ts), none pinned:
 *  - one private redis-server (scripts/setup-redis.mjs `startRedis()`; no persistence), FLUSHALL
 *    between runs. Each hub holds one XREAD BLOCK connection per 16 followed topics plus two
 *    (redis-tails.ts): H × (⌈T / 16⌉ + 2) clients. Redis's default maxclients (10,000) is raised
 *    with CONFIG SET if that is not enough; its open-file limit must then allow maxclients + 32;
 *  - per run, H fresh hub processes (H = 1, then `--hubs`; the order alternates by round): Rill's
 *    `createHub({ log: createRedisLog({ url }) })` with maxConcurrentStreams raised, as in
 *    bench/pubsub.ts;
 *  - per run, `--clients` fresh subscriber processes (two by default: one subscriber process
 *    takes ~17 % of a core at the default load, so neither is the bottleneck): subscription i (of
 *    `--subs`) is on topic i mod T, on hub ⌊i / T⌋ mod H (so every hub follows every topic, with
 *    the same number of subscribers per topic), in subscriber process ⌊i / T⌋ mod K (so each topic's
 *    subscribers, on each hub, are spread over the subscriber processes too). Each subscriber
 *    process opens `--connections` HTTP/2 connections spread evenly over the hubs (6: 6 to the one
 *    hub, or 2 to each of 3), so the same clients connect whatever the hub count; `--per-hub`
 *    opens `--connections` to each hub instead;
 *  - per run, one publisher process: publish k goes to topic k mod T through hub k mod H, at
 *    `--rate` per second (ticks of 10 ms, at most `--max-in-flight` unanswered; a publish due
 *    past that is skipped and counted).
 * Each run: open every subscription (checked in the hubs' stats), publish `--warmup` s
 * unmeasured, wait (at most `--quiet-wait` s) until the machine is below `--quiet-below` % busy
 * with everything idle, then publish `--seconds` s measured; each payload carries its send time
 * (epoch ms, from `performance.timeOrigin`, comparable across processes) and its phase, so a
 * delivery is measured by the phase it was published in, whenever it arrives. After the measured
 * publishes, the run waits (at most 10 s) until every expected delivery arrived. Then, unless
 * `--no-max-publish`, the max publish rate: `--max-inflight-publish` (64) publishes in flight for
 * 2 s, round-robin over the hubs, with the same fan-out.
 * Reported per run: fan-out p50/p99/p99.9 over every measured delivery (and from the event's
 * published_at, Redis's XADD time, to arrival), deliveries/s and the ratio delivered/expected
 * (expected = accepted publishes × subscribers per topic), CPU per process over the measured
 * window (`process.cpuUsage()` of each hub, subscriber and publisher process, Redis's INFO
 * used_cpu_*; % of one core) and hub CPU per delivery, and the machine's other load (/proc/stat
 * busy time not spent by these processes). The machine is shared: a run whose other load passes
 * `--max-other` % of a core is marked disturbed and run again (at most `--retries` times); the
 * medians per configuration, with [min–max], and the ratio H hubs / 1 hub use the undisturbed
 * runs. Every run goes to bench/results/pubsub-scale.json (or `--out`). `--hub-prof DIR` writes
 * a CPU profile of each hub over the measured window (`node dist/bench/profile-summary.js`).
 * The machine has 2 cores for every process here: this measures what scale-out costs and whether
 * it keeps every delivery, not how far it would go on more cores.
 */
import { setMaxListeners } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { createChannel, createClient, silentLogger, type Channel } from "../src/index.js";
import { createRedisLog, PubSubService, type Event } from "../src/services/pubsub/index.js";
import { now, percentile, serveRillHub } from "./pubsub-common.js";
import { startChild, type Child, type SpawnOptions } from "./processes.js";
import { median } from "./stats.js";

const { values } = parseArgs({
  options: {
    role: { type: "string" },
    redis: { type: "string" },
    prefix: { type: "string", default: "scale:" },
    subs: { type: "string", default: "30000" },
    topics: { type: "string", default: "1000" },
    hubs: { type: "string", default: "3" },
    clients: { type: "string", default: "2" },
    connections: { type: "string", default: "6" },
    "per-hub": { type: "boolean", default: false },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    "max-in-flight": { type: "string", default: "2000" },
    "max-inflight-publish": { type: "string", default: "64" },
    "no-max-publish": { type: "boolean", default: false },
    "max-other": { type: "string", default: "30" },
    retries: { type: "string", default: "2" },
    "quiet-wait": { type: "string", default: "90" },
    "quiet-below": { type: "string", default: "10" },
    "cpu-prof": { type: "string" },
    "hub-prof": { type: "string" },
    out: { type: "string" },
  },
});

const int = (name: keyof typeof values, min: number): number => {
  const v = Number(values[name]);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(values[name])}`);
  return v;
};

type Message = Record<string, unknown>;

// ---------- children ----------

function sendToParent(m: Message): void {
  process.send!(m);
}

/** Answers the orchestrator's requests (each reply repeats the request's id); "exit" exits. */
function serveRequests(handle: (m: Message) => Promise<Message> | Message): void {
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: Message) => {
    if (m.type === "exit") process.exit(0);
    void (async () => {
      try {
        sendToParent({ ...(await handle(m)), id: m.id });
      } catch (e) {
        sendToParent({ id: m.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
    })();
  });
}

const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

/** A hub process: Rill's hub on the shared Redis. */
async function hubRole(): Promise<void> {
  const served = await serveRillHub(createRedisLog({ url: values.redis!, prefix: values.prefix! }));
  // `--hub-prof`: a CPU profile of the measured window only (not the opening of the subscriptions).
  let profiler: Session | undefined;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => profiler!.post(method, params ?? {}, (e, r) => (e === null ? resolve(r) : reject(e))));
  serveRequests(async (m) => {
    if (m.type === "prof-start") {
      profiler = new Session();
      profiler.connect();
      await post("Profiler.enable");
      await post("Profiler.start");
      return {};
    }
    if (m.type === "prof-stop") {
      const { profile } = (await post("Profiler.stop")) as { profile: unknown };
      profiler!.disconnect();
      writeFileSync(m.file as string, JSON.stringify(profile));
      return {};
    }
    if (m.type !== "stats") throw new Error(`hub: unknown request ${String(m.type)}`);
    const st = served.hub.stats;
    const mem = process.memoryUsage();
    return { subscribers: st.subscribers, cut: st.cutSubscribers, queued: st.maxQueuedEvents, cpuUs: cpuUs(), rss: mem.rss };
  });
  sendToParent({ type: "ready", port: served.port });
}

/** Payload: float64 send time (epoch ms), then one byte: 0 warm-up, 1 measured. */
function stamp(phase: number): Uint8Array {
  const b = new Uint8Array(9);
  new DataView(b.buffer).setFloat64(0, now());
  b[8] = phase;
  return b;
}

/** Where subscription i goes (see the module comment). */
function placement(i: number, topics: number, hubs: number, clients: number) {
  const round = Math.floor(i / topics);
  return { topic: `t${i % topics}`, hub: round % hubs, client: round % clients };
}

/** A subscriber process: its share of the subscriptions, the latency of each measured delivery. */
function clientRole(): void {
  const ac = new AbortController();
  // Every subscription of this process listens on the one signal that cancels them at the end.
  setMaxListeners(0, ac.signal);
  let channels: Channel[][] = [];
  let latencies = new Float64Array(1 << 16);
  /** From the event's published_at (Redis's XADD time, whole ms) to arrival: the part after the append. */
  let fromLog = new Float64Array(1 << 16);
  let n = 0;
  let delivered = 0;
  let warmDelivered = 0;
  let opened = 0;
  let ended = 0;
  const endReasons = new Map<string, number>();
  let mine = 0;
  const grow = (a: Float64Array) => {
    const bigger = new Float64Array(a.length * 2);
    bigger.set(a);
    return bigger;
  };
  const onEvent = (ev: Event) => {
    const payload = ev.payload;
    if (payload.byteLength !== 9) return;
    if (payload[8] !== 1) {
      warmDelivered++;
      return;
    }
    const t = now();
    const ms = t - new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0);
    delivered++;
    if (n === latencies.length) {
      latencies = grow(latencies);
      fromLog = grow(fromLog);
    }
    fromLog[n] = ev.publishedAt === undefined ? NaN : t - (Number(ev.publishedAt.seconds) * 1000 + ev.publishedAt.nanos / 1e6);
    latencies[n++] = ms;
  };
  serveRequests(async (m) => {
    switch (m.type) {
      case "open": {
        const { ports, connections, subs, topics, clients, index } = m as unknown as { ports: number[]; connections: number; subs: number; topics: number; clients: number; index: number };
        channels = ports.map((port) => Array.from({ length: connections }, () => createChannel(`127.0.0.1:${port}`, { logger: silentLogger })));
        const stubs = channels.map((cs) => cs.map((c) => createClient(PubSubService, c)));
        const next = ports.map(() => 0);
        for (let i = 0; i < subs; i++) {
          const p = placement(i, topics, ports.length, clients);
          if (p.client !== index) continue;
          mine++;
          const client = stubs[p.hub]![next[p.hub]++ % connections]!;
          void (async () => {
            try {
              for await (const ev of client.subscribe({ topic: p.topic }, { signal: ac.signal, onHeader: () => opened++ })) onEvent(ev);
              endReasons.set("OK", (endReasons.get("OK") ?? 0) + 1);
            } catch (e) {
              const why = ac.signal.aborted ? "cancelled at the end" : ((e as { code?: unknown }).code !== undefined ? `code ${String((e as { code?: unknown }).code)}` : String(e));
              endReasons.set(why, (endReasons.get(why) ?? 0) + 1);
            }
            ended++;
          })();
          if (mine % 500 === 0) await sleep(1);
        }
        const until = Date.now() + 120_000;
        while (opened + ended < mine && Date.now() < until) await sleep(50);
        return { mine, opened, ended, endReasons: Object.fromEntries(endReasons) };
      }
      case "count":
        return { delivered, warmDelivered, opened, ended, cpuUs: cpuUs() };
      case "report": {
        const out = Buffer.from(latencies.buffer, 0, n * 8).toString("base64");
        const out2 = Buffer.from(fromLog.buffer, 0, n * 8).toString("base64");
        return { delivered, samples: out, fromLog: out2, cpuUs: cpuUs(), ended, endReasons: Object.fromEntries(endReasons) };
      }
      case "close":
        ac.abort();
        for (const cs of channels) for (const c of cs) c.close();
        return {};
      default:
        throw new Error(`client: unknown request ${String(m.type)}`);
    }
  });
  sendToParent({ type: "ready", port: 0 });
}

/** The publisher process: publishes at a rate, or as fast as `inflight` calls allow, round-robin over the hubs. */
function publisherRole(): void {
  let stubs: ReturnType<typeof createClient<typeof PubSubService>>[] = [];
  let channels: Channel[] = [];
  let topics = 1;
  serveRequests(async (m) => {
    switch (m.type) {
      case "connect": {
        const { ports } = m as unknown as { ports: number[] };
        topics = m.topics as number;
        channels = ports.map((port) => createChannel(`127.0.0.1:${port}`, { logger: silentLogger }));
        stubs = channels.map((c) => createClient(PubSubService, c));
        // One call per hub first, so the connections are up before anything is timed.
        await Promise.all(stubs.map((s) => s.listTopics({}, { waitForReady: true, timeoutMs: 10_000 })));
        return {};
      }
      case "publish": {
        const { phase, rate, seconds, maxInFlight } = m as unknown as { phase: number; rate: number; seconds: number; maxInFlight: number };
        let published = 0;
        let failed = 0;
        let skipped = 0;
        let k = 0;
        const inflight = new Set<Promise<void>>();
        const c0 = cpuUs();
        const start = now();
        let due = 0;
        while (now() - start < seconds * 1000) {
          const target = Math.min(Math.floor(((now() - start) / 1000) * rate), rate * seconds);
          for (; due < target; due++) {
            if (inflight.size >= maxInFlight) {
              skipped++;
              continue;
            }
            const j = k++;
            const p = stubs[j % stubs.length]!.publish({ topic: `t${j % topics}`, payload: stamp(phase) }).then(
              () => {
                published++;
              },
              () => {
                failed++;
              },
            );
            inflight.add(p);
            void p.finally(() => inflight.delete(p));
          }
          await sleep(10);
        }
        await Promise.all(inflight);
        return { published, failed, skipped, seconds: (now() - start) / 1000, cpuUs: cpuUs() - c0 };
      }
      case "max": {
        const { seconds, inflight } = m as unknown as { seconds: number; inflight: number };
        let count = 0;
        let failed = 0;
        const end = now() + seconds * 1000;
        await Promise.all(
          Array.from({ length: inflight }, async (_, w) => {
            let j = w;
            while (now() < end) {
              try {
                await stubs[j % stubs.length]!.publish({ topic: `t${j % topics}`, payload: new Uint8Array(8) });
                count++;
              } catch {
                failed++;
              }
              j += inflight;
            }
          }),
        );
        return { count, failed };
      }
      case "close":
        for (const c of channels) c.close();
        return {};
      default:
        throw new Error(`publisher: unknown request ${String(m.type)}`);
    }
  });
  sendToParent({ type: "ready", port: 0 });
}

// ---------- orchestrator ----------

interface RedisInstance {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startRedisServer(): Promise<RedisInstance> {
  const script = fileURLToPath(new URL("../../scripts/setup-redis.mjs", import.meta.url));
  const mod = (await import(script)) as { startRedis(): Promise<RedisInstance> };
  return mod.startRedis();
}

interface RunResult {
  hubs: number;
  round: number;
  subscriptions: number;
  /** HTTP/2 connections to each hub, from all subscriber processes together. */
  connectionsPerHub: number;
  openSeconds: number;
  redisClients: number;
  published: number;
  failedPublishes: number;
  skippedPublishes: number;
  publishRate: number;
  expected: number;
  delivered: number;
  deliveredRatio: number;
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** From Redis's XADD time (published_at, whole ms: up to 1 ms early) to arrival. */
  p50AfterAppend: number;
  p99AfterAppend: number;
  windowSeconds: number;
  /** Busy % of one core, per hub process, over the measured window. */
  hubCpu: number[];
  hubCpuTotal: number;
  /** Hub CPU (all hubs) per delivery, µs. */
  hubCpuPerDeliveryUs: number;
  redisCpu: number;
  clientCpu: number[];
  publisherCpu: number;
  hubRssMiB: number[];
  cutSubscribers: number;
  endedSubscriptions: number;
  maxPublishRate: number;
  /** How long the run waited for a quiet machine before the measured window, s. */
  quietWaitSeconds: number;
  /** The machine's busy % (of all cores) over the last second before the measured window, this run idle. */
  idleBusyBefore: number;
  /** The whole machine's busy time over the measured window, % of all its cores (/proc/stat). */
  machineBusy: number;
  /** Machine busy time not accounted for by this run's processes, % of one core: other load. */
  otherCpu: number;
  /** otherCpu was above --max-other: left out of the medians when undisturbed runs exist. */
  disturbed?: boolean;
}

const spawnOptions = (): SpawnOptions => ({ taskset: false, cpuProfDir: values["cpu-prof"] });

function check<T extends { error?: string }>(label: string, r: T): T {
  if (r.error !== undefined) throw new Error(`${label}: ${r.error}`);
  return r;
}

async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? NaN);
  return get("used_cpu_user") + get("used_cpu_sys");
}

async function redisInfoNumber(admin: Redis, section: string, key: string): Promise<number> {
  const info = await admin.info(section);
  return Number(new RegExp(`${key}:(\\d+)`).exec(info)?.[1] ?? NaN);
}

/** Latency samples (base64 of Float64Arrays) from every subscriber process, merged and sorted. */
function mergeSorted(parts64: string[]): Float64Array {
  const parts = parts64.map((s) => {
    const b = Buffer.from(s, "base64");
    return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  });
  const all = new Float64Array(parts.reduce((s, x) => s + x.length, 0));
  let off = 0;
  for (const x of parts) {
    all.set(x, off);
    off += x.length;
  }
  return all.sort();
}

async function runOnce(hubCount: number, round: number, redisUrl: string, admin: Redis): Promise<RunResult> {
  const subs = int("subs", 1);
  const topics = int("topics", 1);
  const clientCount = int("clients", 1);
  // Connections per hub per subscriber process: `--connections` spread over the hubs (the same
  // clients whatever the hub count), or `--connections` to each hub with --per-hub.
  const total = int("connections", 1);
  const connections = values["per-hub"] ? total : Math.max(1, Math.round(total / hubCount));
  if (!values["per-hub"] && total % hubCount !== 0) console.error(`[bench:pubsub-scale] note: ${total} connections per subscriber process do not divide over ${hubCount} hubs: ${connections} each`);
  const rate = int("rate", 1);
  const seconds = int("seconds", 1);
  const warmup = Number(values.warmup);
  const maxInFlight = int("max-in-flight", 1);
  if (subs % (topics * hubCount) !== 0) console.error(`[bench:pubsub-scale] note: ${subs} subscriptions do not divide evenly over ${topics} topics × ${hubCount} hubs`);
  await admin.flushall();
  const tag = `h${hubCount}-r${round}`;
  const o = spawnOptions();
  const hubs: Child[] = [];
  const clients: Child[] = [];
  let publisher: Child | undefined;
  try {
    for (let j = 0; j < hubCount; j++) hubs.push(startChild("pubsub-scale.js", ["--role", "hub", "--redis", redisUrl, "--prefix", values.prefix!], 0, `hub ${j}`, `${tag}-hub${j}`, o));
    const ports = await Promise.all(hubs.map(async (h) => ((await h.event((e) => e.type === "ready", 15_000)) as { port: number }).port));
    for (let c = 0; c < clientCount; c++) clients.push(startChild("pubsub-scale.js", ["--role", "client"], 1, `client ${c}`, `${tag}-client${c}`, o));
    publisher = startChild("pubsub-scale.js", ["--role", "publisher"], 1, "publisher", `${tag}-publisher`, o);
    await Promise.all([...clients, publisher].map((c) => c.event((e) => e.type === "ready", 15_000)));
    const pub = publisher;
    check("publisher", await pub.request<Message>({ type: "connect", ports, topics }));

    // Open every subscription, and check that the hubs hold them all.
    const t0 = now();
    const opens = await Promise.all(
      clients.map((c, index) => c.request<{ mine: number; opened: number; ended: number; endReasons: Record<string, number> }>({ type: "open", ports, connections, subs, topics, clients: clientCount, index }, 150_000)),
    );
    for (const [i, r] of opens.entries()) {
      check(`client ${i}`, r);
      if (r.opened !== r.mine || r.ended > 0) throw new Error(`client ${i}: opened ${r.opened} of ${r.mine} subscriptions (${r.ended} ended: ${JSON.stringify(r.endReasons)})`);
    }
    const hubStats = () => Promise.all(hubs.map(async (h, j) => check(`hub ${j}`, await h.request<{ subscribers: number; cut: number; queued: number; cpuUs: number; rss: number }>({ type: "stats" }))));
    for (const until = Date.now() + 30_000; ; ) {
      const total = (await hubStats()).reduce((s, h) => s + h.subscribers, 0);
      if (total === subs) break;
      if (Date.now() > until) throw new Error(`the hubs hold ${total} subscriptions, not ${subs}`);
      await sleep(100);
    }
    const openSeconds = (now() - t0) / 1000;
    const redisClients = await redisInfoNumber(admin, "clients", "connected_clients");
    console.error(`[bench:pubsub-scale] ${tag}: ${subs} subscriptions open in ${openSeconds.toFixed(1)} s over ${hubCount} hub(s); Redis has ${redisClients} clients`);
    await sleep(1000);

    // Warm-up (unmeasured), then the measured publishes.
    if (warmup > 0) check("publisher", await pub.request<Message>({ type: "publish", phase: 0, rate, seconds: warmup, maxInFlight }, warmup * 1000 + 60_000));
    await sleep(500);
    // The machine is shared (other sessions run tests on it): with every subscription idle,
    // wait (bounded) until nothing else keeps it busy, so the measured window starts quiet.
    const quiet = await waitQuiet(Number(values["quiet-wait"]) * 1000, Number(values["quiet-below"]));
    if (!quiet.quiet) console.error(`[bench:pubsub-scale] ${tag}: the machine stayed ${quiet.busy.toFixed(0)} % busy while idle here; measuring anyway`);
    const counts = () => Promise.all(clients.map(async (c, i) => check(`client ${i}`, await c.request<{ delivered: number; cpuUs: number; ended: number }>({ type: "count" }))));
    const [hub0, client0, redis0] = await Promise.all([hubStats(), counts(), redisCpuSeconds(admin)]);
    const profDir = values["hub-prof"];
    if (profDir !== undefined) {
      mkdirSync(profDir, { recursive: true });
      await Promise.all(hubs.map(async (h, j) => check(`hub ${j}`, await h.request<Message>({ type: "prof-start" }))));
    }
    const m0 = machineTicks();
    const w0 = now();
    const p = check(
      "publisher",
      await pub.request<{ published: number; failed: number; skipped: number; seconds: number; cpuUs: number }>({ type: "publish", phase: 1, rate, seconds, maxInFlight }, seconds * 1000 + 60_000),
    );
    const expected = p.published * (subs / topics);
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      const total = (await counts()).reduce((s, c) => s + c.delivered, 0);
      if (total >= expected) break;
      await sleep(20);
    }
    const [hub1, client1, redis1] = await Promise.all([hubStats(), counts(), redisCpuSeconds(admin)]);
    const windowMs = now() - w0;
    const m1 = machineTicks();
    if (profDir !== undefined) {
      await Promise.all(hubs.map(async (h, j) => check(`hub ${j}`, await h.request<Message>({ type: "prof-stop", file: resolve(profDir, `${tag}-hub${j}-window.cpuprofile`) }, 60_000))));
    }
    const reports = await Promise.all(
      clients.map(async (c, i) => check(`client ${i}`, await c.request<{ delivered: number; samples: string; fromLog: string; ended: number; endReasons: Record<string, number> }>({ type: "report" }, 60_000))),
    );
    const all = mergeSorted(reports.map((r) => r.samples));
    const afterLog = mergeSorted(reports.map((r) => r.fromLog));
    const delivered = reports.reduce((s, r) => s + r.delivered, 0);
    const busy = (us: number) => (100 * us) / (windowMs * 1000);
    const hubCpuUs = hub1.map((h, j) => h.cpuUs - hub0[j]!.cpuUs);
    const result: RunResult = {
      hubs: hubCount,
      round,
      subscriptions: subs,
      connectionsPerHub: connections * clientCount,
      openSeconds,
      redisClients,
      published: p.published,
      failedPublishes: p.failed,
      skippedPublishes: p.skipped,
      publishRate: p.published / seconds,
      expected,
      delivered,
      deliveredRatio: delivered / expected,
      deliveriesPerSecond: delivered / seconds,
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      p999: percentile(all, 99.9),
      max: all.length === 0 ? NaN : all[all.length - 1]!,
      p50AfterAppend: percentile(afterLog, 50),
      p99AfterAppend: percentile(afterLog, 99),
      windowSeconds: windowMs / 1000,
      hubCpu: hubCpuUs.map(busy),
      hubCpuTotal: busy(hubCpuUs.reduce((s, x) => s + x, 0)),
      hubCpuPerDeliveryUs: hubCpuUs.reduce((s, x) => s + x, 0) / delivered,
      redisCpu: (100 * (redis1 - redis0) * 1000) / windowMs,
      clientCpu: client1.map((c, i) => busy(c.cpuUs - client0[i]!.cpuUs)),
      publisherCpu: busy(p.cpuUs),
      hubRssMiB: hub1.map((h) => h.rss / 2 ** 20),
      cutSubscribers: hub1.reduce((s, h) => s + h.cut, 0),
      endedSubscriptions: reports.reduce((s, r) => s + r.ended, 0),
      maxPublishRate: NaN,
      quietWaitSeconds: quiet.waitedMs / 1000,
      idleBusyBefore: quiet.busy,
      machineBusy: m1.total > m0.total ? (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) : NaN,
      otherCpu: NaN,
    };
    // What else ran on the machine meanwhile (other sessions' tests, the orchestrator), in % of one core.
    const cores = availableParallelism();
    result.otherCpu = result.machineBusy * cores - result.hubCpuTotal - result.redisCpu - result.clientCpu.reduce((s, x) => s + x, 0) - result.publisherCpu;
    if (!values["no-max-publish"]) {
      const inflight = int("max-inflight-publish", 1);
      const r = check("publisher", await pub.request<{ count: number; failed: number }>({ type: "max", seconds: 2, inflight }, 60_000));
      result.maxPublishRate = r.count / 2;
    }
    console.error(
      `[bench:pubsub-scale] ${tag}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms (after the append: ${result.p50AfterAppend.toFixed(2)} / ${result.p99AfterAppend.toFixed(2)} ms), publisher ${result.publisherCpu.toFixed(0)} %, ${Math.round(result.deliveriesPerSecond)} deliveries/s (${result.deliveredRatio.toFixed(4)}), hub CPU ${result.hubCpu.map((x) => x.toFixed(0)).join("+")} %, Redis ${result.redisCpu.toFixed(0)} %, clients ${result.clientCpu.map((x) => x.toFixed(0)).join("+")} %, machine ${result.machineBusy.toFixed(0)} % of ${availableParallelism()} cores (other load ${result.otherCpu.toFixed(0)} % of a core)`,
    );
    return result;
  } finally {
    await Promise.all([...clients, ...(publisher === undefined ? [] : [publisher])].map(async (c) => {
      try {
        await c.request({ type: "close" }, 5000);
      } catch {
        // stopped by PID below
      }
      await c.stop();
    }));
    await Promise.all(hubs.map((h) => h.stop()));
  }
}

/** The machine's CPU time so far, busy and in all, in clock ticks (/proc/stat; zeros elsewhere). */
function machineTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((s, x) => s + x, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/**
 * Samples the machine's busy % (of all cores) over 1 s until it is below `below`, for at most
 * `maxMs`: with this run's processes idle, what is left is other load.
 */
async function waitQuiet(maxMs: number, below: number): Promise<{ quiet: boolean; busy: number; waitedMs: number }> {
  const start = Date.now();
  for (;;) {
    const a = machineTicks();
    await sleep(1000);
    const b = machineTicks();
    const busy = b.total > a.total ? (100 * (b.busy - a.busy)) / (b.total - a.total) : 0;
    if (busy < below || Date.now() - start >= maxMs) return { quiet: busy < below, busy, waitedMs: Date.now() - start - 1000 };
  }
}

function readLimit(pid: number, name: string): string {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith(name));
    return line === undefined ? "?" : line.slice(name.length).trim().split(/\s+/).slice(0, 2).join(" / ");
  } catch {
    return "?";
  }
}

function readSysctl(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "?";
  }
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const range = (xs: number[], d = 2) => (xs.length < 2 ? "" : ` [${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}]`);
const medianOf = (rs: RunResult[], pick: (r: RunResult) => number) => median(rs.map(pick));

async function orchestrate(): Promise<void> {
  const hubsMax = int("hubs", 1);
  const rounds = int("rounds", 1);
  const subs = int("subs", 1);
  const topics = int("topics", 1);
  const maxOther = Number(values["max-other"]);
  const retries = int("retries", 0);
  const redis = await startRedisServer();
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const results: RunResult[] = [];
  let setup: Record<string, unknown> = {};
  try {
    // Every hub keeps one XREAD BLOCK connection per 16 followed topics (redis-tails.ts), plus
    // its command connection and its control-channel listener: H × (⌈T / 16⌉ + 2) clients, plus ours.
    const needed = hubsMax * (Math.ceil(topics / 16) + 2) + 16;
    const maxclients = Number(((await admin.config("GET", "maxclients")) as string[])[1]);
    if (maxclients < needed) await admin.config("SET", "maxclients", String(needed + 64));
    setup = {
      redisVersion: /redis_version:(\S+)/.exec(await admin.info("server"))?.[1],
      maxclientsDefault: maxclients,
      maxclients: Number(((await admin.config("GET", "maxclients")) as string[])[1]),
      redisClientsNeeded: needed,
      tcpBacklog: Number(((await admin.config("GET", "tcp-backlog")) as string[])[1]),
      redisOpenFiles: readLimit(redis.pid, "Max open files"),
      ownOpenFiles: readLimit(process.pid, "Max open files"),
      somaxconn: readSysctl("/proc/sys/net/core/somaxconn"),
      localPorts: readSysctl("/proc/sys/net/ipv4/ip_local_port_range").replace(/\s+/, "–"),
    };
    console.error(`[bench:pubsub-scale] redis-server pid ${redis.pid} at ${redis.url}: ${JSON.stringify(setup)}`);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [1, hubsMax] : [hubsMax, 1];
      for (const h of order) {
        // A run during which other work took more than --max-other % of a core is kept but marked
        // disturbed, and run again (at most --retries times): the medians use undisturbed runs.
        for (let attempt = 0; ; attempt++) {
          console.error(`[bench:pubsub-scale] round ${round + 1}/${rounds}: ${h} hub(s)${attempt > 0 ? `, again (${attempt})` : ""}...`);
          const r = await runOnce(h, round + 1, redis.url, admin);
          r.disturbed = !(r.otherCpu <= maxOther);
          results.push(r);
          if (!r.disturbed || attempt >= retries) break;
          console.error(`[bench:pubsub-scale] other load was ${r.otherCpu.toFixed(0)} % of a core (over --max-other ${maxOther}): running it again`);
        }
      }
    }
  } finally {
    admin.disconnect();
    await redis.stop();
  }

  const perTopic = subs / topics;
  const cfg = {
    subs,
    topics,
    hubs: hubsMax,
    clients: int("clients", 1),
    connections: int("connections", 1),
    perHub: values["per-hub"],
    maxOther: Number(values["max-other"]),
    rate: int("rate", 1),
    seconds: int("seconds", 1),
    warmup: Number(values.warmup),
    rounds,
  };
  console.log(
    `\n${subs} subscriptions over ${topics} topics (${perTopic} per topic) on Redis; publish ${cfg.rate}/s for ${cfg.seconds} s (${cfg.rate * perTopic} deliveries/s expected), round-robin over the hubs; ${cfg.clients} subscriber processes × ${cfg.connections} connections ${values["per-hub"] ? "to each hub" : "each, spread over the hubs"}; ${rounds} round(s)\n`,
  );
  console.log("| hubs | round | fan-out p50 | fan-out p99 | p99.9 | deliveries/s (of expected) | hub CPU, each (% of a core) | hubs' CPU per delivery | Redis CPU | subscriber processes' CPU | publisher CPU | other load | waited for quiet | max publish rate |");
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.hubs} | ${r.round}${r.disturbed === true ? " (disturbed)" : ""} | ${f(r.p50)} ms | ${f(r.p99)} ms | ${f(r.p999)} ms | ${Math.round(r.deliveriesPerSecond)} (${f(r.deliveredRatio, 4)}) | ${r.hubCpu.map((x) => f(x, 0)).join(" + ")} % | ${f(r.hubCpuPerDeliveryUs, 1)} µs | ${f(r.redisCpu, 0)} % | ${r.clientCpu.map((x) => f(x, 0)).join(" + ")} % | ${f(r.publisherCpu, 0)} % | ${f(r.otherCpu, 0)} % | ${f(r.quietWaitSeconds, 0)} s | ${Number.isFinite(r.maxPublishRate) ? `${Math.round(r.maxPublishRate)}/s` : "–"} |`,
    );
  }
  const pick = (h: number) => {
    const all = results.filter((r) => r.hubs === h);
    const clean = all.filter((r) => r.disturbed !== true);
    return clean.length > 0 ? clean : all;
  };
  const one = pick(1);
  const many = pick(hubsMax);
  const summary = (label: string, pick: (r: RunResult) => number, d = 2) => {
    const a = medianOf(one, pick);
    const b = medianOf(many, pick);
    return `| ${label} | ${f(a, d)}${range(one.map(pick), d)} | ${f(b, d)}${range(many.map(pick), d)} | ${f(b / a, 2)} |`;
  };
  console.log(
    `\nMedians over the ${one.length} + ${many.length} undisturbed runs (other load ≤ ${maxOther} % of a core; all runs when none is) [min–max]; ratio = ${hubsMax} hubs / 1 hub:\n`,
  );
  console.log(`| metric | 1 hub | ${hubsMax} hubs | ratio |`);
  console.log("|---|---:|---:|---:|");
  console.log(summary("fan-out p50 (ms)", (r) => r.p50));
  console.log(summary("fan-out p99 (ms)", (r) => r.p99));
  console.log(summary("fan-out p99.9 (ms)", (r) => r.p999));
  console.log(summary("after the append, p50 (ms)", (r) => r.p50AfterAppend));
  console.log(summary("after the append, p99 (ms)", (r) => r.p99AfterAppend));
  console.log(summary("deliveries/s", (r) => r.deliveriesPerSecond, 0));
  console.log(summary("delivered / expected", (r) => r.deliveredRatio, 4));
  console.log(summary("CPU per hub process (% of a core, mean)", (r) => r.hubCpuTotal / r.hubs, 1));
  console.log(summary("CPU of all hubs (% of a core)", (r) => r.hubCpuTotal, 1));
  console.log(summary("hubs' CPU per delivery (µs)", (r) => r.hubCpuPerDeliveryUs, 1));
  console.log(summary("Redis CPU (% of a core)", (r) => r.redisCpu, 1));
  console.log(summary("subscriber processes' CPU, all (% of a core)", (r) => r.clientCpu.reduce((s, x) => s + x, 0), 1));
  console.log(summary("other load on the machine (% of a core)", (r) => r.otherCpu, 0));
  console.log(summary("Redis clients while open", (r) => r.redisClients, 0));
  console.log(summary("subscriptions open in (s)", (r) => r.openSeconds, 1));
  if (!values["no-max-publish"]) console.log(summary(`max publish rate (${values["max-inflight-publish"]} in flight, /s)`, (r) => r.maxPublishRate, 0));

  const out = resolve(values.out ?? fileURLToPath(new URL("../../bench/results/pubsub-scale.json", import.meta.url)));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, config: cfg, setup, runs: results }, null, 2)}\n`);
  console.error(`[bench:pubsub-scale] every run: ${out}`);
}

switch (values.role) {
  case undefined:
    await orchestrate();
    process.exit(0);
    break;
  case "hub":
    await hubRole();
    break;
  case "client":
    clientRole();
    break;
  case "publisher":
    publisherRole();
    break;
  default:
    throw new Error(`unknown --role ${values.role}`);
}
