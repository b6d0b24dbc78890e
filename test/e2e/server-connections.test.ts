/**
 * The server's side of long-lived connections: keepalive enforcement (too_many_pings), its own
 * keepalive pings, max idle, max age + grace, and graceful shutdown. Real sockets; raw
 * `node:http2` clients where the test needs to send PINGs or watch GOAWAY frames.
 */
import assert from "node:assert/strict";
import { constants, type ClientHttp2Stream } from "node:http2";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError, createClient, createServer, type HandlerContext } from "../../src/index.js";
import { http2Peer } from "../support/h2-raw.js";
import { eventually, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { rejectsWith } from "../support/assertions.js";

/** Resolves when `ctx.signal` aborts, with the abort's RpcError code. */
function aborted(ctx: HandlerContext): Promise<Code | undefined> {
  return new Promise((resolve) => {
    const done = () => resolve(ctx.signal.reason instanceof RpcError ? ctx.signal.reason.code : undefined);
    if (ctx.signal.aborted) done();
    else ctx.signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A node:http2 peer (test/support/h2-raw.ts) that can also open a call and send PINGs, ready as
 * soon as the connection is up: the idleness tests time the server from there.
 */
async function rawClient(target: string) {
  const peer = await http2Peer(target, { readyAt: "connect" });
  const { session } = peer;
  return {
    ...peer,
    /** Opens a bidi Echo call and leaves it running (an active call on the connection). */
    openCall(): ClientHttp2Stream {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.examples.echo.Echo/BidirectionalStreamingEcho",
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.on("error", () => {});
      stream.resume();
      return stream;
    },
    /** Sends `count` PINGs `intervalMs` apart; resolves with how many were acknowledged, once each was answered or cancelled. */
    async ping(count: number, intervalMs: number): Promise<number> {
      let acked = 0;
      const answered: Array<Promise<void>> = [];
      for (let i = 0; i < count && !session.destroyed && !session.closed; i++) {
        if (i > 0) await sleep(intervalMs);
        if (session.destroyed) break;
        try {
          answered.push(
            new Promise<void>((resolve) => {
              // node calls back with an error for a PING still unanswered when the session goes,
              // and not at all for one it refused to send (too many outstanding).
              const sent = session.ping((err) => {
                if (err === null) acked++;
                resolve();
              });
              if (!sent) resolve();
            }),
          );
        } catch {
          break;
        }
      }
      await Promise.all(answered);
      return acked;
    },
  };
}

/** An Echo service whose bidi and server-streaming handlers wait until their call is aborted. */
function waitingEcho(seen: { ctx?: HandlerContext; abortCode?: Promise<Code | undefined> } = {}) {
  return {
    async *bidirectionalStreamingEcho(_reqs: AsyncIterable<unknown>, ctx: HandlerContext) {
      seen.ctx = ctx;
      seen.abortCode = aborted(ctx);
      await seen.abortCode;
    },
    async *serverStreamingEcho(_req: unknown, ctx: HandlerContext) {
      seen.ctx = ctx;
      seen.abortCode = aborted(ctx);
      yield { message: "first" };
      await seen.abortCode;
    },
  };
}

describe("keepalive enforcement (too_many_pings)", () => {
  const h = useHarness();

  test("a client pinging every 10 ms against minPingIntervalMs 1000 gets GOAWAY(ENHANCE_YOUR_CALM, too_many_pings)", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { target } = await h.server((s) => s.add(Echo, waitingEcho(seen)), { keepalive: { minPingIntervalMs: 1000 } });
    const c = await rawClient(target);
    c.openCall();
    await eventually(() => seen.ctx !== undefined, 2000, "the call to start");
    await c.ping(10, 10);
    await c.closed;
    assert.equal(c.goaways.length >= 1, true, "no GOAWAY received");
    assert.equal(c.goaways[0]!.code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(c.goaways[0]!.code, 11);
    assert.equal(c.goaways[0]!.data, "too_many_pings");
    assert.equal(await seen.abortCode, Code.Unavailable, "the running call was not aborted with UNAVAILABLE");
  });

  test("pings that respect minPingIntervalMs are acknowledged and the connection stays open", async () => {
    const { target } = await h.server((s) => s.add(Echo, waitingEcho()), { keepalive: { minPingIntervalMs: 50 } });
    const c = await rawClient(target);
    const call = c.openCall();
    assert.equal(await c.ping(6, 100), 6);
    assert.deepEqual(c.goaways, []);
    assert.equal(c.session.destroyed, false);
    call.close(constants.NGHTTP2_CANCEL);
    await c.close();
  });

  test("pings on a connection without calls are strikes unless permitWithoutCalls", async () => {
    const strict = await h.server((s) => s.add(Echo, waitingEcho()), { keepalive: { minPingIntervalMs: 50 } });
    const a = await rawClient(strict.target);
    await a.ping(8, 80);
    await a.closed;
    assert.equal(a.goaways[0]?.code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(a.goaways[0]?.data, "too_many_pings");

    const lenient = await h.server((s) => s.add(Echo, waitingEcho()), { keepalive: { minPingIntervalMs: 50, permitWithoutCalls: true } });
    const b = await rawClient(lenient.target);
    assert.equal(await b.ping(8, 80), 8);
    assert.deepEqual(b.goaways, []);
    await b.close();
  });

  test("pings are forgiven while the server is sending data", async () => {
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async *serverStreamingEcho(_req, ctx) {
            while (!ctx.signal.aborted) {
              yield { message: "tick" };
              await sleep(3);
            }
          },
        }),
      { keepalive: { minPingIntervalMs: 1000 } },
    );
    const c = await rawClient(target);
    const stream = c.session.request({
      ":method": "POST",
      ":path": "/grpc.examples.echo.Echo/ServerStreamingEcho",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => {});
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    stream.resume();
    assert.equal(await c.ping(10, 15), 10);
    assert.deepEqual(c.goaways, []);
    stream.close(constants.NGHTTP2_CANCEL);
    await c.close();
  });

  test("invalid connection options fail createServer", () => {
    assert.throws(() => createServer({ keepalive: { minPingIntervalMs: -1 } }), /minPingIntervalMs/);
    assert.throws(() => createServer({ maxConnectionAgeMs: Number.NaN }), /maxConnectionAgeMs/);
    assert.throws(() => createServer({ keepalive: { maxPingStrikes: 1.5 } }), /maxPingStrikes/);
  });
});

describe("connection idleness and age", () => {
  const h = useHarness();

  test("an idle connection gets GOAWAY(NO_ERROR) and closes after maxConnectionIdleMs", async () => {
    const { target } = await h.server((s) => s.add(Echo, waitingEcho()), { maxConnectionIdleMs: 100 });
    const c = await rawClient(target);
    const start = Date.now();
    await c.closed;
    const took = Date.now() - start;
    assert.ok(took >= 80 && took < 1500, `closed after ${took} ms`);
    assert.equal(c.goaways[0]?.code, constants.NGHTTP2_NO_ERROR);
    assert.equal(c.goaways[0]?.data, "max_idle");
  });

  test("a connection with a running call is not closed for idleness, and is once the call ends", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { target } = await h.server((s) => s.add(Echo, waitingEcho(seen)), { maxConnectionIdleMs: 100 });
    const c = await rawClient(target);
    const call = c.openCall();
    await sleep(400);
    assert.equal(c.goaways.length, 0, "a busy connection was sent away");
    assert.equal(seen.ctx?.signal.aborted, false);
    call.close(constants.NGHTTP2_CANCEL);
    await c.closed;
    assert.equal(c.goaways[0]?.code, constants.NGHTTP2_NO_ERROR);
  });

  test("max connection age sends GOAWAY without failing an in-flight unary call; the next call uses a new connection", async () => {
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async unaryEcho(_req, ctx) {
            await sleep(300);
            return { message: ctx.peer };
          },
        }),
      { maxConnectionAgeMs: 100, maxConnectionAgeGraceMs: 2000 },
    );
    const echo = h.client(Echo, target);
    const first = await echo.unaryEcho({ message: "a" });
    const second = await echo.unaryEcho({ message: "b" });
    assert.notEqual(first.message, second.message, "the second call should run on a new connection (another client port)");
  });

  test("after the max-age grace an in-flight stream is cancelled: the handler's signal and the client get UNAVAILABLE", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { target } = await h.server((s) => s.add(Echo, waitingEcho(seen)), { maxConnectionAgeMs: 100, maxConnectionAgeGraceMs: 200 });
    const echo = h.client(Echo, target);
    const start = Date.now();
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of echo.serverStreamingEcho({ message: "x" })) got.push(r.message);
      })(),
      rejectsWith(Code.Unavailable),
    );
    const took = Date.now() - start;
    assert.deepEqual(got, ["first"]);
    assert.equal(await seen.abortCode, Code.Unavailable);
    assert.ok(took >= 250 && took < 1500, `cancelled after ${took} ms (age ≈100 ms + grace 200 ms)`);
  });
});

describe("graceful shutdown", () => {
  const h = useHarness();

  test("shutdown lets an in-flight stream finish within the grace period", async () => {
    let started = 0;
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho() {
          for (let i = 0; i < 3; i++) {
            if (i > 0) await sleep(100);
            yield { message: String(i) };
          }
        },
      }),
    );
    server.onShutdownStart(() => started++);
    const echo = h.client(Echo, target);
    const got: string[] = [];
    let done: Promise<void> | undefined;
    for await (const r of echo.serverStreamingEcho({})) {
      got.push(r.message);
      if (done === undefined) {
        done = server.shutdown({ graceMs: 2000 });
        assert.equal(server.shuttingDown, true);
        assert.equal(server.shutdown(), done, "a second shutdown returns the same promise");
      }
    }
    assert.deepEqual(got, ["0", "1", "2"]);
    await done;
    assert.equal(started, 1);
    assert.equal(server.activeCalls, 0);
  });

  test("shutdown cancels calls still running after the grace period: handler signal and client get UNAVAILABLE", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { server, target } = await h.server((s) => s.add(Echo, waitingEcho(seen)));
    const echo = h.client(Echo, target);
    const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.message, "first");
    const start = Date.now();
    const done = server.shutdown({ graceMs: 200 });
    await assert.rejects(it.next(), rejectsWith(Code.Unavailable));
    assert.equal(await seen.abortCode, Code.Unavailable);
    await done;
    const took = Date.now() - start;
    assert.ok(took >= 180 && took < 1500, `shutdown took ${took} ms with graceMs 200`);
  });

  test("connections get GOAWAY(NO_ERROR) at shutdown and new connections are refused", async () => {
    const { server, target } = await h.server((s) => s.add(Echo, waitingEcho()));
    const c = await rawClient(target);
    const done = server.shutdown({ graceMs: 1000 });
    await c.closed;
    assert.equal(c.goaways[0]?.code, constants.NGHTTP2_NO_ERROR);
    await done;
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({}), rejectsWith(Code.Unavailable));
  });

  test("a server shut down as its idle client closes the channel is done at once, not after the 1 s heads-up", async () => {
    // Both ends sending GOAWAY on an idle connection at the same moment used to wedge it: nghttp2
    // stops reading once it has sent GOAWAY with no streams open, on both sides, until the
    // server's heads-up timer closed it a second later.
    const { server, target } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const channel = h.channel(target);
    await createClient(Echo, channel).unaryEcho({ message: "x" });
    await sleep(10);
    channel.close();
    const start = Date.now();
    await server.shutdown({ graceMs: 5000 });
    const took = Date.now() - start;
    assert.ok(took < 500, `shutdown took ${took} ms`);
  });

  test("forceShutdown cancels running calls at once", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { server, target } = await h.server((s) => s.add(Echo, waitingEcho(seen)));
    const echo = h.client(Echo, target);
    const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
    await it.next();
    const done = server.shutdown();
    server.forceShutdown();
    await assert.rejects(it.next(), rejectsWith(Code.Unavailable));
    assert.equal(await seen.abortCode, Code.Unavailable);
    await done;
  });

  test("onShutdownStart listeners run once, and late ones still run", async () => {
    const server = createServer();
    const calls: string[] = [];
    const off = server.onShutdownStart(() => calls.push("removed"));
    server.onShutdownStart(() => calls.push("a"));
    off();
    await server.shutdown();
    server.forceShutdown();
    server.onShutdownStart(() => calls.push("late"));
    await sleep(0);
    assert.deepEqual(calls, ["a", "late"]);
  });
});

describe("server keepalive", () => {
  const h = useHarness();

  test("detects a blackholed client within time + timeout and aborts its calls", async () => {
    const seen: Parameters<typeof waitingEcho>[0] = {};
    const { port } = await h.server((s) => s.add(Echo, waitingEcho(seen)), { keepalive: { timeMs: 100, timeoutMs: 100 } });
    const proxy = await startTcpProxy(port);
    try {
      const echo = h.client(Echo, proxy.target);
      const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.message, "first");
      // Pings answered while the path works keep the call alive.
      await sleep(350);
      assert.equal(seen.ctx?.signal.aborted, false);
      proxy.blackhole();
      const start = Date.now();
      assert.equal(await seen.abortCode, Code.Unavailable);
      const took = Date.now() - start;
      assert.ok(took < 600, `detected after ${took} ms (time 100 + timeout 100)`);
      await assert.rejects(it.next(), rejectsWith(Code.Unavailable));
    } finally {
      await proxy.close();
    }
  });
});
