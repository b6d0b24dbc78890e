/**
 * One server, three protocols, one port: gRPC-Web and the Connect protocol served by the same
 * handlers as gRPC, checked with clients no one here wrote (@connectrpc/connect-node's Connect
 * and gRPC-Web transports, over HTTP/1.1 and HTTP/2, binary and JSON) and with plain HTTP (curl's
 * view: fetch and node:http) for what the specs say a server answers.
 */
import assert from "node:assert/strict";
import { Agent, request as httpRequest } from "node:http";
import type { Socket } from "node:net";
import * as http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { ConnectError, Code as ConnectCode, createClient as createConnectClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Echo } from "../../gen/echo/echo_pb.js";
import { RouteGuide } from "../../gen/routeguide/route_guide_pb.js";
import { Code, RpcError, errorDetail, type Interceptor, type Protocol } from "../../src/index.js";
import { BadRequestSchema } from "../../src/error-details.js";
import { routeGuideService } from "../../examples/routeguide/server.js";
import { echoStreams } from "../support/echo.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { collect, from, useHarness } from "../support/harness.js";

type Kind = { name: string; make: (baseUrl: string) => Transport; http: "1.1" | "2"; protocol: Protocol };

const kinds: Kind[] = [];
for (const http of ["1.1", "2"] as const) {
  for (const binary of [true, false]) {
    const format = binary ? "proto" : "json";
    kinds.push({ name: `Connect ${format} over HTTP/${http}`, http, protocol: "connect", make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: http, useBinaryFormat: binary }) });
    kinds.push({ name: `gRPC-Web ${format} over HTTP/${http}`, http, protocol: "grpc-web", make: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: http, useBinaryFormat: binary }) });
  }
}

const echoImpl = {
  ...echoStreams,
  unaryEcho(req: { message: string }) {
    return { message: req.message };
  },
};

async function caught(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConnectError, `expected a ConnectError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

for (const kind of kinds) {
  describe(`${kind.name}: @connectrpc/connect-node calls Rill`, () => {
    const h = useHarness({ transport: "http2" });
    const start = async () => {
      const { target } = await h.server((s) => s.add(Echo, echoImpl).add(RouteGuide, routeGuideService()));
      return { echo: createConnectClient(Echo, kind.make(`http://${target}`)), routes: createConnectClient(RouteGuide, kind.make(`http://${target}`)) };
    };

    test("unary and server streaming answer as over gRPC", async () => {
      const { echo, routes } = await start();
      assert.equal((await echo.unaryEcho({ message: "héllo" })).message, "héllo");
      assert.deepEqual((await collect(echo.serverStreamingEcho({ message: "n" }))).map((r) => r.message), ["n 0", "n 1", "n 2"]);
      const feature = await routes.getFeature({ latitude: 407838351, longitude: -746143763 });
      assert.equal(feature.name, "Patriots Path, Mendham, NJ 07945, USA");
      const listed = await collect(routes.listFeatures({ lo: { latitude: 400000000, longitude: -750000000 }, hi: { latitude: 420000000, longitude: -730000000 } }));
      assert.ok(listed.length > 10, `listed ${listed.length} features`);
    });

    if (kind.http === "2") {
      test("client and bidi streaming (HTTP/2: both directions at once)", async () => {
        const { echo } = await start();
        assert.equal((await echo.clientStreamingEcho(from([{ message: "a" }, { message: "b" }, { message: "c" }]))).message, "a b c");
        const got = await collect(echo.bidirectionalStreamingEcho(from([{ message: "x" }, { message: "y" }])));
        assert.deepEqual(got.map((r) => r.message), ["x", "y"]);
      });
    }

    test("errors keep code, message and typed details; an unknown method is UNIMPLEMENTED", async () => {
      const { target } = await h.server((s) =>
        s.add(Echo, {
          ...echoStreams,
          unaryEcho() {
            throw new RpcError(Code.InvalidArgument, "latitude out of range ±90°", {
              details: [errorDetail(BadRequestSchema, { fieldViolations: [{ field: "latitude", description: "too far north" }] })],
            });
          },
          async *serverStreamingEcho() {
            yield { message: "first" };
            throw new RpcError(Code.ResourceExhausted, "stream quota");
          },
        }),
      );
      const echo = createConnectClient(Echo, kind.make(`http://${target}`));
      const e = await caught(echo.unaryEcho({ message: "x" }));
      assert.equal(e.code, ConnectCode.InvalidArgument);
      assert.equal(e.rawMessage, "latitude out of range ±90°");
      assert.deepEqual(e.findDetails(BadRequestSchema).map((d) => d.fieldViolations[0]?.description), ["too far north"]);
      const got: string[] = [];
      const s = await caught((async () => {
        for await (const r of echo.serverStreamingEcho({ message: "x" })) got.push(r.message);
      })());
      assert.deepEqual(got, ["first"]);
      assert.equal(s.code, ConnectCode.ResourceExhausted);
      const routes = createConnectClient(RouteGuide, kind.make(`http://${target}`));
      assert.equal((await caught(routes.getFeature({}))).code, ConnectCode.Unimplemented);
    });

    test("metadata both ways, deadlines, and the protocol the handler and interceptors see", async () => {
      const seen: Protocol[] = [];
      const spy: Interceptor = (next) => async (req) => {
        seen.push(req.protocol);
        return next(req);
      };
      let deadline: number | undefined;
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            async unaryEcho(req, ctx) {
              deadline = ctx.deadline;
              seen.push(ctx.protocol);
              const question = ctx.requestMetadata.get("x-question");
              if (typeof question === "string") ctx.responseHeader.set("x-answer", question);
              ctx.responseTrailer.set("x-trailer-bin", new Uint8Array([1, 2, 3]));
              if (req.message === "slow") await new Promise((r) => setTimeout(r, 2000));
              return { message: req.message };
            },
          }),
        { interceptors: [spy] },
      );
      const echo = createConnectClient(Echo, kind.make(`http://${target}`));
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const t0 = Date.now();
      await echo.unaryEcho({ message: "m" }, { headers: { "x-question": "why" }, timeoutMs: 5000, onHeader: (hd) => (header = hd), onTrailer: (tr) => (trailer = tr) });
      assert.equal(header?.get("x-answer"), "why");
      assert.equal(trailer?.get("x-trailer-bin"), "AQID");
      assert.ok(deadline !== undefined && Math.abs(deadline - (t0 + 5000)) < 1000, `deadline ${deadline} vs ${t0 + 5000}`);
      assert.deepEqual(seen, [kind.protocol, kind.protocol]);
      assert.equal((await caught(echo.unaryEcho({ message: "slow" }, { timeoutMs: 100 }))).code, ConnectCode.DeadlineExceeded);
    });
  });
}

describe("connect-node calls Rill over TLS (ALPN h2 and http/1.1), with compression, and with GET", () => {
  const h = useHarness({ transport: "http2" });
  let certs: TestCerts;
  before(async () => {
    certs = await makeTestCerts();
  });
  after(() => certs.remove());

  for (const http of ["1.1", "2"] as const) {
    test(`TLS, HTTP/${http}: Connect (gzip both ways) and gRPC-Web`, async () => {
      let compressed: boolean | undefined;
      const { port } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            unaryEcho(req, ctx) {
              compressed = ctx.lastRequestCompressed;
              return { message: req.message };
            },
          }),
        { compression: "gzip" },
        { tls: { cert: certs.serverCert, key: certs.serverKey } },
      );
      const baseUrl = `https://localhost:${port}`;
      const nodeOptions = { ca: certs.caCert };
      const big = "compress me ".repeat(2000);
      const connect = createConnectClient(Echo, createConnectTransport({ baseUrl, httpVersion: http, nodeOptions, sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 1 }));
      assert.equal((await connect.unaryEcho({ message: big })).message, big);
      assert.equal(compressed, true);
      assert.deepEqual((await collect(connect.serverStreamingEcho({ message: big.slice(0, 100) }))).length, 3);
      const grpcWeb = createConnectClient(Echo, createGrpcWebTransport({ baseUrl, httpVersion: http, nodeOptions }));
      assert.equal((await grpcWeb.unaryEcho({ message: "tls" })).message, "tls");
    });
  }

  test("useHttpGet: a side-effect-free method is called with GET (binary, base64url in the query), a method with effects still POSTs", async () => {
    const { port } = await h.server((s) => s.add(Echo, echoImpl).add(RouteGuide, routeGuideService()));
    // The request lines connect-node writes (its interceptors see every request as a POST).
    const requestLines: string[] = [];
    const agent = new Agent({ keepAlive: false });
    const createConnection = agent.createConnection.bind(agent);
    agent.createConnection = ((options: object, callback: () => void) => {
      const socket = createConnection(options as never, callback) as Socket;
      const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        const line = String(chunk).split("\r\n")[0]!;
        if (/^(GET|POST) /.test(line)) requestLines.push(line.split(" ").slice(0, 2).join(" "));
        return write(chunk, ...rest);
      }) as Socket["write"];
      return socket;
    }) as Agent["createConnection"];
    const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1", useHttpGet: true, useBinaryFormat: true, nodeOptions: { agent } });
    const routes = createConnectClient(RouteGuide, transport);
    assert.equal((await routes.getFeature({ latitude: 407838351, longitude: -746143763 })).name, "Patriots Path, Mendham, NJ 07945, USA");
    assert.equal((await createConnectClient(Echo, transport).unaryEcho({ message: "post" })).message, "post");
    assert.equal(requestLines.length, 2, requestLines.join("\n"));
    assert.match(requestLines[0]!, /^GET \/routeguide\.RouteGuide\/GetFeature\?.*base64=1/);
    assert.equal(requestLines[1], "POST /grpc.examples.echo.Echo/UnaryEcho");
    agent.destroy();
  });
});

/** One HTTP/1.1 exchange with node:http (curl's view of the server). */
function http1(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: Uint8Array | string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method: options.method ?? "POST", path: options.path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("Connect and gRPC-Web over plain HTTP: what the specs say a server answers", () => {
  const h = useHarness({ transport: "http2" });
  const start = async (options = {}) => (await h.server((s) => s.add(Echo, echoImpl).add(RouteGuide, routeGuideService()), options)).port;

  test("a Connect unary JSON call is one POST, as curl sends it", async () => {
    const port = await start();
    const r = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json" }, body: '{"message":"curl"}' });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(r.body.toString()), { message: "curl" });
  });

  test("GET serves side-effect-free methods with an ETag, and answers a matching If-None-Match with 304", async () => {
    const port = await start();
    const query = `encoding=json&message=${encodeURIComponent('{"latitude":407838351,"longitude":-746143763}')}`;
    const r = await http1(port, { method: "GET", path: `/routeguide.RouteGuide/GetFeature?connect=v1&${query}` });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).name, "Patriots Path, Mendham, NJ 07945, USA");
    const etag = r.headers.etag as string;
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const again = await http1(port, { method: "GET", path: `/routeguide.RouteGuide/GetFeature?${query}`, headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.byteLength, 0);
    const unsafe = await http1(port, { method: "GET", path: `/grpc.examples.echo.Echo/UnaryEcho?encoding=json&message=%7B%7D` });
    assert.equal(unsafe.status, 405);
    assert.equal(unsafe.headers.allow, "POST");
  });

  test("Connect errors: HTTP status from the code, error JSON; a bad timeout is invalid_argument; the wrong form for the method is 415", async () => {
    const port = await start();
    const unknown = await http1(port, { path: "/no.Such/Method", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(unknown.status, 501);
    assert.deepEqual(JSON.parse(unknown.body.toString()), { code: "unimplemented", message: "unknown service no.Such" });
    const timeout = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json", "connect-timeout-ms": "soon" }, body: "{}" });
    assert.equal(timeout.status, 400);
    assert.equal(JSON.parse(timeout.body.toString()).code, "invalid_argument");
    const streamingAsUnary = await http1(port, { path: "/grpc.examples.echo.Echo/ServerStreamingEcho", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(streamingAsUnary.status, 415);
  });

  test("unknown content types get 415 naming what is served; gRPC over HTTP/1.1 gets 505; other methods 405", async () => {
    const port = await start();
    const xml = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "text/xml" }, body: "<x/>" });
    assert.equal(xml.status, 415);
    assert.match(xml.body.toString(), /gRPC-Web/);
    const grpc = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/grpc" }, body: Buffer.alloc(5) });
    assert.equal(grpc.status, 505);
    const put = await http1(port, { method: "PUT", path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(put.status, 405);
  });

  test("a Connect unary body over the receive limit is refused as resource_exhausted, with or without a length", async () => {
    const port = await start({ maxReceiveMessageBytes: 64 * 1024 });
    const big = JSON.stringify({ message: "x".repeat(100_000) });
    const withLength = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json" }, body: big });
    assert.equal(withLength.status, 429);
    assert.equal(JSON.parse(withLength.body.toString()).code, "resource_exhausted");
    const chunked = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json", "transfer-encoding": "chunked" }, body: big });
    assert.equal(chunked.status, 429);
  });

  test("gRPC-Web text: base64 both ways, the status in the body's trailers frame", async () => {
    const port = await start();
    const message = Buffer.from([0x0a, 0x02, 0x68, 0x69]); // EchoRequest{message:"hi"}
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.byteLength]), message]);
    const r = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/grpc-web-text", "x-grpc-web": "1" }, body: frame.toString("base64") });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/grpc-web-text+proto");
    const body = Buffer.from(r.body.toString(), "base64");
    assert.equal(body[0], 0);
    const len = body.readUInt32BE(1);
    assert.deepEqual(body.subarray(5, 5 + len), message);
    const trailer = body.subarray(5 + len);
    assert.equal(trailer[0], 0x80);
    assert.match(trailer.subarray(5).toString(), /grpc-status: 0\r\n/);
    const bad = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/grpc-web-text" }, body: "!!!!" });
    const badBody = Buffer.from(bad.body.toString(), "base64");
    assert.equal(badBody[0], 0x80);
    assert.match(badBody.subarray(5).toString(), /grpc-status: 13\r\n/);
  });

  test("CORS: nothing allowed by default; configured origins get the preflight and the exposed headers", async () => {
    const closed = await start();
    const refused = await http1(closed, { method: "OPTIONS", path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { origin: "https://app.example", "access-control-request-method": "POST" } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers["access-control-allow-origin"], undefined);
    const open = await start({ cors: { allowedOrigins: ["https://app.example"], exposedHeaders: ["x-answer"] } });
    const pre = await http1(open, { method: "OPTIONS", path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "https://app.example");
    assert.match(pre.headers["access-control-allow-headers"] as string, /connect-protocol-version/);
    const other = await http1(open, { method: "OPTIONS", path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    assert.equal(other.status, 403);
    const call = await http1(open, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json", origin: "https://app.example" }, body: "{}" });
    assert.equal(call.status, 200);
    assert.equal(call.headers["access-control-allow-origin"], "https://app.example");
    assert.match(call.headers["access-control-expose-headers"] as string, /grpc-status.*x-answer/);
  });

  test("GET and HEAD of paths that are no method go to the server's http handler (HTTP/1.1 and HTTP/2), else 404", async () => {
    const none = await start();
    assert.equal((await http1(none, { method: "GET", path: "/" })).status, 404);
    const port = await start({
      http: (req: { path: string; query: URLSearchParams }) => {
        if (req.path === "/") return { headers: { "content-type": "text/html" }, body: `<h1>hi ${req.query.get("who") ?? ""}</h1>` };
        if (req.path === "/boom") throw new Error("page bug");
        return undefined;
      },
    });
    const page = await http1(port, { method: "GET", path: "/?who=you" });
    assert.equal(page.status, 200);
    assert.equal(page.headers["content-type"], "text/html");
    assert.equal(page.body.toString(), "<h1>hi you</h1>");
    const head = await http1(port, { method: "HEAD", path: "/" });
    assert.equal(head.status, 200);
    assert.equal(head.body.byteLength, 0);
    assert.equal((await http1(port, { method: "GET", path: "/missing" })).status, 404);
    assert.equal((await http1(port, { method: "GET", path: "/boom" })).status, 500);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const st = session.request({ ":method": "GET", ":path": "/?who=h2" });
        let text = "";
        st.setEncoding("utf8");
        st.on("data", (c: string) => (text += c));
        st.on("end", () => resolve(text));
        st.on("error", reject);
      });
      assert.equal(body, "<h1>hi h2</h1>");
    } finally {
      session.close();
    }
  });

  test("with http1: false the server speaks HTTP/2 only, and says so to an HTTP/1.1 client", async () => {
    const port = await start({ http1: false });
    const r = await http1(port, { path: "/grpc.examples.echo.Echo/UnaryEcho", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(r.status, 505);
  });
});
