/**
 * Rich error details (google.rpc.Status in `grpc-status-details-bin`): set from a handler with
 * `errorDetail`, read on the client with `findDetails`, consistent with grpc-status and
 * grpc-message; and both ways with @connectrpc/connect-node, whose own findDetails reads them.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectError, Code as ConnectCode, createClient as createConnectClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError, errorDetail } from "../../src/index.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema, StatusSchema, statusDetailsKey } from "../../src/error-details.js";
import { Metadata } from "../../src/protocol/metadata.js";
import { statusOf } from "../support/assertions.js";
import { transports, useHarness } from "../support/harness.js";

const badLatitude = () =>
  new RpcError(Code.InvalidArgument, "latitude out of range", {
    details: [
      errorDetail(BadRequestSchema, { fieldViolations: [{ field: "latitude", description: "must be within ±90°" }] }),
      errorDetail(RetryInfoSchema, { retryDelay: { seconds: 2n, nanos: 0 } }),
    ],
  });

for (const transport of transports) describe(`rich error details (${transport})`, () => {
  const h = useHarness({ transport });

  test("details a handler throws reach the client typed, in order, with the status they belong to", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho() {
          throw badLatitude();
        },
      }),
    );
    const e = await statusOf(h.client(Echo, target).unaryEcho({ message: "x" }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.rawMessage, "latitude out of range");
    assert.deepEqual(
      e.findDetails(BadRequestSchema).map((b) => b.fieldViolations.map((v) => [v.field, v.description])),
      [[["latitude", "must be within ±90°"]]],
    );
    assert.equal(e.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds, 2n);
    assert.deepEqual(e.findDetails(ErrorInfoSchema), []);
    assert.equal(e.details.length, 2);
  });

  test("details follow messages already streamed (trailers after data, not trailers-only)", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        async *serverStreamingEcho() {
          yield { message: "one" };
          throw badLatitude();
        },
      }),
    );
    const got: string[] = [];
    const e = await statusOf(
      (async () => {
        for await (const r of h.client(Echo, target).serverStreamingEcho({ message: "x" })) got.push(r.message);
      })(),
    );
    assert.deepEqual(got, ["one"]);
    assert.equal(e.findDetails(BadRequestSchema).length, 1);
  });

  test("a details trailer that is malformed, or names another code than grpc-status, gives no details and keeps the status", async () => {
    const other = toBinary(StatusSchema, create(StatusSchema, { code: Code.NotFound, message: "x", details: [errorDetail(ErrorInfoSchema, { reason: "R" })] }));
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho(req) {
          const md = new Metadata();
          md.set(statusDetailsKey, req.message === "garbage" ? new Uint8Array([0xff, 0xff, 0xff]) : other);
          throw new RpcError(Code.PermissionDenied, "no", { metadata: md });
        },
      }),
    );
    for (const message of ["garbage", "mismatch"]) {
      const e = await statusOf(h.client(Echo, target).unaryEcho({ message }));
      assert.equal(e.code, Code.PermissionDenied, message);
      assert.equal(e.rawMessage, "no");
      assert.deepEqual(e.details, [], message);
    }
  });
});

describe("rich error details with @connectrpc/connect-node (gRPC protocol)", () => {
  const h = useHarness();

  test("a connect-node client reads the details a Rill handler sent, with its own findDetails", async () => {
    const { target } = await h.server((s) =>
      s.add(Echo, {
        unaryEcho() {
          throw badLatitude();
        },
      }),
    );
    const client = createConnectClient(Echo, createGrpcTransport({ baseUrl: `http://${target}` }));
    let caught: unknown;
    try {
      await client.unaryEcho({ message: "x" });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof ConnectError, `expected a ConnectError, got ${String(caught)}`);
    assert.equal(caught.code, ConnectCode.InvalidArgument);
    assert.equal(caught.rawMessage, "latitude out of range");
    assert.equal(caught.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, "latitude");
    assert.equal(caught.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds, 2n);
  });

  test("a Rill client reads the details a connect-node handler sent", async () => {
    const server = http2.createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(Echo, {
            unaryEcho() {
              throw new ConnectError("quota used up", ConnectCode.ResourceExhausted, undefined, [
                { desc: ErrorInfoSchema, value: { reason: "QUOTA", domain: "example.com", metadata: { limit: "10" } } },
              ]);
            },
          }),
      }),
    );
    // node keeps no list of a server's sessions, and close() waits for them: closed from here.
    const open = new Set<http2.ServerHttp2Session>();
    server.on("session", (session) => {
      open.add(session);
      session.on("close", () => open.delete(session));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as { port: number };
      const e = await statusOf(h.client(Echo, `127.0.0.1:${port}`).unaryEcho({ message: "x" }));
      assert.equal(e.code, Code.ResourceExhausted);
      assert.equal(e.rawMessage, "quota used up");
      const [info] = e.findDetails(ErrorInfoSchema);
      assert.deepEqual([info?.reason, info?.domain, info?.metadata], ["QUOTA", "example.com", { limit: "10" }]);
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of open) session.close();
      });
    }
  });
});
