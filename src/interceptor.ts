/**
 * Interceptors: one mechanism for clients and servers and for all four call kinds.
 *
 * An interceptor wraps the function that runs a call: `(next) => async (request) => response`.
 * It may look at the call (method, kind, metadata, deadline, peer), change the request metadata,
 * replace `request.messages` or `response.messages` with a transforming iterable, read the
 * response header and trailer, and fail the call by throwing an `RpcError` (from the function
 * or from a message iterable).
 *
 * Invariants:
 * - Every kind has the same shape: request and response messages are async iterables (a unary
 *   request is an iterable of one). The typed client and the handler adapter check cardinality.
 * - Order: the first interceptor in a list is the outermost, on the client and on the server.
 *   It sees the request first and the response (and the status) last.
 * - A call's outcome is its response messages ending (OK; `response.trailer` is complete) or
 *   throwing an `RpcError` (the status; its `metadata` are the trailers). `next` itself rejects
 *   only when an interceptor inside it threw before the call started.
 * - With no interceptors and no call credentials nothing here runs: the call path is the plain
 *   one (call credentials are applied as an interceptor, so they take this path too).
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { RpcError } from "./protocol/errors.js";
import { Code } from "./protocol/code.js";
import type { Metadata } from "./protocol/metadata.js";
import type { HandlerContext, Protocol } from "./handler-context.js";
import type { TlsPeer } from "./transport/tls-peer.js";

/** The request side of a call as interceptors see it. */
export interface CallRequest {
  /** "client" in a channel or client's chain, "server" in a server's. */
  readonly side: "client" | "server";
  /** The method descriptor (its `parent` is the service). */
  readonly method: DescMethod;
  /** The call kind, `method.methodKind`. */
  readonly kind: DescMethod["methodKind"];
  /** The HTTP/2 path, "/package.Service/Method". */
  readonly path: string;
  /** The wire protocol of the call: on the server the one the client used, on the client the channel's. */
  readonly protocol: Protocol;
  /**
   * Client only: the channel's `:authority` ("host:port", "localhost" for unix sockets), the
   * server the call is addressed to, for tracing's `server.address`. Not set on the server.
   */
  readonly authority?: string;
  /**
   * Request metadata. Change it in place; on the client before calling `next` (it is sent when
   * the innermost `next` starts the call), on the server the handler sees the changes.
   */
  readonly metadata: Metadata;
  /** The deadline as epoch milliseconds, or undefined for none. */
  readonly deadline: number | undefined;
  /** Aborts when the call is cancelled (client: the caller's signal; server: `ctx.signal`). */
  readonly signal: AbortSignal | undefined;
  /** Server only: who called. Undefined on the client. */
  readonly peer: Peer | undefined;
  /** Server only: the handler's context (response header and trailer, `send`). */
  readonly context: HandlerContext | undefined;
  /** The request messages. Pass a transforming iterable to `next` to change them. */
  readonly messages: AsyncIterable<unknown>;
}

/** The response side of a call as interceptors see it. */
export interface CallResponse {
  /**
   * Response header metadata. Client: filled in when the headers arrive (before the first
   * message; a trailers-only response has none). Server: the handler's `ctx.responseHeader`,
   * changeable until the first response message is sent.
   */
  readonly header: Metadata;
  /** The response messages; ending is OK, throwing an `RpcError` is the failure status. */
  readonly messages: AsyncIterable<unknown>;
  /**
   * Trailer metadata. Client: complete once `messages` ended (on failure, also `error.metadata`).
   * Server: the handler's `ctx.responseTrailer`, changeable until `messages` ends.
   */
  readonly trailer: Metadata;
}

/** Who called, on the server. */
export interface Peer {
  /** "host:port" (IPv6 hosts in brackets), as `ctx.peer`. */
  readonly address: string;
  /** The TLS session, when the connection uses TLS (with the client certificate under mTLS). */
  readonly tls: TlsPeer | undefined;
}

/** Runs a call: the next interceptor, or at the end of the chain the call itself. */
export type CallHandler = (request: CallRequest) => Promise<CallResponse>;

/** Wraps the rest of the chain. The first interceptor of a list is the outermost. */
export type Interceptor = (next: CallHandler) => CallHandler;

/** Composes `interceptors` around `terminal`, the first outermost. */
export function chainInterceptors(interceptors: readonly Interceptor[], terminal: CallHandler): CallHandler {
  let next = terminal;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}

/**
 * `request` with other messages: a copy like `{ ...request, messages }`, except that properties
 * made on first use (the server's `signal`, an AbortController) stay lazy instead of being made
 * by the copy. For interceptors of Rill's own; user code may spread as the docs show.
 */
export function withMessages(request: CallRequest, messages: AsyncIterable<unknown>): CallRequest {
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(request)) as { messages: AsyncIterable<unknown> };
  Object.defineProperty(copy, "messages", { value: messages, enumerable: true, writable: true, configurable: true });
  return copy as unknown as CallRequest;
}

/** What `observeMessages` reports. */
export interface MessageObserver {
  /** Each message as it passes; return a replacement to transform it. */
  onMessage?(message: unknown): unknown;
  /** Once, when the stream ended (`error` undefined), failed (`error` is why), or its reader left early. */
  onEnd?(error: unknown, info: { readerLeft: boolean }): void;
}

/**
 * An iterable that passes `messages` through `observer`: the building block of interceptors
 * that look at or rewrite each message and at how the stream ended. Leaving it early (break,
 * return) closes `messages` too, so a cancellation still reaches the call.
 */
export function observeMessages(messages: AsyncIterable<unknown>, observer: MessageObserver): AsyncIterable<unknown> {
  // One message known now, or one to come: observed as it is, so the chain keeps its fast path
  // (no iteration at all for a unary call's request and response).
  if (messages instanceof SingleMessage) {
    const value = observer.onMessage === undefined ? messages.message : observer.onMessage(messages.message);
    observer.onEnd?.(undefined, { readerLeft: false });
    return new SingleMessage(value);
  }
  if (messages instanceof PendingMessage) {
    return new PendingMessage(
      messages.promise.then(
        (v) => {
          const value = observer.onMessage === undefined ? v : observer.onMessage(v);
          observer.onEnd?.(undefined, { readerLeft: false });
          return value;
        },
        (e: unknown) => {
          observer.onEnd?.(e, { readerLeft: false });
          throw e;
        },
      ),
    );
  }
  // A hand-written iterator, not an async generator: one `then` per message instead of a
  // generator's hops, which every message of a stream paid once per observing interceptor.
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const it = messages[Symbol.asyncIterator]();
      let ended = false;
      const end = (error: unknown, readerLeft: boolean) => {
        if (ended) return;
        ended = true;
        observer.onEnd?.(error, { readerLeft });
      };
      const onMessage = observer.onMessage;
      return {
        next(): Promise<IteratorResult<unknown>> {
          if (ended) return Promise.resolve({ done: true, value: undefined });
          return it.next().then(
            (r) => {
              if (r.done === true) {
                end(undefined, false);
                return r;
              }
              return onMessage === undefined ? r : { done: false, value: onMessage(r.value) };
            },
            (e: unknown) => {
              end(e, false);
              throw e;
            },
          );
        },
        // The reader left early (break, return): the source is closed too, so a cancellation reaches the call.
        return(value?: unknown): Promise<IteratorResult<unknown>> {
          const closing = it.return?.(value);
          end(undefined, true);
          return closing === undefined ? Promise.resolve({ done: true, value }) : closing.then(() => ({ done: true, value }));
        },
      };
    },
  };
}

/** A one-message iterable that remembers its message, so the chain's end can skip re-reading it. */
export class SingleMessage implements AsyncIterable<unknown> {
  constructor(readonly message: unknown) {}
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    yield this.message;
  }
}

/**
 * The one message a side will have, as a promise: a unary or client-streaming call's response
 * while the interceptors run. Read through the chain unchanged, it is taken as the promise it is
 * (no iterator, no generator, no queue per call); an interceptor that wraps the messages still
 * sees an iterable of one.
 */
export class PendingMessage implements AsyncIterable<unknown> {
  constructor(readonly promise: Promise<unknown>) {
    // Read by whoever takes it; until then its failure is not an unhandled rejection.
    promise.catch(() => {});
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    yield await this.promise;
  }
}

/**
 * The one request of a unary or server-streaming call once the interceptors are done with it:
 * an interceptor may have replaced the message stream, and it must still hold exactly one.
 */
export function exactlyOneRequest(messages: AsyncIterable<unknown>, path: string): Promise<unknown> {
  return exactlyOne(messages, path, "request");
}

/**
 * The only message of `messages`: a single-message side of a call after the interceptors rewrote
 * it (the request of unary/server streaming, the server's response of unary/client streaming).
 * None or more than one is the interceptors' fault: INTERNAL.
 */
export async function exactlyOne(messages: AsyncIterable<unknown>, path: string, what: "request" | "response"): Promise<unknown> {
  if (messages instanceof PendingMessage) return messages.promise;
  if (messages instanceof SingleMessage) return messages.message;
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new RpcError(Code.Internal, `${path}: the interceptors left no ${what} message (one is required)`);
  const second = await it.next();
  if (!second.done) {
    await it.return?.();
    throw new RpcError(Code.Internal, `${path}: the interceptors produced more than one ${what} message (one is required)`);
  }
  return first.value;
}
