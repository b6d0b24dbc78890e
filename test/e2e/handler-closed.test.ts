import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { RpcError, type HandlerContext } from "../../src/index.js";
import { eventually, useHarness } from "../support/harness.js";

describe("ctx.closed and lazily created call state", () => {
  const h = useHarness();

  test("ctx.closed fulfils when the client cancels a push-style stream, and the handler then returns", async () => {
    let closedSeen = false;
    let returned = false;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async serverStreamingEcho(_req, ctx) {
          ctx.trySend({ message: "first" });
          await ctx.closed;
          closedSeen = true;
          returned = true;
        },
      }),
    );
    const echo = h.client(Echo, target);
    for await (const r of echo.serverStreamingEcho({})) {
      assert.equal(r.message, "first");
      break; // cancels the call
    }
    await eventually(() => closedSeen && returned, 2000, "the handler to see ctx.closed fulfil and return");
  });

  test("ctx.closed fulfils after a normal end, and a signal first read after the end is already aborted", async () => {
    let ctxSeen: HandlerContext | undefined;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho(req, ctx) {
          ctxSeen = ctx;
          return { message: req.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    assert.equal((await echo.unaryEcho({ message: "hi" })).message, "hi");
    const ctx = ctxSeen!;
    await ctx.closed; // would hang if never fulfilled
    assert.equal(ctx.signal.aborted, true);
    assert.ok(ctx.signal.reason instanceof RpcError);
    assert.equal(ctx.responseHeader.size, 0);
  });

  test("request metadata read late in a streaming handler still holds the client's custom headers", async () => {
    const seen: string[] = [];
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_req, ctx) {
          yield { message: "a" };
          seen.push(String(ctx.requestMetadata.get("x-late")), String(ctx.requestMetadata.get("grpc-timeout")));
          yield { message: "b" };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const got: string[] = [];
    for await (const r of echo.serverStreamingEcho({}, { metadata: { "x-late": "yes" }, timeoutMs: 5000 })) got.push(r.message);
    assert.deepEqual(got, ["a", "b"]);
    assert.deepEqual(seen, ["yes", "undefined"]);
  });
});
