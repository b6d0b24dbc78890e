import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import {
  Code,
  createBearerClientInterceptor,
  createBearerServerInterceptor,
  createClient,
  createLoggingInterceptor,
  Metadata,
  observeMessages,
  principalOf,
  RpcError,
  type CallLogEntry,
  type Interceptor,
  type Logger,
  type ServiceImpl,
} from "../../src/index.js";
import { collect, eventually, from, transports, useHarness } from "../support/harness.js";

/** Echo with finite streams: server streaming sends "<m> 0..2"; handlers count their runs. */
function echo(runs = { n: 0 }): ServiceImpl<typeof Echo> {
  return {
    async unaryEcho(req, ctx) {
      runs.n++;
      ctx.responseTrailer.set("x-trailer", "unary");
      if (req.message.startsWith("fail")) throw new RpcError(Code.FailedPrecondition, "asked to fail", { metadata: new Metadata({ "x-why": "asked" }) });
      const seen = ctx.requestMetadata.get("x-added");
      return { message: seen === undefined ? req.message : `${req.message} [${String(seen)}]` };
    },
    async *serverStreamingEcho(req) {
      runs.n++;
      for (let i = 0; i < 3; i++) yield { message: `${req.message} ${i}` };
    },
    async clientStreamingEcho(reqs) {
      runs.n++;
      const all: string[] = [];
      for await (const r of reqs) all.push(r.message);
      return { message: all.join(" ") };
    },
    async *bidirectionalStreamingEcho(reqs) {
      runs.n++;
      for await (const r of reqs) yield { message: r.message };
    },
  };
}

/** An interceptor that logs what it sees as "<name> <event>". */
function tracer(name: string, log: string[]): Interceptor {
  return (next) => async (request) => {
    log.push(`start ${name}`);
    const response = await next({
      ...request,
      messages: observeMessages(request.messages, { onMessage: (m) => (log.push(`request ${name}`), m) }),
    });
    return {
      ...response,
      messages: observeMessages(response.messages, {
        onMessage: (m) => (log.push(`response ${name}`), m),
        onEnd: (e) => log.push(`end ${name} ${e === undefined ? "OK" : Code[(e as RpcError).code]}`),
      }),
    };
  };
}

/** The entries of `log` for one kind of event, in order. */
const events = (log: string[], kind: string) => log.filter((l) => l.startsWith(`${kind} `));

const kinds = [
  { kind: "unary", requests: 1, responses: 1 },
  { kind: "server streaming", requests: 1, responses: 3 },
  { kind: "client streaming", requests: 3, responses: 1 },
  { kind: "bidi", requests: 3, responses: 3 },
] as const;

async function callKind(client: ReturnType<typeof createClient<typeof Echo>>, kind: (typeof kinds)[number]["kind"]): Promise<string[]> {
  const three = () => from(["a", "b", "c"].map((message) => ({ message })));
  switch (kind) {
    case "unary":
      return [(await client.unaryEcho({ message: "a" })).message];
    case "server streaming":
      return (await collect(client.serverStreamingEcho({ message: "a" }))).map((r) => r.message);
    case "client streaming":
      return [(await client.clientStreamingEcho(three())).message];
    case "bidi":
      return (await collect(client.bidirectionalStreamingEcho(three()))).map((r) => r.message);
  }
}

for (const transport of transports) describe(`interceptors (${transport})`, () => {
  const h = useHarness({ transport });

  for (const { kind, requests, responses } of kinds) {
    test(`${kind}: the first interceptor added is the outermost, on the client and on the server`, async () => {
      const clientLog: string[] = [];
      const serverLog: string[] = [];
      const { target } = await h.server((s) => s.add(Echo, echo()), {
        interceptors: [tracer("S1", serverLog), tracer("S2", serverLog), tracer("S3", serverLog)],
      });
      // Channel interceptors are outside the client's own.
      const channel = h.channel(target, { interceptors: [tracer("C1", clientLog), tracer("C2", clientLog)] });
      const client = createClient(Echo, channel, { interceptors: [tracer("C3", clientLog)] });
      await callKind(client, kind);
      await eventually(() => events(serverLog, "end").length === 3, 2000, "the server interceptors to see the end");

      const repeat = (names: string[], times: number) => Array.from({ length: times }, () => names).flat();
      for (const [log, side] of [
        [clientLog, "C"],
        [serverLog, "S"],
      ] as const) {
        const outerFirst = [`${side}1`, `${side}2`, `${side}3`];
        const innerFirst = [...outerFirst].reverse();
        assert.deepEqual(events(log, "start"), outerFirst.map((n) => `start ${n}`), `${side} start order`);
        // Requests travel inwards (outermost sees each first), responses and the status outwards.
        assert.deepEqual(events(log, "request"), repeat(outerFirst, requests).map((n) => `request ${n}`), `${side} request order`);
        assert.deepEqual(events(log, "response"), repeat(innerFirst, responses).map((n) => `response ${n}`), `${side} response order`);
        assert.deepEqual(events(log, "end"), innerFirst.map((n) => `end ${n} OK`), `${side} end order`);
      }
    });
  }

  test("a client interceptor's metadata change reaches the handler, and a server interceptor's too", async () => {
    const addOnClient: Interceptor = (next) => async (req) => {
      req.metadata.set("x-added", "by-client");
      return next(req);
    };
    const rewriteOnServer: Interceptor = (next) => async (req) => {
      req.metadata.set("x-added", `${String(req.metadata.get("x-added"))}+server`);
      return next(req);
    };
    const { target } = await h.server((s) => s.add(Echo, echo()), { interceptors: [rewriteOnServer] });
    const client = createClient(Echo, h.channel(target), { interceptors: [addOnClient] });
    assert.equal((await client.unaryEcho({ message: "m" })).message, "m [by-client+server]");
  });

  test("a server interceptor sees the peer and a signal that aborts on cancel, also through a spread copy of the request", async () => {
    const seen: Array<{ address: string; tls: unknown; signal: AbortSignal | undefined }> = [];
    const spread: Interceptor = (next) => (req) => next({ ...req });
    const record: Interceptor = (next) => (req) => {
      seen.push({ address: req.peer!.address, tls: req.peer!.tls, signal: req.signal });
      return next(req);
    };
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          ...echo(),
          async *serverStreamingEcho(_req, ctx) {
            started();
            yield { message: "first" };
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          },
        }),
      { interceptors: [spread, record] },
    );
    const client = createClient(Echo, h.channel(target));
    const abort = new AbortController();
    const it = client.serverStreamingEcho({ message: "s" }, { signal: abort.signal })[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.message, "first");
    await handlerStarted;
    assert.equal(seen.length, 1);
    assert.match(seen[0]!.address, /^(127\.0\.0\.1:\d+|in-process|unknown:0|\[::1\]:\d+)$/);
    assert.equal(seen[0]!.tls, undefined);
    assert.ok(seen[0]!.signal instanceof AbortSignal);
    assert.equal(seen[0]!.signal.aborted, false);
    abort.abort();
    await assert.rejects(it.next());
    await eventually(() => seen[0]!.signal!.aborted, 2000, "the interceptor's signal to abort when the client cancels");
  });

  test("interceptors transform every request and response message in both directions", async () => {
    const upperRequests: Interceptor = (next) => (req) =>
      next({ ...req, messages: observeMessages(req.messages, { onMessage: (m) => ({ ...(m as object), message: (m as { message: string }).message.toUpperCase() }) }) });
    const bangResponses: Interceptor = (next) => async (req) => {
      const res = await next(req);
      return { ...res, messages: observeMessages(res.messages, { onMessage: (m) => ({ ...(m as object), message: `${(m as { message: string }).message}!` }) }) };
    };
    const { target } = await h.server((s) => s.add(Echo, echo()), { interceptors: [bangResponses] });
    const client = createClient(Echo, h.channel(target), { interceptors: [upperRequests, bangResponses] });
    const bidi = await collect(client.bidirectionalStreamingEcho(from([{ message: "a" }, { message: "b" }])));
    assert.deepEqual(
      bidi.map((r) => r.message),
      ["A!!", "B!!"],
    );
    assert.equal((await client.unaryEcho({ message: "x" })).message, "X!!");
    assert.equal((await client.clientStreamingEcho(from([{ message: "p" }, { message: "q" }]))).message, "P Q!!");
    assert.deepEqual(
      (await collect(client.serverStreamingEcho({ message: "s" }))).map((r) => r.message),
      ["S 0!!", "S 1!!", "S 2!!"],
    );
  });

  test("messages a push-style handler sends with ctx.send and ctx.trySend pass through server interceptors", async () => {
    const seen: string[] = [];
    const bang: Interceptor = (next) => async (req) => {
      const res = await next(req);
      return {
        ...res,
        messages: observeMessages(res.messages, {
          onMessage: (m) => (seen.push((m as { message: string }).message), { ...(m as object), message: `${(m as { message: string }).message}!` }),
        }),
      };
    };
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async serverStreamingEcho(req, ctx) {
            await ctx.send({ message: `${req.message} 1` });
            while (!ctx.trySend({ message: `${req.message} 2` })) await ctx.writable();
            await Promise.all([ctx.send({ message: "x" }), ctx.send({ message: "y" })]);
          },
          async bidirectionalStreamingEcho(reqs, ctx) {
            for await (const r of reqs) await ctx.send({ message: r.message });
          },
        }),
      { interceptors: [bang] },
    );
    const client = h.client(Echo, target);
    assert.deepEqual(
      (await collect(client.serverStreamingEcho({ message: "s" }))).map((r) => r.message),
      ["s 1!", "s 2!", "x!", "y!"],
    );
    assert.deepEqual(
      (await collect(client.bidirectionalStreamingEcho(from([{ message: "a" }, { message: "b" }])))).map((r) => r.message),
      ["a!", "b!"],
    );
    assert.deepEqual(seen, ["s 1", "s 2", "x", "y", "a", "b"]);
  });

  test("interceptors observe response headers, the status and the trailers", async () => {
    const seen: { side: string; code: string; trailer: string | undefined; header?: string | undefined }[] = [];
    const observe =
      (side: string): Interceptor =>
      (next) =>
      async (req) => {
        if (side === "server") req.context!.responseHeader.set("x-header", "h");
        const res = await next(req);
        return {
          ...res,
          messages: observeMessages(res.messages, {
            onEnd: (e) => {
              const err = e as RpcError | undefined;
              const trailer = err === undefined ? res.trailer : err.metadata;
              seen.push({ side, code: err === undefined ? "OK" : Code[err.code]!, trailer: trailer.get("x-trailer") as string | undefined, header: res.header.get("x-header") as string | undefined });
            },
          }),
        };
      };
    const { target } = await h.server((s) => s.add(Echo, echo()), { interceptors: [observe("server")] });
    const client = createClient(Echo, h.channel(target), { interceptors: [observe("client")] });
    await client.unaryEcho({ message: "ok" });
    await assert.rejects(client.unaryEcho({ message: "fail please" }), (e: RpcError) => e.code === Code.FailedPrecondition);
    await eventually(() => seen.length === 4);
    const bySide = (side: string) => seen.filter((s) => s.side === side);
    assert.deepEqual(bySide("client"), [
      { side: "client", code: "OK", trailer: "unary", header: "h" },
      { side: "client", code: "FailedPrecondition", trailer: "unary", header: undefined },
    ]);
    assert.deepEqual(
      bySide("server").map((s) => s.code),
      ["OK", "FailedPrecondition"],
    );
  });

  test("an interceptor fails the call with its RpcError: on the server before the handler, on the client before sending", async () => {
    const runs = { n: 0 };
    const deny: Interceptor = () => async (req) => {
      throw new RpcError(Code.ResourceExhausted, `quota used up for ${req.path}`);
    };
    const { target } = await h.server((s) => s.add(Echo, echo(runs)), { interceptors: [deny] });
    const plain = h.client(Echo, target);
    await assert.rejects(plain.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.ResourceExhausted && /quota used up for \/grpc.examples.echo.Echo\/UnaryEcho/.test(e.message));
    await assert.rejects(collect(plain.bidirectionalStreamingEcho(from([{ message: "x" }]))), (e: RpcError) => e.code === Code.ResourceExhausted);
    assert.equal(runs.n, 0, "the handler must not run");

    const { target: t2 } = await h.server((s) => s.add(Echo, echo(runs)));
    const failMidStream: Interceptor = (next) => async (req) => {
      const res = await next(req);
      let n = 0;
      return {
        ...res,
        messages: observeMessages(res.messages, {
          onMessage: (m) => {
            if (++n === 2) throw new RpcError(Code.DataLoss, "second message rejected by the client");
            return m;
          },
        }),
      };
    };
    const client = createClient(Echo, h.channel(t2), { interceptors: [failMidStream] });
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of client.serverStreamingEcho({ message: "s" })) got.push(r.message);
      })(),
      (e: RpcError) => e.code === Code.DataLoss,
    );
    assert.deepEqual(got, ["s 0"]);
    const refuseEarly = createClient(Echo, h.channel(t2), { interceptors: [deny] });
    const before = runs.n;
    await assert.rejects(refuseEarly.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.ResourceExhausted);
    assert.equal(runs.n, before, "nothing may reach the server");
  });

  test("the logging interceptor reports method, status and duration through the injected logger", async () => {
    const lines: { level: string; text: string }[] = [];
    const logger: Logger = {
      info: (text) => lines.push({ level: "info", text }),
      warn: (text) => lines.push({ level: "warn", text }),
      error: (text) => lines.push({ level: "error", text }),
    };
    let clock = 0;
    const entries: CallLogEntry[] = [];
    const { target } = await h.server((s) => s.add(Echo, echo()), { interceptors: [createLoggingInterceptor({ logger })] });
    const client = createClient(Echo, h.channel(target), {
      interceptors: [createLoggingInterceptor({ logger }), createLoggingInterceptor({ onCall: (e) => entries.push(e), now: () => (clock += 5) })],
    });
    await client.unaryEcho({ message: "hi" });
    await assert.rejects(client.unaryEcho({ message: "fail" }));
    await collect(client.bidirectionalStreamingEcho(from([{ message: "a" }, { message: "b" }])));
    await eventually(() => lines.length === 6, 2000, "six log lines");

    const client0 = lines.filter((l) => l.text.startsWith("client "));
    const server0 = lines.filter((l) => l.text.startsWith("server "));
    assert.match(client0[0]!.text, /^client \/grpc\.examples\.echo\.Echo\/UnaryEcho OK \d+\.\d ms \(1 → 1 msgs\)$/);
    assert.equal(client0[0]!.level, "info");
    assert.match(client0[1]!.text, /^client \/grpc\.examples\.echo\.Echo\/UnaryEcho FAILED_PRECONDITION: asked to fail \d+\.\d ms/);
    assert.equal(client0[1]!.level, "warn");
    assert.match(client0[2]!.text, /^client \/grpc\.examples\.echo\.Echo\/BidirectionalStreamingEcho OK .* \(2 → 2 msgs\)$/);
    assert.match(server0[0]!.text, /^server \/grpc\.examples\.echo\.Echo\/UnaryEcho OK \d+\.\d ms \(1 → 1 msgs\) peer=(127\.0\.0\.1:\d+|in-process)$/);
    assert.match(server0[1]!.text, /FAILED_PRECONDITION/);

    assert.deepEqual(
      entries.map((e) => [e.side, e.path, Code[e.code], e.durationMs, e.requestMessages, e.responseMessages]),
      [
        ["client", "/grpc.examples.echo.Echo/UnaryEcho", "OK", 5, 1, 1],
        ["client", "/grpc.examples.echo.Echo/UnaryEcho", "FailedPrecondition", 5, 1, 0],
        ["client", "/grpc.examples.echo.Echo/BidirectionalStreamingEcho", "OK", 5, 2, 2],
      ],
    );
  });

  test("the logging interceptor reports a server call whose handler ignores its deadline as DEADLINE_EXCEEDED", async () => {
    const entries: CallLogEntry[] = [];
    // The handler ignores its signal and returns only when the test lets it, after the checks.
    let release = (): void => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let returned = false;
    const { server, target } = await h.server(
      (s) =>
        s.add(Echo, {
          unaryEcho: async () => {
            await released;
            returned = true;
            return { message: "late" };
          },
        }),
      { interceptors: [createLoggingInterceptor({ onCall: (e) => entries.push(e) })] },
    );
    try {
      const client = h.client(Echo, target);
      await assert.rejects(client.unaryEcho({ message: "x" }, { timeoutMs: 50 }), (e: RpcError) => e.code === Code.DeadlineExceeded);
      await eventually(() => entries.length === 1, 900, "the server's log entry");
      assert.equal(entries[0]!.code, Code.DeadlineExceeded);
      assert.equal(returned, false, "logged while the handler still runs");
      // At the deadline, not later: with room for a loaded machine.
      assert.ok(entries[0]!.durationMs < 800, `reported after ${entries[0]!.durationMs} ms, not when the deadline passed`);
    } finally {
      release();
    }
    // The late handler's return goes nowhere: the call is over and the server holds nothing of it.
    await eventually(() => returned && server.activeCalls === 0, 2000, "the handler to return and the server to hold no call");
    assert.equal(entries.length, 1, "the late return is not logged again");
  });

  describe("bearer-token auth", () => {
    const serverAuth = () =>
      createBearerServerInterceptor<{ user: string; admin: boolean }>({
        validate: async (token) => (token === "alice-token" ? { user: "alice", admin: false } : token === "root-token" ? { user: "root", admin: true } : undefined),
        authorize: (who, req) => who.admin || req.method.name !== "ClientStreamingEcho",
        publicMethods: ["/grpc.examples.echo.Echo/ServerStreamingEcho"],
      });
    const whoService = (): ServiceImpl<typeof Echo> => ({
      ...echo(),
      unaryEcho: (req, ctx) => ({ message: `${req.message} from ${principalOf<{ user: string }>(ctx)?.user ?? "nobody"}` }),
    });

    test("rejects a call without a token or with a bad one as UNAUTHENTICATED and accepts a valid token", async () => {
      const { target } = await h.server((s) => s.add(Echo, whoService()), { interceptors: [serverAuth()] });
      const anonymous = h.client(Echo, target);
      await assert.rejects(anonymous.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.Unauthenticated && /authorization: Bearer/.test(e.message));
      await assert.rejects(
        anonymous.unaryEcho({ message: "x" }, { metadata: { authorization: "Basic YWxpY2U6c2VjcmV0" } }),
        (e: RpcError) => e.code === Code.Unauthenticated && /not a bearer token/.test(e.message),
      );
      const wrong = createClient(Echo, h.channel(target), { interceptors: [createBearerClientInterceptor("mallory-token")] });
      await assert.rejects(wrong.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.Unauthenticated && /rejected/.test(e.message));

      let refreshed = 0;
      const alice = createClient(Echo, h.channel(target), {
        interceptors: [createBearerClientInterceptor(async () => (refreshed++, "alice-token"))],
      });
      assert.equal((await alice.unaryEcho({ message: "hi" })).message, "hi from alice");
      assert.deepEqual((await collect(alice.bidirectionalStreamingEcho(from([{ message: "b" }])))).map((r) => r.message), ["b"]);
      assert.equal(refreshed, 2, "the token function runs once per call");
      // Public methods need no token.
      assert.equal((await collect(anonymous.serverStreamingEcho({ message: "p" }))).length, 3);
    });

    test("rejects a method the principal may not call with PERMISSION_DENIED", async () => {
      const { target } = await h.server((s) => s.add(Echo, whoService()), { interceptors: [serverAuth()] });
      const alice = createClient(Echo, h.channel(target), { interceptors: [createBearerClientInterceptor("alice-token")] });
      await assert.rejects(
        alice.clientStreamingEcho(from([{ message: "x" }])),
        (e: RpcError) => e.code === Code.PermissionDenied && /ClientStreamingEcho/.test(e.message),
      );
      const root = createClient(Echo, h.channel(target), { interceptors: [createBearerClientInterceptor("root-token")] });
      assert.equal((await root.clientStreamingEcho(from([{ message: "x" }, { message: "y" }]))).message, "x y");
    });
  });
});
