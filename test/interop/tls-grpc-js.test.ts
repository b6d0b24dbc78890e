/**
 * Interop over TLS and mTLS with @grpc/grpc-js, both directions, all four call kinds:
 * a Rill client against a grpc-js server, and a grpc-js client against a Rill server.
 * Certificates come from openssl at test time (test/support/certs.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Echo } from "../../gen/echo/echo_pb.js";
import { bearerCallCredentials, Code, createClient, RpcError, tls, withCallCredentials, type ServiceImpl } from "../../src/index.js";
import { makeTestCerts, overrideName, type TestCerts } from "../support/certs.js";
import { echoStreams } from "../support/echo.js";
import { collect, from, useHarness } from "../support/harness.js";
import { grpcJsServices } from "../support/grpc-js-protos.js";

interface EchoMessage {
  message: string;
}

/** A grpc-js Echo server over mTLS; each reply carries the request's `authorization` metadata when present. */
async function startGrpcJs(certs: TestCerts): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const auth = (md: grpc.Metadata) => md.get("authorization").map(String).join(",");
  server.addService(grpcJsServices().Echo.service, {
    UnaryEcho(call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, cb: grpc.sendUnaryData<EchoMessage>) {
      const a = auth(call.metadata);
      cb(null, { message: a === "" ? call.request.message : `${call.request.message} ${a}` });
    },
    ServerStreamingEcho(call: grpc.ServerWritableStream<EchoMessage, EchoMessage>) {
      for (let i = 0; i < 3; i++) call.write({ message: `${call.request.message} ${i}` });
      call.end();
    },
    ClientStreamingEcho(call: grpc.ServerReadableStream<EchoMessage, EchoMessage>, cb: grpc.sendUnaryData<EchoMessage>) {
      const all: string[] = [];
      call.on("data", (m: EchoMessage) => all.push(m.message));
      call.on("end", () => cb(null, { message: all.join(" ") }));
    },
    BidirectionalStreamingEcho(call: grpc.ServerDuplexStream<EchoMessage, EchoMessage>) {
      call.on("data", (m: EchoMessage) => call.write(m));
      call.on("end", () => call.end());
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(certs.caCert),
    [{ cert_chain: Buffer.from(certs.serverCert), private_key: Buffer.from(certs.serverKey) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return {
    port,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

function rillEcho(subjects: string[]): ServiceImpl<typeof Echo> {
  return {
    ...echoStreams,
    unaryEcho(req, ctx) {
      subjects.push(ctx.tls?.certificate?.subject.CN ?? "none");
      return { message: req.message };
    },
  };
}

describe("TLS interop with @grpc/grpc-js", () => {
  const h = useHarness();
  let certs: TestCerts;
  before(async () => {
    certs = await makeTestCerts();
  });
  after(() => certs.remove());

  test("a Rill client calls a grpc-js server over mTLS: four kinds, and call credentials arrive", async () => {
    const peer = await startGrpcJs(certs);
    try {
      const credentials = withCallCredentials(
        tls({ ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey, serverNameOverride: overrideName }),
        bearerCallCredentials("interop-token"),
      );
      const client = createClient(Echo, h.channel(`127.0.0.1:${peer.port}`, { credentials }));
      assert.equal((await client.unaryEcho({ message: "u" })).message, "u Bearer interop-token");
      assert.deepEqual((await collect(client.serverStreamingEcho({ message: "s" }))).map((r) => r.message), ["s 0", "s 1", "s 2"]);
      assert.equal((await client.clientStreamingEcho(from([{ message: "a" }, { message: "b" }]))).message, "a b");
      assert.deepEqual((await collect(client.bidirectionalStreamingEcho(from([{ message: "x" }, { message: "y" }])))).map((r) => r.message), ["x", "y"]);

      const noCert = createClient(Echo, h.channel(`127.0.0.1:${peer.port}`, { credentials: tls({ ca: certs.caCert }) }));
      await assert.rejects(noCert.unaryEcho({ message: "u" }), (e: RpcError) => e.code === Code.Unavailable);
    } finally {
      await peer.close();
    }
  });

  test("a grpc-js client calls a Rill server over mTLS: four kinds, and the handler sees its certificate", async () => {
    const subjects: string[] = [];
    const { port } = await h.server((s) => s.add(Echo, rillEcho(subjects)), {}, {
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true },
    });
    const EchoClient = grpcJsServices().Echo;
    const good = new EchoClient(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(Buffer.from(certs.caCert), Buffer.from(certs.clientKey), Buffer.from(certs.clientCert)),
      // An IP address may not be a TLS server name (RFC 6066): check the certificate's DNS name instead.
      { "grpc.ssl_target_name_override": overrideName, "grpc.default_authority": overrideName },
    );
    const bad = new EchoClient(`localhost:${port}`, grpc.credentials.createSsl(Buffer.from(certs.caCert)));
    try {
      const unary = (c: grpc.Client, message: string) =>
        new Promise<EchoMessage>((resolve, reject) =>
          (c as unknown as { UnaryEcho: Function }).UnaryEcho({ message }, (err: grpc.ServiceError | null, res: EchoMessage) => (err === null ? resolve(res) : reject(err))),
        );
      assert.equal((await unary(good, "u")).message, "u");
      assert.deepEqual(subjects, ["rill-test-client"]);

      const stream = (good as unknown as { ServerStreamingEcho: Function }).ServerStreamingEcho({ message: "s" }) as grpc.ClientReadableStream<EchoMessage>;
      assert.deepEqual((await collect(stream as AsyncIterable<EchoMessage>)).map((r) => r.message), ["s 0", "s 1", "s 2"]);

      const clientStreamed = await new Promise<EchoMessage>((resolve, reject) => {
        const call = (good as unknown as { ClientStreamingEcho: Function }).ClientStreamingEcho((err: grpc.ServiceError | null, res: EchoMessage) =>
          err === null ? resolve(res) : reject(err),
        ) as grpc.ClientWritableStream<EchoMessage>;
        call.write({ message: "a" });
        call.write({ message: "b" });
        call.end();
      });
      assert.equal(clientStreamed.message, "a b");

      const bidi = (good as unknown as { BidirectionalStreamingEcho: Function }).BidirectionalStreamingEcho() as grpc.ClientDuplexStream<EchoMessage, EchoMessage>;
      bidi.write({ message: "x" });
      bidi.write({ message: "y" });
      bidi.end();
      assert.deepEqual((await collect(bidi as AsyncIterable<EchoMessage>)).map((r) => r.message), ["x", "y"]);

      await assert.rejects(unary(bad, "u"), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
      assert.deepEqual(subjects, ["rill-test-client"], "the client without a certificate never reached the handler");
    } finally {
      good.close();
      bad.close();
    }
  });
});
