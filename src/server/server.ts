import type { Http2Session, SecureServerOptions } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { jsonCodec, protoCodec } from "../codec/codec.js";
import type { MessageSide } from "../codec/message-codec.js";
import type { IncomingStreamHeaders, ServerCallStream } from "../transport/call-stream.js";
import { Http1Stream } from "../transport/http1-stream.js";
import { compressionsByName } from "../codec/compression.js";
import { RpcError } from "../protocol/errors.js";
import { consoleLogger } from "../logger.js";
import { Code } from "../protocol/code.js";
import { contentTypeFor, parseContentType, parsePath } from "../protocol/headers.js";
import { encodeStatusMessage } from "../protocol/status.js";
import { resolveConnectionPolicy, type ConnectionPolicy } from "./connection-policy.js";
import { Cors } from "./cors.js";
import { interceptService } from "./intercepted-handler.js";
import type { CallObserver } from "../observer.js";
import { resolveWindowOptions, windowSettings, type ResolvedWindowOptions } from "../flow-control/window-options.js";
import { Listener } from "./listener.js";
import { Router } from "./router.js";
import { ServerCall, type FlowStats, type ServerCallConfig, type ServerCallHooks } from "./server-call.js";
import { ServerConnection } from "./server-connection.js";
import type { ServiceImpl } from "./service-impl.js";
import { Shutdown } from "./shutdown.js";
import { ServerBudget } from "./memory-budget.js";
import { secureServerOptions, type ListenOptions, type ServerOptions } from "./server-options.js";
import { startTimer } from "../timer.js";
import { stopClientAfterStatusHeaders } from "./stop-after-status-headers.js";
import { translateWebRequest, type WebEnvironment } from "./web-protocols.js";

export type { ListenOptions, ServerOptions, ServerTlsOptions } from "./server-options.js";


/** A server's counters, read at once (`server.stats`). */
export interface ServerStats extends Readonly<FlowStats> {
  /** Request and response bytes buffered against the memory budgets now. */
  readonly bufferedBytes: number;
}

/** A gRPC server on `node:http2`. */
export interface Server {
  /** Serves `impl` for `service`. Methods missing from `impl` answer UNIMPLEMENTED. */
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this;
  /** Starts listening: plaintext HTTP/2 (h2c), or TLS with `tls` in the options. Resolves with the bound address. */
  listen(options?: ListenOptions): Promise<{ host: string; port: number }>;
  /**
   * Stops taking new connections and streams (GOAWAY on every connection), lets running calls
   * finish for `graceMs` (default: forever), then cancels the rest as `forceShutdown` does.
   * Resolves when every connection and the listener are closed. Calling it again returns the
   * same promise (a shorter `graceMs` given then still applies).
   */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /**
   * Ends every running call now (handlers' signals abort with UNAVAILABLE, clients get
   * UNAVAILABLE) and closes every connection and the listener. A pending `shutdown()` then resolves.
   */
  forceShutdown(): void;
  /** Whether `shutdown()` or `forceShutdown()` has been called. */
  readonly shuttingDown: boolean;
  /**
   * Runs `fn` when shutdown begins (synchronously inside the first `shutdown`/`forceShutdown`;
   * in a microtask if it already began), e.g. to report NOT_SERVING. Returns an unsubscribe function.
   */
  onShutdownStart(fn: () => void): () => void;
  /** The services added, in order (what reflection and health report). */
  readonly services: readonly DescService[];
  /** Calls currently running; for tests and metrics. */
  readonly activeCalls: number;
  /** Client connections open now: HTTP/2 sessions and HTTP/1.1 connections. */
  readonly openConnections: number;
  /** What producers met of flow control, and the bytes held against the memory budgets now (for metrics). */
  readonly stats: ServerStats;
}

const defaults = {
  maxConcurrentStreams: 100,
  streamResetBurst: 4_000,
  streamResetRate: 4_000,
  /**
   * node:http2's per-session memory ceiling, in MB (outgoing frames, header tables, stream
   * bookkeeping; not DATA held by streams). Past it node refuses new streams with
   * ENHANCE_YOUR_CALM. Its default of 10 is reached by 100 busy streams; Rill's own budgets
   * bound what matters, so this only guards node's internals.
   */
  maxSessionMemoryMb: 64,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxSendMessageBytes: Number.POSITIVE_INFINITY,
  receiveHighWaterMark: 256 * 1024,
} as const;

/** @internal How the in-process transport hands a server a call's stream. */
export const kServeStream = Symbol("rill.serveStream");

/** Creates a gRPC server. Add services, then `listen` (or call it in-process: `createInProcessChannel`). */
export function createServer(options: ServerOptions = {}): Server {
  return new RillServer(options);
}

class RillServer implements Server {
  private readonly router = new Router();
  private readonly config: ServerCallConfig;
  /** The message rules of each codec, by content subtype. */
  private readonly sides = new Map<string, MessageSide>();
  private readonly connections = new Map<Http2Session, ServerConnection>();
  private readonly calls = new Set<ServerCall>();
  private readonly policy: ConnectionPolicy;
  private readonly windows: ResolvedWindowOptions;
  private readonly shutdownState: Shutdown;
  private readonly budget: ServerBudget;
  private listener: Listener | undefined;
  /** `listen` is binding: a second call must fail as if it were listening already. */
  private opening = false;
  private readonly web: WebEnvironment;
  private onLastConnectionClosed: (() => void) | undefined;
  /** The observers of every call, copied once; empty: calls start without looking for any. */
  private readonly observers: readonly CallObserver[];

  constructor(private readonly options: ServerOptions) {
    this.observers = [...(options.observers ?? [])];
    const accepted = options.acceptCompression ?? ["gzip", "deflate"];
    const compressions = compressionsByName(accepted);
    const preferred = options.compression ?? "identity";
    if (preferred !== "identity" && !compressions.has(preferred)) {
      throw new Error(`compression "${preferred}" must also be listed in acceptCompression`);
    }
    this.config = {
      compressions,
      acceptEncoding: [...compressions.keys()].join(","),
      defaultCompression: compressions.get(preferred),
      logger: options.logger ?? consoleLogger,
      maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? defaults.maxReceiveMessageBytes,
      maxSendMessageBytes: options.maxSendMessageBytes ?? defaults.maxSendMessageBytes,
      receiveHighWaterMark: options.receiveHighWaterMark ?? defaults.receiveHighWaterMark,
      sendHighWaterMark: options.sendHighWaterMark ?? 256 * 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      stats: { trySendRefusals: 0, flowControlWaits: 0, flowControlWaitMs: 0 },
    };
    for (const codec of [protoCodec, jsonCodec, ...(options.codecs ?? [])]) {
      this.sides.set(codec.name, {
        codec,
        sends: "response",
        receives: "request",
        maxSendBytes: this.config.maxSendMessageBytes,
        sendLimitName: "the server's maxSendMessageBytes",
        maxReceiveBytes: this.config.maxReceiveMessageBytes,
        receiveLimitName: "the server's maxReceiveMessageBytes",
      });
    }
    this.policy = resolveConnectionPolicy(options);
    this.windows = resolveWindowOptions(options);
    this.shutdownState = new Shutdown(this.config.logger);
    this.budget = new ServerBudget(options);
    const router = this.router;
    const sides = this.sides;
    this.web = {
      cors: options.cors === undefined ? undefined : new Cors(options.cors),
      methodAt: (path) => router.find(path)?.method,
      hasCodec: (name) => sides.has(name),
      maxReceiveBytes: this.config.maxReceiveMessageBytes,
      http: options.http,
      logger: this.config.logger,
    };
  }

  get shuttingDown(): boolean {
    return this.shutdownState.started;
  }

  onShutdownStart(fn: () => void): () => void {
    return this.shutdownState.onStart(fn);
  }

  get services(): readonly DescService[] {
    return this.router.serviceList;
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  get stats(): ServerStats {
    return { ...this.config.stats, bufferedBytes: this.budget.used };
  }

  get openConnections(): number {
    return this.connections.size + (this.listener?.http1Connections ?? 0);
  }

  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this {
    const interceptors = this.options.interceptors ?? [];
    this.router.add(service, interceptors.length === 0 ? impl : (interceptService(service, impl, interceptors) as ServiceImpl<S>));
    return this;
  }

  listen(options: ListenOptions = {}): Promise<{ host: string; port: number }> {
    if (this.listener !== undefined || this.opening) return Promise.reject(new Error("this server is already listening"));
    if (this.shuttingDown) return Promise.reject(new Error("this server is shut down"));
    const settings = {
      ...windowSettings(this.windows),
      maxConcurrentStreams: this.options.maxConcurrentStreams ?? defaults.maxConcurrentStreams,
    };
    const http2 = {
      settings,
      maxSessionMemory: defaults.maxSessionMemoryMb,
      // Streams refused past maxConcurrentStreams must not destroy the session (node: 100).
      maxSessionRejectedStreams: 2 ** 31 - 1,
      streamResetBurst: this.options.streamResetBurst ?? defaults.streamResetBurst,
      streamResetRate: this.options.streamResetRate ?? defaults.streamResetRate,
    };
    let tls: SecureServerOptions | undefined;
    try {
      tls = options.tls === undefined ? undefined : secureServerOptions(options.tls);
    } catch (e) {
      return Promise.reject(e instanceof Error ? new Error(`listen({ tls }): ${e.message}`, { cause: e }) : e);
    }
    this.opening = true;
    const opened = Listener.open(
      { host: options.host ?? "127.0.0.1", port: options.port ?? 0, http2, tls, handshakeTimeoutMs: this.policy.handshakeTimeoutMs, logger: this.config.logger },
      {
        onSession: (session) => this.onSession(session),
        onStream: (stream, headers) => this.onStream(stream, headers),
        onHttp1Request: this.options.http1 === false ? undefined : (req, res) => this.onHttp1Request(req, res),
      },
    );
    return opened.then(
      ({ listener, host, port }) => {
        this.opening = false;
        this.listener = listener;
        return { host, port };
      },
      (e: unknown) => {
        this.opening = false;
        throw e;
      },
    );
  }


  shutdown(options: { graceMs?: number } = {}): Promise<void> {
    const done = this.shutdownState.begin(() => this.closeAll());
    for (const c of this.connections.values()) c.drain("shutdown");
    const grace = options.graceMs;
    if (grace !== undefined && Number.isFinite(grace) && (this.connections.size > 0 || this.unconnectedCalls > 0)) {
      // Held (ref'd): in-process calls keep no socket open, and the process must not exit
      // with a shutdown pending that promised to end them.
      const timer = startTimer(grace, () => this.forceShutdown(), true);
      void done.finally(() => timer.cancel());
    }
    return done;
  }

  forceShutdown(): void {
    void this.shutdownState.begin(() => this.closeAll());
    const reason = new RpcError(Code.Unavailable, "the server is shutting down");
    for (const c of [...this.connections.values()]) c.terminate(reason);
    for (const call of [...this.calls]) call.fail(reason);
    this.listener?.destroyUnserved();
  }

  /** Closes the listener; resolves once it and every connection are closed. */
  private closeAll(): Promise<void> {
    // In-process calls have no connection to drain: shutdown waits for them to finish.
    const inProcess = new Promise<void>((resolve) => {
      if (this.unconnectedCalls === 0) resolve();
      else this.onUnconnectedCallsDone = resolve;
    });
    const server = this.listener;
    if (server === undefined) return inProcess;
    const listener = server.close();
    const connections = new Promise<void>((resolve) => {
      if (this.connections.size === 0) resolve();
      else this.onLastConnectionClosed = resolve;
    });
    return Promise.all([listener, connections, inProcess]).then(() => {
      this.listener = undefined;
    });
  }

  private onSession(session: Http2Session): void {
    const connection = new ServerConnection(session, this.policy, { logger: this.config.logger, windows: this.windows, budget: this.budget.connection() });
    this.connections.set(session, connection);
    session.on("close", () => {
      this.connections.delete(session);
      if (this.connections.size === 0) this.onLastConnectionClosed?.();
    });
    session.on("error", (e) => this.config.logger.warn("connection error", e.message));
    // Accepted after shutdown began: the final GOAWAY at once, nothing will be served here.
    if (this.shuttingDown) connection.close();
  }

  /** @internal A call's stream from elsewhere than an HTTP/2 connection (the in-process transport). */
  [kServeStream](stream: ServerCallStream, headers: IncomingStreamHeaders): void {
    this.onStream(stream, headers);
  }

  private onStream(stream: ServerCallStream, headers: IncomingStreamHeaders): void {
    stream.on("error", () => {});
    const type = headers[":method"] === "POST" ? parseContentType(headers["content-type"] as string | undefined) : undefined;
    if (type === undefined) return this.onWebRequest(stream, headers);
    const side = this.sides.get(type.codec);
    // A gRPC subtype we lack gets a status.
    if (side === undefined) return this.trailersOnly(stream, "application/grpc", Code.Internal, `unsupported codec "${type.codec}"`);
    this.startCall(stream, headers, side);
  }

  /** An HTTP/1.1 request: gRPC-Web, Connect or a CORS preflight (gRPC itself needs HTTP/2). */
  private onHttp1Request(req: IncomingMessage, res: ServerResponse): void {
    const stream = new Http1Stream(req, res);
    stream.on("error", () => {});
    this.onWebRequest(stream, Http1Stream.headersOf(req), req.socket);
  }

  /** A request that is not gRPC over HTTP/2: translated into a call, or answered as its protocol says. */
  private onWebRequest(raw: ServerCallStream, rawHeaders: IncomingStreamHeaders, http1Socket?: Socket): void {
    const request = translateWebRequest(raw, rawHeaders, this.web);
    if (request === undefined) return;
    this.startCall(request.stream, request.headers, this.sides.get(request.codec)!, http1Socket);
  }

  /** Routes a call and starts it, or answers why it cannot run. `http1Socket`: the call came on HTTP/1.1. */
  private startCall(stream: ServerCallStream, headers: IncomingStreamHeaders, side: MessageSide, http1Socket?: Socket): void {
    const codec = side.codec;
    const path = (headers[":path"] as string | undefined) ?? "";
    const route = this.router.find(path);
    if (route === undefined) {
      const parts = parsePath(path);
      const message =
        parts === undefined
          ? `malformed method path "${path}"`
          : this.router.hasService(parts.service)
            ? `method ${parts.method} not found in service ${parts.service}`
            : `unknown service ${parts.service}`;
      this.trailersOnly(stream, contentTypeFor(codec.name), Code.Unimplemented, message);
      return;
    }
    const connection = stream.session === undefined ? undefined : this.connections.get(stream.session as Http2Session);
    if (connection === undefined ? this.shuttingDown : !connection.acceptsStreams) {
      const why = this.shuttingDown ? "the server is shutting down" : "the connection is closing; retry on a new one";
      this.trailersOnly(stream, contentTypeFor(codec.name), Code.Unavailable, why);
      return;
    }
    // One pair of callbacks per connection, not per call (they were ~0.2 KB of every open call).
    const hooks = http1Socket !== undefined ? this.http1Hooks(http1Socket) : this.callHooks(connection);
    if (connection === undefined) this.unconnectedCalls++;
    const call = new ServerCall(stream, headers, route, side, this.config, hooks);
    this.calls.add(call);
    connection?.callStarted(call);
    void (this.observers.length === 0 ? call.start() : call.observeAndStart(this.observers));
  }

  private readonly hooksByConnection = new WeakMap<ServerConnection, CallHooks>();
  private noConnectionHooks: CallHooks | undefined;
  /** Calls that came on no connection (in-process), and who waits for the last to end. */
  private unconnectedCalls = 0;
  private onUnconnectedCallsDone: (() => void) | undefined;

  /** The end-of-call and data-sent callbacks of calls on `connection`, made once per connection. */
  private callHooks(connection: ServerConnection | undefined): CallHooks {
    if (connection === undefined) {
      return (this.noConnectionHooks ??= {
        onDone: (c) => {
          this.calls.delete(c);
          if (--this.unconnectedCalls === 0) this.onUnconnectedCallsDone?.();
        },
        onSend: () => {},
      });
    }
    let hooks = this.hooksByConnection.get(connection);
    if (hooks === undefined) {
      const tuner = connection.windows?.probing === true ? connection.windows : undefined;
      hooks = {
        onDone: (c) => {
          this.calls.delete(c);
          connection.callEnded(c);
        },
        onSend: () => connection.dataSent(),
        onData: tuner === undefined ? undefined : (bytes) => tuner.dataTaken(bytes),
        budget: connection.budget,
      };
      this.hooksByConnection.set(connection, hooks);
    }
    return hooks;
  }

  private readonly hooksBySocket = new WeakMap<Socket, CallHooks>();

  /** The hooks of calls on an HTTP/1.1 connection: counted as unconnected calls, with the socket's own budget. */
  private http1Hooks(socket: Socket): CallHooks {
    let hooks = this.hooksBySocket.get(socket);
    if (hooks === undefined) {
      const budget = this.budget.connection();
      socket.once("close", () => budget.close());
      const base = this.callHooks(undefined);
      hooks = { onDone: base.onDone, onSend: base.onSend, budget };
      this.hooksBySocket.set(socket, hooks);
    }
    return hooks;
  }

  private trailersOnly(stream: ServerCallStream, contentType: string, code: Code, message: string): void {
    if (stream.destroyed) return;
    stream.respond(
      { ":status": 200, "content-type": contentType, "grpc-status": String(code), "grpc-message": encodeStatusMessage(message) },
      { endStream: true },
    );
    // The request body is irrelevant now; tell a client that is still sending to stop.
    stopClientAfterStatusHeaders(stream);
  }
}

type CallHooks = ServerCallHooks;
