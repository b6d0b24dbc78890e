import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { ResetCode, type IncomingStreamHeaders, type ServerCallStream, type StreamHeaders } from "../transport/call-stream.js";
import { parseAcceptEncoding, type Compression } from "../codec/compression.js";
import { sendPayload, sendsCompressed, serializeMessage, sizeSmallMessage, type MessageSide } from "../codec/message-codec.js";
import { writeSizedFlatMessage } from "../codec/flat-message-encoder.js";
import { IdleTimeoutError, RpcError } from "../protocol/errors.js";
import { IdleTimer } from "../stream/idle-timer.js";
import type { Logger } from "../logger.js";
import { Code } from "../protocol/code.js";
import { FRAME_HEADER_LENGTH, encodeFrame, putHeader } from "../protocol/frame.js";
import { contentTypeFor } from "../protocol/headers.js";
import { isReservedHeader, Metadata, metadataFromHeaders, metadataToHeaders } from "../protocol/metadata.js";
import { statusHeaders } from "../protocol/status.js";
import { encodeStatusDetails, statusDetailsKey } from "../protocol/status-details.js";
import { parseTimeout } from "../protocol/timeout.js";
import { BATCHED_BELOW, FrameWriter, type FrameSink } from "../stream/frame-writer.js";
import { CallContext } from "./call-context.js";
import type { HandlerContext, Protocol } from "../handler-context.js";
import { RequestReader, type ReaderHooks, type RequestReaderHost } from "./request-reader.js";
import type { Route } from "./router.js";
import { tlsPeerOf, type TlsPeer } from "../transport/tls-peer.js";
import { startTimer, type LongTimer } from "../timer.js";
import { stopClientAfterStatusHeaders } from "./stop-after-status-headers.js";
import { CallObservations, type CallObserver } from "../observer.js";
import { ServerObservedCall } from "./observed-call.js";

/** What a server call tells its connection; one object per connection, shared by its calls. */
export interface ServerCallHooks extends ReaderHooks {
  /** The call reached DONE. */
  readonly onDone: (call: ServerCall) => void;
  /** The call wrote headers, data or trailers (the connection's ping policy forgives pings then). */
  readonly onSend: () => void;
}

/** Limits and services a server call needs from its server. Resolved once per server. */
export interface ServerCallConfig {
  readonly logger: Logger;
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;
  /** Bytes of unread request messages buffered before the HTTP/2 stream is paused. */
  readonly receiveHighWaterMark: number;
  /** Bytes of responses buffered per call before producers wait (brpc's max_buf_size). */
  readonly sendHighWaterMark: number;
  /** Close a call with no message in either direction for this long (0 = never), unless the client asks for its own. */
  readonly idleTimeoutMs: number;
  /** Compressions the server can read and write, by name. */
  readonly compressions: ReadonlyMap<string, Compression>;
  /** The `grpc-accept-encoding` the server sends: its compressions, comma-separated. */
  readonly acceptEncoding: string;
  /** Response compression used when the client accepts it; undefined for identity. */
  readonly defaultCompression: Compression | undefined;
  /** The server's flow-control counters (`server.stats`), added to by every call. */
  readonly stats: FlowStats;
}

/** What producers met of flow control, across a server's calls. */
export interface FlowStats {
  /** `ctx.trySend` calls refused because the call's buffer was full. */
  trySendRefusals: number;
  /** Times a producer (`ctx.send`, a generator) waited for the client to take what was buffered. */
  flowControlWaits: number;
  /** Their total time, in milliseconds. */
  flowControlWaitMs: number;
}

/**
 * Serves one gRPC call on one HTTP/2 stream: runs the handler by its kind on the requests its
 * RequestReader reads, writes the responses, and ends with exactly one status. The handler sees a
 * CallContext that forwards to this object's HandlerContext members, never this object itself.
 *
 * Writing responses stays here, with the call's life, on purpose: what goes out depends on the
 * same state as how the call ends (a status with no headers sent is trailers-only; a status waits
 * behind a message still being compressed; nothing is written after DONE). Apart, the two would
 * call into each other at every step, as the client's call and attempt once did.
 *
 * Life of a call: OPEN → (handler runs) → DONE. DONE is reached once, by whichever comes
 * first: the handler finishing, the handler throwing, the deadline, the client cancelling,
 * or the server shutting down. Everything after DONE is ignored, so a handler that keeps
 * producing after a cancel writes nothing.
 *
 * Status rules: a call that sent no headers ends trailers-only (one HEADERS frame with
 * END_STREAM); otherwise DATA is followed by a trailers HEADERS frame. A non-OK status never
 * follows an unsent header block with message data.
 */
export class ServerCall implements RequestReaderHost, HandlerContext {
  readonly deadline: number | undefined;

  // Allocated on first use: most calls never look at their signal, metadata or peer, and an
  // AbortSignal, two Metadata and a string per call are most of a call's fixed cost.
  private controller: AbortController | undefined;
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  /** Why the call ended (undefined for a clean finish), for a signal first asked for after the end. */
  private endReason: RpcError | undefined;
  /** The request's custom-metadata headers, until `requestMetadata` is first read. */
  private headers: IncomingStreamHeaders | undefined;
  private requestMeta: Metadata | undefined;
  private header: Metadata | undefined;
  private trailer: Metadata | undefined;
  private headersSent = false;
  private done = false;
  private timer: LongTimer | undefined;
  /**
   * @internal The request side: reads the stream's DATA into messages for the handler. Dropped
   * once a unary or server-streaming call has its one request, so an open server stream holds no
   * request-side object.
   */
  reader: RequestReader | undefined;
  lastRequestCompressed = false;
  private responseCompression: Compression | undefined;
  /** The client's grpc-accept-encoding, parsed only when a compression choice needs it. */
  private readonly acceptHeader: string | string[] | undefined;
  private badRequest: RpcError | undefined;
  /** Created on the first write: an idle call never needs one. */
  private out: FrameWriter | undefined;
  /** @internal The call's idle timeout, when it has one (the client's, else the server's). */
  idle: IdleTimer | undefined;
  /** @internal What the server's observers keep of this call; undefined without observers. */
  observed: CallObservations | undefined;

  constructor(
    private readonly stream: ServerCallStream,
    headers: IncomingStreamHeaders,
    private readonly route: Route,
    /** The server's message rules for the call's codec. */
    private readonly side: MessageSide,
    private readonly config: ServerCallConfig,
    /** The connection's callbacks, one object per connection. */
    private readonly hooks: ServerCallHooks,
  ) {
    this.headers = customHeaders(headers);

    const timeout = headers["grpc-timeout"];
    let deadline: number | undefined;
    if (typeof timeout === "string") {
      // A malformed timeout is answered after construction, in start(), so it gets a status.
      try {
        const ms = parseTimeout(timeout);
        deadline = Date.now() + ms;
        // Chained past setTimeout's 24.8-day limit: a longer deadline must not fire at once.
        this.timer = startTimer(Math.ceil(ms), () => this.fail(new RpcError(Code.DeadlineExceeded, "deadline exceeded")), true);
      } catch (e) {
        this.badRequest = RpcError.from(e, Code.Internal);
      }
    }
    this.deadline = deadline;
    const idle = headers["rill-idle-timeout-ms"];
    const idleMs = typeof idle === "string" && /^\d{1,9}$/.test(idle) ? Number(idle) : config.idleTimeoutMs;
    if (idleMs > 0) this.idle = new IdleTimer(idleMs, (reason) => this.fail(reason));

    const encoding = headers["grpc-encoding"];
    let requestCompression: Compression | undefined;
    if (typeof encoding === "string" && encoding !== "identity") {
      requestCompression = config.compressions.get(encoding);
      if (requestCompression === undefined) {
        this.badRequest = new RpcError(
          Code.Unimplemented,
          `grpc-encoding "${encoding}" is not supported by this server (it accepts: ${config.acceptEncoding || "identity"})`,
        );
      }
    }
    this.acceptHeader = shared(headers["grpc-accept-encoding"]);
    const preferred = config.defaultCompression;
    if (preferred !== undefined && parseAcceptEncoding(this.acceptHeader).includes(preferred.name)) this.responseCompression = preferred;

    this.reader = new RequestReader(this, stream, route.method, side, requestCompression, config.receiveHighWaterMark, hooks);
    // The stream's listeners are shared functions that find the call on the stream: no closures
    // per call (they were a large part of an idle call's memory).
    (stream as CallStream)[kCall] = this;
    stream.on("data", onStreamData);
    stream.on("end", onStreamEnd);
    stream.on("aborted", onStreamAborted);
    stream.on("close", onStreamClose);
    stream.on("error", onStreamError);
    // Only a translated request (gRPC-Web, Connect) can be malformed in ways the stream finds.
    if (stream.protocol !== undefined) stream.on("protocolError", onProtocolError);
  }

  /** @internal A chunk of the request body arrived (read by the window tuner even after the one request is in). */
  onData(chunk: Buffer): void {
    if (this.reader !== undefined) this.reader.onData(chunk);
    else this.hooks.onData?.(chunk.byteLength);
  }

  /** @internal See RequestReaderHost. */
  requestTaken(): void {
    this.reader = undefined;
  }

  /**
   * @internal Starts the server's observers on this call and runs it (inside their `run`, so the
   * handler and every await of its responses see, e.g., the span's context). Never rejects.
   */
  observeAndStart(observers: readonly CallObserver[]): Promise<void> {
    const observed = CallObservations.start(observers, new ServerObservedCall(this, this.route.path), this.config.logger);
    if (observed === undefined) return this.start();
    this.observed = observed;
    return observed.run(() => this.start());
  }

  get method(): DescMethod {
    return this.route.method;
  }

  get protocol(): Protocol {
    return this.stream.protocol ?? "grpc";
  }

  /** Aborts when the call ends early for any reason; created on first access. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.endReason ?? new RpcError(Code.Canceled, "the call finished"));
    }
    return this.controller.signal;
  }

  get closed(): Promise<void> {
    if (this.closedPromise === undefined) {
      if (this.done) this.closedPromise = Promise.resolve();
      else this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    }
    return this.closedPromise;
  }

  get requestMetadata(): Metadata {
    if (this.requestMeta === undefined) {
      this.requestMeta = metadataFromHeaders(this.headers ?? {});
      this.headers = undefined;
    }
    return this.requestMeta;
  }

  get responseHeader(): Metadata {
    return (this.header ??= new Metadata());
  }

  get responseTrailer(): Metadata {
    return (this.trailer ??= new Metadata());
  }

  get peer(): string {
    const session = this.stream.session;
    if (session === undefined) return "unknown:0";
    let peer = peers.get(session);
    if (peer === undefined) peers.set(session, (peer = peerOf(session.socket)));
    return peer;
  }

  /** Runs the handler to its end. Never rejects: every outcome becomes a status. */
  async start(): Promise<void> {
    if (this.badRequest !== undefined) {
      this.fail(this.badRequest);
      return;
    }
    // Few locals on purpose: an open streaming call keeps this frame (its registers) until it ends.
    const route = this.route;
    try {
      const kind = route.method.methodKind;
      if (kind === "server_streaming" || kind === "bidi_streaming") {
        // Returned, not awaited: this async frame (~0.4 KB with its registers) then ends here
        // instead of staying alive as long as the stream is open.
        return this.runStreaming(kind === "server_streaming" ? await this.reader!.single() : this.reader!.requests!);
      } else {
        // Awaited only when there is something to wait for: each await of a plain value is a
        // promise and a trip through the microtask queue per call.
        let r: unknown = route.handler(kind === "unary" ? await this.reader!.single() : this.reader!.requests!, new CallContext(this));
        if (isThenable(r)) r = await r;
        r = this.sendOne(r);
        if (r !== undefined) await r;
      }
      this.finish(Code.OK, "", this.trailer);
    } catch (e) {
      this.fail(this.toRpcError(e));
    }
  }

  /** Runs a streaming handler; like start(), never rejects. */
  private runStreaming(request: unknown): Promise<void> {
    let r: unknown;
    try {
      r = this.sendAll(this.route.handler(request, new CallContext(this)));
    } catch (e) {
      this.fail(this.toRpcError(e));
      return Promise.resolve();
    }
    if (!isThenable(r)) {
      this.finishOk();
      return Promise.resolve();
    }
    return Promise.resolve(r).then(
      () => this.finishOk(),
      (e: unknown) => this.fail(this.toRpcError(e)),
    );
  }

  private finishOk(): void {
    try {
      this.finish(Code.OK, "", this.trailer);
    } catch (e) {
      this.fail(this.toRpcError(e));
    }
  }

  sendHeader(): void {
    if (this.headersSent || this.done || this.stream.destroyed) return;
    this.headersSent = true;
    // node copies the headers it is given, so the usual block (no custom metadata, no
    // compression) is one shared object per server and content type.
    const headers =
      this.header === undefined && this.responseCompression === undefined ? plainResponseHeaders(this.config, contentTypeFor(this.side.codec.name)) : this.responseHeaders();
    this.stream.respond(headers, { waitForTrailers: true });
    this.hooks.onSend();
  }

  /**
   * Compresses the response messages that follow with `name` ("gzip", "deflate", "identity").
   * Takes effect only before the response headers are sent; falls back to identity when the
   * client did not list `name` in its grpc-accept-encoding. Throws for a name the server lacks.
   */
  setResponseCompression(name: string): void {
    if (this.headersSent) return;
    if (name === "identity") {
      this.responseCompression = undefined;
      return;
    }
    const c = this.config.compressions.get(name);
    if (c === undefined) throw new Error(`compression "${name}" is not enabled on this server (enabled: ${this.config.acceptEncoding})`);
    this.responseCompression = parseAcceptEncoding(this.acceptHeader).includes(name) ? c : undefined;
  }

  private responseHeaders(): Record<string, string | string[] | number> {
    const h: Record<string, string | string[] | number> = {
      ":status": 200,
      "content-type": contentTypeFor(this.side.codec.name),
    };
    if (this.header !== undefined) Object.assign(h, metadataToHeaders(this.header));
    if (this.config.acceptEncoding !== "") h["grpc-accept-encoding"] = this.config.acceptEncoding;
    if (this.responseCompression !== undefined) h["grpc-encoding"] = this.responseCompression.name;
    return h;
  }

  send(message: unknown): Promise<void> {
    if (this.route.method.methodKind !== "server_streaming" && this.route.method.methodKind !== "bidi_streaming") {
      return Promise.reject(new Error(`ctx.send is for streaming responses; ${this.route.path} is ${this.route.method.methodKind}`));
    }
    try {
      if (this.writeMessage(message)) return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.waitWritable();
  }

  /** @internal A producer's `trySend` was refused (here, or by an interceptor chain's pushable). */
  trySendRefused(): void {
    this.config.stats.trySendRefusals++;
  }

  /** Waits until the call's buffer has room, counting the wait in the server's stats. */
  private waitWritable(): Promise<void> {
    const stats = this.config.stats;
    stats.flowControlWaits++;
    const t0 = performance.now();
    return this.writer.writable().then(() => {
      stats.flowControlWaitMs += performance.now() - t0;
    });
  }

  trySend(message: unknown): boolean {
    if (this.done) return false;
    if (this.out !== undefined ? this.out.full : this.hooks.budget?.saturated === true) {
      this.trySendRefused();
      return false;
    }
    this.writeMessage(message);
    return true;
  }

  writable(): Promise<void> {
    return this.writer.writable();
  }

  get bufferedBytes(): number {
    return this.out?.buffered ?? 0;
  }

  get tls(): TlsPeer | undefined {
    return tlsPeerOf(this.stream.session?.socket);
  }

  private get writer(): FrameWriter {
    return (this.out ??= new FrameWriter(this.stream, this.config.sendHighWaterMark, true, this.hooks.budget, { onIdle: onWriterIdle, recycle: isNodeStream(this.stream) }));
  }

  /** @internal The writer holds nothing: an idle stream keeps none (~0.3 KB of 10,000 fan-out streams' each). */
  writerIdle(): void {
    this.out = undefined;
  }

  /** @internal The HTTP/2 stream closed: nothing the call wrote is buffered for it any more. */
  closedStream(): void {
    this.out?.detach();
  }

  /** @internal Whether the call reached DONE. */
  get isDone(): boolean {
    return this.done;
  }

  /** Ends the call because the client or connection went away: no status can be sent. */
  cancel(reason: RpcError, rstCode: number = ResetCode.Cancel): void {
    if (this.done) return;
    this.done = true;
    this.observed?.end(reason.code, reason);
    this.out?.abort();
    this.cleanup(reason);
    this.reader?.cancel(reason);
    if (!this.stream.destroyed) this.stream.close(rstCode);
  }

  /** HandlerContext.resetStream: the call ends here as `code`, the client learns it from the RST. */
  resetStream(code: Code.ResourceExhausted | Code.Canceled): void {
    const exhausted = code === Code.ResourceExhausted;
    const reason = new RpcError(code, `the handler reset the stream (${exhausted ? "ENHANCE_YOUR_CALM" : "CANCEL"}), dropping the responses not yet sent`);
    this.cancel(reason, exhausted ? ResetCode.EnhanceYourCalm : ResetCode.Cancel);
  }

  /** Ends the call with an error status (deadline, shutdown, protocol error, handler error). */
  fail(error: RpcError): void {
    if (this.done) return;
    const trailer = this.trailer?.clone() ?? new Metadata();
    trailer.merge(error.metadata);
    if (error.details.length > 0) trailer.set(statusDetailsKey, encodeStatusDetails(error.code, error.rawMessage, error.details));
    this.finish(error.code, error.rawMessage, trailer, error);
  }

  private finish(code: Code, message: string, trailer: Metadata | undefined, reason?: RpcError): void {
    if (this.done) return;
    this.done = true;
    // The status as sent (`reason` is set below for the reader even on OK).
    this.observed?.end(code, reason);
    // After a clean finish the reason is only needed if someone can still observe it.
    if (reason !== undefined || this.controller !== undefined || !(this.reader?.drained ?? true)) {
      reason ??= new RpcError(Code.Canceled, "the call finished");
    }
    this.cleanup(reason);
    if (reason !== undefined) {
      this.reader?.cancel(reason);
    }
    const stream = this.stream;
    if (stream.destroyed || stream.closed) {
      this.out?.abort();
      return;
    }
    const status = code === Code.OK && message === "" ? okStatus : statusHeaders(code, message);
    const trailers = trailer === undefined ? status : { ...metadataToHeaders(trailer), ...status };
    const out = this.out;
    if (out?.holding === true) {
      // A response is still being compressed off the event loop: the status follows it.
      out.close(() => {
        if (!stream.destroyed && !stream.closed) this.sendStatus(stream, trailers);
      });
      return;
    }
    // Messages written before the status go out before it, whatever their batch.
    out?.close();
    this.sendStatus(stream, trailers);
  }

  private sendStatus(stream: ServerCallStream, trailers: StreamHeaders): void {
    this.hooks.onSend();
    if (!this.headersSent) {
      this.headersSent = true;
      const headers = this.responseHeaders();
      delete headers["grpc-encoding"];
      stream.respond({ ...headers, ...trailers }, { endStream: true });
      this.closeReadSide();
      return;
    }
    // No RST_STREAM after these trailers: node would send it ahead of them. A client that is
    // still sending learns from the trailers that the call is over.
    (stream as CallStream)[kTrailers] = trailers;
    stream.on("wantTrailers", onWantTrailers);
    stream.end();
  }

  // Like grpc-go: once a trailers-only status is out, a client still sending is told to stop
  // with RST_STREAM(NO_ERROR), after the status HEADERS frame is written.
  private closeReadSide(): void {
    stopClientAfterStatusHeaders(this.stream);
  }

  private cleanup(reason: RpcError | undefined): void {
    this.reader?.release();
    this.timer?.cancel();
    this.idle?.cancel();
    const controller = this.controller;
    if (controller === undefined) this.endReason = reason;
    else if (!controller.signal.aborted) controller.abort(reason);
    this.resolveClosed?.();
    this.hooks.onDone(this);
  }

  /**
   * Encodes and queues one response. Returns false when the stream's buffer is at its high-water
   * mark (the caller waits for `writer.writable()`). Throws for a message that cannot be sent.
   */
  private writeMessage(message: unknown, only = false): boolean {
    if (this.done) return true;
    // A small message of a stream whose headers are out is encoded straight into the writer's
    // batch (no buffer of its own). Nothing runs between sizing and encoding it.
    if (!only && this.headersSent && this.responseCompression === undefined) {
      const size = sizeSmallMessage(this.side, this.route.method.output as DescMessage, message, BATCHED_BELOW);
      if (size >= 0) {
        const more = this.out === undefined && this.writeIdle(size) ? true : this.writer.writeEncoded(size, writeSizedFlatMessage);
        this.observed?.message("sent", size, false);
        this.idle?.touch();
        this.hooks.onSend();
        return more;
      }
    }
    let bytes: Uint8Array;
    try {
      bytes = serializeMessage(this.side, this.route.method.output as DescMessage, message);
    } catch (e) {
      if ((e as RpcError).code !== Code.Internal) throw e;
      // The reason is ours to read, not the client's.
      this.config.logger.error(`${this.route.path}: handler returned a response that cannot be serialized`, e);
      throw new RpcError(Code.Internal, "failed to serialize the response");
    }
    this.observed?.message("sent", bytes.byteLength, false);
    this.sendHeader();
    this.idle?.touch();
    const compression = sendsCompressed(this.responseCompression, message) ? this.responseCompression : undefined;
    const payload = sendPayload(compression, bytes);
    let more: boolean;
    if (only && this.out === undefined && !(payload instanceof Promise) && payload.byteLength < this.config.sendHighWaterMark) {
      // The one response of the call, under the high-water mark: nothing to coalesce or pace, so
      // no writer (the status follows it at once).
      if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.write(encodeFrame(payload, compression !== undefined));
      more = true;
    } else {
      more = this.writer.writeMessage(payload, compression !== undefined, bytes.byteLength);
    }
    this.hooks.onSend();
    return more;
  }

  /**
   * Writes a small message straight to node's stream when the call has no writer and nothing in
   * flight (an idle stream of a fan-out; a slow producer's stream between messages), counting it
   * against the connection's budget until node reports it written. Returns false, writing nothing,
   * for any other stream: the writer takes the message. The writer this saves (an object, its
   * queue of sizes, its callback, dropped again once idle) cost more than the write itself. A
   * writer made while this message is in flight does not count it: the call's buffer may go one
   * small message over its high-water mark.
   */
  private writeIdle(size: number): boolean {
    const stream = this.stream;
    if (!isNodeStream(stream) || stream.writableLength !== 0 || stream.destroyed || stream.writableEnded) return false;
    const n = FRAME_HEADER_LENGTH + size;
    const frame = Buffer.allocUnsafe(n);
    writeSizedFlatMessage(frame, putHeader(frame, 0, size, false));
    const budget = this.hooks.budget;
    if (budget === undefined) {
      stream.write(frame);
    } else {
      budget.add(n);
      stream.write(frame, () => budget.release(n));
    }
    return true;
  }

  /** Writes the single response of a unary or client-streaming call. */
  private sendOne(message: unknown): Promise<void> | undefined {
    return this.writeMessage(message, true) ? undefined : this.writer.writable();
  }

  /**
   * Pulls responses from a handler's iterable one at a time, only while the stream's buffer is
   * under its high-water mark, so a producer never runs ahead of the reader. A handler that
   * returns a promise instead (push style, with `ctx.send`) is simply awaited.
   */
  private sendAll(output: unknown): unknown {
    // A push-style handler's promise is awaited by start() itself: one async frame less per call.
    if (output === null || typeof output !== "object" || !(Symbol.asyncIterator in output)) return output;
    return this.pull((output as AsyncIterable<unknown>)[Symbol.asyncIterator]());
  }

  private async pull(it: AsyncIterator<unknown>): Promise<void> {
    let finished = false;
    try {
      while (!this.done) {
        // A connection far over its memory budget holds even the first response back.
        if (this.out !== undefined ? this.out.full : this.hooks.budget?.saturated === true) await this.waitWritable();
        if (this.done) break;
        const r = await it.next();
        if (r.done) {
          finished = true;
          return;
        }
        if (!this.writeMessage(r.value)) await this.waitWritable();
      }
    } finally {
      // Runs the generator's `finally` when we stop early (cancel, deadline, send error).
      if (!finished) await it.return?.();
    }
  }

  private toRpcError(e: unknown): RpcError {
    if (e instanceof RpcError) return e;
    const reason = this.signal.reason;
    if (this.signal.aborted && reason instanceof RpcError) return reason;
    this.config.logger.error(`${this.route.path}: handler failed`, e);
    return new RpcError(Code.Unknown, "the handler failed with an unexpected error (details are in the server log)");
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function";
}

/**
 * "host:port" of each connection's client, made once per connection (the socket's address does
 * not change; tracing and logging read it on every call).
 */
const peers = new WeakMap<object, string>();

function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string {
  const host = socket?.remoteAddress ?? "unknown";
  // No port: the in-process transport ("in-process").
  if (socket?.remotePort === undefined && socket !== undefined) return host;
  return host.includes(":") ? `[${host}]:${socket?.remotePort ?? 0}` : `${host}:${socket?.remotePort ?? 0}`;
}

/** The trailers of an OK call without a message (node copies what it is given). */
const okStatus: Record<string, string> = { "grpc-status": "0" };

const plainHeaders = new WeakMap<ServerCallConfig, Map<string, Record<string, string | number>>>();

/** The response headers of a call without custom metadata or compression, made once per server and content type. */
function plainResponseHeaders(config: ServerCallConfig, contentType: string): Record<string, string | number> {
  let byType = plainHeaders.get(config);
  if (byType === undefined) plainHeaders.set(config, (byType = new Map()));
  let h = byType.get(contentType);
  if (h === undefined) {
    h = { ":status": 200, "content-type": contentType };
    if (config.acceptEncoding !== "") h["grpc-accept-encoding"] = config.acceptEncoding;
    byType.set(contentType, h);
  }
  return h;
}

/** Where a stream keeps its call (and its trailers, once known), for the shared listeners below. */
const kCall = Symbol("rill.serverCall");
const kTrailers = Symbol("rill.trailers");
type CallStream = ServerCallStream & { [kCall]: ServerCall; [kTrailers]?: StreamHeaders };

// node asks for the trailers once, after the last DATA frame.
function onWantTrailers(this: CallStream): void {
  this.sendTrailers(this[kTrailers]!);
}

function onWriterIdle(stream: FrameSink): void {
  (stream as CallStream)[kCall].writerIdle();
}

function onStreamData(this: CallStream, chunk: Buffer): void {
  this[kCall].onData(chunk);
}

function onStreamEnd(this: CallStream): void {
  this[kCall].reader?.onEnd();
}

/**
 * A client's deadline timer starts before ours (we start counting when the request arrives), so
 * the RST_STREAM it sends when its deadline passes reaches us about when our own timer would
 * fire. A cancel that close to the deadline is the deadline: report it as such to the handler
 * and to interceptors, instead of letting the race decide between CANCELLED and DEADLINE_EXCEEDED.
 */
const deadlineCancelSlackMs = 25;

/**
 * The reasons of calls ended by their client, made once: a flood of reset streams (CVE-2023-44487)
 * must cost little per stream, and a stack trace per error was most of it. They carry no stack
 * (it would only show this module) and are shared by every call they end.
 */
function quietError(code: Code, message: string): RpcError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RpcError(code, message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
const clientCancelledError = quietError(Code.Canceled, "the client cancelled the call");
const cancelledAtDeadlineError = quietError(Code.DeadlineExceeded, "deadline exceeded (the client cancelled at its deadline)");
const streamClosedError = quietError(Code.Canceled, "the stream closed before the call finished");

function onStreamAborted(this: CallStream): void {
  const call = this[kCall];
  const deadline = call.deadline;
  if (deadline !== undefined && Date.now() >= deadline - deadlineCancelSlackMs) call.cancel(cancelledAtDeadlineError);
  // A client whose own idle timer fired a moment before ours: the handler still sees an IdleTimeoutError.
  else call.cancel(call.idle?.expired(deadlineCancelSlackMs) === true ? new IdleTimeoutError(call.idle.ms) : clientCancelledError);
}

function onStreamClose(this: CallStream): void {
  const call = this[kCall];
  if (!call.isDone) call.cancel(streamClosedError);
  call.closedStream();
}

function onProtocolError(this: CallStream, e: RpcError): void {
  this[kCall].fail(e);
}

function onStreamError(this: CallStream, e: Error): void {
  this[kCall].cancel(RpcError.from(e, Code.Unavailable, `stream error: ${e.message}`));
}

/**
 * The headers that can become request metadata (the rest are the transport's). Keeping only these
 * instead of node's whole header block (a dictionary-mode object) saves ~0.4 KB per open call.
 */
const consumedHeaders: ReadonlySet<string> = new Set(["grpc-timeout", "grpc-encoding", "grpc-accept-encoding"]);

function customHeaders(headers: IncomingStreamHeaders): IncomingStreamHeaders {
  const out: IncomingStreamHeaders = {};
  for (const key in headers) {
    // grpc-* keys other than the three consumed here are left to metadataFromHeaders to judge.
    if (isReservedHeader(key) && (!key.startsWith("grpc-") || consumedHeaders.has(key))) continue;
    out[key] = key === "user-agent" ? shared(headers[key]) : headers[key];
  }
  return out;
}

/**
 * node makes a new string per stream for every header value; the few that every call of a
 * client repeats (user-agent, grpc-accept-encoding) and that a call keeps while it is open are
 * swapped for one copy (~64 B per open call). The last few values seen, so a server with many
 * kinds of clients keeps at most that many.
 */
const recentValues: string[] = [];
function shared<T extends string | string[] | undefined>(value: T): T {
  if (typeof value !== "string") return value;
  for (const v of recentValues) if (v === value) return v as T;
  if (recentValues.length >= 8) recentValues.shift();
  recentValues.push(value);
  return value;
}

/**
 * Whether `stream` is node's own HTTP/2 stream, which is done with a chunk once it calls the
 * write's callback (so the writer may reuse large payloads) and whose `writableLength` counts the
 * bytes whose callbacks are still to come; the in-process and translated (gRPC-Web, Connect,
 * HTTP/1.1) streams may hand chunks on as they are.
 */
function isNodeStream(stream: ServerCallStream): stream is ServerCallStream & { readonly writableLength: number } {
  const c = stream.constructor;
  if (c === nodeStreamClass) return true;
  if (nodeStreamClass !== undefined || c.name !== "ServerHttp2Stream") return false;
  nodeStreamClass = c;
  return true;
}

let nodeStreamClass: unknown;
