import type { DescMethod } from "@bufbuild/protobuf";
import type { Code } from "./protocol/code.js";
import type { Metadata } from "./protocol/metadata.js";
import type { Protocol } from "./transport/call-stream.js";
import type { TlsPeer } from "./transport/tls-peer.js";

export type { Protocol };

/**
 * What a handler knows about its call and how it shapes the response around the messages.
 * `Res` is the response message type (for `send` and `trySend`).
 *
 * `signal` aborts when the client cancels (RST_STREAM), the connection is lost, the deadline
 * passes, or the server shuts down; its `reason` is an `RpcError` saying which.
 */
export interface HandlerContext<Res = unknown> {
  /** Aborts when the call ends early for any reason; `signal.reason` is an RpcError. */
  readonly signal: AbortSignal;
  /**
   * Fulfils when the call ends, however it ends (never rejects). A push-style handler that only
   * needs to stay alive until the client leaves can `await ctx.closed`: it costs a promise, where
   * an AbortSignal with a listener costs ~0.9 KB per call (it matters with 10,000 idle streams).
   */
  readonly closed: Promise<void>;
  /** The client's deadline as epoch milliseconds (from `grpc-timeout`), or undefined for none. */
  readonly deadline: number | undefined;
  /** Metadata the client sent, without the reserved transport headers. */
  readonly requestMetadata: Metadata;
  /** The client's address as "host:port" (IPv6 hosts in brackets). */
  readonly peer: string;
  /**
   * The connection's TLS session (protocol, cipher, and under mTLS the client certificate with
   * its subject), or undefined on plaintext. Read from the connection, so ask while the call runs.
   */
  readonly tls: TlsPeer | undefined;
  /** The method being served. */
  readonly method: DescMethod;
  /** The protocol the call came on: gRPC, gRPC-Web or Connect (the same handler serves all three). */
  readonly protocol: Protocol;
  /** Metadata sent with the response headers: change it before the first message or `sendHeader()`. */
  readonly responseHeader: Metadata;
  /** Metadata sent with the status at the end of the call. */
  readonly responseTrailer: Metadata;
  /** Sends the response headers now, before any message. Later calls do nothing. */
  sendHeader(): void;
  /**
   * Compresses the responses with `name` ("gzip", "deflate", "identity"). Effective only before
   * the headers are sent, and only if the client accepts it (otherwise identity is used).
   * Mark single messages with `withCompression(msg, false)` to send them uncompressed.
   */
  setResponseCompression(name: string): void;
  /** Whether the request message read last arrived compressed (its frame's flag was set). */
  readonly lastRequestCompressed: boolean;
  /**
   * Push-style sending for streaming responses, usable from any number of producers (each
   * message goes out whole, in call order). Resolves once the message is queued under the
   * call's `sendHighWaterMark`, so awaiting it applies backpressure. A handler that uses it
   * returns a promise (an `async` function) instead of yielding.
   */
  send(message: Res): Promise<void>;
  /**
   * Queues a message only if there is room now; false means the buffer is full (brpc's EAGAIN):
   * drop it, or `await ctx.writable()` and try again.
   */
  trySend(message: Res): boolean;
  /** Resolves when `trySend` would accept a message (or the call ended). */
  writable(): Promise<void>;
  /** Response bytes queued but not yet taken by HTTP/2 (within the peer's window). */
  readonly bufferedBytes: number;
  /**
   * Ends the call now with RST_STREAM instead of a status: responses still buffered (here, in
   * flight, and unread in the client's buffers) are dropped, so a client far behind learns it at
   * once instead of after reading all of them. An RST carries no message or trailers; the client
   * sees the code it maps to: RESOURCE_EXHAUSTED (sent as ENHANCE_YOUR_CALM) or CANCELLED (sent
   * as CANCEL), as every gRPC implementation maps them. What the handler returns afterwards is
   * ignored. For a status with a message, return or throw instead.
   */
  resetStream(code: Code.ResourceExhausted | Code.Canceled): void;
}
