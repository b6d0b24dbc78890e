import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Echo } from "../../gen/echo/echo_pb.js";
import { echoService } from "../../examples/echo/server.js";
import { Code, createPushable, RpcError } from "../../src/index.js";
import { collect, eventually, from, transports, useHarness } from "../support/harness.js";

for (const transport of transports) describe(`the four call kinds (${transport})`, () => {
  const h = useHarness({ transport });

  test("unary returns the handler's response", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoService()));
    const echo = h.client(Echo, target);
    const res = await echo.unaryEcho({ message: "hello" });
    assert.equal(res.message, "hello");
    assert.equal(res.$typeName, "grpc.examples.echo.EchoResponse");
  });

  test("a handler's ctx offers what HandlerContext promises and no way to reach the call behind it", async () => {
    let seen: Record<string, unknown> | undefined;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho(r, ctx) {
          const c = ctx as unknown as Record<string, unknown>;
          seen = {
            own: Object.getOwnPropertyNames(ctx),
            internals: ["fail", "cancel", "onData", "onEnd", "start", "finish", "stream", "call"].filter((k) => k in c),
            method: ctx.method.name,
            peer: typeof ctx.peer,
            signal: ctx.signal.aborted,
          };
          ctx.responseTrailer.set("x-seen", "yes");
          return { message: r.message };
        },
      }),
    );
    let trailer: string | undefined;
    const res = await h.client(Echo, target).unaryEcho({ message: "m" }, { onTrailer: (t) => (trailer = t.get("x-seen") as string | undefined) });
    assert.equal(res.message, "m");
    assert.deepEqual(seen, { own: [], internals: [], method: "UnaryEcho", peer: "string", signal: false });
    assert.equal(trailer, "yes", "the trailer set through ctx reached the client");
  });

  test("server streaming delivers messages in order until the client breaks out", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoService({ intervalMs: 5 })));
    const echo = h.client(Echo, target);
    const got: string[] = [];
    for await (const r of echo.serverStreamingEcho({ message: "n" })) {
      got.push(r.message);
      if (got.length === 5) break;
    }
    assert.deepEqual(got, ["n 0", "n 1", "n 2", "n 3", "n 4"]);
  });

  test("breaking out of an endless server stream runs the handler's finally promptly", async () => {
    let endedWith: number | undefined;
    let endedAt = 0;
    const { target, server } = await h.server((s) =>
      s.add(Echo, echoService({ intervalMs: 200, onStreamEnd: (n) => ((endedWith = n), (endedAt = Date.now())) })),
    );
    const echo = h.client(Echo, target);
    let breakAt = 0;
    for await (const _ of echo.serverStreamingEcho({ message: "x" })) {
      breakAt = Date.now();
      break;
    }
    await eventually(() => endedWith !== undefined, 1000, "the handler's finally");
    // One message was handed to the stream before the client left; the handler stops at the next.
    assert.equal(endedWith, 1);
    // The handler sleeps 200 ms between messages; it must stop well before its next tick.
    assert.ok(endedAt - breakAt < 150, `finally ran ${endedAt - breakAt} ms after the client left`);
    await eventually(() => server.activeCalls === 0, 1000, "the call to be forgotten");
  });

  test("client streaming hands the handler every request and returns one response", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoService()));
    const echo = h.client(Echo, target);
    const res = await echo.clientStreamingEcho(from(["a", "b", "c"].map((message) => ({ message })), 2));
    assert.equal(res.message, "a b c");
  });

  test("client streaming with no requests still completes", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoService()));
    const echo = h.client(Echo, target);
    const res = await echo.clientStreamingEcho(from([]));
    assert.equal(res.message, "");
  });

  test("bidi answers each request before the next one is sent", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoService()));
    const echo = h.client(Echo, target);
    const requests = createPushable<{ message: string }>();
    const responses = echo.bidirectionalStreamingEcho(requests)[Symbol.asyncIterator]();
    for (let i = 0; i < 20; i++) {
      await requests.push({ message: `ping ${i}` });
      const r = await responses.next();
      assert.equal(r.done, false);
      assert.equal(r.value.message, `ping ${i}`);
    }
    requests.end();
    assert.equal((await responses.next()).done, true);
  });

  test("an error on the client's request stream reaches the bidi handler as an error, not an end", async () => {
    let handlerSaw: unknown;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *bidirectionalStreamingEcho(reqs) {
          try {
            for await (const r of reqs) yield { message: r.message };
            handlerSaw = "end";
          } catch (e) {
            handlerSaw = e;
          }
        },
      }),
    );
    const echo = h.client(Echo, target);
    async function* failing() {
      yield { message: "one" };
      await sleep(20);
      throw new Error("producer broke");
    }
    await assert.rejects(collect(echo.bidirectionalStreamingEcho(failing())), (e: unknown) => {
      assert.ok(e instanceof RpcError);
      assert.equal(e.code, Code.Canceled);
      assert.match(e.rawMessage, /producer broke/);
      return true;
    });
    await eventually(() => handlerSaw !== undefined, 1000, "the handler to see the failure");
    assert.ok(handlerSaw instanceof RpcError, `handler saw ${String(handlerSaw)}`);
    assert.equal(handlerSaw.code, Code.Canceled);
  });

  test("many concurrent calls share one connection", async () => {
    const peers = new Set<string>();
    const impl = echoService();
    const { target } = await h.server((s) =>
      s.add(Echo, {
        ...impl,
        unaryEcho: (req, ctx) => (peers.add(ctx.peer), { message: req.message }),
      }),
    );
    const echo = h.client(Echo, target);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => echo.unaryEcho({ message: String(i) })));
    assert.deepEqual(
      results.map((r) => r.message),
      Array.from({ length: 500 }, (_, i) => String(i)),
    );
    const streams = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => collect(echo.bidirectionalStreamingEcho(from([{ message: `${i}a` }, { message: `${i}b` }])))),
    );
    streams.forEach((s, i) => assert.deepEqual(s.map((r) => r.message), [`${i}a`, `${i}b`]));
    assert.equal(peers.size, 1, `calls came from ${[...peers].join(", ")}`);
  });
});
