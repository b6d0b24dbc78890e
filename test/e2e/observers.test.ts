/**
 * Call observers (src/observer.ts) on both sides, over HTTP/2 and in-process: what `start` sees,
 * request metadata an observer adds on the client reaching the handler, one `onMessage` per
 * message with its serialized size, `onEnd` exactly once with the status, duration and counts
 * (OK, a handler error, a reader that leaves early, a deadline, a retried call), `run` around the
 * handler, and an observer that throws or ignores a call leaving the call alone.
 */
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Echo, EchoRequestSchema, EchoResponseSchema } from "../../gen/echo/echo_pb.js";
import { Code, RpcError, type CallObservation, type CallObserver, type ObservedCall, type ObservedOutcome } from "../../src/index.js";
import { echoStreams } from "../support/echo.js";
import { collect, eventually, from, transports, useHarness } from "../support/harness.js";

interface Seen {
  side: "client" | "server";
  path: string;
  method: string;
  protocol: string;
  authority: string | undefined;
  peer: string | undefined;
  messages: Array<[string, number, boolean]>;
  ends: ObservedOutcome[];
}

/** An observer that writes down everything it is told, one record per call. */
function recorder(options: { addMetadata?: boolean } = {}): { observer: CallObserver; calls: Seen[] } {
  const calls: Seen[] = [];
  const observer: CallObserver = {
    start(call: ObservedCall): CallObservation {
      const seen: Seen = {
        side: call.side,
        path: call.path,
        method: call.method.name,
        protocol: call.protocol,
        authority: call.authority,
        peer: call.peer?.address,
        messages: [],
        ends: [],
      };
      if (options.addMetadata === true && call.side === "client") call.metadata.set("x-observed", "yes");
      calls.push(seen);
      return {
        onMessage: (direction, bytes, compressed) => void seen.messages.push([direction, bytes, compressed]),
        onEnd: (o) => void seen.ends.push(o),
      };
    },
  };
  return { observer, calls };
}

const size = (message: string, schema: typeof EchoRequestSchema | typeof EchoResponseSchema) => toBinary(schema, create(schema, { message })).byteLength;

for (const transport of transports)
  describe(`call observers (${transport})`, () => {
    const h = useHarness({ transport });

    test("a unary call: what start sees, metadata added on the client, one message each way with its size, one end each side", async () => {
      const client = recorder({ addMetadata: true });
      const server = recorder();
      let got: string | undefined;
      const callerMetadata = { "x-caller": "c" };
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            unaryEcho(req, ctx) {
              got = ctx.requestMetadata.get("x-observed") as string | undefined;
              return { message: req.message };
            },
          }),
        { observers: [server.observer] },
      );
      const echo = h.client(Echo, target, { observers: [client.observer] });
      assert.equal((await echo.unaryEcho({ message: "hello" }, { metadata: callerMetadata })).message, "hello");
      assert.equal(got, "yes", "the metadata the client observer added reached the handler");
      assert.deepEqual(callerMetadata, { "x-caller": "c" }, "the caller's metadata is not modified");
      await eventually(() => server.calls[0]?.ends.length === 1, 2000, "the server call to end");

      const [c] = client.calls;
      const [s] = server.calls;
      assert.equal(client.calls.length, 1);
      assert.equal(server.calls.length, 1);
      assert.equal(c!.side, "client");
      assert.equal(s!.side, "server");
      for (const x of [c!, s!]) {
        assert.equal(x.path, "/grpc.examples.echo.Echo/UnaryEcho");
        assert.equal(x.method, "UnaryEcho");
        assert.equal(x.protocol, "grpc");
        assert.equal(x.ends.length, 1);
        assert.equal(x.ends[0]!.code, Code.OK);
        assert.equal(x.ends[0]!.error, undefined);
        assert.equal(x.ends[0]!.sent, 1);
        assert.equal(x.ends[0]!.received, 1);
        assert.ok(x.ends[0]!.durationMs >= 0);
      }
      assert.equal(typeof c!.authority, "string");
      assert.equal(c!.peer, undefined);
      assert.equal(s!.authority, undefined);
      assert.equal(typeof s!.peer, "string");
      const req = size("hello", EchoRequestSchema);
      const res = size("hello", EchoResponseSchema);
      assert.deepEqual(c!.messages, [["sent", req, false], ["received", res, false]]);
      assert.deepEqual(s!.messages, [["received", req, false], ["sent", res, false]]);
    });

    test("streams both ways, and a failing handler: counts per direction, the status in the end", async () => {
      const client = recorder();
      const server = recorder();
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            unaryEcho() {
              throw new RpcError(Code.FailedPrecondition, "not now");
            },
          }),
        { observers: [server.observer] },
      );
      const echo = h.client(Echo, target, { observers: [client.observer] });
      assert.equal((await collect(echo.serverStreamingEcho({ message: "s" }))).length, 3);
      assert.equal((await echo.clientStreamingEcho(from([{ message: "a" }, { message: "b" }]))).message, "a b");
      assert.equal((await collect(echo.bidirectionalStreamingEcho(from(["1", "2", "3", "4"].map((message) => ({ message })))))).length, 4);
      await assert.rejects(echo.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.FailedPrecondition);
      await eventually(() => server.calls.length === 4 && server.calls.every((x) => x.ends.length === 1), 2000, "the server calls to end");

      const counts = (calls: Seen[]) => calls.map((x) => [x.method, x.ends.length, x.ends[0]!.code, x.ends[0]!.sent, x.ends[0]!.received]);
      assert.deepEqual(counts(client.calls), [
        ["ServerStreamingEcho", 1, Code.OK, 1, 3],
        ["ClientStreamingEcho", 1, Code.OK, 2, 1],
        ["BidirectionalStreamingEcho", 1, Code.OK, 4, 4],
        ["UnaryEcho", 1, Code.FailedPrecondition, 1, 0],
      ]);
      assert.deepEqual(counts(server.calls), [
        ["ServerStreamingEcho", 1, Code.OK, 3, 1],
        ["ClientStreamingEcho", 1, Code.OK, 1, 2],
        ["BidirectionalStreamingEcho", 1, Code.OK, 4, 4],
        ["UnaryEcho", 1, Code.FailedPrecondition, 0, 1],
      ]);
      for (const x of [client.calls[3]!, server.calls[3]!]) {
        assert.equal(x.ends[0]!.error?.code, Code.FailedPrecondition);
        assert.equal(x.ends[0]!.error?.rawMessage, "not now");
      }
    });

    test("a caller that stops reading, and a deadline: CANCELLED and DEADLINE_EXCEEDED, once on each side", async () => {
      const client = recorder();
      const server = recorder();
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            async unaryEcho(_req, ctx) {
              await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
              return { message: "late" };
            },
            async *serverStreamingEcho(_req, ctx) {
              for (let i = 0; !ctx.signal.aborted; i++) yield { message: String(i) };
            },
          }),
        { observers: [server.observer] },
      );
      const echo = h.client(Echo, target, { observers: [client.observer] });
      for await (const m of echo.serverStreamingEcho({ message: "x" })) if (m.message === "3") break;
      await assert.rejects(echo.unaryEcho({ message: "x" }, { timeoutMs: 50 }), (e: RpcError) => e.code === Code.DeadlineExceeded);
      await eventually(() => server.calls.length === 2 && server.calls.every((x) => x.ends.length === 1), 2000, "the server calls to end");
      assert.deepEqual(client.calls.map((x) => [x.ends.length, x.ends[0]!.code]), [[1, Code.Canceled], [1, Code.DeadlineExceeded]]);
      assert.deepEqual(server.calls.map((x) => [x.ends.length, x.ends[0]!.code]), [[1, Code.Canceled], [1, Code.DeadlineExceeded]]);
      // Nothing is reported after the end.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(client.calls.concat(server.calls).every((x) => x.ends.length === 1));
    });

    test("run wraps the handler and its streamed responses; observers run in order; one that throws or ignores a call leaves it alone", async () => {
      const store = new AsyncLocalStorage<string>();
      const order: string[] = [];
      const scoped = (name: string): CallObserver => ({
        start: () => ({
          run: <T>(fn: () => T): T => {
            order.push(`run ${name}`);
            return store.run(`${store.getStore() ?? ""}${name}`, fn);
          },
          onEnd: () => void order.push(`end ${name}`),
        }),
      });
      const throwing: CallObserver = {
        start() {
          throw new Error("observer bug");
        },
      };
      const ignoring: CallObserver = { start: () => undefined };
      const seenInHandler: Array<string | undefined> = [];
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            async unaryEcho(req) {
              await new Promise((resolve) => setImmediate(resolve));
              seenInHandler.push(store.getStore());
              return { message: req.message };
            },
            async *serverStreamingEcho() {
              for (let i = 0; i < 3; i++) {
                await new Promise((resolve) => setImmediate(resolve));
                seenInHandler.push(store.getStore());
                yield { message: String(i) };
              }
            },
          }),
        { observers: [throwing, scoped("a"), ignoring, scoped("b")] },
      );
      const echo = h.client(Echo, target, { observers: [throwing, ignoring] });
      assert.equal((await echo.unaryEcho({ message: "u" })).message, "u");
      assert.equal((await collect(echo.serverStreamingEcho({ message: "s" }))).length, 3);
      await eventually(() => order.filter((x) => x.startsWith("end")).length === 4, 2000, "the server calls to end");
      assert.deepEqual(seenInHandler, ["ab", "ab", "ab", "ab"]);
      assert.deepEqual(order, ["run a", "run b", "end a", "end b", "run a", "run b", "end a", "end b"]);
    });

    test("one observation that runs beside others that only count: the handler runs inside it, whichever place it has", async () => {
      const store = new AsyncLocalStorage<string>();
      const scoped: CallObserver = { start: () => ({ run: <T>(fn: () => T): T => store.run("scoped", fn) }) };
      const counting = recorder();
      const seen: Array<string | undefined> = [];
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            async unaryEcho(req) {
              await new Promise((resolve) => setImmediate(resolve));
              seen.push(store.getStore());
              return { message: req.message };
            },
          }),
        { observers: [counting.observer, scoped, recorder().observer] },
      );
      const echo = h.client(Echo, target);
      assert.equal((await echo.unaryEcho({ message: "u" })).message, "u");
      assert.deepEqual(seen, ["scoped"]);
      await eventually(() => counting.calls[0]?.ends.length === 1, 2000, "the counting observer to see the end");
    });
  });

describe("call observers and retries", () => {
  const h = useHarness({ transport: "http2" });

  test("a retried call: the client sees one call, one request sent, one end; the server one call per attempt", async () => {
    const client = recorder();
    const server = recorder();
    let attempts = 0;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          ...echoStreams,
          unaryEcho(req) {
            if (++attempts < 3) throw new RpcError(Code.Unavailable, "try again");
            return { message: req.message };
          },
        }),
      { observers: [server.observer] },
    );
    const echo = h.client(Echo, target, {
      observers: [client.observer],
      serviceConfig: {
        methodConfig: [
          {
            name: [{ service: "grpc.examples.echo.Echo" }],
            retryPolicy: { maxAttempts: 3, initialBackoff: "0.01s", maxBackoff: "0.01s", backoffMultiplier: 1, retryableStatusCodes: ["UNAVAILABLE"] },
          },
        ],
      },
    });
    assert.equal((await echo.unaryEcho({ message: "r" })).message, "r");
    await eventually(() => server.calls.length === 3 && server.calls.every((x) => x.ends.length === 1), 2000, "the attempts to end");
    assert.equal(client.calls.length, 1);
    assert.deepEqual(client.calls[0]!.ends.map((o) => [o.code, o.sent, o.received]), [[Code.OK, 1, 1]]);
    assert.deepEqual(server.calls.map((x) => x.ends[0]!.code), [Code.Unavailable, Code.Unavailable, Code.OK]);
  });
});
