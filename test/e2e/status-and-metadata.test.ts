import assert from "node:assert/strict";
import { connect, constants, createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { RouteGuide } from "../../gen/routeguide/route_guide_pb.js";
import { Code, Metadata, RpcError, createChannel, createClient, silentLogger } from "../../src/index.js";
import { collect, from, useHarness } from "../support/harness.js";
import { rejectsWith } from "../support/assertions.js";
import { freePort } from "../support/ports.js";

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

describe("status codes and error mapping", () => {
  const h = useHarness();

  test("a thrown RpcError reaches the client with its code, message and trailers", async () => {
    const message = "not here: 100% \t ☺ 😈";
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho() {
          throw new RpcError(Code.NotFound, message, { metadata: new Metadata({ "x-detail": "why", "x-blob-bin": allBytes }) });
        },
      }),
    );
    const echo = h.client(Echo, target);
    let trailer: Metadata | undefined;
    await assert.rejects(echo.unaryEcho({ message: "" }, { onTrailer: (t) => (trailer = t) }), (e: unknown) => {
      rejectsWith(Code.NotFound)(e);
      const err = e as RpcError;
      assert.equal(err.rawMessage, message);
      assert.equal(err.metadata.get("x-detail"), "why");
      assert.deepEqual(err.metadata.get("x-blob-bin"), allBytes);
      return true;
    });
    assert.equal(trailer?.get("x-detail"), "why");
  });

  test("every status code round-trips from handler to client", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho(req) {
          throw new RpcError(Number(req.message) as Code, `code ${req.message}`);
        },
      }),
    );
    const echo = h.client(Echo, target);
    for (let code = 1; code <= 16; code++) {
      await assert.rejects(echo.unaryEcho({ message: String(code) }), rejectsWith(code, new RegExp(`^code ${code}$`)));
    }
  });

  test("an error after streamed messages arrives after those messages", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho() {
          yield { message: "1" };
          yield { message: "2" };
          throw new RpcError(Code.Aborted, "stopped after two");
        },
      }),
    );
    const echo = h.client(Echo, target);
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of echo.serverStreamingEcho({})) got.push(r.message);
      })(),
      rejectsWith(Code.Aborted, /stopped after two/),
    );
    assert.deepEqual(got, ["1", "2"]);
  });

  test("any other thrown error becomes UNKNOWN with a generic message, and is logged", async () => {
    const logged: string[] = [];
    const logger = { ...silentLogger, error: (m: string, ...d: unknown[]) => logged.push(`${m} ${String(d[0])}`) };
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          unaryEcho() {
            throw new Error("database password is hunter2");
          },
        }),
      { logger },
    );
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({}), (e: unknown) => {
      rejectsWith(Code.Unknown)(e);
      assert.doesNotMatch((e as RpcError).rawMessage, /hunter2/);
      return true;
    });
    assert.equal(logged.length, 1);
    assert.match(logged[0]!, /UnaryEcho.*hunter2/);
  });

  test("an unknown method or service answers UNIMPLEMENTED", async () => {
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const echo = h.client(Echo, target);
    await assert.rejects(echo.serverStreamingEcho({})[Symbol.asyncIterator]().next(), rejectsWith(Code.Unimplemented, /ServerStreamingEcho/));
    const guide = h.client(RouteGuide, target);
    await assert.rejects(guide.getFeature({}), rejectsWith(Code.Unimplemented, /unknown service routeguide.RouteGuide/));
  });

  test("a trailers-only status reaches a client that is still sending (Node 22 dropped it when the stream was reset at once)", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        clientStreamingEcho: () => {
          throw new RpcError(Code.NotFound, "no such album");
        },
      }),
    );
    const echo = h.client(Echo, target);
    // The request stream never ends by itself: the status must end the call.
    async function* forever() {
      for (let i = 0; i < 1000; i++) {
        yield { message: `m${i}` };
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await assert.rejects(echo.clientStreamingEcho(forever()), rejectsWith(Code.NotFound, /no such album/));
    // A raw node:http2 client that keeps its side open sees the status HEADERS, then the reset.
    const session = connect(`http://${target}`);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/ClientStreamingEcho", "content-type": "application/grpc", te: "trailers" });
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        stream.on("response", (h) => resolve(h));
        stream.on("error", reject);
      });
      assert.equal(headers["grpc-status"], String(Code.NotFound));
      await new Promise<void>((resolve) => stream.on("close", () => resolve()));
      assert.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR);
    } finally {
      session.close();
    }
  });

  test("a client calling a server that is not there gets UNAVAILABLE naming the address", async () => {
    const port = await freePort();
    const echo = h.client(Echo, `127.0.0.1:${port}`);
    await assert.rejects(echo.unaryEcho({}), rejectsWith(Code.Unavailable, new RegExp(`127.0.0.1:${port}.*ECONNREFUSED`)));
  });

  test("a non-gRPC HTTP/2 server's status maps to the gRPC code the spec gives", async () => {
    const plain = createHttp2Server();
    plain.on("stream", (stream, headers) => {
      const status = Number(String(headers[":path"]).split("/")[1]!.replace(/\D/g, "")) || 404;
      stream.respond({ ":status": status, "content-type": "text/html" });
      stream.end("<html>nope</html>");
    });
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    const port = (plain.address() as AddressInfo).port;
    try {
      const ch = createChannel(`127.0.0.1:${port}`, { logger: silentLogger });
      const echo = createClient(Echo, ch);
      // The path's service name carries the HTTP status the fake server should answer.
      const cases: Array<[number, Code]> = [[404, Code.Unimplemented], [503, Code.Unavailable], [401, Code.Unauthenticated], [500, Code.Unknown]];
      for (const [status, code] of cases) {
        const fake = { ...Echo, typeName: `s${status}` } as typeof Echo;
        const methods = Echo.methods.map((m) => ({ ...m, parent: fake }));
        await assert.rejects(
          createClient({ ...fake, methods, method: { unaryEcho: methods[0]! } } as unknown as typeof Echo, ch).unaryEcho({}),
          rejectsWith(code, new RegExp(`HTTP ${status}`)),
        );
      }
      void echo;
      ch.close();
    } finally {
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  test("requests in no protocol the server speaks get HTTP 415 or 405, and a bad timeout gets a status", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const ask = (headers: Record<string, string>) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const st = session.request(headers);
          st.on("response", (hs) => resolve(hs as Record<string, unknown>));
          st.on("error", reject);
          st.end();
          st.resume();
        });
      // application/json is the Connect protocol's now (test/e2e/web-protocols.test.ts); text/html is no one's.
      const html = await ask({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "text/html" });
      assert.equal(html[":status"], 415);
      const get = await ask({ ":method": "GET", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc" });
      assert.equal(get[":status"], 405);
      const bad = await ask({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc", "grpc-timeout": "10x" });
      assert.equal(bad[":status"], 200);
      assert.equal(bad["grpc-status"], String(Code.Internal));
      assert.match(String(bad["grpc-message"]), /grpc-timeout/);
    } finally {
      session.close();
    }
  });

  test("a unary request without a message gets INTERNAL, not a crash", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const st = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc", te: "trailers" });
        st.on("response", (hs) => hs["grpc-status"] !== undefined && resolve(hs as Record<string, unknown>));
        st.on("trailers", (hs) => resolve(hs as Record<string, unknown>));
        st.on("error", reject);
        st.end();
        st.resume();
      });
      assert.equal(trailers["grpc-status"], String(Code.Internal));
      assert.match(String(trailers["grpc-message"]), /expects one request message/);
    } finally {
      session.close();
    }
  });

  test("a unary request of three messages in one DATA frame gets INTERNAL, and the handler never runs", async () => {
    let handled = 0;
    const { port } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho: (r) => {
          handled++;
          return { message: r.message };
        },
      }),
    );
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const one = Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]); // message: "a"
      const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const st = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc", te: "trailers" });
        st.on("response", (hs) => hs["grpc-status"] !== undefined && resolve(hs as Record<string, unknown>));
        st.on("trailers", (hs) => resolve(hs as Record<string, unknown>));
        st.on("error", reject);
        st.end(Buffer.concat([one, one, one]));
        st.resume();
      });
      assert.equal(trailers["grpc-status"], String(Code.Internal));
      assert.match(String(trailers["grpc-message"]), /expects one request message, the client sent more/);
      assert.equal(handled, 0);
    } finally {
      session.close();
    }
  });

  test("a truncated or garbage request message gets INTERNAL", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const send = (body: Uint8Array) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const st = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc" });
          st.on("response", (hs) => hs["grpc-status"] !== undefined && resolve(hs as Record<string, unknown>));
          st.on("trailers", (hs) => resolve(hs as Record<string, unknown>));
          st.on("error", reject);
          st.on("close", () => reject(new Error(`closed with ${st.rstCode}`)));
          st.end(body);
          st.resume();
        });
      const truncated = await send(Uint8Array.from([0, 0, 0, 0, 10, 1, 2]));
      assert.equal(truncated["grpc-status"], String(Code.Internal));
      assert.match(String(truncated["grpc-message"]), /middle of a message/);
      const garbage = await send(Uint8Array.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
      assert.equal(garbage["grpc-status"], String(Code.Internal));
      assert.match(String(garbage["grpc-message"]), /failed to parse request/);
      const flags = await send(Uint8Array.from([4, 0, 0, 0, 0]));
      assert.equal(flags["grpc-status"], String(Code.Internal));
    } finally {
      session.close();
      void constants;
    }
  });
});

describe("metadata", () => {
  const h = useHarness();

  test("request metadata, response headers and trailers travel both ways, binary byte-exact", async () => {
    let seen: Metadata | undefined;
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho(req, ctx) {
          seen = ctx.requestMetadata;
          ctx.responseHeader.set("x-header", "h1");
          ctx.responseHeader.set("x-header-bin", allBytes);
          ctx.responseTrailer.append("x-trailer", "t1");
          ctx.responseTrailer.append("x-trailer", "t2");
          return { message: req.message };
        },
      }),
    );
    const echo = h.client(Echo, target);
    let header: Metadata | undefined;
    let trailer: Metadata | undefined;
    const md = new Metadata();
    md.set("x-text", "hello world");
    md.append("x-multi", "a");
    md.append("x-multi", "b");
    md.set("x-raw-bin", allBytes);
    await echo.unaryEcho({ message: "m" }, { metadata: md, onHeader: (m) => (header = m), onTrailer: (m) => (trailer = m) });
    assert.equal(seen?.get("x-text"), "hello world");
    // node:http2 joins a repeated text header with ", " (HTTP semantics allow it; grpc-js does the same).
    assert.deepEqual(seen?.getAll("x-multi").join(", "), "a, b");
    assert.deepEqual(seen?.get("x-raw-bin"), allBytes);
    assert.match(String(seen?.get("user-agent")), /grpc-node-rill/);
    assert.equal(seen?.has("content-type"), false);
    assert.equal(seen?.has("te"), false);
    assert.equal(header?.get("x-header"), "h1");
    assert.deepEqual(header?.get("x-header-bin"), allBytes);
    assert.equal(trailer?.getAll("x-trailer").join(", "), "t1, t2");
  });

  test("sendHeader delivers headers before the first message of a stream", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho(_req, ctx) {
          ctx.responseHeader.set("x-early", "yes");
          ctx.sendHeader();
          await new Promise((r) => setTimeout(r, 50));
          yield { message: "late" };
        },
      }),
    );
    const echo = h.client(Echo, target);
    let headerAt = 0;
    let messageAt = 0;
    for await (const _ of echo.serverStreamingEcho({}, { onHeader: (m) => m.get("x-early") === "yes" && (headerAt = Date.now()) })) {
      messageAt = Date.now();
    }
    assert.ok(headerAt > 0, "headers arrived");
    assert.ok(messageAt - headerAt >= 30, `headers came ${messageAt - headerAt} ms before the message`);
  });

  test("invalid metadata is refused on the client with a clear error, before anything is sent", async () => {
    let calls = 0;
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => (calls++, { message: r.message }) }));
    const echo = h.client(Echo, target);
    assert.throws(() => new Metadata({ "bad key": "v" }), /bad key/);
    assert.throws(() => new Metadata({ "x-ok": "line\nbreak" }), /x-ok/);
    assert.throws(() => new Metadata({ "x-text-bin": "not bytes" }), /x-text-bin/);
    await assert.rejects(echo.unaryEcho({}, { metadata: { "Bad Key": "v" } }), rejectsWith(Code.Internal, /Bad Key|bad key/));
    assert.equal(calls, 0);
  });

  test("metadata works on all four call kinds", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho: (_r, ctx) => ({ message: String(ctx.requestMetadata.get("x-k")) }),
        async *serverStreamingEcho(_r, ctx) {
          yield { message: String(ctx.requestMetadata.get("x-k")) };
        },
        async clientStreamingEcho(reqs, ctx) {
          await collect(reqs);
          return { message: String(ctx.requestMetadata.get("x-k")) };
        },
        async *bidirectionalStreamingEcho(reqs, ctx) {
          for await (const _ of reqs) yield { message: String(ctx.requestMetadata.get("x-k")) };
        },
      }),
    );
    const echo = h.client(Echo, target);
    const metadata = { "x-k": "v" };
    assert.equal((await echo.unaryEcho({}, { metadata })).message, "v");
    assert.equal((await collect(echo.serverStreamingEcho({}, { metadata })))[0]?.message, "v");
    assert.equal((await echo.clientStreamingEcho(from([{}]), { metadata })).message, "v");
    assert.equal((await collect(echo.bidirectionalStreamingEcho(from([{}]), { metadata })))[0]?.message, "v");
  });
});
