/**
 * A status sent before any response message goes out as one HEADERS frame with END_STREAM
 * (trailers-only). Node 22.23 drops that frame when RST_STREAM(NO_ERROR) is submitted in the
 * same tick, so these check on every Node version that the status reaches Rill, grpc-js and a
 * raw HTTP/2 client, and that a client still sending is then told to stop.
 */
import assert from "node:assert/strict";
import { connect, constants, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError } from "../../src/index.js";
import { encodeFrame } from "../../src/protocol/index.js";
import { grpcJsServices } from "../support/grpc-js-protos.js";
import { useHarness } from "../support/harness.js";
import { rejectsWith } from "../support/assertions.js";

/** A unary call from grpc-js; resolves with the status it ends with. */
function grpcJsUnary(target: string, method: "unaryEcho" | "serverStreamingEcho"): Promise<grpc.ServiceError> {
  const client = new (grpcJsServices().Echo)(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const done = (err: grpc.ServiceError | null) => {
      client.close();
      if (err === null) reject(new Error("the call succeeded"));
      else resolve(err);
    };
    if (method === "unaryEcho") {
      (client as unknown as Record<string, (req: object, cb: (e: grpc.ServiceError | null) => void) => void>).unaryEcho!({ message: "x" }, done);
    } else {
      const call = (client as unknown as Record<string, (req: object) => grpc.ClientReadableStream<unknown>>).serverStreamingEcho!({ message: "x" });
      call.on("data", () => {});
      call.on("error", done);
      call.on("end", () => done(null));
    }
  });
}

interface RawOutcome {
  headers: IncomingHttpHeaders;
  rstCode: number | undefined;
}

/**
 * Opens a gRPC stream by hand, sends one message and never ends its side; resolves once the
 * server has closed the stream (which it must do itself, with RST_STREAM, for this to settle).
 */
function rawStillSending(port: number, path: string): Promise<RawOutcome> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  return new Promise<RawOutcome>((resolve, reject) => {
    const stream: ClientHttp2Stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    let headers: IncomingHttpHeaders = {};
    stream.on("response", (h) => (headers = h));
    stream.on("error", () => {});
    stream.resume();
    stream.write(encodeFrame(new Uint8Array(3), false));
    const timer = setTimeout(() => reject(new Error("the server never closed the stream of a client still sending")), 10_000);
    stream.on("close", () => {
      clearTimeout(timer);
      resolve({ headers, rstCode: stream.rstCode });
    });
  }).finally(() => session.close());
}

describe("trailers-only status", () => {
  const h = useHarness();

  test("an unknown method answers UNIMPLEMENTED to Rill and grpc-js clients", async () => {
    const { target } = await h.server((s) => s.add(Echo, { bidirectionalStreamingEcho: async function* () {} }));
    await assert.rejects(h.client(Echo, target).unaryEcho({ message: "x" }), rejectsWith(Code.Unimplemented, /UnaryEcho/));
    const err = await grpcJsUnary(target, "unaryEcho");
    assert.equal(err.code, grpc.status.UNIMPLEMENTED, err.message);
  });

  test("a handler failing before any message answers its code to Rill and grpc-js clients", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho() {
          throw new RpcError(Code.NotFound, "no such echo");
        },
        // eslint-disable-next-line require-yield
        async *serverStreamingEcho() {
          throw new RpcError(Code.PermissionDenied, "not yours");
        },
      }),
    );
    const echo = h.client(Echo, target);
    await assert.rejects(echo.unaryEcho({ message: "x" }), rejectsWith(Code.NotFound, /^no such echo$/));
    await assert.rejects(echo.serverStreamingEcho({ message: "x" })[Symbol.asyncIterator]().next(), rejectsWith(Code.PermissionDenied));
    const unary = await grpcJsUnary(target, "unaryEcho");
    assert.equal(unary.code, grpc.status.NOT_FOUND, unary.message);
    assert.equal(unary.details, "no such echo");
    const streaming = await grpcJsUnary(target, "serverStreamingEcho");
    assert.equal(streaming.code, grpc.status.PERMISSION_DENIED, streaming.message);
  });

  test("a Rill client still sending gets the status and its request stream is stopped", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        clientStreamingEcho() {
          throw new RpcError(Code.NotFound, "nothing to stream to");
        },
      }),
    );
    let stopped = false;
    async function* endless() {
      try {
        for (let i = 0; i < 1000; i++) {
          yield { message: `m${i}` };
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        stopped = true;
      }
    }
    await assert.rejects(h.client(Echo, target).clientStreamingEcho(endless()), rejectsWith(Code.NotFound));
    // return() reaches the generator once its pending await settles.
    for (let i = 0; i < 200 && !stopped; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(stopped, "the request iterable was not stopped");
  });

  for (const [what, path] of [
    ["an unknown method", "/grpc.examples.echo.Echo/Nope"],
    ["a handler failing before reading", "/grpc.examples.echo.Echo/ClientStreamingEcho"],
  ] as const) {
    test(`${what}: a raw client still sending sees the status HEADERS, then RST_STREAM(NO_ERROR)`, async () => {
      const { port } = await h.server((s) =>
        s.add(Echo, {
          clientStreamingEcho() {
            throw new RpcError(Code.NotFound, "gone");
          },
        }),
      );
      const out = await rawStillSending(port, path);
      assert.equal(out.headers[":status"], 200);
      assert.equal(out.headers["grpc-status"], String(path.endsWith("Nope") ? Code.Unimplemented : Code.NotFound));
      assert.equal(out.rstCode, constants.NGHTTP2_NO_ERROR);
    });
  }
});
