/**
 * A channel's options as users give them (`ChannelOptions`) and as the channel and its calls
 * use them, every default filled in once (`ResolvedChannelOptions`).
 */
import type { Compression } from "../codec/compression.js";
import { builtinCompressions, compressionsByName } from "../codec/compression.js";
import { consoleLogger, type Logger } from "../logger.js";
import type { ServiceConfigJson } from "./service-config.js";
import type { Interceptor } from "../interceptor.js";
import type { CallObserver } from "../observer.js";
import type { Protocol } from "../transport/call-stream.js";
import type { BackoffOptions, Clock } from "./backoff.js";
import { insecure, type ChannelCredentials } from "./credentials.js";
import type { KeepaliveOptions } from "./keepalive.js";
import type { ResolverFactory } from "./resolver.js";
import { resolveWindowOptions, type ResolvedWindowOptions, type WindowOptions } from "../flow-control/window-options.js";

/**
 * Options of `createChannel`. Every field has a documented default. Flow-control windows and BDP
 * probing of the channel's connections (what servers may send it) are described in `WindowOptions`.
 */
export interface ChannelOptions extends WindowOptions {
  /** Largest response message accepted, in bytes; larger → RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest request message sent, in bytes; larger → RESOURCE_EXHAUSTED. Default: no limit. */
  maxSendMessageBytes?: number;
  /** Unread response bytes buffered per call before reading from the server pauses. Default 256 KiB. */
  receiveHighWaterMark?: number;
  /** Request bytes buffered per call (not yet taken by HTTP/2) before the request iterable is no longer pulled. Default 256 KiB. */
  sendHighWaterMark?: number;
  /** Prepended to Rill's own `user-agent`. */
  userAgent?: string;
  /** Where connection problems are reported. Default: stderr. */
  logger?: Logger;
  /** Compressions accepted for responses (sent as grpc-accept-encoding). Default ["gzip", "deflate"]. */
  acceptCompression?: string[];
  /** Compression of request messages unless a call picks another. Default "identity". */
  compression?: string;
  /** "pick_first" (default) or "round_robin"; a service config's choice wins. */
  loadBalancingPolicy?: string;
  /** A gRPC service config (object or JSON): method timeouts, waitForReady, retries, throttling, LB policy. */
  serviceConfig?: ServiceConfigJson | string;
  /** Connection backoff (initial 1 s, ×1.6, jitter 0.2, max 120 s, min connect timeout 20 s). */
  backoff?: BackoffOptions;
  /**
   * A channel with no call for this long goes IDLE: it closes its connections and stops
   * resolving until the next call. 0 or Infinity: never. Default 1_800_000 (30 min, as grpc-js's
   * `grpc.client_idle_timeout_ms` and grpc-go's `WithIdleTimeout`).
   */
  idleTimeoutMs?: number;
  /** Client keepalive pings. Default off. */
  keepalive?: KeepaliveOptions;
  /** Replaces the resolver the target's scheme would get (e.g. a service registry). */
  resolver?: ResolverFactory;
  /** Bytes of request messages kept per call for replay on retry (A6 buffer). Default 256 KiB. */
  retryBufferBytes?: number;
  /** Time source for backoff; injectable for tests. Default Date.now. */
  clock?: Clock;
  /** How connections are secured: `insecure()` (h2c, the default) or `tls({ ca, cert, key, serverNameOverride })`. */
  credentials?: ChannelCredentials;
  /**
   * Interceptors of every call made through clients on this channel, outside each client's own
   * (first = outermost). They wrap the whole call, retries included. Default none.
   */
  interceptors?: readonly Interceptor[];
  /**
   * Observers of every call on this channel (metrics, tracing: `createRpcMetrics().observer`,
   * `createTracingObserver()`): told when a call starts (they may add request metadata then), of
   * each message and of its end, by the call itself, without the copies and iterator layers an
   * interceptor costs. They see the call inside any interceptors, once per call (not per retry
   * attempt); it ends when the status arrives or the call is cancelled. Default none.
   */
  observers?: readonly CallObserver[];
  /**
   * The protocol calls speak: "grpc" (default), or "grpc-web" / "connect" for servers that serve
   * only those (connect-es, a gRPC-Web proxy). Both run on the channel's HTTP/2 connections with
   * everything else unchanged (retries, deadlines, limits, interceptors); gRPC-Web is its binary
   * form, Connect uses its unary form for unary methods and its streaming form for the rest.
   */
  protocol?: Protocol;
}

/** Channel options with every default filled in. */
export interface ResolvedChannelOptions {
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;
  readonly receiveHighWaterMark: number;
  readonly sendHighWaterMark: number;
  readonly userAgent: string;
  readonly logger: Logger;
  readonly compressions: ReadonlyMap<string, Compression>;
  readonly acceptEncoding: string;
  readonly compression: string;
  readonly retryBufferBytes: number;
  readonly windows: ResolvedWindowOptions;
  readonly credentials: ChannelCredentials;
  readonly interceptors: readonly Interceptor[];
  readonly observers: readonly CallObserver[];
  readonly protocol: Protocol;
}

const userAgent = `grpc-node-rill/0.1.0`;

/** @internal */
export function resolveChannelOptions(options: ChannelOptions): ResolvedChannelOptions {
  const compressions = compressionsByName(options.acceptCompression);
  // The client can still send with any builtin it was asked to (the table's order is what it accepts).
  for (const c of builtinCompressions) if (!compressions.has(c.name)) compressions.set(c.name, c);
  return {
    compressions,
    acceptEncoding: (options.acceptCompression ?? ["gzip", "deflate"]).join(","),
    compression: options.compression ?? "identity",
    maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    maxSendMessageBytes: options.maxSendMessageBytes ?? Number.POSITIVE_INFINITY,
    receiveHighWaterMark: options.receiveHighWaterMark ?? 256 * 1024,
    sendHighWaterMark: options.sendHighWaterMark ?? 256 * 1024,
    userAgent: options.userAgent === undefined ? userAgent : `${options.userAgent} ${userAgent}`,
    logger: options.logger ?? consoleLogger,
    retryBufferBytes: options.retryBufferBytes ?? 256 * 1024,
    windows: resolveWindowOptions(options),
    credentials: options.credentials ?? insecure(),
    interceptors: options.interceptors ?? [],
    observers: [...(options.observers ?? [])],
    protocol: checkProtocol(options.protocol ?? "grpc"),
  };
}

function checkProtocol(p: Protocol): Protocol {
  if (p !== "grpc" && p !== "grpc-web" && p !== "connect") throw new Error(`unknown protocol ${JSON.stringify(p)}: use "grpc", "grpc-web" or "connect"`);
  return p;
}
