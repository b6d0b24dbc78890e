import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError, createPushable, type HandlerContext } from "../../src/index.js";
import { collect, eventually, transports, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { rejectsWith } from "../support/assertions.js";

/** A handler body that waits until its call is aborted and records when and why. */
function abortRecorder() {
  const rec = { abortedAt: 0, reason: undefined as unknown, ctx: undefined as HandlerContext | undefined };
  const wait = async (ctx: HandlerContext) => {
    rec.ctx = ctx;
    await new Promise<void>((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        rec.abortedAt = Date.now();
        rec.reason = ctx.signal.reason;
        resolve();
      });
    });
  };
  return { rec, wait };
}

for (const transport of transports) describe(`deadlines (${transport})`, () => {
  const h = useHarness({ transport });

  test("a 25-day deadline does not fire at once on either side (setTimeout's limit is 24.8 days)", async () => {
    const day = 24 * 60 * 60 * 1000;
    let deadline: number | undefined;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(r, ctx) {
          deadline = ctx.deadline;
          await sleep(50); // a server-side timer that overflowed would have fired by now
          return { message: r.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    assert.equal((await echo.unaryEcho({ message: "slow mail" }, { timeoutMs: 25 * day })).message, "slow mail");
    assert.ok(deadline !== undefined && deadline - Date.now() > 24.9 * day, "the server's deadline is 25 days away");
  });

  test("the server sees the client's deadline", async () => {
    let deadline: number | undefined;
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: (r, ctx) => ((deadline = ctx.deadline), { message: r.message }) }));
    const echo = h.client(Echo, target);
    const before = Date.now();
    await echo.unaryEcho({}, { timeoutMs: 5000 });
    assert.ok(deadline !== undefined);
    assert.ok(deadline >= before + 4900 && deadline <= Date.now() + 5000, `deadline ${deadline - before} ms ahead`);
    await echo.unaryEcho({});
    assert.equal(deadline, undefined);
  });

  test("at expiry the client gets DEADLINE_EXCEEDED and the handler's signal aborts", async () => {
    const { rec, wait } = abortRecorder();
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(_r, ctx) {
          await wait(ctx);
          return {};
        },
      }),
    );
    const echo = h.client(Echo, target);
    const start = Date.now();
    await assert.rejects(echo.unaryEcho({}, { timeoutMs: 100 }), rejectsWith(Code.DeadlineExceeded));
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 95 && elapsed < 1000, `failed after ${elapsed} ms`);
    await eventually(() => rec.abortedAt > 0, 1000, "the handler's signal");
    assert.ok(rec.reason instanceof RpcError);
    assert.equal(rec.reason.code, Code.DeadlineExceeded);
  });

  test("an absolute deadline works on streams, and an expired one fails before sending", async () => {
    let called = 0;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_r, ctx) {
          called++;
          for (let i = 0; ; i++) {
            yield { message: String(i) };
            await sleep(10, undefined, { signal: ctx.signal });
          }
        },
      }),
    );
    const echo = h.client(Echo, target);
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of echo.serverStreamingEcho({}, { deadline: Date.now() + 150 })) got.push(r.message);
      })(),
      rejectsWith(Code.DeadlineExceeded),
    );
    assert.ok(got.length >= 3, `got ${got.length} messages before the deadline`);
    await assert.rejects(collect(echo.serverStreamingEcho({}, { deadline: Date.now() - 1 })), rejectsWith(Code.DeadlineExceeded));
    assert.equal(called, 1);
  });
});

for (const transport of transports) describe(`cancellation (${transport})`, () => {
  const h = useHarness({ transport });

  test("aborting the client's signal aborts the server handler promptly", async () => {
    const { rec, wait } = abortRecorder();
    const { target, server } = await h.server((s) =>
      s.add(Echo, {
        async unaryEcho(_r, ctx) {
          await wait(ctx);
          return {};
        },
      }),
    );
    const echo = h.client(Echo, target);
    const ac = new AbortController();
    const call = echo.unaryEcho({}, { signal: ac.signal });
    await eventually(() => rec.ctx !== undefined, 1000, "the handler to start");
    const abortedAt = Date.now();
    ac.abort();
    await assert.rejects(call, rejectsWith(Code.Canceled));
    await eventually(() => rec.abortedAt > 0, 1000, "the handler's signal");
    // Promptly, not at some timeout: generous for a loaded CI machine (51 ms seen under load).
    assert.ok(rec.abortedAt - abortedAt < 250, `server saw the cancel after ${rec.abortedAt - abortedAt} ms`);
    assert.equal((rec.reason as RpcError).code, Code.Canceled);
    await eventually(() => server.activeCalls === 0, 1000, "the server to forget the call");
  });

  test("an already-aborted signal fails the call at once without reaching the server", async () => {
    let called = 0;
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: () => (called++, {}) }));
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({}, { signal: AbortSignal.abort() }), rejectsWith(Code.Canceled));
    assert.equal(called, 0);
  });

  test("cancelling a bidi call ends the handler's request iteration with CANCELLED", async () => {
    let handlerError: unknown;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs) {
          try {
            for await (const r of reqs) yield { message: r.message };
          } catch (e) {
            handlerError = e;
            throw e;
          }
        },
      }),
    );
    const echo = h.client(Echo, target);
    const ac = new AbortController();
    const requests = createPushable<{ message: string }>();
    const it = echo.bidirectionalStreamingEcho(requests, { signal: ac.signal })[Symbol.asyncIterator]();
    await requests.push({ message: "1" });
    assert.equal((await it.next()).value?.message, "1");
    ac.abort();
    await assert.rejects(it.next(), rejectsWith(Code.Canceled));
    await eventually(() => handlerError !== undefined, 1000, "the handler to see the cancel");
    assert.equal((handlerError as RpcError).code, Code.Canceled);
  });

  // A connection to lose: HTTP/2 only.
  if (transport === "http2") test("losing the connection aborts running handlers and fails the client with UNAVAILABLE", async () => {
    const { rec, wait } = abortRecorder();
    const { port } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_r, ctx) {
          yield { message: "first" };
          await wait(ctx);
        },
      }),
    );
    const proxy = await startTcpProxy(port);
    try {
      const echo = h.client(Echo, proxy.target);
      const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.message, "first");
      proxy.cut();
      await assert.rejects(it.next(), rejectsWith(Code.Unavailable));
      await eventually(() => rec.abortedAt > 0, 1000, "the handler's signal");
      assert.equal((rec.reason as RpcError).code, Code.Canceled);
      // The channel reconnects for the next call.
      const again = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
      assert.equal((await again.next()).value?.message, "first");
      await again.return?.();
    } finally {
      await proxy.close();
    }
  });

  test("a forced server shutdown ends running calls with UNAVAILABLE", async () => {
    const { rec, wait } = abortRecorder();
    const { target, server } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_r, ctx) {
          yield { message: "first" };
          await wait(ctx);
        },
      }),
    );
    const echo = h.client(Echo, target);
    const it = echo.serverStreamingEcho({})[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.message, "first");
    server.forceShutdown();
    await assert.rejects(it.next(), rejectsWith(Code.Unavailable));
    await eventually(() => rec.abortedAt > 0, 1000, "the handler's signal");
    assert.equal((rec.reason as RpcError).code, Code.Unavailable);
  });
});
