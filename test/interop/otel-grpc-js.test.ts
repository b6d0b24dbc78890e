/**
 * Trace context across implementations: Rill traced by rill/otel on one side, @grpc/grpc-js
 * traced by @opentelemetry/instrumentation-grpc (code no one here wrote) on the other, both ways.
 * The client span is in one process' implementation, the server span in the other's: same trace
 * id, the server span's parent is the client span. Uses only the global OpenTelemetry setup
 * (provider, W3C propagator, AsyncLocalStorage context), the way applications configure it, so
 * rill/otel's defaults are what is tested.
 *
 * grpc-js is CommonJS and the instrumentation patches it as it is required: it is registered
 * first, then grpc-js is required (createRequire). Nothing imported above may load grpc-js, so
 * this file does not use test/support/grpc-js-protos.ts (which imports it).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import type * as GrpcJs from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Echo } from "../../gen/echo/echo_pb.js";
import { createTracingInterceptor, createTracingObserver } from "../../src/otel/index.js";
import { collect, useHarness } from "../support/harness.js";
import { only, traceRecorder } from "../support/otel.js";

const recorder = traceRecorder();
trace.setGlobalTracerProvider(recorder.provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
registerInstrumentations({ instrumentations: [new GrpcInstrumentation()] });

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js") as typeof GrpcJs;

/** The repository root: this file compiles to dist/test/interop/. */
const echoProto = fileURLToPath(new URL("../../../examples/echo/echo.proto", import.meta.url));
const definition = protoLoader.loadSync(echoProto, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
// loadPackageDefinition is one of the functions the instrumentation wraps to trace clients.
const GrpcJsEcho = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { examples: { echo: { Echo: GrpcJs.ServiceClientConstructor } } } }).grpc.examples.echo.Echo;

/** The Rill span name and the instrumentation's, which still uses the pre-1.38 form `grpc.<service>/<method>`. */
const rillName = (method: string) => `grpc.examples.echo.Echo/${method}`;
const grpcJsName = (method: string) => `grpc.grpc.examples.echo.Echo/${method}`;

interface UntypedClient {
  unaryEcho(req: { message: string }, cb: (err: GrpcJs.ServiceError | null, res?: { message: string }) => void): void;
  serverStreamingEcho(req: { message: string }): GrpcJs.ClientReadableStream<{ message: string }>;
  close(): void;
}

/** A grpc-js Echo server on 127.0.0.1 (unary and server streaming; the instrumentation traces it). */
async function grpcJsServer(): Promise<{ target: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(GrpcJsEcho.service, {
    unaryEcho(call: GrpcJs.ServerUnaryCall<{ message: string }, unknown>, callback: GrpcJs.sendUnaryData<unknown>) {
      callback(null, { message: call.request.message });
    },
    serverStreamingEcho(call: GrpcJs.ServerWritableStream<{ message: string }, unknown>) {
      for (let i = 0; i < 3; i++) call.write({ message: `${call.request.message} ${i}` });
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return {
    target: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

describe("trace context between Rill (rill/otel) and grpc-js (@opentelemetry/instrumentation-grpc)", () => {
  const h = useHarness();

  test("grpc-js really is instrumented (registered before it was required)", () => {
    // The instrumentation marks what it wrapped; without it the tests below would only see Rill's spans.
    assert.equal(typeof (grpc.Server.prototype.register as { __wrapped?: unknown }).__wrapped, "boolean");
  });

  for (const form of ["interceptor", "observer"] as const)
  for (const kind of ["unary", "server streaming"] as const) {
    /** Rill's tracing the `form` way, with the global provider and propagator. */
    const tracing = () => (form === "interceptor" ? { interceptors: [createTracingInterceptor()] } : { observers: [createTracingObserver()] });
    test(`Rill client (${form}) → grpc-js server, ${kind}: one trace, grpc-js' server span is a child of Rill's client span`, async () => {
      recorder.reset();
      const server = await grpcJsServer();
      try {
        const client = h.client(Echo, server.target, tracing());
        if (kind === "unary") assert.equal((await client.unaryEcho({ message: "hi" })).message, "hi");
        else assert.deepEqual((await collect(client.serverStreamingEcho({ message: "hi" }))).map((m) => m.message), ["hi 0", "hi 1", "hi 2"]);
        const method = kind === "unary" ? "UnaryEcho" : "ServerStreamingEcho";
        const spans = await recorder.finished(2);
        const rillClient = only(spans, SpanKind.CLIENT, rillName(method));
        const grpcJsServerSpan = only(spans, SpanKind.SERVER, grpcJsName(method));
        assert.equal(grpcJsServerSpan.spanContext().traceId, rillClient.spanContext().traceId);
        assert.equal(grpcJsServerSpan.parentSpanContext?.spanId, rillClient.spanContext().spanId);
        assert.equal(grpcJsServerSpan.parentSpanContext?.isRemote, true);
        assert.equal(grpcJsServerSpan.attributes["rpc.grpc.status_code"], 0);
        assert.equal(rillClient.attributes["rpc.status_code"], "OK");
      } finally {
        await server.close();
      }
    });

    test(`grpc-js client → Rill server (${form}), ${kind}: one trace, Rill's server span is a child of grpc-js' client span`, async () => {
      recorder.reset();
      const { target } = await h.server(
        (s) =>
          s.add(Echo, {
            async unaryEcho(req) {
              return { message: req.message };
            },
            async *serverStreamingEcho(req) {
              for (let i = 0; i < 3; i++) yield { message: `${req.message} ${i}` };
            },
          }),
        tracing(),
      );
      const client = new GrpcJsEcho(target, grpc.credentials.createInsecure()) as unknown as UntypedClient;
      try {
        if (kind === "unary") {
          const res = await new Promise<{ message: string } | undefined>((resolve, reject) =>
            client.unaryEcho({ message: "hi" }, (err, r) => (err === null ? resolve(r) : reject(err))),
          );
          assert.equal(res?.message, "hi");
        } else {
          const got: string[] = [];
          for await (const m of client.serverStreamingEcho({ message: "hi" })) got.push((m as { message: string }).message);
          assert.deepEqual(got, ["hi 0", "hi 1", "hi 2"]);
        }
        const method = kind === "unary" ? "UnaryEcho" : "ServerStreamingEcho";
        const spans = await recorder.finished(2);
        const grpcJsClient = only(spans, SpanKind.CLIENT, grpcJsName(method));
        const rillServer = only(spans, SpanKind.SERVER, rillName(method));
        assert.equal(rillServer.spanContext().traceId, grpcJsClient.spanContext().traceId);
        assert.equal(rillServer.parentSpanContext?.spanId, grpcJsClient.spanContext().spanId);
        assert.equal(rillServer.parentSpanContext?.isRemote, true);
        assert.equal(rillServer.attributes["rpc.status_code"], "OK");
        assert.equal(grpcJsClient.attributes["rpc.grpc.status_code"], 0);
      } finally {
        client.close();
      }
    });
  }
});
