import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, createClient, createInProcessChannel, createServer, RpcError, silentLogger, type Server } from "../../src/index.js";
import { collect, eventually, useHarness } from "../support/harness.js";
import { rejectsWith } from "../support/assertions.js";

// What the in-process transport must do that the suites run over both transports (call kinds,
// flow control, deadlines, cancellation, interceptors, retries, hedging, health, reflection)
// do not already show: what a server that never listened, its shutdown, and a call that is
// answered before it begins look like without a socket.

describe("the in-process transport", () => {
  const h = useHarness({ transport: "in-process" });

  test("a server that never listened answers, and handlers see the peer as in-process", async () => {
    let peer = "";
    let tls: unknown = "unset";
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(req, ctx) {
          peer = ctx.peer;
          tls = ctx.tls;
          return { message: req.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    assert.equal((await echo.unaryEcho({ message: "hi" })).message, "hi");
    assert.equal(peer, "in-process");
    assert.equal(tls, undefined);
    assert.equal(server.activeCalls, 0);
  });

  test("metadata goes both ways and the status, message and trailers of a failure arrive", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(req, ctx) {
          ctx.responseHeader.set("x-header", ctx.requestMetadata.get("x-request") ?? "");
          ctx.responseTrailer.set("x-trailer", "t");
          ctx.responseTrailer.set("x-bin", new Uint8Array([0, 1, 255]));
          if (req.message === "fail") throw new RpcError(Code.FailedPrecondition, "not now: ünïcode");
          return { message: "ok" };
        },
      }),
    );
    const echo = h.client(Echo, target);
    let header: string | undefined;
    let trailer: string | undefined;
    await echo.unaryEcho(
      { message: "ok" },
      { metadata: { "x-request": "r" }, onHeader: (m) => (header = m.get("x-header") as string), onTrailer: (m) => (trailer = m.get("x-trailer") as string) },
    );
    assert.equal(header, "r");
    assert.equal(trailer, "t");
    await assert.rejects(echo.unaryEcho({ message: "fail" }), (e: unknown) => {
      rejectsWith(Code.FailedPrecondition, /not now: ünïcode/)(e);
      assert.deepEqual([...((e as RpcError).metadata.get("x-bin") as Uint8Array)], [0, 1, 255]);
      return true;
    });
  });

  test("an unknown method and a handler failing before any message are answered trailers-only", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        // eslint-disable-next-line require-yield
        async *serverStreamingEcho() {
          throw new RpcError(Code.PermissionDenied, "no");
        },
      }),
    );
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({}), rejectsWith(Code.Unimplemented));
    let headers = 0;
    await assert.rejects(collect(echo.serverStreamingEcho({}, { onHeader: () => headers++ })), rejectsWith(Code.PermissionDenied, /no/));
    assert.equal(headers, 0, "a trailers-only answer has no separate header block");
  });

  test("compression and the receive limit apply as over the network", async () => {
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: async (req) => ({ message: req.message }) }), { maxReceiveMessageBytes: 64 * 1024 });
    const echo = h.client(Echo, target, { compression: "gzip" });
    const big = "z".repeat(60 * 1024); // under the limit, and compressed on the way
    assert.equal((await echo.unaryEcho({ message: big })).message.length, big.length);
    const random = Buffer.alloc(100 * 1024);
    for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
    await assert.rejects(echo.unaryEcho({ message: random.toString("latin1") }), rejectsWith(Code.ResourceExhausted, /receive limit/));
    // The call beside it is unharmed.
    assert.equal((await echo.unaryEcho({ message: "after" })).message, "after");
  });

  test("a graceful shutdown waits for running in-process calls and refuses new ones", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(req) {
          await released;
          return { message: req.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const running = echo.unaryEcho({ message: "finishes" });
    await eventually(() => server.activeCalls === 1, 2000, "the call to start");
    let shutDown = false;
    const shutdown = server.shutdown().then(() => (shutDown = true));
    await sleep(50);
    assert.equal(shutDown, false, "shutdown resolved while a call was running");
    await assert.rejects(echo.unaryEcho({ message: "late" }), rejectsWith(Code.Unavailable, /shutting down/));
    release();
    assert.equal((await running).message, "finishes");
    await shutdown;
  });

  test("a shutdown's grace period ends, and a forced shutdown fails running calls with UNAVAILABLE", async () => {
    const { server, target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_req, ctx) {
          yield { message: "first" };
          await new Promise((r) => ctx.signal.addEventListener("abort", r));
        },
      }),
    );
    const echo = h.client(Echo, target);
    const got: string[] = [];
    const call = (async () => {
      for await (const r of echo.serverStreamingEcho({})) got.push(r.message);
    })();
    await eventually(() => got.length === 1, 2000, "the first response");
    const t0 = Date.now();
    await server.shutdown({ graceMs: 100 });
    assert.ok(Date.now() - t0 < 2000, "the grace period was not applied");
    await assert.rejects(call, rejectsWith(Code.Unavailable));
  });

  test("closing the channel fails new calls; the server and other channels go on", async () => {
    const server: Server = createServer({ logger: silentLogger });
    server.add(Echo, { unaryEcho: async (req) => ({ message: req.message }) });
    const a = createInProcessChannel(server, { logger: silentLogger });
    const b = createInProcessChannel(server, { logger: silentLogger });
    try {
      const echoA = createClient(Echo, a);
      const echoB = createClient(Echo, b);
      assert.equal((await echoA.unaryEcho({ message: "a" })).message, "a");
      a.close();
      await assert.rejects(echoA.unaryEcho({ message: "a" }), (e: unknown) => e instanceof RpcError);
      assert.equal((await echoB.unaryEcho({ message: "b" })).message, "b");
    } finally {
      a.close();
      b.close();
      await server.shutdown();
    }
  });

  test("a client that stops reading a bidi stream stops the handler; cancelling it ends the handler", async () => {
    let produced = 0;
    let handlerEnded = false;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async *bidirectionalStreamingEcho(_reqs, ctx) {
            try {
              while (!ctx.signal.aborted) {
                produced++;
                yield { message: "y".repeat(8 * 1024) };
              }
            } finally {
              handlerEnded = true;
            }
          },
        }),
      { sendHighWaterMark: 32 * 1024 },
    );
    const echo = h.client(Echo, target, { receiveHighWaterMark: 32 * 1024 });
    const controller = new AbortController();
    const it = echo.bidirectionalStreamingEcho((async function* () {})(), { signal: controller.signal })[Symbol.asyncIterator]();
    await it.next();
    await sleep(100);
    // Bounded by the two high-water marks (64 KiB of 8 KiB messages) plus what is in flight.
    assert.ok(produced < 20, `the handler produced ${produced} messages for a reader that took one`);
    controller.abort();
    await assert.rejects(it.next(), rejectsWith(Code.Canceled));
    await eventually(() => handlerEnded, 2000, "the handler to end");
  });
});
