/**
 * rill/otel tracing, Rill client → Rill server over real sockets: one trace with the client span
 * the parent of the server span, semconv attributes and statuses, message events, the cap on
 * events, a reader that leaves early. The SDK's in-memory exporter checks what was recorded.
 * Every test runs twice: with the tracing interceptor and with the tracing observer, which must
 * record the same spans.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { create, toBinary } from "@bufbuild/protobuf";
import { Echo, EchoRequestSchema, EchoResponseSchema } from "../../gen/echo/echo_pb.js";
import { Code, RpcError, createClient, createLoggingInterceptor, formatCallLogEntry, type CallLogEntry, type CallObserver, type Interceptor, type ServiceImpl } from "../../src/index.js";
import { activeTraceId, createTracingInterceptor, createTracingObserver, type TracingInterceptorOptions } from "../../src/otel/index.js";
import { collect, from, useHarness } from "../support/harness.js";
import { only, traceRecorder } from "../support/otel.js";

const recorder = traceRecorder();
const contextManager = new AsyncLocalStorageContextManager();
const name = (method: string) => `grpc.examples.echo.Echo/${method}`;

/** Echo whose handlers start a span of their own (it must be a child of the server span). */
const service: ServiceImpl<typeof Echo> = {
  async unaryEcho(req) {
    recorder.provider.getTracer("handler").startSpan("inside the handler").end();
    if (req.message === "precondition") throw new RpcError(Code.FailedPrecondition, "not now");
    if (req.message === "internal") throw new RpcError(Code.Internal, "broken");
    return { message: req.message };
  },
  async *serverStreamingEcho(req, ctx) {
    const n = Number(req.message);
    for (let i = 0; i < n && !ctx.signal.aborted; i++) yield { message: `m${i}` };
  },
  async clientStreamingEcho(reqs) {
    let n = 0;
    for await (const _ of reqs) n++;
    return { message: String(n) };
  },
  async *bidirectionalStreamingEcho(reqs) {
    for await (const r of reqs) yield { message: r.message };
  },
};

function attr(span: ReadableSpan, key: string): unknown {
  return span.attributes[key];
}

type Form = "interceptor" | "observer";

/** Server or channel options that trace with `form` (the same options object works for both). */
function traced(form: Form, options: TracingInterceptorOptions): { interceptors?: Interceptor[]; observers?: CallObserver[] } {
  return form === "interceptor" ? { interceptors: [createTracingInterceptor(options)] } : { observers: [createTracingObserver(options)] };
}

for (const form of ["interceptor", "observer"] as const)
describe(`rill/otel tracing (${form}), Rill client → Rill server`, () => {
  const h = useHarness();
  const propagator = new W3CTraceContextPropagator();

  before(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  after(() => {
    context.disable();
  });
  beforeEach(() => recorder.reset());

  async function setup(options: TracingInterceptorOptions = {}) {
    const tracing = traced(form, { tracerProvider: recorder.provider, propagator, ...options });
    const { target, port } = await h.server((s) => s.add(Echo, service), tracing);
    const client = h.client(Echo, target, tracing);
    return { client, port };
  }

  test("a client call made by a handler is a child of the handler's server span", async () => {
    const tracing = traced(form, { tracerProvider: recorder.provider, propagator });
    let inner: ReturnType<typeof createClient<typeof Echo>> | undefined;
    const { target } = await h.server(
      (s) =>
        s.add(Echo, {
          ...service,
          async unaryEcho(req) {
            if (req.message === "outer") return { message: (await inner!.unaryEcho({ message: "inner" })).message };
            return { message: req.message };
          },
        }),
      tracing,
    );
    inner = h.client(Echo, target, tracing);
    const client = h.client(Echo, target, tracing);
    assert.equal((await client.unaryEcho({ message: "outer" })).message, "inner");
    const spans = await recorder.finished(4);
    const clients = spans.filter((s) => s.kind === SpanKind.CLIENT);
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    assert.equal(clients.length, 2);
    assert.equal(servers.length, 2);
    // The outer client span has no parent; the outer server span is its child, the inner client
    // span the outer server span's child, and the inner server span the inner client span's.
    const outerClient = clients.find((s) => s.parentSpanContext === undefined)!;
    const outerServer = servers.find((s) => s.parentSpanContext?.spanId === outerClient.spanContext().spanId)!;
    const innerClient = clients.find((s) => s !== outerClient)!;
    const innerServer = servers.find((s) => s !== outerServer)!;
    assert.ok(outerServer !== undefined);
    assert.equal(innerClient.parentSpanContext?.spanId, outerServer.spanContext().spanId);
    assert.equal(innerServer.parentSpanContext?.spanId, innerClient.spanContext().spanId);
    for (const s of spans) assert.equal(s.spanContext().traceId, outerClient.spanContext().traceId);
  });

  if (form === "observer") {
    test("log lines on the server carry the trace id (activeTraceId): interceptors run inside the observer's span", async () => {
      const lines: CallLogEntry[] = [];
      const logging = createLoggingInterceptor({ traceId: activeTraceId, onCall: (e) => lines.push(e) });
      const tracing = traced(form, { tracerProvider: recorder.provider, propagator });
      const { target } = await h.server((s) => s.add(Echo, service), { ...tracing, interceptors: [logging] });
      const client = h.client(Echo, target, tracing);
      await client.unaryEcho({ message: "logged" });
      const spans = await recorder.finished(3);
      const traceId = only(spans, SpanKind.SERVER).spanContext().traceId;
      assert.deepEqual(lines.map((l) => [l.side, l.traceId]), [["server", traceId]]);
    });
  }

  if (form === "interceptor")
  test("log lines carry the trace id (activeTraceId), on both sides, the same as the spans'", async () => {
    const tracing: Interceptor = createTracingInterceptor({ tracerProvider: recorder.provider, propagator });
    const lines: CallLogEntry[] = [];
    const logging = createLoggingInterceptor({ traceId: activeTraceId, onCall: (e) => lines.push(e) });
    const { target } = await h.server((s) => s.add(Echo, service), { interceptors: [tracing, logging] });
    const client = h.client(Echo, target, { interceptors: [tracing, logging] });
    await client.unaryEcho({ message: "logged" });
    const spans = await recorder.finished(3);
    const traceId = only(spans, SpanKind.CLIENT).spanContext().traceId;
    assert.deepEqual(lines.map((l) => [l.side, l.traceId]).sort(), [["client", traceId], ["server", traceId]]);
    assert.match(formatCallLogEntry(lines[0]!), new RegExp(` trace=${traceId}$`));
    assert.equal(activeTraceId(), undefined, "no span outside a call");
  });

  test("a unary call: one trace, the client span the parent of the server span, the handler's span under it, attributes and events", async () => {
    const { client, port } = await setup();
    const outer = recorder.provider.getTracer("test").startSpan("outer");
    const res = await context.with(trace.setSpan(context.active(), outer), () => client.unaryEcho({ message: "hello" }));
    outer.end();
    assert.equal(res.message, "hello");
    const spans = await recorder.finished(4);
    const clientSpan = only(spans, SpanKind.CLIENT);
    const serverSpan = only(spans, SpanKind.SERVER);
    const inside = only(spans, SpanKind.INTERNAL, "inside the handler");

    assert.equal(clientSpan.name, name("UnaryEcho"));
    assert.equal(serverSpan.name, name("UnaryEcho"));
    const traceId = outer.spanContext().traceId;
    for (const s of [clientSpan, serverSpan, inside]) assert.equal(s.spanContext().traceId, traceId);
    assert.equal(clientSpan.parentSpanContext?.spanId, outer.spanContext().spanId);
    assert.equal(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
    assert.equal(serverSpan.parentSpanContext?.isRemote, true);
    assert.equal(inside.parentSpanContext?.spanId, serverSpan.spanContext().spanId);

    for (const s of [clientSpan, serverSpan]) {
      assert.equal(attr(s, "rpc.system.name"), "grpc");
      assert.equal(attr(s, "rpc.method"), name("UnaryEcho"));
      assert.equal(attr(s, "rpc.status_code"), "OK");
      assert.equal(attr(s, "rill.rpc.protocol"), "grpc");
      assert.equal(attr(s, "error.type"), undefined);
      assert.equal(s.status.code, SpanStatusCode.UNSET);
      // No legacy names unless asked for.
      assert.equal(attr(s, "rpc.service"), undefined);
    }
    assert.equal(attr(clientSpan, "server.address"), "127.0.0.1");
    assert.equal(attr(clientSpan, "server.port"), port);
    assert.equal(attr(serverSpan, "network.peer.address"), "127.0.0.1");
    assert.equal(typeof attr(serverSpan, "network.peer.port"), "number");

    // One message each way, with its protobuf size.
    const requestSize = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hello" })).byteLength;
    const responseSize = toBinary(EchoResponseSchema, create(EchoResponseSchema, { message: "hello" })).byteLength;
    const events = (s: ReadableSpan) => s.events.map((e) => [e.name, e.attributes?.["rpc.message.type"], e.attributes?.["rpc.message.id"], e.attributes?.["rpc.message.uncompressed_size"]]);
    assert.deepEqual(events(clientSpan), [
      ["rpc.message", "SENT", 1, requestSize],
      ["rpc.message", "RECEIVED", 1, responseSize],
    ]);
    assert.deepEqual(events(serverSpan), [
      ["rpc.message", "RECEIVED", 1, requestSize],
      ["rpc.message", "SENT", 1, responseSize],
    ]);
  });

  test("errors: every non-OK code fails the client span; on the server only the server's faults do (INTERNAL yes, FAILED_PRECONDITION no)", async () => {
    const { client } = await setup();
    await assert.rejects(client.unaryEcho({ message: "precondition" }), (e: RpcError) => e.code === Code.FailedPrecondition);
    let spans = await recorder.finished(3);
    let c = only(spans, SpanKind.CLIENT);
    let s = only(spans, SpanKind.SERVER);
    assert.equal(attr(c, "rpc.status_code"), "FAILED_PRECONDITION");
    assert.equal(attr(c, "error.type"), "FAILED_PRECONDITION");
    assert.deepEqual(c.status, { code: SpanStatusCode.ERROR, message: "not now" });
    assert.equal(attr(s, "rpc.status_code"), "FAILED_PRECONDITION");
    assert.equal(attr(s, "error.type"), undefined);
    assert.equal(s.status.code, SpanStatusCode.UNSET);

    recorder.reset();
    await assert.rejects(client.unaryEcho({ message: "internal" }), (e: RpcError) => e.code === Code.Internal);
    spans = await recorder.finished(3);
    c = only(spans, SpanKind.CLIENT);
    s = only(spans, SpanKind.SERVER);
    for (const span of [c, s]) {
      assert.equal(attr(span, "rpc.status_code"), "INTERNAL");
      assert.equal(attr(span, "error.type"), "INTERNAL");
      assert.equal(span.status.code, SpanStatusCode.ERROR);
    }
    assert.equal(s.parentSpanContext?.spanId, c.spanContext().spanId);
  });

  test("a bidi stream: one event per message each way, ids counted per direction", async () => {
    const { client } = await setup();
    const out = await collect(client.bidirectionalStreamingEcho(from(["a", "b", "c", "d", "e"].map((message) => ({ message })))));
    assert.equal(out.length, 5);
    const spans = await recorder.finished(2);
    const c = only(spans, SpanKind.CLIENT);
    const s = only(spans, SpanKind.SERVER);
    const ids = (span: ReadableSpan, type: string) => span.events.filter((e) => e.attributes?.["rpc.message.type"] === type).map((e) => e.attributes?.["rpc.message.id"]);
    for (const span of [c, s]) {
      assert.equal(span.events.length, 10);
      assert.deepEqual(ids(span, "SENT"), [1, 2, 3, 4, 5]);
      assert.deepEqual(ids(span, "RECEIVED"), [1, 2, 3, 4, 5]);
      assert.ok(span.events.every((e) => typeof e.attributes?.["rpc.message.uncompressed_size"] === "number"));
      assert.equal(attr(span, "rill.rpc.message_events.dropped"), undefined);
    }
    assert.equal(s.parentSpanContext?.spanId, c.spanContext().spanId);
  });

  test("a long stream: events stop at maxMessageEvents, the rest are counted", async () => {
    const { client } = await setup({ maxMessageEvents: 10 });
    const out = await collect(client.serverStreamingEcho({ message: "300" }));
    assert.equal(out.length, 300);
    const spans = await recorder.finished(2);
    for (const span of [only(spans, SpanKind.CLIENT), only(spans, SpanKind.SERVER)]) {
      assert.equal(span.events.length, 10);
      assert.equal(attr(span, "rill.rpc.message_events.dropped"), 291);
      assert.equal(attr(span, "rpc.status_code"), "OK");
    }
    const c = only(spans, SpanKind.CLIENT);
    assert.equal(attr(c, "rill.rpc.messages_sent"), 1);
    assert.equal(attr(c, "rill.rpc.messages_received"), 300);
  });

  test("a caller that stops reading early: both spans end, CANCELLED", async () => {
    const { client } = await setup();
    let n = 0;
    for await (const _ of client.serverStreamingEcho({ message: "1000000" })) if (++n === 3) break;
    const spans = await recorder.finished(2);
    const c = only(spans, SpanKind.CLIENT);
    const s = only(spans, SpanKind.SERVER);
    assert.equal(attr(c, "rpc.status_code"), "CANCELLED");
    assert.equal(c.status.code, SpanStatusCode.ERROR);
    assert.equal(attr(s, "rpc.status_code"), "CANCELLED");
    // CANCELLED is the client's doing: not a server error.
    assert.equal(s.status.code, SpanStatusCode.UNSET);
  });

  test("legacyAttributes adds the pre-1.38 names; a client-streaming call counts its requests", async () => {
    const { client } = await setup({ legacyAttributes: true });
    const res = await client.clientStreamingEcho(from([{ message: "x" }, { message: "y" }]));
    assert.equal(res.message, "2");
    const spans = await recorder.finished(2);
    for (const span of [only(spans, SpanKind.CLIENT), only(spans, SpanKind.SERVER)]) {
      assert.equal(attr(span, "rpc.system"), "grpc");
      assert.equal(attr(span, "rpc.service"), "grpc.examples.echo.Echo");
      assert.equal(attr(span, "rpc.grpc.status_code"), 0);
      assert.equal(attr(span, "rpc.method"), name("ClientStreamingEcho"));
      assert.equal(span.events.length, 3);
    }
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    test(`a ${protocol} call: the same trace, rpc.system.name ${protocol === "connect" ? "connectrpc" : "grpc"}, the protocol in rill.rpc.protocol`, async () => {
      const tracing = traced(form, { tracerProvider: recorder.provider, propagator });
      const { target } = await h.server((s) => s.add(Echo, service), tracing);
      const client = h.client(Echo, target, { ...tracing, protocol });
      await assert.rejects(client.unaryEcho({ message: "internal" }), (e: RpcError) => e.code === Code.Internal);
      const spans = await recorder.finished(3);
      const c = only(spans, SpanKind.CLIENT);
      const s = only(spans, SpanKind.SERVER);
      assert.equal(s.parentSpanContext?.spanId, c.spanContext().spanId);
      for (const span of [c, s]) {
        assert.equal(attr(span, "rpc.system.name"), protocol === "connect" ? "connectrpc" : "grpc");
        assert.equal(attr(span, "rill.rpc.protocol"), protocol);
        assert.equal(attr(span, "rpc.status_code"), "INTERNAL");
        assert.equal(span.status.code, SpanStatusCode.ERROR);
      }
    });
  }

  test("maxMessageEvents 0 records no events; a sampled-out trace is propagated, not recorded", async () => {
    const { client } = await setup({ maxMessageEvents: 0 });
    await client.unaryEcho({ message: "quiet" });
    const spans = await recorder.finished(3);
    assert.equal(only(spans, SpanKind.CLIENT).events.length, 0);
    assert.equal(only(spans, SpanKind.SERVER).events.length, 0);

    // A parent that is not sampled: neither side records, and the handler's span is not sampled either.
    recorder.reset();
    const unsampled = trace.wrapSpanContext({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 0 });
    await context.with(trace.setSpan(context.active(), unsampled), () => client.unaryEcho({ message: "not sampled" }));
    await recorder.provider.forceFlush();
    assert.deepEqual(recorder.exporter.getFinishedSpans(), []);
  });
});
