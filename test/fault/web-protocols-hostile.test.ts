/**
 * What a hostile or broken peer does to the server's gRPC-Web and Connect surface (HTTP/1.1 on
 * the gRPC port, and the protocol translations): connections that trickle or go silent, bodies
 * that lie about their length or never end, gzip bombs, malformed frames and queries, floods of
 * connections each holding a call, and a shutdown in the middle of all that. Each peer is
 * written byte by byte with a raw socket (test/support/h1-raw.ts); each test checks the answer
 * the specs call for, that memory stays bounded, and that other clients are still served.
 *
 * Specs: Connect https://connectrpc.com/docs/protocol; gRPC-Web
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md; HTTP/1.1 RFC 9112.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createGzip } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Echo, EchoRequestSchema, EchoResponseSchema } from "../../gen/echo/echo_pb.js";
import { RouteGuide } from "../../gen/routeguide/route_guide_pb.js";
import { routeGuideService } from "../../examples/routeguide/server.js";
import { type ServerOptions, type ServiceImpl } from "../../src/index.js";
import { percentile } from "../support/attacks.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { echoStreams } from "../support/echo.js";
import { chunked, connectStreamBody, envelope, grpcWebBody, h1Request, RawH1Client } from "../support/h1-raw.js";
import { eventually, steady, useHarness } from "../support/harness.js";

const MB = 1024 * 1024;
const unaryPath = "/grpc.examples.echo.Echo/UnaryEcho";
const serverStreamPath = "/grpc.examples.echo.Echo/ServerStreamingEcho";
const clientStreamPath = "/grpc.examples.echo.Echo/ClientStreamingEcho";
const json = { "content-type": "application/json" };

const echoRequest = (message: string): Uint8Array => toBinary(EchoRequestSchema, create(EchoRequestSchema, { message }));
const echoResponse = (bytes: Uint8Array): string => fromBinary(EchoResponseSchema, bytes).message;

/** The Echo service, counting how many handlers ran (a request that should never reach one must leave this at 0). */
function countingEcho(): { impl: ServiceImpl<typeof Echo>; ran: { count: number } } {
  const ran = { count: 0 };
  return {
    ran,
    impl: {
      ...echoStreams,
      unaryEcho(req) {
        ran.count++;
        return { message: req.message };
      },
      async clientStreamingEcho(reqs) {
        ran.count++;
        const all: string[] = [];
        for await (const r of reqs) all.push(r.message);
        return { message: all.join(" ") };
      },
    },
  };
}

/** Resolves after `ms` with undefined, or earlier with `p`'s value; the timer never outlives the race. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes `bytes` in pieces of `size`, one write per turn of the event loop (so the server sees them apart). */
async function trickle(c: RawH1Client, bytes: Buffer, size: number): Promise<void> {
  for (let i = 0; i < bytes.byteLength; i += size) {
    if (!(await c.write(bytes.subarray(i, i + size)))) return;
    await new Promise((r) => setImmediate(r));
  }
}

/** The Connect error JSON in a response body. */
function connectError(body: Buffer): { code: string; message?: string } {
  return JSON.parse(body.toString("utf8")) as { code: string; message?: string };
}

/** Heap plus ArrayBuffer bytes (request bodies live in Buffers, outside the JS heap). */
function memoryNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Samples `memoryNow()` every 5 ms while `during` runs; resolves with its value and the peak growth over the start. */
async function peakMemory<T>(during: () => Promise<T>): Promise<{ value: T; growth: number }> {
  const base = memoryNow();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, memoryNow())), 5);
  try {
    const value = await during();
    peak = Math.max(peak, memoryNow());
    return { value, growth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

/** `mib` MiB of zeros gzipped (about 1 KB per MiB), made in pieces so the test itself never holds the inflated bytes. */
async function gzipBomb(mib: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on("data", (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => gz.once("end", resolve).once("error", reject));
  const zeros = Buffer.alloc(MB);
  for (let i = 0; i < mib; i++) if (!gz.write(zeros)) await new Promise((r) => gz.once("drain", r));
  gz.end();
  await done;
  return Buffer.concat(out);
}

describe("HTTP/1.1 connections that stall before their request is complete", () => {
  const h = useHarness({ transport: "http2" });
  const start = async (options: ServerOptions = {}) => {
    const { impl, ran } = countingEcho();
    const started = await h.server((s) => s.add(Echo, impl), { handshakeTimeoutMs: 500, ...options });
    return { ...started, ran };
  };

  test("a connection that sends nothing is closed at handshakeTimeoutMs", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      await c.connected();
      const t0 = performance.now();
      const closedAt = await c.closedWithin(3000);
      assert.ok(closedAt !== undefined, "a silent connection was still open 3 s after connecting (handshakeTimeoutMs 500)");
      const took = closedAt - t0;
      assert.ok(took >= 400 && took < 2000, `closed after ${took.toFixed(0)} ms`);
    } finally {
      c.close();
    }
  });

  test("a client trickling its request headers (slowloris) is closed within the handshake timeout", async () => {
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    const head = h1Request("POST", unaryPath, { ...json, "x-padding": "p".repeat(200) }, undefined).subarray(0, -2);
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < head.byteLength) void c.write(head.subarray(sent, ++sent));
    }, 20);
    try {
      await c.connected();
      const t0 = performance.now();
      // 20 ms a byte: the headers would take ~6 s, far past the 500 ms the server allows.
      const closedAt = await c.closedWithin(3000);
      assert.ok(closedAt !== undefined, `a client trickling its headers was still connected 3 s later (${sent} bytes sent; handshakeTimeoutMs 500)`);
      assert.ok(closedAt - t0 < 2000, `closed after ${(closedAt - t0).toFixed(0)} ms`);
      assert.equal(ran.count, 0);
    } finally {
      clearInterval(timer);
      c.close();
    }
  });

  test("a request line cut after three bytes, then silence, is closed within the handshake timeout", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      await c.connected();
      // Enough for the sniffer to hand the socket to node:http, which then waits for the rest.
      await c.write("POS");
      const t0 = performance.now();
      const closedAt = await c.closedWithin(3000);
      assert.ok(closedAt !== undefined, "a connection that sent 'POS' and stopped was still open 3 s later (handshakeTimeoutMs 500)");
      assert.ok(closedAt - t0 < 2000, `closed after ${(closedAt - t0).toFixed(0)} ms`);
    } finally {
      c.close();
    }
  });

  test("shutdown({ graceMs }) resolves while a client is half-way through its request headers", async () => {
    const { port, server } = await start({ handshakeTimeoutMs: 60_000 });
    const c = new RawH1Client(port);
    try {
      await c.connected();
      await c.write("POST /grpc.examples.echo.Echo/UnaryEcho HTTP/1.1\r\nhost: 127.0.0.1\r\n");
      // Let node:http take the socket from the sniffer.
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      const done = await within(server.shutdown({ graceMs: 300 }).then(() => performance.now()), 3000);
      assert.ok(done !== undefined, "shutdown({ graceMs: 300 }) had not resolved 3 s later: the half-sent request holds it");
      assert.ok(done - t0 < 2000, `shutdown took ${(done - t0).toFixed(0)} ms`);
      assert.ok((await c.closedWithin(1000)) !== undefined, "the connection is still open after shutdown");
    } finally {
      c.close();
    }
  });

  test("handshakeTimeoutMs: Infinity (documented as 'no timeout') still listens and serves HTTP/1.1 and HTTP/2", async () => {
    const { port, target } = await start({ handshakeTimeoutMs: Number.POSITIVE_INFINITY });
    const silent = new RawH1Client(port);
    try {
      await silent.connected();
      assert.equal(await silent.closedWithin(300), undefined, "a silent connection was closed at once although there is no handshake timeout");
      const echo = h.client(Echo, target);
      assert.equal((await echo.unaryEcho({ message: "h2" }, { timeoutMs: 5000 })).message, "h2");
      const c = new RawH1Client(port);
      try {
        await c.write(h1Request("POST", unaryPath, json, '{"message":"h1"}'));
        const r = await c.response();
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.body.toString()), { message: "h1" });
      } finally {
        c.close();
      }
    } finally {
      silent.close();
    }
  });
});

describe("HTTP/1.1 over TLS (ALPN http/1.1): stalled connections", () => {
  const h = useHarness({ transport: "http2" });
  let certs: TestCerts;
  before(async () => {
    certs = await makeTestCerts();
  });
  after(() => certs.remove());

  test("a client that finishes the TLS handshake and then sends nothing, or trickles its headers, is closed within the handshake timeout", async () => {
    const { port } = await h.server((s) => s.add(Echo, countingEcho().impl), { handshakeTimeoutMs: 500 }, { tls: { cert: certs.serverCert, key: certs.serverKey } });
    const tls = { ca: certs.caCert, servername: "localhost", ALPNProtocols: ["http/1.1"] };
    const silent = new RawH1Client(port, tls);
    const slow = new RawH1Client(port, tls);
    const head = h1Request("POST", unaryPath, { ...json, "x-padding": "p".repeat(200) }).subarray(0, -2);
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.all([silent.connected(), slow.connected()]);
      assert.equal((silent.socket as import("node:tls").TLSSocket).alpnProtocol, "http/1.1");
      timer = setInterval(() => {
        if (sent < head.byteLength) void slow.write(head.subarray(sent, ++sent));
      }, 20);
      const [a, b] = await Promise.all([silent.closedWithin(3000), slow.closedWithin(3000)]);
      assert.ok(a !== undefined, "a TLS HTTP/1.1 connection that sent nothing was still open 3 s after its handshake (handshakeTimeoutMs 500)");
      assert.ok(b !== undefined, `a TLS HTTP/1.1 client trickling its headers was still open 3 s later (${sent} bytes sent)`);
    } finally {
      clearInterval(timer);
      silent.close();
      slow.close();
    }
  });
});

describe("Connect unary bodies that lie, stall or are too large", () => {
  const h = useHarness({ transport: "http2" });
  const start = async (options: ServerOptions = {}) => {
    const { impl, ran } = countingEcho();
    const started = await h.server((s) => s.add(Echo, impl), options);
    return { ...started, ran };
  };

  test("a client silent mid-body is answered deadline_exceeded (504) at its connect-timeout-ms, with or without a content-length", async () => {
    const { port, server, ran } = await start();
    for (const framing of ["content-length", "chunked"] as const) {
      const c = new RawH1Client(port);
      try {
        const headers = { ...json, "connect-timeout-ms": "300", ...(framing === "chunked" ? { "transfer-encoding": "chunked" } : { "content-length": "100" }) };
        const t0 = performance.now();
        await c.write(h1Request("POST", unaryPath, headers, framing === "chunked" ? chunked(['{"mess'], false) : '{"mess'));
        const r = await c.response(3000);
        const took = performance.now() - t0;
        assert.equal(r.status, 504, framing);
        assert.equal(connectError(r.body).code, "deadline_exceeded");
        assert.ok(took >= 250 && took < 2000, `${framing}: answered after ${took.toFixed(0)} ms`);
        await eventually(() => server.activeCalls === 0, 2000, "the call to end");
      } finally {
        c.close();
      }
    }
    assert.equal(ran.count, 0);
  });

  test("a content-length far over maxReceiveMessageBytes is refused (429 resource_exhausted) before the body is sent", async () => {
    const { port, ran } = await start({ maxReceiveMessageBytes: 64 * 1024 });
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", unaryPath, { ...json, "content-length": String(100 * MB) }, Buffer.alloc(16 * 1024, 0x20)));
      const r = await c.response(3000);
      assert.equal(r.status, 429);
      assert.equal(connectError(r.body).code, "resource_exhausted");
      assert.match(connectError(r.body).message ?? "", /maxReceiveMessageBytes/);
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });

  test("a chunked body without a length, sent without end: refused (429) once past the limit, with memory bounded", async () => {
    const limit = MB;
    const { port, ran } = await start({ maxReceiveMessageBytes: limit });
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", unaryPath, { ...json, "transfer-encoding": "chunked" }));
      const piece = chunked([Buffer.alloc(64 * 1024, 0x20)], false);
      let sent = 0;
      const { value: r, growth } = await peakMemory(async () => {
        // Up to 64 MiB: the server must answer long before.
        while (!c.hasResponse && !c.closed && sent < 64 * MB) {
          if (!(await c.write(piece))) break;
          sent += piece.byteLength;
        }
        return c.response(3000);
      });
      console.log(`# chunked body over a 1 MiB limit: answered after ${(sent / MB).toFixed(1)} MiB written, memory +${(growth / MB).toFixed(1)} MiB`);
      assert.equal(r.status, 429);
      assert.equal(connectError(r.body).code, "resource_exhausted");
      // What was written before the answer arrived: the limit, plus what the kernel's socket buffers hold.
      assert.ok(sent < 24 * MB, `the answer came after ${(sent / MB).toFixed(1)} MiB`);
      assert.ok(growth < 32 * MB, `memory grew ${(growth / MB).toFixed(1)} MiB`);
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });

  test("a content-length larger than the body, then the client leaves: the call ends, no handler runs, others are served", async () => {
    const { port, server, ran } = await start();
    const c = new RawH1Client(port);
    await c.write(h1Request("POST", unaryPath, { ...json, "content-length": "1000" }, '{"message":"cut'));
    await eventually(() => server.activeCalls === 1, 2000, "the call to start");
    c.close();
    await eventually(() => server.activeCalls === 0, 2000, "the call to end when its client left");
    assert.equal(ran.count, 0);
    const next = new RawH1Client(port);
    try {
      await next.write(h1Request("POST", unaryPath, json, '{"message":"next"}'));
      const r = await next.response();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { message: "next" });
    } finally {
      next.close();
    }
  });

  test("chunked encoding with a (lying) content-length is refused as a bad request (RFC 9112 §6.1), and no call starts", async () => {
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    try {
      const body = '{"message":"smuggled"}';
      await c.write(h1Request("POST", unaryPath, { ...json, "content-length": "5", "transfer-encoding": "chunked" }, chunked([body])));
      const r = await c.response();
      assert.equal(r.status, 400);
      assert.ok((await c.closedWithin(2000)) !== undefined, "the connection stayed open after a request-smuggling shape");
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });

  test("a gzip bomb (128 MiB of zeros in ~130 KB) as a Connect unary body is resource_exhausted, with memory bounded", async () => {
    const bomb = await gzipBomb(128);
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    try {
      const { value: r, growth } = await peakMemory(async () => {
        await c.write(h1Request("POST", unaryPath, { "content-type": "application/proto", "content-encoding": "gzip" }, bomb));
        return c.response(10_000);
      });
      console.log(`# gzip bomb (${(bomb.byteLength / 1024).toFixed(0)} KB → 128 MiB): memory +${(growth / MB).toFixed(1)} MiB`);
      assert.equal(r.status, 429);
      assert.equal(connectError(r.body).code, "resource_exhausted");
      assert.ok(growth < 48 * MB, `memory grew ${(growth / MB).toFixed(1)} MiB`);
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });

  test("a gzip bomb in a Connect streaming envelope ends the stream with resource_exhausted", async () => {
    const bomb = await gzipBomb(64);
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", clientStreamPath, { "content-type": "application/connect+proto", "connect-content-encoding": "gzip" }, envelope(bomb, 0x01)));
      const r = await c.response(10_000);
      assert.equal(r.status, 200);
      assert.equal(connectStreamBody(r.body).end?.error?.code, "resource_exhausted");
      assert.ok(ran.count <= 1, "the handler read a message out of the bomb");
    } finally {
      c.close();
    }
  });

  test("an unknown compression is unimplemented, naming the ones supported (unary: 501 + accept-encoding; streaming: end-stream + connect-accept-encoding; gRPC-Web: grpc-status 12)", async () => {
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", unaryPath, { ...json, "content-encoding": "br" }, "\x0b\x07\x80{}\x03"));
      const unary = await c.response();
      assert.equal(unary.status, 501);
      assert.equal(connectError(unary.body).code, "unimplemented");
      assert.match(unary.headers["accept-encoding"] ?? "", /gzip/);

      await c.write(h1Request("POST", clientStreamPath, { "content-type": "application/connect+json", "connect-content-encoding": "snappy" }, envelope(Buffer.from("xx"), 0x01)));
      const streaming = await c.response();
      assert.equal(streaming.status, 200);
      assert.equal(connectStreamBody(streaming.body).end?.error?.code, "unimplemented");
      assert.match(streaming.headers["connect-accept-encoding"] ?? "", /gzip/);

      await c.write(h1Request("POST", unaryPath, { "content-type": "application/grpc-web+proto", "grpc-encoding": "snappy" }, envelope(Buffer.from("xx"), 0x01)));
      const web = await c.response();
      assert.equal(web.status, 200);
      assert.equal(grpcWebBody(web.body).trailers?.["grpc-status"], "12");
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });

  test("connect-timeout-ms out of range is invalid_argument (400); the largest valid value (10 digits) is honoured, not an instant deadline", async () => {
    let deadline: number | undefined;
    const { port } = await h.server((s) =>
      s.add(Echo, {
        ...echoStreams,
        unaryEcho(req, ctx) {
          deadline = ctx.deadline;
          return { message: req.message };
        },
      }),
    );
    const c = new RawH1Client(port);
    try {
      for (const bad of ["12345678901", "-1", "1.5", "1e3", "0x10", "10 ms"]) {
        await c.write(h1Request("POST", unaryPath, { ...json, "connect-timeout-ms": bad }, "{}"));
        const r = await c.response();
        assert.equal(r.status, 400, `connect-timeout-ms ${JSON.stringify(bad)}`);
        assert.equal(connectError(r.body).code, "invalid_argument");
      }
      await c.write(h1Request("POST", clientStreamPath, { "content-type": "application/connect+json", "connect-timeout-ms": "12345678901" }, envelope(Buffer.from("{}"))));
      const streaming = await c.response();
      assert.equal(connectStreamBody(streaming.body).end?.error?.code, "invalid_argument");
      const t0 = Date.now();
      await c.write(h1Request("POST", unaryPath, { ...json, "connect-timeout-ms": "9999999999" }, '{"message":"long"}'));
      const ok = await c.response();
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body.toString()), { message: "long" });
      assert.ok(deadline !== undefined && deadline - t0 > 9_999_000_000, `deadline ${String(deadline)}`);
    } finally {
      c.close();
    }
  });
});

describe("HTTP/1.1 framing a broken or unusual client sends", () => {
  const h = useHarness({ transport: "http2" });
  const start = async () => {
    const { impl, ran } = countingEcho();
    const started = await h.server((s) => s.add(Echo, impl).add(RouteGuide, routeGuideService()));
    return { ...started, ran };
  };

  test("headers over node's 16 KiB limit get a 4xx (readable, not a reset) and the connection is closed; others are served", async () => {
    const { port, target, ran } = await start();
    for (const headers of [{ "x-huge": "a".repeat(64 * 1024) }, Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`x-h-${i}`, "vvvvvvvv"]))]) {
      const c = new RawH1Client(port);
      try {
        await c.write(h1Request("POST", unaryPath, { ...json, ...headers }, "{}"));
        const r = await c.response();
        assert.ok(r.status === 431 || r.status === 400, `status ${r.status}`);
        assert.ok((await c.closedWithin(2000)) !== undefined);
      } finally {
        c.close();
      }
    }
    assert.equal(ran.count, 0);
    assert.equal((await h.client(Echo, target).unaryEcho({ message: "fine" })).message, "fine");
  });

  test("invalid bytes in header names and values are a 400 and close the connection; no call starts", async () => {
    const { port, ran } = await start();
    for (const raw of ["x-a: b\x00c", "bad name: v", "x-a: line\rbreak", "x-\x7f: v"]) {
      const c = new RawH1Client(port);
      try {
        const head = `POST ${unaryPath} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${raw}\r\ncontent-length: 2\r\n\r\n{}`;
        await c.write(head);
        const r = await c.response();
        assert.equal(r.status, 400, JSON.stringify(raw));
        assert.ok((await c.closedWithin(2000)) !== undefined);
      } finally {
        c.close();
      }
    }
    assert.equal(ran.count, 0);
  });

  test("header values with bytes past ASCII, and a bad -bin value, do not break the call", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      const head = `POST ${unaryPath} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-latin: caf\xe9\r\nx-data-bin: !!not base64!!\r\ngrpc-status: 3\r\ncontent-length: 16\r\n\r\n{"message":"ok"}`;
      await c.write(head);
      const r = await c.response();
      assert.ok(r.status === 200 || r.status === 400, `status ${r.status}`);
      if (r.status === 200) assert.deepEqual(JSON.parse(r.body.toString()), { message: "ok" });
      else assert.equal(connectError(r.body).code, "invalid_argument");
    } finally {
      c.close();
    }
  });

  test("pipelined requests (Connect unary, gRPC-Web, Connect GET, an error) in one write are answered in order", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      const get = `/routeguide.RouteGuide/GetFeature?encoding=json&message=${encodeURIComponent('{"latitude":407838351,"longitude":-746143763}')}`;
      await c.write(
        Buffer.concat([
          h1Request("POST", unaryPath, json, '{"message":"one"}'),
          h1Request("POST", unaryPath, { "content-type": "application/grpc-web+proto" }, envelope(echoRequest("two"))),
          h1Request("GET", get),
          h1Request("POST", "/no.Such/Method", json, "{}"),
          h1Request("POST", unaryPath, json, '{"message":"five"}'),
        ]),
      );
      const one = await c.response();
      assert.deepEqual(JSON.parse(one.body.toString()), { message: "one" });
      const two = grpcWebBody((await c.response()).body);
      assert.equal(echoResponse(two.messages[0]!), "two");
      assert.equal(two.trailers?.["grpc-status"], "0");
      const three = await c.response();
      assert.equal(three.status, 200);
      assert.equal(JSON.parse(three.body.toString()).name, "Patriots Path, Mendham, NJ 07945, USA");
      const four = await c.response();
      assert.equal(four.status, 501);
      const five = await c.response();
      assert.deepEqual(JSON.parse(five.body.toString()), { message: "five" });
    } finally {
      c.close();
    }
  });

  test("200 pipelined requests in one write are all answered, in order", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      await c.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => h1Request("POST", unaryPath, json, `{"message":"m${i}"}`))));
      for (let i = 0; i < 200; i++) {
        const r = await c.response();
        assert.deepEqual(JSON.parse(r.body.toString()), { message: `m${i}` });
      }
    } finally {
      c.close();
    }
  });

  test("HTTP/1.0 without Host is served, and the server closes the connection after the answer", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", unaryPath, json, '{"message":"old"}', { version: "1.0", host: false }));
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { message: "old" });
      assert.ok((await c.closedWithin(2000)) !== undefined, "an HTTP/1.0 connection without keep-alive stayed open");
    } finally {
      c.close();
    }
  });

  test("Expect: 100-continue gets 100 Continue, then the call's answer", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    try {
      const body = '{"message":"continued"}';
      await c.write(h1Request("POST", unaryPath, { ...json, expect: "100-continue", "content-length": String(body.length) }));
      const interim = await c.response();
      assert.equal(interim.status, 100);
      await c.write(body);
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { message: "continued" });
    } finally {
      c.close();
    }
  });

  test("Connect GET: malformed queries get the spec's answers (400 / 415 / 501), a huge query a 4xx, and no call runs", async () => {
    const { port, ran } = await start();
    const c = new RawH1Client(port);
    const path = "/routeguide.RouteGuide/GetFeature";
    try {
      const cases: Array<[string, number, string | undefined]> = [
        ["encoding=proto&base64=1&message=%25%25%25", 400, "invalid_argument"], // not base64
        ["message=%7B%7D", 400, "invalid_argument"], // no encoding
        ["connect=v2&encoding=json&message=%7B%7D", 400, "invalid_argument"], // unknown protocol version
        ["encoding=yaml&message=a", 415, undefined], // a codec the server lacks
        ["encoding=json&message=%7B%7D&compression=snappy", 501, "unimplemented"],
        ["encoding=proto&base64=1&message=AAAA&compression=gzip", 400, undefined], // not gzip data: an error, not a crash
      ];
      for (const [query, status, code] of cases) {
        await c.write(h1Request("GET", `${path}?${query}`));
        const r = await c.response();
        if (query.includes("compression=gzip")) {
          assert.ok(r.status >= 400 && r.status < 600, `${query}: ${r.status}`);
          continue;
        }
        assert.equal(r.status, status, query);
        if (code !== undefined) assert.equal(connectError(r.body).code, code, query);
      }
      const huge = new RawH1Client(port);
      try {
        await huge.write(h1Request("GET", `${path}?encoding=json&message=${"a".repeat(100 * 1024)}`));
        const r = await huge.response();
        assert.ok(r.status >= 400 && r.status < 500, `huge query: ${r.status}`);
      } finally {
        huge.close();
      }
      assert.equal(ran.count, 0);
    } finally {
      c.close();
    }
  });
});

describe("gRPC-Web and Connect streaming request bodies that break the framing", () => {
  const h = useHarness({ transport: "http2" });
  const start = async () => {
    const { impl, ran } = countingEcho();
    const started = await h.server((s) => s.add(Echo, impl));
    return { ...started, ran };
  };
  const web = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
  const webText = { "content-type": "application/grpc-web-text+proto", "x-grpc-web": "1" };

  /** One gRPC-Web request on a fresh connection: its HTTP status and its trailers frame. */
  async function webCall(port: number, headers: Record<string, string>, body: Buffer | string, text = false) {
    const c = new RawH1Client(port);
    try {
      await c.write(h1Request("POST", unaryPath, headers, body));
      const r = await c.response();
      return { status: r.status, ...grpcWebBody(r.body, text) };
    } finally {
      c.close();
    }
  }

  test("gRPC-Web: a frame cut short by the end of the body is INTERNAL (13) in the trailers frame; no handler runs", async () => {
    const { port, ran } = await start();
    const full = envelope(echoRequest("truncated"));
    const r = await webCall(port, web, full.subarray(0, full.byteLength - 3));
    assert.equal(r.status, 200);
    assert.equal(r.trailers?.["grpc-status"], "13");
    assert.equal(r.messages.length, 0);
    const half = await webCall(port, web, full.subarray(0, 3));
    assert.equal(half.trailers?.["grpc-status"], "13");
    assert.equal(ran.count, 0);
  });

  test("gRPC-Web: a trailers frame (flag 0x80) in a request is INTERNAL; so is a second message to a unary method", async () => {
    const { port, ran } = await start();
    const r = await webCall(port, web, Buffer.concat([envelope(echoRequest("a")), envelope(Buffer.from("grpc-status: 0\r\n"), 0x80)]));
    assert.equal(r.trailers?.["grpc-status"], "13");
    const two = await webCall(port, web, Buffer.concat([envelope(echoRequest("a")), envelope(echoRequest("b"))]));
    assert.equal(two.trailers?.["grpc-status"], "13");
    assert.equal(ran.count, 0);
  });

  test("gRPC-Web text: garbage or padding inside a quantum is INTERNAL; separately padded pieces are valid base64 and served", async () => {
    const { port, ran } = await start();
    const frame = envelope(echoRequest("padded"));
    for (const body of [`${frame.toString("base64")}!!`, "AAAA=AAA", `${frame.subarray(0, 4).toString("base64")}A=B`, "AAA"]) {
      const r = await webCall(port, webText, body, true);
      assert.equal(r.status, 200, body);
      assert.equal(r.trailers?.["grpc-status"], "13", body);
    }
    assert.equal(ran.count, 0);
    // Each piece padded on its own (a client that base64-encodes every write), with line breaks between.
    const pieces = [frame.subarray(0, 1), frame.subarray(1, 5), frame.subarray(5, 7), frame.subarray(7)].map((p) => p.toString("base64")).join("\r\n");
    const ok = await webCall(port, webText, pieces, true);
    assert.equal(ok.trailers?.["grpc-status"], "0");
    assert.equal(echoResponse(ok.messages[0]!), "padded");
  });

  test("gRPC-Web binary and text, and Connect streaming: a request split at every byte (one chunk each) is served", async () => {
    const { port } = await start();
    const frame = envelope(echoRequest("split"));
    for (const [headers, body, text] of [
      [web, frame, false],
      [webText, Buffer.from(frame.toString("base64"), "latin1"), true],
    ] as const) {
      const c = new RawH1Client(port);
      try {
        await c.write(h1Request("POST", unaryPath, { ...headers, "transfer-encoding": "chunked" }));
        for (let i = 0; i < body.byteLength; i++) {
          await c.write(chunked([body.subarray(i, i + 1)], false));
          await new Promise((r) => setImmediate(r));
        }
        await c.write("0\r\n\r\n");
        const r = grpcWebBody((await c.response()).body, text);
        assert.equal(r.trailers?.["grpc-status"], "0", text ? "text" : "binary");
        assert.equal(echoResponse(r.messages[0]!), "split");
      } finally {
        c.close();
      }
    }
    const c = new RawH1Client(port);
    try {
      const body = Buffer.concat([envelope(Buffer.from('{"message":"a"}')), envelope(Buffer.from('{"message":"b"}'))]);
      await c.write(h1Request("POST", clientStreamPath, { "content-type": "application/connect+json", "transfer-encoding": "chunked" }));
      await trickle(c, chunked(Array.from(body, (b) => Buffer.from([b]))), 3);
      const r = connectStreamBody((await c.response()).body);
      assert.deepEqual(JSON.parse(r.messages[0]!.toString()), { message: "a b" });
      assert.deepEqual(r.end, {});
    } finally {
      c.close();
    }
  });

  test("Connect streaming: an end-stream envelope (flag 0x02) or a truncated envelope in a request ends the call INTERNAL", async () => {
    const { port } = await start();
    const c = new RawH1Client(port);
    const headers = { "content-type": "application/connect+json" };
    try {
      await c.write(h1Request("POST", serverStreamPath, headers, Buffer.concat([envelope(Buffer.from('{"message":"x"}')), envelope(Buffer.from("{}"), 0x02)])));
      const r = await c.response();
      assert.equal(r.status, 200);
      const end = connectStreamBody(r.body);
      assert.equal(end.end?.error?.code, "internal");
      assert.equal(end.messages.length, 0, "the handler answered a request that carried an end-stream flag");
      await c.write(h1Request("POST", clientStreamPath, headers, envelope(Buffer.from('{"message":"cut"}')).subarray(0, 9)));
      const cut = await c.response();
      assert.equal(connectStreamBody(cut.body).end?.error?.code, "internal");
    } finally {
      c.close();
    }
  });
});

describe("one client's trouble is not another's", () => {
  const h = useHarness({ transport: "http2" });

  test("200 HTTP/1.1 connections each holding a call mid-body: a gRPC client on HTTP/2 and a Connect client beside them are served", async () => {
    const { impl } = countingEcho();
    const { port, target, server } = await h.server((s) => s.add(Echo, impl));
    const stuck: RawH1Client[] = [];
    try {
      for (let i = 0; i < 200; i++) stuck.push(new RawH1Client(port));
      // Half a Connect unary body, or a Connect streaming envelope that promises 100 bytes and brings 6.
      const partialEnvelope = envelope(Buffer.alloc(100, 0x20)).subarray(0, 11);
      await Promise.all(
        stuck.map((c, i) =>
          c.write(
            i % 2 === 0
              ? h1Request("POST", unaryPath, { ...json, "content-length": "1000" }, '{"mess')
              : h1Request("POST", clientStreamPath, { "content-type": "application/connect+json", "content-length": "1000" }, partialEnvelope),
          ),
        ),
      );
      await eventually(() => server.activeCalls === 200, 5000, "200 calls to be open");
      const echo = h.client(Echo, target);
      const latencies: number[] = [];
      const until = performance.now() + 1000;
      while (performance.now() < until && latencies.length < 5000) {
        const t0 = performance.now();
        assert.equal((await echo.unaryEcho({ message: "beside" }, { timeoutMs: 5000 })).message, "beside");
        latencies.push(performance.now() - t0);
      }
      const side = new RawH1Client(port);
      try {
        await side.write(h1Request("POST", unaryPath, json, '{"message":"h1 beside"}'));
        assert.deepEqual(JSON.parse((await side.response()).body.toString()), { message: "h1 beside" });
      } finally {
        side.close();
      }
      console.log(`# beside 200 stuck HTTP/1.1 calls: ${latencies.length} gRPC calls, p99 ${percentile(latencies, 99).toFixed(2)} ms`);
      assert.ok(percentile(latencies, 99) < 500);
    } finally {
      for (const c of stuck) c.close();
    }
    await eventually(() => server.activeCalls === 0, 5000, "the stuck calls to end when their clients left");
  });

  test("an HTTP/1.1 client that never reads its server stream: the handler is held back (bounded buffering) and others are served", async () => {
    let produced = 0;
    let finished = false;
    const { port, target, server } = await h.server((s) =>
      s.add(Echo, {
        ...echoStreams,
        unaryEcho: (req) => ({ message: req.message }),
        async *serverStreamingEcho() {
          try {
            for (;;) {
              produced++;
              yield { message: "x".repeat(64 * 1024) };
            }
          } finally {
            finished = true;
          }
        },
      }),
    );
    const c = new RawH1Client(port);
    try {
      c.socket.pause();
      await c.write(h1Request("POST", serverStreamPath, { "content-type": "application/connect+json" }, envelope(Buffer.from("{}"))));
      const held = await steady(() => produced, 300, 10_000, "messages produced");
      console.log(`# unread HTTP/1.1 server stream: the handler stopped after ${held} messages of 64 KiB (${((held * 64) / 1024).toFixed(1)} MiB)`);
      assert.ok(held * 64 * 1024 < 48 * MB, `the handler produced ${held} messages for a client that reads nothing`);
      assert.equal((await h.client(Echo, target).unaryEcho({ message: "other" })).message, "other");
    } finally {
      c.close();
    }
    await eventually(() => finished && server.activeCalls === 0, 3000, "the stream's handler to be stopped when its client left");
  });
});

describe("shutdown with HTTP/1.1 keep-alive connections and Connect calls in flight", () => {
  const h = useHarness({ transport: "http2" });

  /** A server whose unary handler waits for `release()` when asked to ("wait"). */
  async function gated() {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let waiting = 0;
    const started = await h.server((s) =>
      s.add(Echo, {
        ...echoStreams,
        async unaryEcho(req, ctx) {
          if (req.message === "wait") {
            waiting++;
            await Promise.race([gate, new Promise((r) => ctx.signal.addEventListener("abort", r))]);
          }
          return { message: req.message };
        },
      }),
    );
    return { ...started, release, waiting: () => waiting };
  }

  test("shutdown({ graceMs }) closes idle keep-alive sockets at once, lets an in-flight call finish, then resolves", async () => {
    const { port, server, release, waiting } = await gated();
    const idle = new RawH1Client(port);
    const busy = new RawH1Client(port);
    try {
      await idle.write(h1Request("POST", unaryPath, json, '{"message":"first"}'));
      assert.equal((await idle.response()).status, 200);
      await busy.write(h1Request("POST", unaryPath, json, '{"message":"wait"}'));
      await eventually(() => waiting() === 1, 2000, "the call to reach its handler");
      let resolved = false;
      const done = server.shutdown({ graceMs: 10_000 }).then(() => (resolved = true));
      const t0 = performance.now();
      const idleClosed = await idle.closedWithin(2000);
      assert.ok(idleClosed !== undefined, "an idle keep-alive connection stayed open after shutdown began");
      assert.ok(idleClosed - t0 < 1000);
      assert.equal(busy.closed, false, "the connection of a call in flight was closed");
      assert.equal(resolved, false);
      release();
      const r = await busy.response();
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { message: "wait" });
      assert.ok((await busy.closedWithin(2000)) !== undefined, "the in-flight call's connection stayed open after its answer");
      assert.ok((await within(done, 3000)) === true, "shutdown did not resolve after its last call finished");
    } finally {
      release();
      idle.close();
      busy.close();
    }
  });

  test("the answer to a call in flight when shutdown begins says connection: close (RFC 9112 §9.6), since the server closes right after it", async () => {
    const { port, server, release, waiting } = await gated();
    const busy = new RawH1Client(port);
    try {
      await busy.write(h1Request("POST", unaryPath, json, '{"message":"wait"}'));
      await eventually(() => waiting() === 1, 2000, "the call to reach its handler");
      const done = server.shutdown({ graceMs: 10_000 });
      release();
      const r = await busy.response();
      assert.equal(r.status, 200);
      const closed = await busy.closedWithin(2000);
      // A client told keep-alive reuses the connection for its next request, which the close then loses (a POST is not retried).
      assert.equal(r.headers.connection?.toLowerCase(), "close", `the answer said connection: ${String(r.headers.connection)}, and the server then ${closed === undefined ? "kept" : "closed"} the connection`);
      await within(done, 3000);
    } finally {
      release();
      busy.close();
    }
  });

  test("a call still running when graceMs runs out is ended and its connection closed; shutdown resolves", async () => {
    const { port, server, waiting, release } = await gated();
    const busy = new RawH1Client(port);
    try {
      await busy.write(h1Request("POST", unaryPath, json, '{"message":"wait"}'));
      await eventually(() => waiting() === 1, 2000, "the call to reach its handler");
      const t0 = performance.now();
      const done = await within(server.shutdown({ graceMs: 300 }).then(() => performance.now()), 5000);
      assert.ok(done !== undefined, "shutdown did not resolve");
      assert.ok(done - t0 >= 250 && done - t0 < 3000, `shutdown took ${(done - t0).toFixed(0)} ms`);
      assert.ok((await busy.closedWithin(2000)) !== undefined);
      assert.equal(server.activeCalls, 0);
    } finally {
      release();
      busy.close();
    }
  });

  test("a request pipelined on a busy keep-alive connection after shutdown began is answered unavailable (503), or refused by connection: close, never dropped", async () => {
    const { port, server, release, waiting } = await gated();
    const busy = new RawH1Client(port);
    try {
      await busy.write(h1Request("POST", unaryPath, json, '{"message":"wait"}'));
      await eventually(() => waiting() === 1, 2000, "the call to reach its handler");
      const done = server.shutdown({ graceMs: 5000 });
      // Pipelined behind the call in flight, sent once shutdown has begun.
      await busy.write(h1Request("POST", unaryPath, json, '{"message":"late"}'));
      await new Promise((r) => setTimeout(r, 50));
      release();
      const first = await busy.response();
      assert.equal(first.status, 200);
      if (first.headers.connection?.toLowerCase() === "close") {
        // Also right (RFC 9112 §9.6): the client learns that its pipelined request was not processed, and retries it elsewhere.
        assert.equal(busy.hasResponse, false);
      } else {
        const second = await busy.response();
        assert.equal(second.status, 503);
        assert.equal(connectError(second.body).code, "unavailable");
        assert.equal(second.headers.connection?.toLowerCase(), "close");
      }
      assert.ok((await busy.closedWithin(2000)) !== undefined);
      assert.ok((await within(done.then(() => true), 3000)) === true);
    } finally {
      release();
      busy.close();
    }
  });
});

