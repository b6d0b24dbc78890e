/**
 * Rill, used the way its README shows: `createServer` with handlers (async generators for
 * streams, `ctx.trySend` push-style for the fan-out), and `createChannel` + `createClient`.
 */
import { BenchService, type Payload } from "../../gen/bench/v1/bench_pb.js";
import { createChannel, createClient, createPushable, createServer, type ChannelOptions, type HandlerContext, type ServerOptions } from "../../src/index.js";
import {
  IDLE,
  decodeCount,
  decodeStreamSpec,
  encodeCount,
  envOptions,
  iterablePingPong,
  streamPayloads,
  type BenchClient,
  type ConnectClient,
  type FanoutSink,
  type PingPong,
  type Reading,
  type ServerHooks,
  type StartServer,
} from "../common.js";

type PayloadInit = { data: Uint8Array } | Payload;

/** Waits for the call to end (the client cancels or the server shuts down). */
function ended(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/**
 * An idle stream for the fan-out: push-style with `ctx.trySend` when the server has it,
 * otherwise a per-stream Pushable that the handler returns.
 */
function idleStream(ctx: HandlerContext<PayloadInit>, hooks: ServerHooks): AsyncIterable<PayloadInit> | Promise<void> {
  if (typeof ctx.trySend === "function") {
    const sink: FanoutSink = {
      send: (data) => {
        const m = { data };
        if (!ctx.trySend(m)) ctx.send(m).catch(() => {});
      },
    };
    hooks.sinks.add(sink);
    ctx.sendHeader();
    // ctx.closed costs a promise; listening on ctx.signal costs ~0.9 KB per stream.
    const closed = (ctx as { closed?: Promise<void> }).closed ?? ended(ctx.signal);
    return closed.finally(() => hooks.sinks.delete(sink));
  }
  const out = createPushable<PayloadInit>();
  const sink: FanoutSink = { send: (data) => void out.tryPush({ data }) };
  hooks.sinks.add(sink);
  ctx.signal.addEventListener("abort", () => {
    hooks.sinks.delete(sink);
    out.end();
  });
  return out;
}

export const startServer: StartServer = (hooks) => startRillServer(hooks, {});

/** The bench server, with `extra` options (rill-observed's interceptors). */
export async function startRillServer(hooks: Parameters<StartServer>[0], extra: ServerOptions): ReturnType<StartServer> {
  // The idle-streams scenario opens 10,000 streams on one connection: a server meant for that
  // raises maxConcurrentStreams (default 100 since the hardening; the others are unlimited).
  const server = createServer({ maxConcurrentStreams: 100_000, ...extra, ...envOptions<ServerOptions>("BENCH_RILL_SERVER") });
  server.add(BenchService, {
    unary: (req) => ({ data: req.data }),
    serverStream(req, ctx) {
      const { count, size } = decodeStreamSpec(req.data);
      if (count === IDLE) return idleStream(ctx, hooks);
      return (async function* () {
        for (const p of streamPayloads(count, size)) {
          hooks.produced++;
          yield p;
        }
      })();
    },
    async clientStream(reqs) {
      let n = 0;
      for await (const _ of reqs) n++;
      return { data: encodeCount(n) };
    },
    async *bidi(reqs) {
      for await (const r of reqs) yield { data: r.data };
    },
  });
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return { port, close: () => server.forceShutdown() };
}

export const connectClient: ConnectClient = (port) => connectRill(port, {});

/** The bench client, with `extra` channel options. */
export async function connectRill(port: number, extra: ChannelOptions): ReturnType<ConnectClient> {
  const channel = createChannel(`127.0.0.1:${port}`, { ...extra, ...envOptions<ChannelOptions>("BENCH_RILL_CHANNEL") });
  await channel.waitForReady({ timeoutMs: 5000 });
  const client = createClient(BenchService, channel);
  const stalled: unknown[] = [];
  const bench: BenchClient = {
    async unary(data) {
      return (await client.unary({ data })).data;
    },
    serverStream(spec, onMessage): Reading {
      const ac = new AbortController();
      const done = (async () => {
        try {
          for await (const m of client.serverStream({ data: spec }, { signal: ac.signal })) onMessage(m.data);
        } catch {
          // cancelled
        }
      })();
      return { cancel: () => ac.abort(), done };
    },
    async stall(spec) {
      const it = client.serverStream({ data: spec })[Symbol.asyncIterator]();
      stalled.push(it);
      await it.next();
    },
    async clientStream(payload, more) {
      const res = await client.clientStream(
        (async function* () {
          while (more()) yield payload;
        })(),
      );
      return decodeCount(res.data);
    },
    bidi(): PingPong {
      const requests = createPushable<{ data: Uint8Array }>();
      return iterablePingPong(
        client.bidi(requests),
        (r) => (requests.tryPush(r) ? undefined : requests.push(r)),
        () => requests.end(),
      );
    },
    close: () => channel.close(),
  };
  return bench;
}
