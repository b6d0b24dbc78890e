import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { callChannelOf, type Channel } from "../channel/channel.js";
import { protoCodec, type Codec } from "../codec/codec.js";
import type { CallOptions } from "./call-options.js";
import { startCall, startSingleResponseCall } from "./call.js";
import type { Interceptor } from "../interceptor.js";
import { interceptedMethod } from "./intercepted-method.js";

/** A unary method: one request, a promise of one response. */
export type UnaryFn<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: CallOptions,
) => Promise<MessageShape<O>>;

/** A server-streaming method: one request, responses as an async iterable. */
export type ServerStreamingFn<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: CallOptions,
) => AsyncIterable<MessageShape<O>>;

/** A client-streaming method: requests as an async iterable, a promise of one response. */
export type ClientStreamingFn<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>>,
  options?: CallOptions,
) => Promise<MessageShape<O>>;

/** A bidi method: requests as an async iterable, responses as an async iterable. */
export type BidiStreamingFn<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>>,
  options?: CallOptions,
) => AsyncIterable<MessageShape<O>>;

/** The client function type for one method, chosen by its `methodKind`. */
export type ClientMethod<M extends DescMethod> = M extends {
  methodKind: infer K;
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? K extends "unary"
    ? UnaryFn<I, O>
    : K extends "server_streaming"
      ? ServerStreamingFn<I, O>
      : K extends "client_streaming"
        ? ClientStreamingFn<I, O>
        : BidiStreamingFn<I, O>
  : never;

/** A typed client: one function per method of the service, keyed by `localName`. */
export type Client<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethod ? ClientMethod<S["method"][K]> : never;
};

/** Options of `createClient`. */
export interface ClientOptions {
  /** Options merged under every call's own (a call's `metadata` replaces these entirely). */
  defaults?: CallOptions;
  /** The message codec. Default: binary protobuf. */
  codec?: Codec;
  /**
   * Interceptors of this client's calls, inside the channel's `interceptors` (first = outermost).
   * They wrap the whole call, retries included. Default none.
   */
  interceptors?: readonly Interceptor[];
}

/** Creates a typed client for `service` whose calls run on `channel`. */
export function createClient<S extends DescService>(service: S, publicChannel: Channel, options: ClientOptions = {}): Client<S> {
  const channel = callChannelOf(publicChannel);
  const codec = options.codec ?? protoCodec;
  const defaults = options.defaults ?? {};
  const client: Record<string, unknown> = {};
  const interceptors = [...channel.options.interceptors, ...(options.interceptors ?? [])];
  // Interceptors and call credentials take the intercepted path; plain calls stay on the direct one.
  const intercepted = interceptors.length > 0 || channel.options.credentials.callCredentials.length > 0 || defaults.callCredentials !== undefined;
  for (const method of service.methods) {
    const merged = (o: CallOptions | undefined): CallOptions => (o === undefined ? defaults : { ...defaults, ...o });
    if (intercepted) {
      const fn = interceptedMethod(channel, method, codec, interceptors);
      client[method.localName] = (input: unknown, o?: CallOptions) => fn(input, merged(o));
      continue;
    }
    switch (method.methodKind) {
      case "unary":
        client[method.localName] = (request: unknown, o?: CallOptions) =>
          startSingleResponseCall(channel, method, codec, { single: request }, merged(o));
        break;
      case "server_streaming":
        client[method.localName] = (request: unknown, o?: CallOptions) =>
          startCall(channel, method, codec, { single: request }, merged(o));
        break;
      case "client_streaming":
        client[method.localName] = (requests: AsyncIterable<unknown>, o?: CallOptions) =>
          startSingleResponseCall(channel, method, codec, { stream: requests }, merged(o));
        break;
      case "bidi_streaming":
        client[method.localName] = (requests: AsyncIterable<unknown>, o?: CallOptions) =>
          startCall(channel, method, codec, { stream: requests }, merged(o));
        break;
    }
    // A call that brings its own credentials needs the intercepted path.
    const direct = client[method.localName] as (input: unknown, o?: CallOptions) => unknown;
    const withCredentials = interceptedMethod(channel, method, codec, interceptors);
    client[method.localName] = (input: unknown, o?: CallOptions) => (o?.callCredentials === undefined ? direct(input, o) : withCredentials(input, merged(o)));
  }
  return client as Client<S>;
}
