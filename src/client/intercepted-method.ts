import type { DescMethod } from "@bufbuild/protobuf";
import type { CallChannel } from "../channel/channel.js";
import { insecureCallCredentialsMessage, type CallCredentials } from "../channel/credentials.js";
import type { Codec } from "../codec/codec.js";
import { RpcError } from "../protocol/errors.js";
import { chainInterceptors, exactlyOneRequest, PendingMessage, SingleMessage, type CallRequest, type CallResponse, type Interceptor } from "../interceptor.js";
import { Code } from "../protocol/code.js";
import { Metadata } from "../protocol/metadata.js";
import type { CallOptions } from "./call-options.js";
import { startCall, startSingleResponseCall, type Requests } from "./call.js";

/**
 * A client method that runs its calls through `interceptors` (first = outermost) and then
 * through the call credentials (the channel's, then the call's own), innermost, right before
 * the call starts. The interceptors wrap the whole call: retries happen inside them.
 *
 * Used by `createClient` only when there is something to run; otherwise calls take the plain
 * path with no extra allocation or promise per message.
 */
export function interceptedMethod(
  channel: CallChannel,
  method: DescMethod,
  codec: Codec,
  interceptors: readonly Interceptor[],
): (input: unknown, options: CallOptions) => unknown {
  const path = `/${method.parent.typeName}/${method.name}`;
  const kind = method.methodKind;
  const singleRequest = kind === "unary" || kind === "server_streaming";
  const run = chainInterceptors(interceptors, (request) => {
    const options = (request as { [callOptions]?: CallOptions })[callOptions] ?? {};
    return startIntercepted(channel, method, codec, path, singleRequest, request, options);
  });
  const begin = (input: unknown, options: CallOptions): Promise<CallResponse> => {
    try {
      return run(makeRequest(channel, method, path, input, singleRequest, options));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  if (kind === "unary" || kind === "client_streaming") {
    return (input: unknown, options: CallOptions) => begin(input, options).then((r) => one(r, path), (e: unknown) => Promise.reject(asRpcError(e)));
  }
  return (input: unknown, options: CallOptions) => deferredMessages(begin(input, options));
}

/**
 * The call options ride on the request under a symbol, beside what interceptors see. Copies
 * made with spread (`{ ...request, messages }`) keep it.
 */
const callOptions = Symbol("rill.callOptions");

function makeRequest(channel: CallChannel, method: DescMethod, path: string, input: unknown, single: boolean, options: CallOptions): CallRequest {
  let deadline = options.deadline;
  const timeoutMs = options.timeoutMs ?? channel.methodConfig(method.parent.typeName, method.name)?.timeoutMs;
  if (timeoutMs !== undefined) deadline = Math.min(deadline ?? Number.POSITIVE_INFINITY, Date.now() + timeoutMs);
  let metadata: Metadata;
  try {
    metadata = new Metadata(options.metadata);
  } catch (e) {
    throw RpcError.from(e, Code.Internal);
  }
  const request: CallRequest & { [callOptions]: CallOptions } = {
    side: "client",
    method,
    kind: method.methodKind,
    path,
    protocol: channel.options.protocol,
    authority: channel.authority,
    metadata,
    deadline,
    signal: options.signal,
    peer: undefined,
    context: undefined,
    messages: single ? new SingleMessage(input) : (input as AsyncIterable<unknown>),
    [callOptions]: options,
  };
  return request;
}

/** The end of the chain: call credentials, then the call itself. */
async function startIntercepted(
  channel: CallChannel,
  method: DescMethod,
  codec: Codec,
  path: string,
  single: boolean,
  request: CallRequest,
  options: CallOptions,
): Promise<CallResponse> {
  const metadata = request.metadata;
  const generators = channel.options.credentials.callCredentials;
  const own = options.callCredentials;
  if (generators.length > 0 || own !== undefined) {
    await applyCallCredentials(channel, method, path, request, own === undefined ? generators : [...generators, own], metadata);
  }
  let requests: Requests;
  if (single) {
    const m = request.messages;
    requests = { single: await exactlyOneRequest(m, path) };
  } else {
    requests = { stream: request.messages };
  }
  const header = new Metadata();
  const trailer = new Metadata();
  const callOptions: CallOptions = {
    ...options,
    metadata,
    onHeader: (md) => {
      header.merge(md);
      options.onHeader?.(md);
    },
    onTrailer: (md) => {
      trailer.merge(md);
      options.onTrailer?.(md);
    },
  };
  delete callOptions.timeoutMs;
  delete callOptions.deadline;
  if (request.deadline !== undefined) callOptions.deadline = request.deadline;
  if (request.signal !== undefined) callOptions.signal = request.signal;
  else delete callOptions.signal;
  // One response: the call's promise as it is (PendingMessage), with no response queue per call.
  const messages = singleResponse(method) ? new PendingMessage(startSingleResponseCall(channel, method, codec, requests, callOptions)) : startCall(channel, method, codec, requests, callOptions);
  return { header, trailer, messages };
}

async function applyCallCredentials(
  channel: CallChannel,
  method: DescMethod,
  path: string,
  request: CallRequest,
  generators: readonly CallCredentials[],
  metadata: Metadata,
): Promise<void> {
  const creds = channel.options.credentials;
  if (!creds.secure && !creds.allowInsecureCallCredentials) {
    throw new RpcError(Code.Unauthenticated, `${path}: ${insecureCallCredentialsMessage}`);
  }
  const context = {
    method,
    path,
    authority: channel.authority,
    serviceUrl: `https://${channel.authority}/${method.parent.typeName}`,
    signal: request.signal,
  };
  for (const generate of generators) {
    try {
      metadata.merge(await generate(context));
    } catch (e) {
      if (e instanceof RpcError) throw e;
      throw new RpcError(Code.Unavailable, `${path}: call credentials failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }
}


function singleResponse(method: DescMethod): boolean {
  return method.methodKind === "unary" || method.methodKind === "client_streaming";
}

/** The single response of a unary or client-streaming call; zero or two are protocol violations. */
async function one(response: CallResponse, path: string): Promise<unknown> {
  if (response.messages instanceof PendingMessage) return response.messages.promise.catch((e: unknown) => Promise.reject(asRpcError(e)));
  const it = response.messages[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    if (first.done) throw new RpcError(Code.Unimplemented, `${path.slice(1)}: the server sent no response message`);
    const second = await it.next();
    if (!second.done) {
      await it.return?.();
      throw new RpcError(Code.Unimplemented, `${path.slice(1)}: the server sent more than one response message`);
    }
    return first.value;
  } catch (e) {
    throw asRpcError(e);
  }
}

/**
 * The response stream of a call whose start is still pending: it starts at once, and the first
 * `next()` waits for it. Leaving early closes the call's stream like the plain path.
 */
function deferredMessages(response: Promise<CallResponse>): AsyncIterableIterator<unknown> {
  // Nobody may ever iterate: a failed start must not become an unhandled rejection.
  const iterator = response.then((r) => (started = r.messages[Symbol.asyncIterator]()));
  iterator.catch(() => {});
  // Once the chain has started, each next() goes straight to its iterator (no async frame per message).
  let started: AsyncIterator<unknown> | undefined;
  const mapped = (e: unknown) => Promise.reject(asRpcError(e));
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (started !== undefined) return started.next().catch(mapped);
      return iterator.then((it) => it.next()).catch(mapped);
    },
    async return(value?: unknown) {
      const it = await iterator.catch(() => undefined);
      await it?.return?.();
      return { done: true, value };
    },
  };
}

/** Interceptors should throw RpcErrors; anything else reaches the caller as UNKNOWN. */
function asRpcError(e: unknown): RpcError {
  return RpcError.from(e, Code.Unknown);
}
