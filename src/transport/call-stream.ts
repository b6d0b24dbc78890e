/**
 * The seam between calls and the wire. A call (client `call.ts`, server `server-call.ts`) sees one
 * stream: headers, DATA carrying gRPC frames, trailers, an end and a reset, with HTTP/2's
 * events. Nothing above this file imports `node:http2`.
 *
 * The shapes are the subset of node's `Http2Stream` the calls use, so a node stream is passed
 * through as it is: no wrapper object and no extra hop per call on the hot path (type-checked in
 * `node-http2.ts`). The in-process transport (`in-process.ts`) implements the same shapes
 * without sockets or HTTP/2.
 *
 * Events a call relies on, in order:
 * - client: `response` (headers, once), `data` (chunks of frames), `trailers` (once), then
 *   `close`; `aborted` when the peer reset the stream before it ended; `error`.
 * - server: `data`, `end` (the client half-closed), `wantTrailers` (after `end()` of a
 *   stream whose headers were sent with `waitForTrailers`), `aborted`, `close`, `error`.
 */

/** Header blocks as node takes them: lowercase names, pseudo-headers included. */
export type StreamHeaders = Record<string, string | string[] | number | undefined>;
/** Header blocks as node gives them (`:status` aside, every value a string or a list). */
export type IncomingStreamHeaders = Record<string, string | string[] | undefined>;

/** RST_STREAM error codes the calls send and read (RFC 9113 §7). */
export const ResetCode = {
  NoError: 0,
  ProtocolError: 1,
  InternalError: 2,
  RefusedStream: 7,
  Cancel: 8,
  EnhanceYourCalm: 11,
} as const;

/** What both ends of a call do with their stream. */
export interface CallStream {
  readonly destroyed: boolean;
  /** Both sides are done (`close` was or is about to be emitted). */
  readonly closed: boolean;
  /** Our side ended (`end()` was called). */
  readonly writableEnded: boolean;
  /** The RST_STREAM code once reset (by either side), else undefined. */
  readonly rstCode: number | undefined;
  /** Queues DATA; `callback` runs once the bytes left our buffers (within the peer's window). */
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  /** Ends our side (END_STREAM). */
  end(): this;
  cork(): void;
  uncork(): void;
  /** Stops and restarts `data` events (and with them WINDOW_UPDATEs: the peer must stop). */
  pause(): this;
  resume(): this;
  /** Resets the stream with `code` (RST_STREAM). */
  close(code?: number): void;
  /** Tears the stream down at once (RST_STREAM(INTERNAL_ERROR) when `error` is given). */
  destroy(error?: Error): this;
  // `any`: node's overloads type each event's listener; ours are checked where they are defined.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: string, listener: (...args: any[]) => void): this;
}

/** The client's side of a call's stream. */
export interface ClientCallStream extends CallStream {
  /** Bytes written but still queued on our side (behind the peer's window). */
  readonly writableLength: number;
  /** Bytes received but not yet taken by a `data` listener (the stream is paused). */
  readonly readableLength: number;
  /** The stream id (odd, increasing per connection); undefined until assigned. */
  readonly id?: number | undefined;
}

/** The server's side of a call's stream. */
export interface ServerCallStream extends CallStream {
  readonly readableEnded: boolean;
  /** `localClose` is 1 once our END_STREAM has been written. */
  readonly state: { readonly localClose?: number | undefined };
  /** Sends the response headers (a trailers-only status with `endStream`). */
  respond(headers: StreamHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void;
  /** Sends the trailers; only from a `wantTrailers` listener. */
  sendTrailers(headers: StreamHeaders): void;
  /** The connection the stream came on; undefined in-process (no socket, no TLS). */
  readonly session?: { readonly socket?: SocketLike | undefined } | undefined;
  /**
   * The protocol the call came on when it is not gRPC: a gRPC-Web or Connect request translated
   * into a gRPC call's stream (`grpc-web-stream.ts`, `connect-stream.ts`). Such a stream may emit
   * `protocolError` (an RpcError) for a request it cannot translate: the call ends with that status.
   */
  readonly protocol?: WebProtocol | undefined;
}

/** The protocols a call may speak besides gRPC. */
export type WebProtocol = "grpc-web" | "connect";
/** The wire protocols of a call: gRPC, gRPC-Web or Connect. */
export type Protocol = "grpc" | WebProtocol;

/** What the server reads of a connection's socket: the peer's address and, with TLS, its certificate. */
export interface SocketLike {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** Told of every DATA chunk a call reads (BDP probing of the connection). */
export interface DataObserver {
  dataTaken(bytes: number): void;
}

/**
 * Where a client call's attempt opens its stream: one connection of a channel (an HTTP/2
 * subchannel), or a server in this process.
 */
export interface ClientTransport {
  /** Names the transport in errors ("127.0.0.1:50051"). */
  readonly key: string;
  /** Why the transport last failed, for error messages. */
  readonly lastError: Error | undefined;
  /**
   * Opens a stream. `reset` aborts it with RST_STREAM(CANCEL) without ending our side first.
   * Throws when the transport can take no stream now (the server never saw it: safe to retry).
   */
  openStream(headers: StreamHeaders, reset: AbortSignal | undefined): ClientCallStream;
  /** The observer of DATA read on `stream`'s connection, when it probes the bandwidth. */
  dataObserver(stream: ClientCallStream): DataObserver | undefined;
  /** Whether the server said (GOAWAY) that it never processed `stream`: a transparent retry is safe. */
  unprocessed(stream: ClientCallStream, streamError: Error | undefined): boolean;
  /** Whether `stream`'s connection is gone. */
  connectionLost(stream: ClientCallStream): boolean;
  /** Why `stream`'s connection ended, when it ended with an error or an error GOAWAY. */
  endReason(stream: ClientCallStream): Error | undefined;
  /** Turns a transport error into one that says what to do (TLS and connection hints). */
  explain(error: Error): Error;
}
