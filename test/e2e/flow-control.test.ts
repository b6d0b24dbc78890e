import assert from "node:assert/strict";
import { createServer as createNetServer, connect as netConnect, type AddressInfo } from "node:net";
import { connect as connectH2, constants as h2constants } from "node:http2";
import { getDefaultHighWaterMark } from "node:stream";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, createPushable, IdleTimeoutError, RpcError, type HandlerContext } from "../../src/index.js";
import { collect, eventually, from, transports, useHarness } from "../support/harness.js";

const KiB = 1024;

for (const transport of transports) describe(`flow control and backpressure (${transport})`, () => {
  const h = useHarness({ transport });

  test("a slow reader makes a fast generator wait: the server never runs far ahead", async () => {
    let produced = 0;
    const message = "x".repeat(10 * KiB);
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async *serverStreamingEcho() {
            for (;;) {
              produced++;
              yield { message };
            }
          },
        }),
      { sendHighWaterMark: 64 * KiB },
    );
    // BDP probing off: this reader keeps up at ~5 MB/s, which would let the window grow (up to
    // maxWindowBytes) and move the bound; here the bound under test is Rill's own buffers.
    const echo = h.client(Echo, target, { receiveHighWaterMark: 64 * KiB, bdpProbe: false });
    let consumed = 0;
    let maxAhead = 0;
    for await (const _ of echo.serverStreamingEcho({})) {
      consumed++;
      maxAhead = Math.max(maxAhead, produced - consumed);
      await sleep(2);
      if (consumed === 150) break;
    }
    // In flight at most: server high-water mark + HTTP/2 stream window (64 KiB) + client
    // high-water mark + a socket's worth, ~25 messages of 10 KiB; never the whole stream.
    assert.ok(maxAhead < 60, `the producer ran ${maxAhead} messages ahead of the reader`);
  });

  test("trySend returns false at the high-water mark and true again after the reader drains", async () => {
    const results: boolean[] = [];
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    let bufferedAtFull = 0;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async serverStreamingEcho(_req, ctx) {
            const big = { message: "y".repeat(16 * KiB) };
            // Send until the pipe is full: buffer at its mark, window and client buffer used up,
            // so that room comes back only when the client reads.
            for (let i = 0; i < 1000; i++) {
              if (ctx.trySend(big)) continue;
              bufferedAtFull = ctx.bufferedBytes;
              const stuck = await Promise.race([ctx.writable().then(() => false), sleep(300).then(() => true)]);
              if (stuck) break;
            }
            results.push(ctx.trySend(big));
            resume();
            await ctx.writable();
            results.push(ctx.trySend({ message: "after" }));
          },
        }),
      { sendHighWaterMark: 32 * KiB },
    );
    const echo = h.client(Echo, target, { receiveHighWaterMark: 16 * KiB });
    const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
    // Read one message so the call starts; then stop reading until the server hit the limit.
    await it.next();
    await resumed;
    assert.deepEqual(results, [false]);
    assert.ok(bufferedAtFull >= 32 * KiB && bufferedAtFull < 32 * KiB + 20 * KiB, `buffered ${bufferedAtFull} bytes at the limit`);
    let last = "";
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      last = r.value.message;
    }
    assert.deepEqual(results, [false, true]);
    assert.equal(last, "after");
  });

  test("many producers sending into one stream keep every message whole and each producer's order", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async serverStreamingEcho(_req, ctx) {
          await Promise.all(
            Array.from({ length: 8 }, async (_, p) => {
              for (let i = 0; i < 250; i++) {
                await ctx.send({ message: `${p}:${i}:${"z".repeat(((p * 7919 + i) % 40) * 100)}` });
                if (i % 50 === 0) await sleep(1);
              }
            }),
          );
        },
      }),
    );
    const echo = h.client(Echo, target);
    const last = new Map<number, number>();
    let n = 0;
    for await (const r of echo.serverStreamingEcho({})) {
      const [p, i, pad] = r.message.split(":") as [string, string, string];
      assert.equal(pad.length, ((Number(p) * 7919 + Number(i)) % 40) * 100, "message boundaries kept");
      assert.equal(Number(i), (last.get(Number(p)) ?? -1) + 1, `producer ${p} out of order`);
      last.set(Number(p), Number(i));
      n++;
    }
    assert.equal(n, 2000);
  });

  test("a client's request iterable is pulled only as fast as the server reads", async () => {
    let pulled = 0;
    let readByServer = 0;
    let maxAhead = 0;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async clientStreamingEcho(reqs) {
            for await (const _ of reqs) {
              readByServer++;
              await sleep(1);
              if (readByServer === 100) break;
            }
            return { message: String(readByServer) };
          },
        }),
      // BDP probing off: a window grown while the reader kept up would let the client run further
      // ahead (seen at 42 under a loaded machine on Node 22); the bound here is Rill's buffers.
      { receiveHighWaterMark: 32 * KiB, bdpProbe: false },
    );
    const echo = h.client(Echo, target, { sendHighWaterMark: 32 * KiB });
    async function* fast() {
      for (;;) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - readByServer);
        yield { message: "r".repeat(8 * KiB) };
      }
    }
    assert.equal((await echo.clientStreamingEcho(fast())).message, "100");
    // What may sit between the iterable and the handler: both call buffers, the stream window,
    // and node's stream and socket buffers on each side (16 KiB each on Node 20, 64 KiB from 22).
    const buffered = 32 * KiB + 32 * KiB + 64 * KiB + 4 * getDefaultHighWaterMark(false);
    const bound = Math.ceil((buffered / (8 * KiB)) * 1.6);
    assert.ok(maxAhead < bound, `the client pulled ${maxAhead} requests ahead of the server (bound ${bound})`);
  });

  // The writer-less path for an idle stream is node:http2's only.
  if (transport === "http2") test("an idle stream's replies go out in order, one at a time or in bursts, and hold nothing against the budget once written", async () => {
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs, ctx: HandlerContext) {
          ctx.sendHeader();
          let n = 0;
          for await (const r of reqs) {
            // One reply to an idle stream (nothing in flight: written without a writer), or a
            // burst, whose first reply is in flight when the next comes.
            const count = r.message === "burst" ? 50 : 1;
            for (let i = 0; i < count; i++) if (!ctx.trySend({ message: String(n++) })) await ctx.send({ message: String(n - 1) });
          }
        },
      }),
    );
    const echo = h.client(Echo, target);
    const requests = createPushable<{ message: string }>();
    const replies = echo.bidirectionalStreamingEcho(requests)[Symbol.asyncIterator]();
    const got: string[] = [];
    const expectReplies = async (k: number) => {
      for (let i = 0; i < k; i++) got.push(((await replies.next()).value as { message: string }).message);
    };
    for (const ask of ["one", "one", "burst", "one", "burst", "burst", "one"]) {
      requests.push({ message: ask });
      await expectReplies(ask === "burst" ? 50 : 1);
      await eventually(() => server.stats.bufferedBytes === 0, 2000, "the replies' bytes to be released");
    }
    requests.end();
    assert.equal((await replies.next()).done, true);
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => String(i)));
    assert.equal(got.length, 4 + 3 * 50);
  });

  if (transport === "http2") test("an idle stream's reply stuck behind a closed window holds its bytes against the budget until the client resets the stream", async () => {
    let sent = false;
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async serverStreamingEcho(_req, ctx: HandlerContext) {
          ctx.sendHeader();
          // Headers out, no writer yet: this reply is written straight to node's stream.
          sent = ctx.trySend({ message: "x".repeat(10 * KiB) });
          await new Promise((r) => ctx.signal.addEventListener("abort", r));
        },
      }),
    );
    // A 1 KiB stream window the client never reopens (it reads nothing): the reply cannot leave.
    const session = connectH2(`http://${target}`, { settings: { initialWindowSize: KiB } });
    try {
      const stream = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/ServerStreamingEcho", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => {});
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      stream.pause();
      await eventually(() => sent && server.stats.bufferedBytes >= 10 * KiB, 2000, "the reply to be counted against the budget");
      stream.close(h2constants.NGHTTP2_CANCEL);
      await eventually(() => server.stats.bufferedBytes === 0, 2000, "the reply's bytes to be released once the stream is gone");
    } finally {
      session.destroy();
    }
  });

  // Socket writes: HTTP/2 only.
  if (transport === "http2") test("many small messages written in one turn go out in few socket writes", async () => {
    const { port } = await h.server((s) =>
      s.add(Echo, {
        async serverStreamingEcho(_req, ctx) {
          for (let i = 0; i < 1000; i++) ctx.trySend({ message: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789" });
        },
      }),
    );
    // Count the TCP reads the client makes through a counting forwarder.
    let chunks = 0;
    const sockets = new Set<import("node:net").Socket>();
    const fwd = createNetServer((c) => {
      const up = netConnect(port, "127.0.0.1");
      sockets.add(c).add(up);
      up.on("data", (d) => {
        chunks++;
        c.write(d);
      });
      c.pipe(up);
      c.on("close", () => up.destroy()).on("error", () => up.destroy());
      up.on("close", () => c.destroy()).on("error", () => c.destroy());
    });
    await new Promise<void>((r) => fwd.listen(0, "127.0.0.1", r));
    try {
      const echo = h.client(Echo, `127.0.0.1:${(fwd.address() as AddressInfo).port}`);
      await echo.unaryEcho({}).catch(() => {}); // connect first, so only the stream is counted
      chunks = 0;
      const got = await collect(echo.serverStreamingEcho({}));
      assert.equal(got.length, 1000);
      assert.ok(chunks <= 12, `1000 messages arrived in ${chunks} TCP reads`);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => fwd.close(() => r()));
    }
  });
});

describe("idle timeout and close", () => {
  const h = useHarness();

  test("an idle call is ended once: the handler's signal aborts with IdleTimeoutError and the client gets DEADLINE_EXCEEDED", async () => {
    const reasons: unknown[] = [];
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs, ctx: HandlerContext) {
          ctx.signal.addEventListener("abort", () => reasons.push(ctx.signal.reason));
          for await (const r of reqs) yield { message: r.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const requests = createPushable<{ message: string }>();
    const it = echo.bidirectionalStreamingEcho(requests, { idleTimeoutMs: 150 })[Symbol.asyncIterator]();
    // Activity keeps it alive past the timeout...
    for (let i = 0; i < 4; i++) {
      await requests.push({ message: String(i) });
      assert.equal((await it.next()).value?.message, String(i));
      await sleep(60);
    }
    // ...and silence ends it.
    const start = Date.now();
    await assert.rejects(it.next(), (e: unknown) => {
      assert.ok(e instanceof IdleTimeoutError, String(e));
      assert.equal((e as RpcError).code, Code.DeadlineExceeded);
      return true;
    });
    assert.ok(Date.now() - start < 400);
    await eventually(() => reasons.length > 0, 1000, "the handler's signal");
    await sleep(200);
    assert.equal(reasons.length, 1);
    assert.ok(reasons[0] instanceof IdleTimeoutError);
  });

  test("the two ends' idle timers racing still give an IdleTimeoutError on both sides, whichever fires first", async () => {
    // The server's timer firing first: its DEADLINE_EXCEEDED reaches a client whose own timer is about to fire.
    const reasons: unknown[] = [];
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(_r, ctx) {
          ctx.signal.addEventListener("abort", () => reasons.push(ctx.signal.reason));
          await sleep(140);
          throw new RpcError(Code.DeadlineExceeded, "the server's idle timer fired first");
        },
        async *serverStreamingEcho(_r, ctx) {
          await new Promise((r) => ctx.signal.addEventListener("abort", r));
          reasons.push(ctx.signal.reason);
        },
      }),
    );
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({ message: "x" }, { idleTimeoutMs: 150 }), (e: unknown) => {
      assert.ok(e instanceof IdleTimeoutError, String(e));
      return true;
    });
    // The client's timer firing first: its RST_STREAM(CANCEL) reaches a server whose timer is about to fire.
    const session = connectH2(`http://${target}`);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.examples.echo.Echo/ServerStreamingEcho",
        "content-type": "application/grpc",
        te: "trailers",
        "rill-idle-timeout-ms": "150",
      });
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      stream.on("error", () => {});
      await sleep(140);
      stream.close(h2constants.NGHTTP2_CANCEL);
      await eventually(() => reasons.length === 2, 1000, "the streaming handler's signal");
      assert.ok(reasons[1] instanceof IdleTimeoutError, String(reasons[1]));
    } finally {
      session.destroy();
    }
  });

  test("a server-side idle timeout ends calls whose client set none", async () => {
    let reason: unknown;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async *serverStreamingEcho(_r, ctx) {
            yield { message: "hello" };
            await new Promise((r) => ctx.signal.addEventListener("abort", r));
            reason = ctx.signal.reason;
          },
        }),
      { idleTimeoutMs: 100 },
    );
    const echo = h.client(Echo, target);
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of echo.serverStreamingEcho({})) got.push(r.message);
      })(),
      (e: unknown) => (assert.equal((e as RpcError).code, Code.DeadlineExceeded), true),
    );
    assert.deepEqual(got, ["hello"]);
    await eventually(() => reason !== undefined, 1000);
    assert.ok(reason instanceof IdleTimeoutError);
  });

  test("half-close: the server sees every request sent before the client closed, then the end", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs) {
          const all: string[] = [];
          for await (const r of reqs) all.push(r.message);
          yield { message: `got ${all.length}: ${all.at(0)}..${all.at(-1)}` };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const messages = Array.from({ length: 5000 }, (_, i) => ({ message: `m${i}` }));
    const res = await collect(echo.bidirectionalStreamingEcho(from(messages)));
    assert.deepEqual(res.map((r) => r.message), ["got 5000: m0..m4999"]);
  });

  test("the client sees every response sent before the server's status", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async serverStreamingEcho(_r, ctx) {
          for (let i = 0; i < 3000; i++) await ctx.send({ message: String(i) });
        },
      }),
    );
    const echo = h.client(Echo, target);
    const got = await collect(echo.serverStreamingEcho({}));
    assert.equal(got.length, 3000);
    assert.equal(got.at(-1)?.message, "2999");
  });

  test("ending a pushable twice, and cancelling twice, are harmless", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs) {
          for await (const r of reqs) yield { message: r.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const p = createPushable<{ message: string }>();
    const ac = new AbortController();
    const it = echo.bidirectionalStreamingEcho(p, { signal: ac.signal })[Symbol.asyncIterator]();
    await p.push({ message: "a" });
    assert.equal((await it.next()).value?.message, "a");
    p.end();
    p.end();
    assert.equal((await it.next()).done, true);
    ac.abort();
    ac.abort();
    assert.equal((await it.next()).done, true);
  });
});
