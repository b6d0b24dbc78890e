import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { RpcError } from "../protocol/errors.js";
import { chainInterceptors, exactlyOne, exactlyOneRequest, PendingMessage, SingleMessage, type CallRequest, type CallResponse, type Interceptor } from "../interceptor.js";
import { Code } from "../protocol/code.js";
import { createPushable } from "../stream/pushable.js";
import type { CallContext } from "./call-context.js";
import { CallPeer } from "./call-peer.js";
import type { HandlerContext } from "../handler-context.js";
import type { AnyHandler } from "./service-impl.js";

/**
 * `impl` with every handler wrapped in `interceptors` (first = outermost). The server adds the
 * result instead of `impl` only when interceptors are configured, so plain servers run their
 * handlers directly. Methods `impl` leaves out stay out (UNIMPLEMENTED, before any interceptor).
 */
export function interceptService(service: DescService, impl: object, interceptors: readonly Interceptor[]): Record<string, AnyHandler> {
  const out: Record<string, AnyHandler> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, unknown>)[method.localName];
    if (typeof handler !== "function") continue;
    out[method.localName] = interceptHandler(method, (handler as AnyHandler).bind(impl), interceptors);
  }
  // Keys the service does not have are left for the router to reject with its message.
  for (const key of Object.keys(impl)) if (!(key in out)) out[key] = (impl as Record<string, AnyHandler>)[key]!;
  return out;
}

/**
 * One handler behind the chain. The adapter gives interceptors the same shape for every kind
 * (request and response messages as iterables) and turns the chain's response back into what
 * the server expects of this kind: one message for unary and client streaming (exactly one, or
 * INTERNAL), an iterable for server streaming and bidi.
 */
function interceptHandler(method: DescMethod, handler: AnyHandler, interceptors: readonly Interceptor[]): AnyHandler {
  const path = `/${method.parent.typeName}/${method.name}`;
  const kind = method.methodKind;
  const singleRequest = kind === "unary" || kind === "server_streaming";
  const run = chainInterceptors(interceptors, async (request) => terminal(handler, request, singleRequest, path));
  const requestFor = (input: unknown, ctx: HandlerContext<never>): CallRequest =>
    Object.defineProperty(
      {
        side: "server" as const,
        method,
        kind,
        path,
        protocol: ctx.protocol,
        metadata: ctx.requestMetadata,
        deadline: ctx.deadline,
        peer: new CallPeer(ctx),
        context: ctx as HandlerContext,
        messages: singleRequest ? new SingleMessage(input) : (input as AsyncIterable<unknown>),
      },
      "signal",
      lazySignal,
    ) as Omit<CallRequest, "signal"> as CallRequest;
  if (kind === "unary" || kind === "client_streaming") {
    return async (input, ctx) => exactlyOne((await run(requestFor(input, ctx))).messages, path, "response");
  }
  return (input, ctx) => messagesOf(run(requestFor(input, ctx)));
}

/**
 * A server request's `signal`, made on first use: most interceptors never look at it, and it
 * costs an AbortController. One getter shared by every request, defined with defineProperty: a
 * getter written in the object literal would be a new closure, and so a new hidden class, per
 * call (see call-peer.ts). An own, enumerable property, so `{ ...request }` still carries it.
 */
const lazySignal: PropertyDescriptor = {
  get(this: CallRequest): AbortSignal | undefined {
    return this.context?.signal;
  },
  enumerable: true,
  configurable: true,
};

/**
 * The end of the chain: runs the handler. Its outcome is reported through the returned
 * messages, which also fail with the call's abort reason (deadline, cancel, shutdown) when the
 * handler does not stop by itself, so interceptors always see how the call ended.
 */
function terminal(handler: AnyHandler, request: CallRequest, singleRequest: boolean, path: string): CallResponse {
  const ctx = request.context!;
  if (request.metadata !== ctx.requestMetadata) {
    // An interceptor passed new metadata instead of editing it: the handler reads ctx's.
    for (const key of [...ctx.requestMetadata.keys()]) ctx.requestMetadata.delete(key);
    ctx.requestMetadata.merge(request.metadata);
  }
  if (request.kind === "unary" || request.kind === "client_streaming") {
    // One response: a promise, not a generator (see PendingMessage); it fails with the call's end
    // reason when the call ends first (deadline, cancel), so interceptors see how it ended.
    const input = singleRequest ? exactlyOneRequest(request.messages, path) : Promise.resolve(request.messages);
    const answer = input.then((i) => handler(i, ctx as HandlerContext<never>));
    return { header: ctx.responseHeader, trailer: ctx.responseTrailer, messages: new PendingMessage(untilEnded(answer, ctx)) };
  }
  // Streaming handlers may yield or push (ctx.send/trySend). Pushed messages go through a
  // per-call pushable into the response iterable, so interceptors see and may rewrite them too.
  // (Every server call's ctx is a CallContext: it is made in ServerCall.start.) The handler
  // starts when the chain first reads a response.
  const start = async (): Promise<AsyncIterator<unknown>> => {
    const input: unknown = singleRequest ? await exactlyOneRequest(request.messages, path) : request.messages;
    const pushed = createPushable<unknown>({ highWaterMark: pushedHighWaterMark });
    const output = handler(input, (ctx as unknown as CallContext).pushingTo(pushed) as HandlerContext<never>);
    if (output !== null && typeof output === "object" && Symbol.asyncIterator in output) {
      pushed.end();
      return abortable(output as AsyncIterable<unknown>, ctx)[Symbol.asyncIterator]();
    }
    Promise.resolve(output).then(
      () => pushed.end(),
      (e: unknown) => pushed.fail(e),
    );
    return abortable(pushed, ctx)[Symbol.asyncIterator]();
  };
  return { header: ctx.responseHeader, trailer: ctx.responseTrailer, messages: startedOnRead(start) };
}

/** An iterable whose iterator comes from `start`, called on the first `next()` (no generator in between). */
function startedOnRead(start: () => Promise<AsyncIterator<unknown>>): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      let inner: AsyncIterator<unknown> | undefined;
      let starting: Promise<AsyncIterator<unknown>> | undefined;
      const done = (value: unknown): IteratorResult<unknown> => ({ done: true, value });
      return {
        next() {
          if (inner !== undefined) return inner.next();
          return (starting ??= start()).then((i) => (inner = i).next());
        },
        return(value?: unknown) {
          if (inner !== undefined) return inner.return?.(value) ?? Promise.resolve(done(value));
          if (starting === undefined) return Promise.resolve(done(value));
          return starting.then(
            (i) => i.return?.(value) ?? done(value),
            () => done(value),
          );
        },
      };
    },
  };
}

/**
 * Messages a push-style handler may have queued ahead of the interceptors: a small count, on top
 * of the call's own byte-bounded send buffer, so `send` still waits for a slow reader and
 * `trySend` still says no once the reader stops taking messages.
 */
const pushedHighWaterMark = 16;

/**
 * `source`'s messages until the call ends: then a pending `next()` rejects with the end reason,
 * so interceptors see how the call ended even when the handler is stuck in an await. The end
 * is watched once per call (`ctx.closed`), and only the `next()` in flight is told: racing every
 * message against one long-lived promise would pile a reaction per message onto it.
 */
function abortable(source: AsyncIterable<unknown>, ctx: HandlerContext): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const it = source[Symbol.asyncIterator]();
      let finished = false;
      let callEnded = false;
      let waiting: ((e: unknown) => void) | undefined;
      let watching = false;
      const watch = () => {
        watching = true;
        void ctx.closed.then(() => {
          callEnded = true;
          const fail = waiting;
          waiting = undefined;
          fail?.(abortError(ctx.signal));
        });
      };
      return {
        next(): Promise<IteratorResult<unknown>> {
          if (finished) return Promise.resolve({ done: true, value: undefined });
          if (callEnded) return Promise.reject(abortError(ctx.signal));
          if (!watching) watch();
          return new Promise((resolve, reject) => {
            waiting = reject;
            it.next().then(
              (r) => {
                waiting = undefined;
                if (r.done === true) finished = true;
                resolve(r);
              },
              (e: unknown) => {
                waiting = undefined;
                reject(e);
              },
            );
          });
        },
        return(value?: unknown): Promise<IteratorResult<unknown>> {
          if (finished) return Promise.resolve({ done: true, value });
          finished = true;
          // A handler stuck in an await would hold return() back: wait for it only on a live call.
          const closing = it.return?.();
          if (callEnded || closing === undefined) {
            void closing?.catch(() => {});
            return Promise.resolve({ done: true, value });
          }
          return closing.then(() => ({ done: true, value }));
        },
      };
    },
  };
}

/**
 * `promise`, or a rejection with the call's end reason once the call ends without it. Waits on
 * `ctx.closed` (one promise), not on the signal: an AbortController and its listener per call
 * were a fifth of a unary call's cost through interceptors. The reason is read only when needed.
 */
function untilEnded<T>(promise: Promise<T>, ctx: HandlerContext): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    promise.then(
      (v) => {
        settled = true;
        resolve(v);
      },
      (e: unknown) => {
        settled = true;
        reject(e);
      },
    );
    void ctx.closed.then(() => {
      if (!settled) reject(abortError(ctx.signal));
    });
  });
}

function abortError(signal: AbortSignal): RpcError {
  return RpcError.from(signal.reason, Code.Canceled);
}


/** The response iterable of a streaming call whose chain is still starting. */
async function* messagesOf(response: Promise<CallResponse>): AsyncGenerator<unknown> {
  yield* (await response).messages;
}
