import {
  constants,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { jsonCodec, protoCodec, type Codec } from "../codec.js";
import { builtinCompressions, type Compression } from "../compression.js";
import { RpcError } from "../errors.js";
import { consoleLogger, type Logger } from "../logger.js";
import { Code } from "../protocol/code.js";
import { contentTypeFor, parseContentType, parsePath } from "../protocol/headers.js";
import { encodeStatusMessage } from "../protocol/status.js";
import { Router } from "./router.js";
import { ServerCall, type ServerCallConfig } from "./server-call.js";
import type { ServiceImpl } from "./service-impl.js";

/** Options of `createServer`. Every field has a documented default. */
export interface ServerOptions {
  /** Where handler crashes and protocol errors are reported. Default: stderr. */
  logger?: Logger;
  /** Largest request message accepted, in bytes; larger → RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest response message sent, in bytes; larger → RESOURCE_EXHAUSTED. Default: no limit. */
  maxSendMessageBytes?: number;
  /** Unread request bytes buffered per call before reading from the peer pauses. Default 256 KiB. */
  receiveHighWaterMark?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients. Default: no limit (node's default). */
  maxConcurrentStreams?: number;
  /** Extra codecs by content subtype, besides "proto" and "json". */
  codecs?: Codec[];
  /** Compressions the server reads and offers, by name. Default ["gzip", "deflate"]; [] for none. */
  acceptCompression?: string[];
  /** Response compression for clients that accept it, unless a handler picks another. Default "identity". */
  compression?: string;
}

/** Where to listen. `port: 0` picks a free port; the chosen one is returned by `listen`. */
export interface ListenOptions {
  host?: string;
  port?: number;
}

/** A gRPC server on `node:http2`. */
export interface Server {
  /** Serves `impl` for `service`. Methods missing from `impl` answer UNIMPLEMENTED. */
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this;
  /** Starts listening (h2c). Resolves with the bound address. */
  listen(options?: ListenOptions): Promise<{ host: string; port: number }>;
  /**
   * Stops taking new connections and streams (GOAWAY), lets running calls finish for
   * `graceMs` (default: forever), then cancels the rest. Resolves when every connection is closed.
   */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /** Cancels every running call (their signals abort with UNAVAILABLE) and closes every connection now. */
  forceShutdown(): void;
  /** The services added, in order (what reflection and health report). */
  readonly services: readonly DescService[];
  /** Calls currently running; for tests and metrics. */
  readonly activeCalls: number;
}

const defaults = {
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxSendMessageBytes: Number.POSITIVE_INFINITY,
  receiveHighWaterMark: 256 * 1024,
} as const;

/** Creates a gRPC server. Add services, then `listen`. */
export function createServer(options: ServerOptions = {}): Server {
  return new RillServer(options);
}

class RillServer implements Server {
  private readonly router = new Router();
  private readonly config: ServerCallConfig;
  private readonly codecs = new Map<string, Codec>();
  private readonly sessions = new Set<Http2Session>();
  private readonly calls = new Set<ServerCall>();
  private http2: Http2Server | undefined;
  private shuttingDown = false;

  constructor(private readonly options: ServerOptions) {
    const accepted = options.acceptCompression ?? ["gzip", "deflate"];
    const compressions = new Map<string, Compression>();
    for (const name of accepted) {
      const c = builtinCompressions.find((b) => b.name === name);
      if (c === undefined) throw new Error(`unknown compression "${name}" in acceptCompression (known: gzip, deflate)`);
      compressions.set(name, c);
    }
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
    };
    for (const c of [protoCodec, jsonCodec, ...(options.codecs ?? [])]) this.codecs.set(c.name, c);
  }

  get services(): readonly DescService[] {
    return this.router.serviceList;
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this {
    this.router.add(service, impl);
    return this;
  }

  listen(options: ListenOptions = {}): Promise<{ host: string; port: number }> {
    if (this.http2 !== undefined) return Promise.reject(new Error("this server is already listening"));
    const settings = this.options.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: this.options.maxConcurrentStreams };
    const server = createHttp2Server({ settings });
    this.http2 = server;
    server.on("session", (session) => this.onSession(session));
    server.on("stream", (stream, headers) => this.onStream(stream, headers));
    const host = options.host ?? "127.0.0.1";
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => {
        this.http2 = undefined;
        reject(e);
      };
      server.once("error", onError);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", onError);
        server.on("error", (e) => this.config.logger.error("server error", e));
        const addr = server.address() as AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  async shutdown(options: { graceMs?: number } = {}): Promise<void> {
    this.shuttingDown = true;
    const server = this.http2;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) if (!s.closed) s.close();
    let timer: NodeJS.Timeout | undefined;
    if (options.graceMs !== undefined) timer = setTimeout(() => this.forceShutdown(), options.graceMs);
    await closed;
    if (timer !== undefined) clearTimeout(timer);
    this.http2 = undefined;
  }

  forceShutdown(): void {
    this.shuttingDown = true;
    const reason = new RpcError(Code.Unavailable, "the server is shutting down");
    for (const call of [...this.calls]) call.fail(reason);
    for (const s of this.sessions) s.destroy();
    this.http2?.close();
  }

  private onSession(session: Http2Session): void {
    this.sessions.add(session);
    session.on("close", () => this.sessions.delete(session));
    session.on("error", (e) => this.config.logger.warn("connection error", e.message));
    if (this.shuttingDown) session.close();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on("error", () => {});
    if (headers[":method"] !== "POST") {
      stream.respond({ ":status": 405, allow: "POST" }, { endStream: true });
      return;
    }
    const type = parseContentType(headers["content-type"]);
    const codec = type === undefined ? undefined : this.codecs.get(type.codec);
    if (codec === undefined) {
      // gRPC says 415 for a content-type that is not gRPC; a gRPC subtype we lack gets a status.
      if (type === undefined) stream.respond({ ":status": 415, "content-type": "text/plain" }, { endStream: true });
      else this.trailersOnly(stream, "application/grpc", Code.Internal, `unsupported codec "${type.codec}"`);
      return;
    }
    const path = headers[":path"] ?? "";
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
    if (this.shuttingDown) {
      this.trailersOnly(stream, contentTypeFor(codec.name), Code.Unavailable, "the server is shutting down");
      return;
    }
    const call = new ServerCall(stream, headers, route, codec, this.config, (c) => this.calls.delete(c));
    this.calls.add(call);
    void call.start();
  }

  private trailersOnly(stream: ServerHttp2Stream, contentType: string, code: Code, message: string): void {
    if (stream.destroyed) return;
    stream.respond(
      { ":status": 200, "content-type": contentType, "grpc-status": String(code), "grpc-message": encodeStatusMessage(message) },
      { endStream: true },
    );
    // The request body is irrelevant now; tell a client that is still sending to stop.
    if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
  }
}
