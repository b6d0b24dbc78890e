/**
 * OpenTelemetry tracing as one interceptor for clients and servers: a CLIENT or SERVER span per
 * call, W3C trace context carried in the metadata, the status, and message events.
 *
 * Attribute names: the OpenTelemetry RPC semantic conventions as of semconv v1.45.0, where the
 * RPC span attributes became stable. They renamed the older (v1.37 and before, experimental)
 * names, which is what `@opentelemetry/instrumentation-grpc` and most instrumentations still emit:
 *
 *   stable (emitted)                          old name (emitted too with `legacyAttributes: true`)
 *   rpc.system.name = "grpc" | "connectrpc"   rpc.system = "grpc" | "connect_rpc"
 *   rpc.method = "pkg.Service/Method"         rpc.service = "pkg.Service", rpc.method = "Method"
 *   rpc.status_code = "DEADLINE_EXCEEDED"     rpc.grpc.status_code = 4
 *   error.type (failed calls only)            (none)
 *   server.address / server.port, network.peer.address / network.peer.port: unchanged
 *
 * (v1.40–v1.44 called the status `rpc.response.status_code`; v1.45 settled on `rpc.status_code`.)
 * The old `rpc.method` held the bare method name, so with `legacyAttributes` `rpc.method` keeps
 * the stable, fully-qualified value: one key cannot hold both.
 *
 * Message events: `rpc.message` with `rpc.message.type` (SENT/RECEIVED), `rpc.message.id` (one
 * counter per direction, from 1) and `rpc.message.uncompressed_size`, as defined up to v1.37
 * (before that: event `message` with `message.*` attributes). Semconv has since deprecated the
 * event with no replacement; it is kept because per-message timing of a stream is what a trace
 * of a streaming call is for. The size is the message's protobuf binary size (encoded again for
 * the event: bounded by the cap below); the compressed size is not visible to interceptors.
 *
 * Retries and hedges: Rill runs interceptors outside retries (src/client/intercepted-method.ts),
 * and no attempt is visible from here, so a client span covers the logical call with all its
 * attempts (what semconv asks of a client span) and attempts are not recorded as events or child
 * spans. Every attempt carries the same traceparent, so each attempt that reaches a server shows
 * as a server span under the one client span; a server span whose call is a retry has
 * `rill.rpc.previous_attempts` (from `grpc-previous-rpc-attempts`).
 */
import type {
  Attributes,
  Context,
  Span,
  TextMapGetter,
  TextMapPropagator,
  TextMapSetter,
  Tracer,
  TracerProvider,
} from "@opentelemetry/api";
import { api } from "./api.js";
import type { DescMessage } from "@bufbuild/protobuf";
import { protoCodec } from "../codec/codec.js";
import { observeMessages, PendingMessage, SingleMessage, withMessages, type CallRequest, type Interceptor, type Peer } from "../interceptor.js";
import type { Protocol } from "../handler-context.js";
import type { CallObservation, CallObserver, ObservedCall, ObservedOutcome } from "../observer.js";
import { Code, codeName } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import type { Metadata } from "../protocol/metadata.js";

/** Options of `createTracingObserver` and `createTracingInterceptor`. */
export interface TracingInterceptorOptions {
  /** Where spans go. Default: the global provider (`trace.getTracerProvider()`), looked up per span. */
  tracerProvider?: TracerProvider;
  /** How trace context is written to and read from metadata. Default: the global propagator (set it to W3C). */
  propagator?: TextMapPropagator;
  /**
   * Message events recorded per span, both directions together; default 128 (the SDK's own
   * default event limit). Later messages are counted in `rill.rpc.message_events.dropped`
   * instead, so a long stream does not hold unbounded events. 0 records none.
   */
  maxMessageEvents?: number;
  /** Also emit the pre-v1.38 attribute names (`rpc.system`, `rpc.service`, `rpc.grpc.status_code`) for older dashboards. */
  legacyAttributes?: boolean;
}

const instrumentationName = "rill";
/** Default of `maxMessageEvents`. */
const defaultMaxMessageEvents = 128;

/**
 * Server-side status codes that make a span an error (semconv's gRPC server span): the others
 * (NOT_FOUND, INVALID_ARGUMENT…) are the caller's problem, not the server's. On the client every
 * code but OK is an error.
 */
const serverErrorCodes: ReadonlySet<Code> = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/** Writes propagation fields into Rill metadata (a key the metadata refuses is skipped: propagation must never fail a call). */
export const metadataSetter: TextMapSetter<Metadata> = {
  set(carrier, key, value) {
    try {
      carrier.set(key.toLowerCase(), value);
    } catch {
      // An invalid value (non-ASCII) from a custom propagator: leave it out.
    }
  },
};

/** Reads propagation fields from Rill metadata (text values only). */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => [...carrier.keys()],
  get(carrier, key) {
    let values;
    try {
      values = carrier.getAll(key); // lowercases the key itself
    } catch {
      return undefined;
    }
    // One value, the usual case (traceparent, tracestate): no second array for it.
    if (values.length <= 1) return typeof values[0] === "string" ? values[0] : undefined;
    const text = values.filter((v): v is string => typeof v === "string");
    return text.length === 0 ? undefined : text.length === 1 ? text[0] : text;
  },
};

/** The options both forms share, resolved once. */
function resolveTracing(options: TracingInterceptorOptions) {
  const provider = options.tracerProvider;
  let ownTracer: Tracer | undefined;
  return {
    maxEvents: Math.max(0, Math.floor(options.maxMessageEvents ?? defaultMaxMessageEvents)),
    legacy: options.legacyAttributes === true,
    propagator: options.propagator,
    // The global provider is looked up per span (a cheap global read): an interceptor or observer
    // made before the SDK was registered must still trace once it is.
    tracer: (): Tracer => (provider === undefined ? api.trace.getTracer(instrumentationName) : (ownTracer ??= provider.getTracer(instrumentationName))),
  };
}

/**
 * An interceptor that traces every call, on a client (`createChannel`/`createClient`
 * `interceptors`) or a server (`createServer({ interceptors })`). Put it first so its span covers
 * the other interceptors. On the client the span is a child of the active context and its
 * context is sent in the metadata; on the server the span is a child of the context the metadata
 * carries, and the handler runs with it active (its own spans become children).
 *
 * The span ends when the response stream ends: OK, the error status, or CANCELLED when the
 * caller stopped reading early.
 */
export function createTracingInterceptor(options: TracingInterceptorOptions = {}): Interceptor {
  const { maxEvents, legacy, propagator, tracer } = resolveTracing(options);
  const inject = (ctx: Context, md: Metadata) =>
    propagator === undefined ? api.propagation.inject(ctx, md, metadataSetter) : propagator.inject(ctx, md, metadataSetter);
  const extract = (ctx: Context, md: Metadata) =>
    propagator === undefined ? api.propagation.extract(ctx, md, metadataGetter) : propagator.extract(ctx, md, metadataGetter);

  return (next) => async (request) => {
    const client = request.side === "client";
    const parent = client ? api.context.active() : extract(api.context.active(), request.metadata);
    const span = tracer().startSpan(
      request.path.slice(1),
      { kind: client ? api.SpanKind.CLIENT : api.SpanKind.SERVER, attributes: startAttributes(request, legacy) },
      parent,
    );
    const spanContext = api.trace.setSpan(parent, span);
    if (client) inject(spanContext, request.metadata);
    const recording = span.isRecording();
    // A sampled-out client span needs nothing more than the injected context (it tells the
    // server not to sample either): no wrapping, no events, the plain call.
    if (client && !recording) return api.context.with(spanContext, () => next(request));

    const call = recording ? new TracedCall(span, request, maxEvents, legacy) : undefined;
    let messages = request.messages;
    if (call !== undefined && maxEvents > 0) {
      const direction = client ? "SENT" : "RECEIVED";
      if (messages instanceof SingleMessage) call.message(direction, request.method.input, messages.message);
      else {
        messages = observeMessages(messages, {
          onMessage: (m) => {
            call.message(direction, request.method.input, m);
            return m;
          },
        });
      }
    }
    let response;
    try {
      response = await api.context.with(spanContext, () => next(messages === request.messages ? request : withMessages(request, messages)));
    } catch (e) {
      call?.end(e);
      throw e;
    }
    const direction = client ? "RECEIVED" : "SENT";
    const output = request.method.output;
    return {
      ...response,
      messages: traced(response.messages, spanContext, call, maxEvents > 0 ? (m) => call?.message(direction, output, m) : undefined, request),
    };
  };
}

/** What the start attributes are made from: an interceptor's request or an observer's call. */
interface StartedCall {
  readonly side: "client" | "server";
  readonly method: CallRequest["method"];
  readonly path: string;
  readonly protocol: Protocol;
  readonly authority?: string | undefined;
  readonly peer: Peer | undefined;
  readonly metadata: Metadata;
}

/** The attributes known when the call starts (semconv: those that matter to samplers come first). */
function startAttributes(request: StartedCall, legacy: boolean): Attributes {
  const system = request.protocol === "connect" ? "connectrpc" : "grpc";
  const attributes: Attributes = {
    "rpc.system.name": system,
    "rpc.method": request.path.slice(1),
    // Which of the three wire protocols the call used: grpc-web has no rpc.system.name of its own.
    "rill.rpc.protocol": request.protocol,
  };
  if (request.side === "client") {
    // semconv: from the target the channel was made with, not the connection.
    if (request.authority !== undefined) {
      const { host, port } = splitHostPort(request.authority);
      attributes["server.address"] = host;
      if (port !== undefined) attributes["server.port"] = port;
    }
  } else if (request.peer !== undefined) {
    const { host, port } = splitHostPort(request.peer.address);
    attributes["network.peer.address"] = host;
    if (port !== undefined) attributes["network.peer.port"] = port;
    const previous = request.metadata.get("grpc-previous-rpc-attempts");
    if (typeof previous === "string" && /^\d{1,4}$/.test(previous)) attributes["rill.rpc.previous_attempts"] = Number(previous);
  }
  if (legacy) {
    attributes["rpc.system"] = request.protocol === "connect" ? "connect_rpc" : "grpc";
    attributes["rpc.service"] = request.method.parent.typeName;
  }
  return attributes;
}

/** Addresses already split: a connection's calls all come from one. Emptied past 1,024. */
const splitCache = new Map<string, { host: string; port: number | undefined }>();

/** "host:port", "[v6]:port", or a bare host. */
function splitHostPort(address: string): { host: string; port: number | undefined } {
  let split = splitCache.get(address);
  if (split !== undefined) return split;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  split = m === null ? { host: address.replace(/^\[(.*)\]$/, "$1"), port: undefined } : { host: m[1]!, port: Number(m[2]) };
  if (splitCache.size >= 1024) splitCache.clear();
  splitCache.set(address, split);
  return split;
}

/** One recording span: message events under the cap, and the status once. */
class TracedCall {
  private sent = 0;
  private received = 0;
  private events = 0;
  private ended = false;

  constructor(
    private readonly span: Span,
    private readonly request: CallRequest,
    private readonly maxEvents: number,
    private readonly legacy: boolean,
  ) {}

  private get client(): boolean {
    return this.request.side === "client";
  }

  message(type: "SENT" | "RECEIVED", schema: DescMessage, message: unknown): void {
    const id = type === "SENT" ? ++this.sent : ++this.received;
    if (this.events >= this.maxEvents || this.ended) return;
    this.events++;
    const attributes: Attributes = { "rpc.message.type": type, "rpc.message.id": id };
    const size = encodedSize(schema, message);
    if (size !== undefined) attributes["rpc.message.uncompressed_size"] = size;
    this.span.addEvent("rpc.message", attributes);
  }

  end(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const err = error === undefined ? undefined : RpcError.from(error, Code.Unknown);
    endSpan(this.span, this.client, this.legacy, err?.code ?? Code.OK, err, this.sent, this.received, this.events);
  }
}

/**
 * Ends a call's span: its status (an error as semconv says for the side), and the message counts
 * when events were dropped. Shared by the interceptor and the observer.
 */
function endSpan(span: Span, client: boolean, legacy: boolean, code: Code, err: RpcError | undefined, sent: number, received: number, events: number): void {
  span.setAttribute("rpc.status_code", codeName(code));
  if (legacy) span.setAttribute("rpc.grpc.status_code", code);
  const failed = client ? code !== Code.OK : serverErrorCodes.has(code);
  if (failed) {
    span.setAttribute("error.type", codeName(code));
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: err?.rawMessage ?? "" });
  }
  const dropped = sent + received - events;
  if (dropped > 0) {
    span.setAttribute("rill.rpc.message_events.dropped", dropped);
    span.setAttribute("rill.rpc.messages_sent", sent);
    span.setAttribute("rill.rpc.messages_received", received);
  }
  span.end();
}

/**
 * Tracing as an observer (`createServer({ observers })`, `createChannel(target, { observers })`):
 * the same spans, attributes, events and propagation as `createTracingInterceptor`, told by the
 * call itself instead of wrapping it, so it adds no copy or iterator layer to a call.
 *
 * - Client: the span is a child of the context active when the call is made; its context goes
 *   out in the request metadata (`traceparent`, `tracestate`). A sampled-out span is only
 *   propagated (no observation).
 * - Server: the span is a child of the context the metadata carries; the handler runs with it
 *   active (the observation's `run`), so spans the handler makes, and client calls it makes,
 *   nest under it. With several observers, list it first so its `run` is the outermost.
 * - Message events carry the message's size from the message path: `rpc.message.uncompressed_size`,
 *   or `rpc.message.compressed_size` for a received message that arrived compressed (its size
 *   after decompression is not known when it arrives). No message is encoded again for its size.
 * - The span ends with the call: when the server writes the status, when the client receives it,
 *   or when the call is cancelled (CANCELLED, also when the caller stops reading a stream).
 * - Retries and hedges: one client span for the call, as with the interceptor; every attempt
 *   carries its context, and a retried server span has `rill.rpc.previous_attempts`.
 */
export function createTracingObserver(options: TracingInterceptorOptions = {}): CallObserver {
  const { maxEvents, legacy, propagator, tracer } = resolveTracing(options);
  return {
    start(call: ObservedCall): CallObservation | undefined {
      const client = call.side === "client";
      const active = api.context.active();
      const metadata = call.metadata;
      const parent = client ? active : propagator === undefined ? api.propagation.extract(active, metadata, metadataGetter) : propagator.extract(active, metadata, metadataGetter);
      const span = tracer().startSpan(call.path.slice(1), { kind: client ? api.SpanKind.CLIENT : api.SpanKind.SERVER, attributes: startAttributes(call, legacy) }, parent);
      const spanContext = api.trace.setSpan(parent, span);
      if (client) {
        if (propagator === undefined) api.propagation.inject(spanContext, metadata, metadataSetter);
        else propagator.inject(spanContext, metadata, metadataSetter);
        // A sampled-out client span needs nothing more than the injected context.
        return span.isRecording() ? new ClientSpanObservation(span, maxEvents, legacy) : undefined;
      }
      // A server span, recording or not: the handler runs in its context (a sampled-out one
      // still tells nested calls not to sample).
      return span.isRecording() ? new ServerSpanObservation(span, maxEvents, legacy, spanContext) : new ContextObservation(spanContext);
    },
  };
}

/**
 * One recording span, told of a call by the call. A class with the counters as fields (no
 * closures): an open stream keeps it for its whole life.
 */
class ClientSpanObservation implements CallObservation {
  private sent = 0;
  private received = 0;

  constructor(
    protected readonly span: Span,
    private readonly maxEvents: number,
    private readonly legacy: boolean,
  ) {}

  protected get client(): boolean {
    return true;
  }

  onMessage(direction: "sent" | "received", bytes: number, compressed: boolean): void {
    const sent = direction === "sent";
    const id = sent ? ++this.sent : ++this.received;
    // Every message before the cap was an event (the call reports none after the end).
    if (this.sent + this.received > this.maxEvents) return;
    const attributes: Attributes = { "rpc.message.type": sent ? "SENT" : "RECEIVED", "rpc.message.id": id };
    if (compressed) attributes["rpc.message.compressed_size"] = bytes;
    else attributes["rpc.message.uncompressed_size"] = bytes;
    this.span.addEvent("rpc.message", attributes);
  }

  onEnd(o: ObservedOutcome): void {
    const events = Math.min(this.sent + this.received, this.maxEvents);
    endSpan(this.span, this.client, this.legacy, o.code, o.error, this.sent, this.received, events);
  }
}

/** A server's recording span: the client's, and the handler run in its context. */
class ServerSpanObservation extends ClientSpanObservation {
  constructor(
    span: Span,
    maxEvents: number,
    legacy: boolean,
    private readonly context: Context,
  ) {
    super(span, maxEvents, legacy);
  }

  protected override get client(): boolean {
    return false;
  }

  run<T>(fn: () => T): T {
    return api.context.with(this.context, fn);
  }
}

/** A server span that does not record: only its context, for the handler. */
class ContextObservation implements CallObservation {
  constructor(private readonly context: Context) {}
  run<T>(fn: () => T): T {
    return api.context.with(this.context, fn);
  }
}

/** The message's protobuf binary size, or undefined if it cannot be encoded (the call itself will say why). */
function encodedSize(schema: DescMessage, message: unknown): number | undefined {
  try {
    return protoCodec.encode(schema, message as never).byteLength;
  } catch {
    return undefined;
  }
}

/**
 * The response stream, with `ctx` active while the inner stream produces each message (on the
 * server that runs the handler, which then sees the span; a generator handler resumes on every
 * `next()`, so every one is wrapped), each message reported, and the span ended with the outcome:
 * ended (OK), failed (its status), or left early by the reader (CANCELLED, or the abort reason).
 */
function traced(
  messages: AsyncIterable<unknown>,
  ctx: Context,
  call: TracedCall | undefined,
  onMessage: ((m: unknown) => void) | undefined,
  request: CallRequest,
): AsyncIterable<unknown> {
  // A unary or client-streaming call's one response, as a promise: it was produced under the
  // span already (the chain ran in its context), so it is only reported and the span ended.
  if (messages instanceof PendingMessage) {
    return observeMessages(messages, {
      onMessage: (m) => {
        onMessage?.(m);
        return m;
      },
      onEnd: (error) => call?.end(error),
    });
  }
  // A hand-written iterator (no generator hops per message). Only the server's reads run under
  // the span: they resume the handler, whose spans must nest under it; the client's reads
  // create no spans, and AsyncLocalStorage's run per message is not free.
  const server = request.side === "server";
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const it = messages[Symbol.asyncIterator]();
      let finished = false;
      return {
        next(): Promise<IteratorResult<unknown>> {
          if (finished) return Promise.resolve({ done: true, value: undefined });
          const read = server ? api.context.with(ctx, () => it.next()) : it.next();
          return read.then(
            (r) => {
              if (r.done === true) {
                finished = true;
                call?.end(undefined);
              } else onMessage?.(r.value);
              return r;
            },
            (e: unknown) => {
              finished = true;
              call?.end(e);
              throw e;
            },
          );
        },
        // The reader left early: close the call's stream (a cancellation still reaches it), then end the span.
        return(value?: unknown): Promise<IteratorResult<unknown>> {
          if (finished) return Promise.resolve({ done: true, value });
          finished = true;
          const endSpan = () => {
            const reason: unknown = request.signal?.aborted ? request.signal.reason : undefined;
            call?.end(reason ?? new RpcError(Code.Canceled, "the reader stopped before the end of the stream"));
          };
          return Promise.resolve(it.return?.(value)).then(
            () => {
              endSpan();
              return { done: true, value };
            },
            (e: unknown) => {
              endSpan();
              throw e;
            },
          );
        },
      };
    },
  };
}

/**
 * The trace id of the active span, or undefined outside one: for log lines that a trace can be
 * found from (`createLoggingInterceptor({ traceId: activeTraceId })`, after the tracing interceptor).
 */
export function activeTraceId(): string | undefined {
  const ctx = api.trace.getSpan(api.context.active())?.spanContext();
  return ctx !== undefined && api.trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}
