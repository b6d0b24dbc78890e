/**
 * Rill's client in gRPC-Web and Connect modes (`createChannel(target, { protocol })`) against a
 * server no one here wrote, @connectrpc/connect-node's, over HTTP/2 (which serves all three
 * protocols and tells them apart only by content type), and against Rill's own server.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ConnectError, Code as ConnectCode } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, createChannel, createClient, RpcError, errorDetail, type Interceptor, type Protocol } from "../../src/index.js";
import { ErrorInfoSchema } from "../../src/error-details.js";
import { statusOf } from "../support/assertions.js";
import { collect, from, useHarness } from "../support/harness.js";
import { echoStreams } from "../support/echo.js";

const protocols: Protocol[] = ["grpc-web", "connect"];

describe("Rill's client in gRPC-Web and Connect modes against @connectrpc/connect-node's server", () => {
  let server: http2.Http2Server;
  let target = "";
  /** The content types connect-node saw, to prove which protocol went over the wire. */
  const contentTypes: string[] = [];

  before(async () => {
    server = http2.createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(Echo, {
            unaryEcho(req, ctx) {
              if (req.message === "fail") {
                throw new ConnectError("quota used up", ConnectCode.ResourceExhausted, undefined, [{ desc: ErrorInfoSchema, value: { reason: "QUOTA", domain: "example.com" } }]);
              }
              ctx.responseHeader.set("x-answer", ctx.requestHeader.get("x-question") ?? "");
              ctx.responseTrailer.set("x-done", "yes");
              return { message: req.message };
            },
            async *serverStreamingEcho(req) {
              for (let i = 0; i < 3; i++) yield { message: `${req.message} ${i}` };
              if (req.message === "fail") throw new ConnectError("late failure", ConnectCode.DataLoss);
            },
            async clientStreamingEcho(reqs) {
              const all: string[] = [];
              for await (const r of reqs) all.push(r.message);
              return { message: all.join(" ") };
            },
            async *bidirectionalStreamingEcho(reqs) {
              for await (const r of reqs) yield { message: r.message };
            },
          }),
      }),
    );
    server.on("stream", (_s, headers) => contentTypes.push(String(headers["content-type"])));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.close();
    await new Promise((r) => setImmediate(r));
  });

  for (const protocol of protocols) {
    test(`${protocol}: all four kinds, metadata both ways, and the wire content type`, async () => {
      const seen: Protocol[] = [];
      const spy: Interceptor = (next) => async (req) => {
        seen.push(req.protocol);
        return next(req);
      };
      const channel = createChannel(target, { protocol, interceptors: [spy] });
      try {
        const echo = createClient(Echo, channel);
        contentTypes.length = 0;
        let header: string | undefined;
        let trailer: string | undefined;
        const r = await echo.unaryEcho({ message: "héllo" }, { metadata: { "x-question": "why" }, onHeader: (h) => (header = h.get("x-answer") as string), onTrailer: (t) => (trailer = t.get("x-done") as string) });
        assert.equal(r.message, "héllo");
        assert.equal(header, "why");
        assert.equal(trailer, "yes");
        assert.deepEqual((await collect(echo.serverStreamingEcho({ message: "s" }))).map((m) => m.message), ["s 0", "s 1", "s 2"]);
        assert.equal((await echo.clientStreamingEcho(from([{ message: "a" }, { message: "b" }]))).message, "a b");
        assert.deepEqual((await collect(echo.bidirectionalStreamingEcho(from([{ message: "x" }, { message: "y" }])))).map((m) => m.message), ["x", "y"]);
        const expected = protocol === "grpc-web" ? ["application/grpc-web+proto"] : ["application/proto", "application/connect+proto"];
        assert.deepEqual([...new Set(contentTypes)].sort(), expected.sort());
        assert.deepEqual(new Set(seen), new Set([protocol]));
      } finally {
        channel.close();
      }
    });

    test(`${protocol}: errors keep their code, message and details, before and after messages`, async () => {
      const channel = createChannel(target, { protocol });
      try {
        const echo = createClient(Echo, channel);
        const e = await statusOf(echo.unaryEcho({ message: "fail" }));
        assert.equal(e.code, Code.ResourceExhausted);
        assert.equal(e.rawMessage, "quota used up");
        assert.equal(e.findDetails(ErrorInfoSchema)[0]?.reason, "QUOTA");
        const got: string[] = [];
        const late = await statusOf((async () => {
          for await (const m of echo.serverStreamingEcho({ message: "fail" })) got.push(m.message);
        })());
        assert.deepEqual(got, ["fail 0", "fail 1", "fail 2"]);
        assert.equal(late.code, Code.DataLoss);
      } finally {
        channel.close();
      }
    });
  }
});

describe("Rill's client in gRPC-Web and Connect modes against Rill's server", () => {
  const h = useHarness({ transport: "http2" });

  for (const protocol of protocols) {
    test(`${protocol}: the handler sees the protocol, deadlines and compression work, limits hold`, async () => {
      let seen: Protocol | undefined;
      let deadline: number | undefined;
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            ...echoStreams,
            async unaryEcho(req, ctx) {
              seen = ctx.protocol;
              deadline = ctx.deadline;
              if (req.message === "slow") await new Promise((r) => setTimeout(r, 1500));
              if (req.message === "detail") throw new RpcError(Code.FailedPrecondition, "no", { details: [errorDetail(ErrorInfoSchema, { reason: "R" })] });
              return { message: req.message };
            },
          }),
        { compression: "gzip", maxReceiveMessageBytes: 1024 * 1024 },
      );
      const echo = h.client(Echo, target, { protocol, compression: "gzip", maxReceiveMessageBytes: 64 * 1024 });
      const t0 = Date.now();
      const big = "z".repeat(50_000);
      assert.equal((await echo.unaryEcho({ message: big }, { timeoutMs: 10_000 })).message, big);
      assert.equal(seen, protocol);
      assert.ok(deadline !== undefined && Math.abs(deadline - (t0 + 10_000)) < 1000);
      assert.equal((await statusOf(echo.unaryEcho({ message: "slow" }, { timeoutMs: 100 }))).code, Code.DeadlineExceeded);
      const d = await statusOf(echo.unaryEcho({ message: "detail" }));
      assert.equal(d.code, Code.FailedPrecondition);
      assert.equal(d.findDetails(ErrorInfoSchema)[0]?.reason, "R");
      // Incompressible past the client's 64 KiB receive limit: refused by the client.
      const noise = Buffer.from(Array.from({ length: 120_000 }, (_, i) => (i * 7919) % 251)).toString("base64");
      assert.equal((await statusOf(echo.unaryEcho({ message: noise }))).code, Code.ResourceExhausted);
      assert.deepEqual((await collect(echo.serverStreamingEcho({ message: "n" }))).map((m) => m.message), ["n 0", "n 1", "n 2"]);
    });
  }
});
