import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import { builtinCompressions, type Compression } from "../compression.js";
import { consoleLogger, type Logger } from "../logger.js";
import { parseTarget, type Target } from "./target.js";

/** Options of `createChannel`. Every field has a documented default. */
export interface ChannelOptions {
  /** Largest response message accepted, in bytes; larger → RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest request message sent, in bytes; larger → RESOURCE_EXHAUSTED. Default: no limit. */
  maxSendMessageBytes?: number;
  /** Unread response bytes buffered per call before reading from the server pauses. Default 256 KiB. */
  receiveHighWaterMark?: number;
  /** Prepended to Rill's own `user-agent`. */
  userAgent?: string;
  /** Where connection errors are reported. Default: stderr, warnings only. */
  logger?: Logger;
  /** Compressions accepted for responses (sent as grpc-accept-encoding). Default ["gzip", "deflate"]. */
  acceptCompression?: string[];
  /** Compression of request messages unless a call picks another. Default "identity". */
  compression?: string;
}

/** Channel options with every default filled in. */
export interface ResolvedChannelOptions {
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;
  readonly receiveHighWaterMark: number;
  readonly userAgent: string;
  readonly logger: Logger;
  /** Compressions the channel can read and write, by name. */
  readonly compressions: ReadonlyMap<string, Compression>;
  /** The grpc-accept-encoding value sent with every call ("" for none). */
  readonly acceptEncoding: string;
  /** Default request compression name ("identity" for none). */
  readonly compression: string;
}

/**
 * A channel: a virtual connection to one target on which calls are multiplexed.
 *
 * Connections are made lazily, on the first call, and remade after the server goes away or
 * sends GOAWAY. An idle channel does not keep the process alive; `close()` ends it for good.
 */
export interface Channel {
  readonly target: string;
  readonly options: ResolvedChannelOptions;
  /**
   * Opens the HTTP/2 stream of one call. Throws when the channel is closed. Connection
   * failures surface as the stream's `error` event; `connectionError()` tells the cause.
   * Aborting `reset` resets the stream with RST_STREAM(CANCEL) and nothing before it: node's
   * `stream.close()` would first send END_STREAM, which a server reads as a clean half-close.
   */
  openStream(headers: OutgoingHttpHeaders, reset: AbortSignal): ClientHttp2Stream;
  /** The last connection-level error (e.g. ECONNREFUSED), for error messages. */
  connectionError(): Error | undefined;
  /** Closes every connection; running calls end with UNAVAILABLE or CANCELLED. */
  close(): void;
}

const userAgent = `grpc-node-rill/0.1.0`;

/** Creates a channel to `target` (`host:port`, `[::1]:port`, `dns:///host:port`) over plaintext HTTP/2. */
export function createChannel(target: string, options: ChannelOptions = {}): Channel {
  const compressions = new Map<string, Compression>();
  for (const name of options.acceptCompression ?? ["gzip", "deflate"]) {
    const c = builtinCompressions.find((b) => b.name === name);
    if (c === undefined) throw new Error(`unknown compression "${name}" in acceptCompression (known: gzip, deflate)`);
    compressions.set(name, c);
  }
  for (const c of builtinCompressions) if (!compressions.has(c.name)) compressions.set(c.name, c);
  return new Http2Channel(target, parseTarget(target), {
    compressions,
    acceptEncoding: (options.acceptCompression ?? ["gzip", "deflate"]).join(","),
    compression: options.compression ?? "identity",
    maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    maxSendMessageBytes: options.maxSendMessageBytes ?? Number.POSITIVE_INFINITY,
    receiveHighWaterMark: options.receiveHighWaterMark ?? 256 * 1024,
    userAgent: options.userAgent === undefined ? userAgent : `${options.userAgent} ${userAgent}`,
    logger: options.logger ?? consoleLogger,
  });
}

/**
 * One HTTP/2 session at a time. States: NO_SESSION → CONNECTING/READY (one session) →
 * NO_SESSION again when it closes, errors or receives GOAWAY (calls already on it finish
 * there; new calls get a new session) → CLOSED on `close()`.
 */
class Http2Channel implements Channel {
  private session: ClientHttp2Session | undefined;
  private active = 0;
  private closed = false;
  private lastError: Error | undefined;
  private readonly all = new Set<ClientHttp2Session>();

  constructor(
    readonly target: string,
    private readonly address: Target,
    readonly options: ResolvedChannelOptions,
  ) {}

  openStream(headers: OutgoingHttpHeaders, reset: AbortSignal): ClientHttp2Stream {
    if (this.closed) throw new Error("the channel is closed");
    const session = this.currentSession();
    const stream = session.request(headers, { endStream: false, signal: reset });
    this.active++;
    session.ref();
    stream.once("close", () => {
      if (--this.active === 0) for (const s of this.all) s.unref();
    });
    return stream;
  }

  connectionError(): Error | undefined {
    return this.lastError;
  }

  close(): void {
    this.closed = true;
    for (const s of this.all) if (!s.destroyed) s.close();
    this.session = undefined;
  }

  private currentSession(): ClientHttp2Session {
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    const session = connect(`http://${this.address.authority}`, {
      settings: { enablePush: false },
    });
    this.session = session;
    this.all.add(session);
    const forget = () => {
      if (this.session === session) this.session = undefined;
    };
    session.on("connect", () => {
      this.lastError = undefined;
    });
    session.on("error", (e) => {
      this.lastError = e;
      forget();
    });
    session.on("goaway", (code) => {
      forget();
      if (code !== constants.NGHTTP2_NO_ERROR) this.options.logger.warn(`${this.target} sent GOAWAY with error code ${code}`);
    });
    session.on("close", () => {
      forget();
      this.all.delete(session);
    });
    return session;
  }
}
