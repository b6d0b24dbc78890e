import type { SecureServerOptions } from "node:http2";
import type { Codec } from "../codec/codec.js";
import type { Interceptor } from "../interceptor.js";
import type { CallObserver } from "../observer.js";
import type { Logger } from "../logger.js";
import type { WindowOptions } from "../flow-control/window-options.js";
import type { ConnectionOptions } from "./connection-policy.js";
import type { CorsOptions } from "./cors.js";
import type { MemoryBudgetOptions } from "./memory-budget.js";
import type { HttpHandler } from "./web-protocols.js";

/**
 * Options of `createServer`. Every field has a documented default. Connection lifetime and
 * keepalive (`keepalive`, `maxConnectionIdleMs`, `maxConnectionAgeMs`, `maxConnectionAgeGraceMs`)
 * are described in `ConnectionOptions`; flow-control windows and BDP probing (what clients may
 * send the server) in `WindowOptions`.
 */
export interface ServerOptions extends ConnectionOptions, WindowOptions, MemoryBudgetOptions {
  /** Where handler crashes and protocol errors are reported. Default: stderr. */
  logger?: Logger;
  /** Largest request message accepted, in bytes; larger → RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest response message sent, in bytes; larger → RESOURCE_EXHAUSTED. Default: no limit. */
  maxSendMessageBytes?: number;
  /** Unread request bytes buffered per call before reading from the peer pauses. Default 256 KiB. */
  receiveHighWaterMark?: number;
  /**
   * Response bytes buffered per call (not yet taken by HTTP/2 within the client's window) before
   * a producer waits: the generator is not pulled, `ctx.send` does not resolve, `ctx.trySend`
   * returns false. brpc's max_buf_size. Default 256 KiB.
   */
  sendHighWaterMark?: number;
  /** Ends calls with no message in either direction for this long (DEADLINE_EXCEEDED); 0 = never. Default 0. A client's `idleTimeoutMs` wins. */
  idleTimeoutMs?: number;
  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients: calls one connection may run at
   * once. Clients queue calls past it; a peer that opens more anyway gets RST_STREAM(REFUSED_STREAM)
   * before it acknowledged the setting and a connection error (PROTOCOL_ERROR) after (nghttp2's
   * rule). Default 100 (RFC 9113 §6.5.2 recommends no less). grpc-go: MaxConcurrentStreams
   * (unlimited); gRPC Core: GRPC_ARG_MAX_CONCURRENT_STREAMS (unlimited).
   */
  maxConcurrentStreams?: number;
  /**
   * Rapid-reset (CVE-2023-44487) limit: RST_STREAM frames a client may send in a burst, refilled
   * at `streamResetRate` per second; past it the connection gets GOAWAY(INTERNAL_ERROR). A
   * client whose deadlines expire in a burst sends one per call, so the default is generous; a
   * flood of resets costs Rill little per stream, and a burst is what one read of the socket
   * processes at once. Applies on Node 22 and later (Node 20 fixes it at node's own 1000 / 33
   * per second). Default 4_000.
   */
  streamResetBurst?: number;
  /**
   * Refill rate of `streamResetBurst`, per second. Default 4_000: a client at concurrency 50
   * whose 15 ms deadlines all expire resets ~3,000/s, more as its calls get cheaper (at 2,000 it
   * lost its connection in 1 of 4 runs once the call path got faster). A rapid-reset flood sends
   * tens of thousands per second and still meets the limit within a fraction of a second.
   */
  streamResetRate?: number;
  /** Extra codecs by content subtype, besides "proto" and "json". */
  codecs?: Codec[];
  /** Compressions the server reads and offers, by name. Default ["gzip", "deflate"]; [] for none. */
  acceptCompression?: string[];
  /** Response compression for clients that accept it, unless a handler picks another. Default "identity". */
  compression?: string;
  /**
   * Interceptors of every call to this server (first = outermost, as on the
   * client). They run for known methods only; unknown ones are answered UNIMPLEMENTED first.
   * Default none (handlers run directly).
   */
  interceptors?: readonly Interceptor[];
  /**
   * Observers of every call to this server (metrics, tracing: `createRpcMetrics().observer`,
   * `createTracingObserver()`): told when a call starts, of each message and of its end, by the
   * call itself, without the copies and iterator layers an interceptor costs. Known methods only,
   * like interceptors; they start before the interceptors run and end when the status is written.
   * Default none (nothing of them runs).
   */
  observers?: readonly CallObserver[];
  /**
   * Serve gRPC-Web and the Connect protocol over HTTP/1.1 too (browsers, curl), on the same port:
   * plaintext connections are told apart by their first bytes, TLS ones by ALPN. Over HTTP/2
   * both protocols are always served beside gRPC. Default true.
   */
  http1?: boolean;
  /** CORS for browsers on other origins. Default: none allowed (see `CorsOptions`). */
  cors?: CorsOptions;
  /**
   * Answers GET and HEAD requests for paths where no method is served (a page, `/metrics`, a
   * probe), on HTTP/1.1 and HTTP/2 alike. Default: 404 for them.
   */
  http?: HttpHandler;
}

/** Where to listen. `port: 0` picks a free port; the chosen one is returned by `listen`. */
export interface ListenOptions {
  host?: string;
  port?: number;
  /** Serve TLS (ALPN "h2", and "http/1.1" unless the server's `http1` is false) instead of plaintext. */
  tls?: ServerTlsOptions;
}

/** TLS for `listen`. PEM strings or buffers, as node:tls takes them. */
export interface ServerTlsOptions {
  /** The server's certificate chain. */
  cert: string | Buffer | Array<string | Buffer>;
  /** The private key of `cert`. */
  key: string | Buffer | Array<string | Buffer>;
  /** CAs that client certificates must chain to (mTLS). Default: node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Ask clients for a certificate (mTLS). With `requireClientCert` (default true when this is
   * set) a client without a valid one fails the handshake; handlers see it as `ctx.tls.certificate`.
   */
  requestClientCert?: boolean;
  /** Refuse clients that present no certificate or one not signed by `ca`. Default: `requestClientCert`. */
  requireClientCert?: boolean;
}

/** node:tls options for `listen({ tls })`: certificates and client certificates if asked (ALPN is the listener's). */
export function secureServerOptions(tls: ServerTlsOptions): SecureServerOptions {
  if (tls.cert === undefined || tls.key === undefined) throw new Error("listen({ tls }): both `cert` and `key` are required");
  const request = tls.requestClientCert ?? false;
  const opts: SecureServerOptions = {
    cert: tls.cert,
    key: tls.key,
    requestCert: request,
    rejectUnauthorized: tls.requireClientCert ?? request,
  };
  if (tls.ca !== undefined) opts.ca = tls.ca;
  return opts;
}
