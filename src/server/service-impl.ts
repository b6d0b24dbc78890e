import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "../handler-context.js";

type Awaitable<T> = T | Promise<T>;

/** A unary handler: one request in, one response out. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext,
) => Awaitable<MessageInitShape<O>>;

/**
 * A server-streaming handler, usually an `async function*`: one request in, responses yielded.
 * Or push style: an `async` function that calls `ctx.send()` and resolves when done.
 */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext<MessageInitShape<O>>,
) => AsyncIterable<MessageInitShape<O>> | Promise<void>;

/** A client-streaming handler: requests as an async iterable, one response out. */
export type ClientStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext,
) => Awaitable<MessageInitShape<O>>;

/**
 * A bidi handler, usually an `async function*` that iterates the requests and yields responses;
 * or push style, an `async` function using `ctx.send()`.
 */
export type BidiStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext<MessageInitShape<O>>,
) => AsyncIterable<MessageInitShape<O>> | Promise<void>;

/** The handler type for one method, chosen by its `methodKind`. */
export type MethodImpl<M extends DescMethod> = M extends {
  methodKind: infer K;
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? K extends "unary"
    ? UnaryHandler<I, O>
    : K extends "server_streaming"
      ? ServerStreamingHandler<I, O>
      : K extends "client_streaming"
        ? ClientStreamingHandler<I, O>
        : BidiStreamingHandler<I, O>
  : never;

/**
 * An implementation of a service: one handler per method, keyed by the method's `localName`
 * (`unaryEcho` for `UnaryEcho`). Methods left out answer UNIMPLEMENTED.
 */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]?: S["method"][K] extends DescMethod ? MethodImpl<S["method"][K]> : never;
};

/** Any handler, as the router stores it once the types have done their work. */
export type AnyHandler = (input: unknown, ctx: HandlerContext<never>) => unknown;
