import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import {
  bearerCallCredentials,
  Code,
  createClient,
  insecure,
  RpcError,
  tls,
  withCallCredentials,
  type CallCredentialsContext,
  type HandlerContext,
  type ServiceImpl,
} from "../../src/index.js";
import { makeTestCerts, overrideName, type TestCerts } from "../support/certs.js";
import { echoStreams } from "../support/echo.js";
import { collect, from, useHarness } from "../support/harness.js";

/** Echo that reports what the server saw: the TLS session and the metadata named in the message. */
function echo(seen: Array<HandlerContext["tls"]> = []): ServiceImpl<typeof Echo> {
  return {
    ...echoStreams,
    async unaryEcho(req, ctx) {
      seen.push(ctx.tls);
      const md = ctx.requestMetadata.getAll(req.message);
      return { message: md.length === 0 ? req.message : md.map(String).join(",") };
    },
  };
}

describe("TLS and credentials", () => {
  const h = useHarness();
  let certs: TestCerts;
  before(async () => {
    certs = await makeTestCerts();
  });
  after(() => certs.remove());

  const serverTls = () => ({ cert: certs.serverCert, key: certs.serverKey });
  const mtls = () => ({ ...serverTls(), ca: certs.caCert, requestClientCert: true });

  test("all four call kinds work over TLS, and the handler sees the TLS session", async () => {
    const seen: Array<HandlerContext["tls"]> = [];
    const { target } = await h.server((s) => s.add(Echo, echo(seen)), {}, { tls: serverTls() });
    const client = createClient(Echo, h.channel(target, { credentials: tls({ ca: certs.caCert }) }));
    assert.equal((await client.unaryEcho({ message: "u" })).message, "u");
    assert.deepEqual((await collect(client.serverStreamingEcho({ message: "s" }))).map((r) => r.message), ["s 0", "s 1", "s 2"]);
    assert.equal((await client.clientStreamingEcho(from([{ message: "a" }, { message: "b" }]))).message, "a b");
    assert.deepEqual((await collect(client.bidirectionalStreamingEcho(from([{ message: "x" }, { message: "y" }])))).map((r) => r.message), ["x", "y"]);
    const peer = seen[0];
    assert.ok(peer !== undefined, "ctx.tls is set on a TLS connection");
    assert.match(peer.protocol ?? "", /^TLSv1\.[23]$/);
    assert.equal(peer.certificate, undefined, "no client certificate without mTLS");
  });

  test("a client that does not trust the server's CA fails with UNAVAILABLE naming the certificate problem", async () => {
    const { target } = await h.server((s) => s.add(Echo, echo()), {}, { tls: serverTls() });
    const untrusting = createClient(Echo, h.channel(target, { credentials: tls() }));
    await assert.rejects(untrusting.unaryEcho({ message: "u" }), (e: RpcError) => e.code === Code.Unavailable && /certificate/i.test(e.message));
    const plaintext = createClient(Echo, h.channel(target));
    await assert.rejects(plaintext.unaryEcho({ message: "u" }), (e: RpcError) => e.code === Code.Unavailable);
    const { target: h2c } = await h.server((s) => s.add(Echo, echo()));
    const tlsToPlaintext = createClient(Echo, h.channel(h2c, { credentials: tls({ ca: certs.caCert }) }));
    await assert.rejects(tlsToPlaintext.unaryEcho({ message: "u" }), (e: RpcError) => e.code === Code.Unavailable && /does not speak TLS/.test(e.message));
  });

  test("mTLS refuses a client without a certificate or with one from another CA, and accepts the right one", async () => {
    const seen: Array<HandlerContext["tls"]> = [];
    const { target } = await h.server((s) => s.add(Echo, echo(seen)), {}, { tls: mtls() });
    const anonymous = createClient(Echo, h.channel(target, { credentials: tls({ ca: certs.caCert }) }));
    const fails = (pattern: RegExp) => (e: RpcError) => {
      assert.equal(e.code, Code.Unavailable, e.message);
      assert.match(e.message, pattern);
      return true;
    };
    await assert.rejects(anonymous.unaryEcho({ message: "u" }), fails(/requires a client certificate \(mTLS\): give `tls\(\{ cert, key \}\)`/));
    // Refused after the handshake (TLS 1.3 checks the client's certificate last): still named, not "lost the connection".
    const stranger = createClient(Echo, h.channel(target, { credentials: tls({ ca: certs.caCert, cert: certs.strangerCert, key: certs.strangerKey }) }));
    await assert.rejects(stranger.unaryEcho({ message: "u" }), fails(/refused our client certificate/));
    assert.equal(seen.length, 0, "no handler ran for a refused client");

    const client = createClient(Echo, h.channel(target, { credentials: tls({ ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey }) }));
    assert.equal((await client.unaryEcho({ message: "u" })).message, "u");
    const cert = seen[0]?.certificate;
    assert.equal(cert?.subject.CN, "rill-test-client");
    assert.equal(cert?.subjectName, "CN=rill-test-client,O=Rill Tests");
    assert.equal(seen[0]?.authorized, true);
  });

  test("serverNameOverride checks the certificate against the given name instead of the address", async () => {
    const { port } = await h.server((s) => s.add(Echo, echo()), {}, { tls: serverTls() });
    // "localhost" resolves to an address the certificate does not name by IP; the override name is in its SANs.
    const good = createClient(Echo, h.channel(`127.0.0.1:${port}`, { credentials: tls({ ca: certs.caCert, serverNameOverride: overrideName }) }));
    assert.equal((await good.unaryEcho({ message: "o" })).message, "o");
    const wrong = createClient(Echo, h.channel(`127.0.0.1:${port}`, { credentials: tls({ ca: certs.caCert, serverNameOverride: "wrong.example" }) }));
    await assert.rejects(wrong.unaryEcho({ message: "o" }), (e: RpcError) => e.code === Code.Unavailable && /wrong\.example/.test(e.message));
    assert.throws(() => tls({ cert: certs.clientCert }), /needs its private key/);
  });

  test("call credentials are refused on a plaintext channel with UNAUTHENTICATED, unless explicitly allowed", async () => {
    const seen: Array<HandlerContext["tls"]> = [];
    const { target } = await h.server((s) => s.add(Echo, echo(seen)));
    assert.throws(() => withCallCredentials(insecure(), bearerCallCredentials("t0k3n")), /call credentials require a secure channel/);
    const plain = createClient(Echo, h.channel(target));
    await assert.rejects(
      plain.unaryEcho({ message: "authorization" }, { callCredentials: () => ({ authorization: "Bearer t0k3n" }) }),
      (e: RpcError) => e.code === Code.Unauthenticated && /require a secure channel/.test(e.message) && /allowInsecureCallCredentials/.test(e.message),
    );
    assert.equal(seen.length, 0, "nothing was sent");
    assert.equal((await plain.unaryEcho({ message: "plain" })).message, "plain", "calls without credentials still work");

    const allowed = insecure({ allowInsecureCallCredentials: true });
    const trusted = createClient(Echo, h.channel(target, { credentials: withCallCredentials(allowed, bearerCallCredentials("t0k3n")) }));
    assert.equal((await trusted.unaryEcho({ message: "authorization" })).message, "Bearer t0k3n");
  });

  test("call credentials compose with TLS: the channel's then the call's, with the call's context", async () => {
    const { target } = await h.server((s) => s.add(Echo, echo()), {}, { tls: serverTls() });
    const contexts: CallCredentialsContext[] = [];
    const credentials = withCallCredentials(tls({ ca: certs.caCert, serverNameOverride: overrideName }), async (ctx) => {
      contexts.push(ctx);
      await new Promise((r) => setTimeout(r, 1));
      return { "x-cred": "channel" };
    });
    const client = createClient(Echo, h.channel(target, { credentials }));
    assert.equal((await client.unaryEcho({ message: "x-cred" })).message, "channel");
    assert.equal(
      (await client.unaryEcho({ message: "x-cred" }, { callCredentials: () => ({ "x-cred": "call" }) })).message,
      "channel, call",
    );
    assert.deepEqual((await collect(client.bidirectionalStreamingEcho(from([{ message: "b" }])))).map((r) => r.message), ["b"]);
    assert.equal(contexts.length, 3, "the generator runs once per call");
    assert.equal(contexts[0]!.serviceUrl, `https://${overrideName}/grpc.examples.echo.Echo`);
    assert.equal(contexts[0]!.path, "/grpc.examples.echo.Echo/UnaryEcho");

    const failing = createClient(Echo, h.channel(target, { credentials: withCallCredentials(tls({ ca: certs.caCert }), () => Promise.reject(new Error("token service down"))) }));
    await assert.rejects(failing.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.Unavailable && /call credentials failed: token service down/.test(e.message));
    const denying = createClient(Echo, h.channel(target, { credentials: withCallCredentials(tls({ ca: certs.caCert }), () => Promise.reject(new RpcError(Code.PermissionDenied, "no token for you"))) }));
    await assert.rejects(denying.unaryEcho({ message: "x" }), (e: RpcError) => e.code === Code.PermissionDenied);
  });
});

describe("TLS options that cannot work", () => {
  test("listen rejects a TLS key that is not PEM, naming the option", async () => {
    const { createServer, silentLogger } = await import("../../src/index.js");
    const server = createServer({ logger: silentLogger });
    await assert.rejects(server.listen({ host: "127.0.0.1", port: 0, tls: { cert: "not a cert", key: "not a key" } }), /listen\(\{ tls \}\)/);
  });
});
