import assert from "node:assert/strict";
import { connect } from "node:http2";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, withCompression } from "../../src/index.js";
import { encodeFrame } from "../../src/protocol/frame.js";
import { collect, from, useHarness } from "../support/harness.js";
import { rejectsWith } from "../support/assertions.js";

const MiB = 1024 * 1024;

/** Sends raw frames with raw headers and returns the status the server answered. */
async function rawCall(port: number, headers: Record<string, string>, body: Uint8Array): Promise<Record<string, unknown>> {
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const st = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc", ...headers });
      st.on("response", (hs) => hs["grpc-status"] !== undefined && resolve(hs as Record<string, unknown>));
      st.on("trailers", (hs) => resolve(hs as Record<string, unknown>));
      st.on("error", reject);
      st.end(body);
      st.resume();
    });
  } finally {
    session.close();
  }
}

describe("compression", () => {
  const h = useHarness();

  for (const algorithm of ["gzip", "deflate"]) {
    test(`${algorithm} requests and responses round-trip on all four kinds`, async () => {
      const seen: boolean[] = [];
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            unaryEcho: (r, ctx) => (seen.push(ctx.lastRequestCompressed), { message: r.message }),
            async *serverStreamingEcho(r) {
              yield { message: r.message };
              yield { message: r.message };
            },
            async clientStreamingEcho(reqs, ctx) {
              const all = [];
              for await (const r of reqs) (all.push(r.message), seen.push(ctx.lastRequestCompressed));
              return { message: all.join("") };
            },
            async *bidirectionalStreamingEcho(reqs) {
              for await (const r of reqs) yield { message: r.message };
            },
          }),
        { compression: algorithm },
      );
      const echo = h.client(Echo, target, { compression: algorithm });
      const big = "x".repeat(100_000);
      assert.equal((await echo.unaryEcho({ message: big })).message, big);
      assert.deepEqual(await collect(echo.serverStreamingEcho({ message: "s" })).then((r) => r.map((x) => x.message)), ["s", "s"]);
      assert.equal((await echo.clientStreamingEcho(from([{ message: "a" }, withCompression({ message: "b" }, false)]))).message, "ab");
      assert.deepEqual((await collect(echo.bidirectionalStreamingEcho(from([{ message: "q" }])))).map((r) => r.message), ["q"]);
      assert.deepEqual(seen, [true, true, false]);
    });
  }

  test("large messages compressed off the event loop keep their order among small ones, both ways, with ctx.send, trySend and yield", async () => {
    // 256 KiB of text: above the async threshold (64 KiB), so each is compressed on zlib's thread
    // pool while the small messages written after it wait their turn.
    const big = (i: number) => `${i}:` + "lorem ipsum dolor sit amet ".repeat(10_000);
    let trySendTook = false;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          async serverStreamingEcho(_r, ctx) {
            void ctx.send({ message: big(0) });
            // Taken (the buffer's mark is 4 MiB) yet queued behind the big one still being compressed.
            trySendTook = ctx.trySend({ message: "small 1" });
            void ctx.send({ message: big(2) });
            await ctx.send({ message: "small 3" });
          },
          async *bidirectionalStreamingEcho(reqs) {
            for await (const r of reqs) {
              yield { message: r.message };
              yield { message: `ack ${r.message.length}` };
            }
          },
          async clientStreamingEcho(reqs, ctx) {
            const got: string[] = [];
            for await (const r of reqs) got.push(`${r.message.slice(0, 8)}/${r.message.length}/${ctx.lastRequestCompressed}`);
            return { message: got.join(" ") };
          },
          unaryEcho: (r) => ({ message: r.message }),
        }),
      { compression: "gzip", sendHighWaterMark: 4 * MiB },
    );
    const echo = h.client(Echo, target, { compression: "gzip" });
    const streamed = (await collect(echo.serverStreamingEcho({}))).map((r) => (r.message.length > 100 ? r.message.slice(0, 2) : r.message));
    assert.equal(trySendTook, true);
    assert.deepEqual(streamed, ["0:", "small 1", "2:", "small 3"]);
    const sent = [big(0), "small", big(2), "tiny"];
    const bidi = (await collect(echo.bidirectionalStreamingEcho(from(sent.map((message) => ({ message })))))).map((r) => r.message);
    assert.deepEqual(bidi, sent.flatMap((m) => [m, `ack ${m.length}`]));
    const client = await echo.clientStreamingEcho(from(sent.map((message) => ({ message }))));
    assert.equal(client.message, sent.map((m) => `${m.slice(0, 8)}/${m.length}/true`).join(" "));
    assert.equal((await echo.unaryEcho({ message: big(9) })).message, big(9));
  });

  test("a large compressed request that inflates past the receive limit gets RESOURCE_EXHAUSTED (decompressed off the event loop)", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }), { maxReceiveMessageBytes: 1 * MiB });
    // 64 KiB of random-looking compressed bytes is above the async threshold; it inflates to 8 MiB.
    const payload = gzipSync(Buffer.alloc(8 * MiB, 7), { level: 1 });
    const padded = Buffer.concat([payload]);
    assert.ok(padded.byteLength >= 16 * 1024, `compressed size ${padded.byteLength}`);
    const res = await rawCall(port, { "grpc-encoding": "gzip", te: "trailers" }, encodeFrame(padded, true));
    assert.equal(res["grpc-status"], String(Code.ResourceExhausted));
    assert.match(String(res["grpc-message"]), /maxReceiveMessageBytes = 1048576/);
  });

  test("the server compresses responses only for clients that accept the algorithm", async () => {
    const { port, target } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }), { compression: "gzip" });
    const echo = h.client(Echo, target, { acceptCompression: [] });
    assert.equal((await echo.unaryEcho({ message: "plain" })).message, "plain");
    const gz = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const session = connect(`http://127.0.0.1:${port}`);
      const st = session.request({ ":method": "POST", ":path": "/grpc.examples.echo.Echo/UnaryEcho", "content-type": "application/grpc", "grpc-accept-encoding": "gzip" });
      st.on("response", (hs) => (resolve(hs as Record<string, unknown>), session.close()));
      st.on("error", reject);
      st.end(encodeFrame(new Uint8Array([10, 1, 65])));
      st.resume();
    });
    assert.equal(gz["grpc-encoding"], "gzip");
    assert.match(String(gz["grpc-accept-encoding"]), /gzip/);
  });

  test("an unknown grpc-encoding gets UNIMPLEMENTED listing what the server accepts", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const res = await rawCall(port, { "grpc-encoding": "snappy" }, encodeFrame(new Uint8Array([10, 1, 65]), true));
    assert.equal(res["grpc-status"], String(Code.Unimplemented));
    assert.match(String(res["grpc-message"]), /snappy.*gzip/);
    assert.match(String(res["grpc-accept-encoding"]), /gzip/);
  });

  test("a compressed flag on an identity call gets INTERNAL", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }));
    const res = await rawCall(port, {}, encodeFrame(gzipSync(new Uint8Array([10, 1, 65])), true));
    assert.equal(res["grpc-status"], String(Code.Internal));
    assert.match(String(res["grpc-message"]), /compressed/);
  });

  test("a small gzip bomb is refused with RESOURCE_EXHAUSTED without inflating it", async () => {
    const { port } = await h.server((s) => s.add(Echo, { unaryEcho: (r) => ({ message: r.message }) }), { maxReceiveMessageBytes: MiB });
    const bomb = gzipSync(new Uint8Array(512 * MiB));
    assert.ok(bomb.byteLength < MiB, `bomb is ${bomb.byteLength} bytes`);
    const before = process.memoryUsage().rss;
    const res = await rawCall(port, { "grpc-encoding": "gzip" }, encodeFrame(bomb, true));
    assert.equal(res["grpc-status"], String(Code.ResourceExhausted));
    assert.match(String(res["grpc-message"]), /maxReceiveMessageBytes = 1048576/);
    assert.ok(process.memoryUsage().rss - before < 128 * MiB, "decompression stayed bounded");
  });
});

describe("message size limits", () => {
  const h = useHarness();
  const echoImpl = { unaryEcho: (r: { message: string }) => ({ message: r.message }) };

  test("a message just under the default 4 MiB limit passes both ways", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoImpl));
    const echo = h.client(Echo, target);
    const message = "m".repeat(4 * MiB - 16);
    assert.equal((await echo.unaryEcho({ message })).message.length, message.length);
  });

  test("a request over the server's receive limit gets RESOURCE_EXHAUSTED naming that limit", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoImpl));
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({ message: "m".repeat(4 * MiB + 1) }), rejectsWith(Code.ResourceExhausted, /receive limit \(the server's maxReceiveMessageBytes = 4194304\)/));
  });

  test("a response over the client's receive limit gets RESOURCE_EXHAUSTED naming that limit", async () => {
    const { target } = await h.server((s) => s.add(Echo, { unaryEcho: () => ({ message: "r".repeat(2000) }) }));
    const echo = h.client(Echo, target, { maxReceiveMessageBytes: 1000 });
    await assert.rejects(echo.unaryEcho({}), rejectsWith(Code.ResourceExhausted, /receive limit \(the channel's maxReceiveMessageBytes = 1000\)/));
  });

  test("a service config's maxRequestMessageBytes and maxResponseMessageBytes apply per method when smaller than the channel's", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        ...echoImpl,
        async *serverStreamingEcho(r) {
          yield { message: r.message };
        },
      }),
    );
    const serviceConfig = {
      methodConfig: [{ name: [{ service: "grpc.examples.echo.Echo", method: "UnaryEcho" }], maxRequestMessageBytes: 100, maxResponseMessageBytes: "50" }],
    };
    const echo = h.client(Echo, target, { serviceConfig, maxSendMessageBytes: 1000 });
    await assert.rejects(echo.unaryEcho({ message: "q".repeat(200) }), rejectsWith(Code.ResourceExhausted, /send limit \(the service config's maxRequestMessageBytes = 100\)/));
    await assert.rejects(echo.unaryEcho({ message: "r".repeat(80) }), rejectsWith(Code.ResourceExhausted, /receive limit \(the service config's maxResponseMessageBytes = 50\)/));
    assert.equal((await echo.unaryEcho({ message: "ok" })).message, "ok");
    // Other methods keep the channel's limits.
    assert.equal((await collect(echo.serverStreamingEcho({ message: "s".repeat(200) })))[0]?.message.length, 200);
  });

  test("send limits stop oversize messages before they leave, on both sides", async () => {
    const { target } = await h.server((s) => s.add(Echo, echoImpl), { maxSendMessageBytes: 100 });
    const echo = h.client(Echo, target, { maxSendMessageBytes: 1000 });
    await assert.rejects(echo.unaryEcho({ message: "c".repeat(2000) }), rejectsWith(Code.ResourceExhausted, /send limit \(the channel's maxSendMessageBytes = 1000\)/));
    await assert.rejects(echo.unaryEcho({ message: "s".repeat(500) }), rejectsWith(Code.ResourceExhausted, /send limit \(the server's maxSendMessageBytes = 100\)/));
    assert.equal((await echo.unaryEcho({ message: "ok" })).message, "ok");
  });
});
