import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import type { CallChannel } from "../channel/channel.js";
import type { HedgingPolicy, RetryPolicy } from "../channel/service-config.js";
import type { Codec } from "../codec/codec.js";
import type { Compression } from "../codec/compression.js";
import { decodeMessage, sendPayload, sendsCompressed, serializeMessage, sizeSmallMessage, type MessageSide } from "../codec/message-codec.js";
import { writeSizedFlatMessage } from "../codec/flat-message-encoder.js";
import { BATCHED_BELOW } from "../stream/frame-writer.js";
import { IdleTimeoutError, RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { encodeFrame, type Frame } from "../protocol/frame.js";
import { formatTimeout } from "../protocol/timeout.js";
import { IdleTimer } from "../stream/idle-timer.js";
import { MessageQueue, type QueueSource } from "../stream/message-queue.js";
import { startTimer, type LongTimer } from "../timer.js";
import type { ClientTransport, StreamHeaders, WebProtocol } from "../transport/call-stream.js";
import { maxConnectControlBytes } from "../transport/client-connect-stream.js";
import { webClientTransport } from "../transport/web-client-transport.js";
import { Attempt, type AttemptHost, type AttemptOutcome } from "./attempt.js";
import type { CallOptions } from "./call-options.js";
import { callHeaders } from "./call-headers.js";
import { decideHedge, decideRetry } from "./retry-decision.js";
import { CallObservations } from "../observer.js";
import type { MetadataInit } from "../protocol/metadata.js";
import { ClientObservedCall } from "./observed-call.js";

/** The request side of a call: exactly one message, or a stream of them. */
export type Requests = { readonly single: unknown } | { readonly stream: AsyncIterable<unknown> };

/**
 * Starts one call and returns its responses as an async iterator.
 *
 * The iterator yields every response message, then ends if the status is OK or throws the
 * RpcError of the status. Leaving it early (`break`, `return()`) cancels the call with
 * RST_STREAM(CANCEL). One ClientCall serves all four kinds: the typed client decides only
 * whether one request or a stream goes in, and whether the responses come out as this
 * iterator or as one promise (startSingleResponseCall).
 */
export function startCall(
  channel: CallChannel,
  method: DescMethod,
  codec: Codec,
  requests: Requests,
  options: CallOptions,
): AsyncIterableIterator<unknown> {
  return new ClientCall(channel, method, codec, options, false).start(requests)!;
}

/**
 * Starts a call with exactly one response (unary, client-streaming) and returns it as a promise.
 *
 * It rejects with the RpcError of a non-OK status, or with UNIMPLEMENTED when the server sent no
 * response message or more than one. No response queue: the one message is kept as it arrives and
 * decoded when the status is in, which saves the queue's promises and reads on every call.
 */
export function startSingleResponseCall(channel: CallChannel, method: DescMethod, codec: Codec, requests: Requests, options: CallOptions): Promise<unknown> {
  const call = new ClientCall(channel, method, codec, options, true);
  call.start(requests);
  return call.result!;
}

/**
 * One call, made of one or more attempts (A6 retries, and transparent retries of streams a
 * server refused before processing them).
 *
 * Life: OPEN → attempt 1 → … → DONE with one status. An attempt's outcome is retried only while
 * the call is not committed (no response headers or messages received, replay buffer not
 * overflowed), the code is retryable, attempts remain, throttling allows and the deadline
 * has not passed. Request messages are kept for replay until the call commits.
 */
class ClientCall implements QueueSource, AttemptHost {
  /** The responses of a streaming call; undefined for a call with one response (see `result`). */
  private readonly responses: MessageQueue<unknown> | undefined;
  /** The outcome of a call with one response. */
  readonly result: Promise<unknown> | undefined;
  private settle: { resolve(value: unknown): void; reject(e: unknown): void } | undefined;
  /** The one response message of such a call, until the status is in. */
  private response: Frame | undefined;
  private readonly service: string;
  private done = false;
  private committed = false;
  private attempts = 0;
  private transparentRetries = 0;
  private current: Attempt | undefined;
  private baseHeaders: StreamHeaders = noHeaders;
  private deadline: number | undefined;
  private timer: LongTimer | undefined;
  private retryPolicy: RetryPolicy | undefined;
  /** A6 hedging, for calls with one request message: the attempts in flight until one answers. */
  private hedging: HedgingPolicy | undefined;
  private hedges: Set<Attempt> | undefined;
  private hedgeTimer: LongTimer | undefined;
  /** A server's pushback of -1: no more hedges. */
  private hedgesStopped = false;
  private waitForReady = false;
  requestCompression: Compression | undefined;
  /** Frames sent so far, kept for replay while the call may still be retried. */
  private replay: Uint8Array[] | undefined = [];
  private replayBytes = 0;
  private requestsEnded = false;

  /** Whether the whole request stream was handed to the attempts (END_STREAM follows at once). */
  get sendingDone(): boolean {
    return this.requestsEnded;
  }
  private requestIterator: AsyncIterator<unknown> | undefined;
  private readonly onAbort = () => this.cancel(abortReason(this.options.signal));
  // Created only when a pick has to wait for a connection (rare): most calls pick at once.
  private pickAbort: AbortController | undefined;
  private readonly pickSignal = () => (this.pickAbort ??= new AbortController()).signal;
  /** How this call's messages are encoded and limited: the channel's, or the method's service config where smaller. */
  side: MessageSide;
  private idle: IdleTimer | undefined;
  /** What the channel's observers keep of this call; undefined without observers. */
  private observed: CallObservations | undefined;

  constructor(
    readonly channel: CallChannel,
    readonly method: DescMethod,
    readonly codec: Codec,
    readonly options: CallOptions,
    singleResponse: boolean,
  ) {
    this.service = method.parent.typeName;
    this.side = channelSide(channel, codec);
    if (singleResponse) {
      this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    } else {
      this.responses = new MessageQueue<unknown>((frame) => this.decodeResponse(frame), this, channel.options.receiveHighWaterMark);
    }
  }

  // QueueSource of the responses (the call itself, to save an object and three closures per call).
  pause(): void {
    this.current?.stream?.pause();
  }

  resume(): void {
    this.current?.stream?.resume();
  }

  abandon(): void {
    this.cancel(new RpcError(Code.Canceled, "the caller stopped reading responses"));
  }

  start(requests: Requests): AsyncIterableIterator<unknown> | undefined {
    const { options, channel } = this;
    let metadata: MetadataInit | undefined = options.metadata;
    if (channel.options.observers.length > 0) {
      // First, so that observers see every call end, even one that fails before it is sent.
      const view = new ClientObservedCall(this);
      this.observed = CallObservations.start(channel.options.observers, view, channel.options.logger);
      if (view.copy !== undefined) metadata = view.copy;
    }
    if (options.signal?.aborted) {
      this.finish(abortReason(options.signal));
      return this.responses;
    }
    const config = channel.methodConfig(this.service, this.method.name);
    this.waitForReady = options.waitForReady ?? config?.waitForReady ?? false;
    // The smaller of the channel's limit and the service config's applies (gRPC's rule).
    const maxRequest = config?.maxRequestMessageBytes;
    if (maxRequest !== undefined && maxRequest < this.side.maxSendBytes) {
      this.side = { ...this.side, maxSendBytes: maxRequest, sendLimitName: "the service config's maxRequestMessageBytes" };
    }
    const maxResponse = config?.maxResponseMessageBytes;
    if (maxResponse !== undefined && maxResponse < this.side.maxReceiveBytes) {
      this.side = { ...this.side, maxReceiveBytes: maxResponse, receiveLimitName: "the service config's maxResponseMessageBytes" };
    }
    this.retryPolicy = options.retryPolicy === undefined ? config?.retryPolicy : (options.retryPolicy ?? undefined);
    // A per-call retryPolicy (or null) replaces the method's policy, hedging included. Hedging
    // here covers methods with one request message (unary, server streaming): a streamed request
    // would have to be written to every hedge as it is produced.
    const kind = this.method.methodKind;
    if (options.retryPolicy === undefined && config?.hedgingPolicy !== undefined && (kind === "unary" || kind === "server_streaming")) {
      this.hedging = config.hedgingPolicy;
      this.hedges = new Set();
    }
    let deadline = options.deadline;
    const timeoutMs = options.timeoutMs ?? config?.timeoutMs;
    if (timeoutMs !== undefined) {
      const d = Date.now() + timeoutMs;
      deadline = deadline === undefined ? d : Math.min(deadline, d);
    }
    this.deadline = deadline;
    const compression = options.compression ?? channel.options.compression;
    const idle = options.idleTimeoutMs !== undefined && options.idleTimeoutMs > 0;
    try {
      this.baseHeaders = callHeaders(channel, this.method, this.codec, metadata, compression, idle ? options.idleTimeoutMs : undefined);
    } catch (e) {
      this.finish(RpcError.from(e, Code.Internal));
      return this.responses;
    }
    if (compression !== "identity") {
      const { compressions } = channel.options;
      this.requestCompression = compressions.get(compression);
      if (this.requestCompression === undefined) {
        this.finish(new RpcError(Code.Internal, `unknown compression "${compression}" (known: ${[...compressions.keys()].join(", ")})`));
        return this.responses;
      }
    }
    if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.finish(new RpcError(Code.DeadlineExceeded, "deadline exceeded before the call started"));
        return this.responses;
      }
      const started = Date.now();
      // Chained past setTimeout's 24.8-day limit: a longer deadline must not fire at once.
      this.timer = startTimer(remaining, () => this.cancel(this.deadlineError(Date.now() - started)), true);
    }
    options.signal?.addEventListener("abort", this.onAbort, { once: true });
    if (idle) {
      this.idle = new IdleTimer(options.idleTimeoutMs!, (reason) => this.cancel(reason));
    }

    if ("single" in requests) {
      const frame = this.encodeRequest(requests.single);
      if (frame === undefined) return this.responses;
      if (frame instanceof Promise) {
        // A large compressed request: compressed off the event loop before the first attempt.
        frame.then((f) => {
          if (this.done) return;
          this.replay = [f];
          this.requestsEnded = true;
          this.nextAttempt();
        }, (e: unknown) => this.cancel(RpcError.from(e, Code.Internal)));
        return this.responses;
      }
      this.replay = [frame];
      this.requestsEnded = true;
    } else {
      this.requestIterator = requests.stream[Symbol.asyncIterator]();
    }
    this.nextAttempt();
    if (!this.done && this.requestIterator !== undefined) void this.pump();
    return this.responses;
  }

  /** Picks a subchannel and starts an attempt on it; waits for one while connecting. */
  private nextAttempt(): void {
    let picked: ClientTransport | Promise<ClientTransport>;
    try {
      picked = this.channel.pick(this.waitForReady, this.pickSignal);
    } catch (e) {
      this.finish(RpcError.from(e, Code.Unavailable));
      return;
    }
    if (picked instanceof Promise) {
      picked.then(
        (s) => this.begin(s),
        (e: unknown) => this.finish(RpcError.from(e, Code.Unavailable)),
      );
    } else {
      this.begin(picked);
    }
  }

  /** `transport` speaking the channel's gRPC-Web or Connect instead of gRPC. */
  private translated(transport: ClientTransport): ClientTransport {
    const options = this.channel.options;
    return webClientTransport(transport, {
      protocol: options.protocol as WebProtocol,
      codec: this.side.codec.name,
      unary: this.method.methodKind === "unary",
      maxReceiveBytes: this.side.maxReceiveBytes,
      decompress: (encoding, data) => {
        const c = options.compressions.get(encoding);
        try {
          return c?.decompress(data, maxConnectControlBytes);
        } catch {
          return undefined;
        }
      },
    });
  }

  private begin(transport: ClientTransport): void {
    if (this.done) return;
    // A hedge whose pick resolved after another attempt answered is not sent.
    if (this.hedges !== undefined && this.committed && this.attempts > 0) return;
    // node copies the headers it is given, so the first attempt of a call without a deadline can
    // pass the base headers as they are.
    let headers = this.baseHeaders;
    if (this.deadline !== undefined || this.attempts > 0) {
      headers = { ...headers };
      if (this.deadline !== undefined) headers["grpc-timeout"] = formatTimeout(Math.max(1, this.deadline - Date.now()));
      if (this.attempts > 0) headers["grpc-previous-rpc-attempts"] = String(this.attempts);
    }
    this.attempts++;
    const attempt = new Attempt(this, this.channel.options.protocol === "grpc" ? transport : this.translated(transport));
    this.current = attempt;
    if (this.hedges !== undefined && !this.committed) {
      this.hedges.add(attempt);
      this.scheduleHedge(this.hedging!.hedgingDelayMs);
    }
    if (!attempt.open(headers, !this.requestsEnded || this.replayTotal() > this.channel.options.sendHighWaterMark)) return;
    for (const frame of this.replay ?? []) attempt.write(frame);
    if (this.requestsEnded) attempt.end();
    this.wakePump();
  }

  /** Bytes of the frames kept for replay (the whole request of a single-message call). */
  private replayTotal(): number {
    const replay = this.replay;
    if (replay === undefined) return 0;
    let n = 0;
    for (const f of replay) n += f.byteLength;
    return n;
  }

  private pumpWaiter: (() => void) | undefined;

  /** Resolves when the next attempt has started, or the call ended. */
  private attemptStarted(): Promise<void> {
    return new Promise((resolve) => (this.pumpWaiter = resolve));
  }

  private wakePump(): void {
    const w = this.pumpWaiter;
    this.pumpWaiter = undefined;
    w?.();
  }

  /** Sends the request stream, one message at a time, waiting whenever HTTP/2 pushes back. */
  private async pump(): Promise<void> {
    const it = this.requestIterator!;
    try {
      for (;;) {
        const r = await it.next();
        if (this.done || this.requestIterator === undefined) return;
        if (r.done) break;
        // Once nothing is kept for replay, a plain message goes to the attempt's writer unframed:
        // it writes the header in the batch it copies the message into (one copy, not two).
        const direct = this.current;
        if (this.replay === undefined && direct !== undefined && this.requestCompression === undefined) {
          // A small one is encoded straight into the writer's batch (nothing runs in between).
          const size = sizeSmallMessage(this.side, this.method.input as DescMessage, r.value, BATCHED_BELOW);
          if (size >= 0) {
            const more = direct.writeEncoded(size, writeSizedFlatMessage);
            this.observed?.message("sent", size, false);
            this.idle?.touch();
            if (!more) await direct.writable();
            continue;
          }
          const bytes = this.serializeRequest(r.value);
          if (bytes === undefined) return;
          this.idle?.touch();
          if (!direct.writeMessage(bytes)) await direct.writable();
          continue;
        }
        let frame = this.encodeRequest(r.value);
        if (frame instanceof Promise) frame = await frame;
        if (frame === undefined || this.done) return;
        this.keepForReplay(frame);
        this.idle?.touch();
        let attempt = this.current;
        if (attempt === undefined) {
          // Between attempts (connecting, or backing off before a retry): pull no more until an
          // attempt starts. It sends the replay buffer, this message included, if there is one.
          const replayed = this.replay !== undefined;
          while (this.current === undefined && !this.done) await this.attemptStarted();
          if (replayed) continue;
          attempt = this.current;
        }
        if (attempt !== undefined && !attempt.write(frame)) await attempt.writable();
      }
      this.requestIterator = undefined;
      this.requestsEnded = true;
      this.current?.end();
    } catch (e) {
      if (this.requestIterator === undefined) return;
      this.requestIterator = undefined;
      this.cancel(e instanceof RpcError ? e : new RpcError(Code.Canceled, `the request stream failed: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
    }
  }

  private keepForReplay(frame: Uint8Array): void {
    if (this.replay === undefined) return;
    this.replay.push(frame);
    this.replayBytes += frame.byteLength;
    if (this.replayBytes > this.channel.options.retryBufferBytes) this.commit();
  }

  /** No more retries: drop the replay buffer. */
  commit(): void {
    if (this.committed) return;
    this.committed = true;
    this.replay = undefined;
    this.replayBytes = 0;
  }

  /** The server has sent its status while we may still be sending: stop the producer. */
  stopSending(): void {
    const it = this.requestIterator;
    this.requestIterator = undefined;
    if (it !== undefined) void it.return?.()?.catch?.(() => {});
  }

  pushResponse(frame: Frame): void {
    this.observed?.message("received", frame.data.byteLength, frame.compressed);
    this.commit();
    this.idle?.touch();
    if (this.responses !== undefined) this.responses.push(frame);
    else if (this.response === undefined) this.response = frame;
    else this.cancel(new RpcError(Code.Unimplemented, `${this.service}/${this.method.name}: the server sent more than one response message`));
  }

  /** An attempt ended. Decides between finishing the call and another attempt. */
  attemptEnded(attempt: Attempt, error: RpcError | undefined, info: AttemptOutcome): void {
    if (this.done) return;
    if (this.hedges !== undefined && !this.committed) {
      if (this.hedges.has(attempt)) this.hedgeEnded(attempt, error, info);
      return;
    }
    if (attempt !== this.current) return;
    const throttle = this.channel.retryThrottle;
    if (error === undefined) {
      throttle?.onSuccess();
      this.finish(undefined);
      return;
    }
    // A stream the server never processed (REFUSED_STREAM, or beyond a GOAWAY's last stream id)
    // is retried at once on another connection, without counting as an attempt (A6 transparent retry).
    if (info.refused && !this.committed && this.replay !== undefined && this.transparentRetries < 3) {
      this.transparentRetries++;
      this.attempts--;
      this.nextAttempt();
      return;
    }
    const policy = this.retryPolicy;
    const decision =
      policy === undefined || this.committed || this.replay === undefined ? undefined : decideRetry(policy, this.attempts, error.code, info.pushbackMs, throttle, Math.random);
    if (decision === undefined || !decision.retry) {
      this.finish(error, info.reset === true);
      return;
    }
    const delay = decision.delayMs;
    // A backoff that outlasts the deadline is still waited for, as grpc-go does: the call ends
    // DEADLINE_EXCEEDED at its deadline (naming the last attempt's error), not early with it.
    this.lastAttemptError = error;
    this.current = undefined;
    this.retryTimer = startTimer(
      delay,
      () => {
        this.retryTimer = undefined;
        if (!this.done) this.nextAttempt();
      },
      true,
    );
  }

  private retryTimer: LongTimer | undefined;
  /** The error of the attempt before a pending retry, named if the deadline passes first. */
  private lastAttemptError: RpcError | undefined;

  private deadlineError(elapsedMs: number): RpcError {
    const last = this.retryTimer !== undefined || this.hedging !== undefined ? this.lastAttemptError : undefined;
    const detail = last === undefined ? "" : `; the last attempt failed with ${last.message}`;
    return new RpcError(Code.DeadlineExceeded, `deadline exceeded after ${elapsedMs} ms${detail}`);
  }

  /** The frame of one request, or undefined after ending the call with the reason it cannot be sent. */
  private encodeRequest(message: unknown): Uint8Array | Promise<Uint8Array> | undefined {
    const bytes = this.serializeRequest(message);
    if (bytes === undefined) return undefined;
    if (!sendsCompressed(this.requestCompression, message)) return encodeFrame(bytes);
    const payload = sendPayload(this.requestCompression, bytes);
    return payload instanceof Promise ? payload.then((p) => encodeFrame(p, true)) : encodeFrame(payload, true);
  }

  /** The serialized request, or undefined after ending the call with the reason it cannot be sent. */
  private serializeRequest(message: unknown): Uint8Array | undefined {
    let bytes: Uint8Array;
    try {
      bytes = serializeMessage(this.side, this.method.input as DescMessage, message);
    } catch (e) {
      this.cancel(e as RpcError);
      return undefined;
    }
    this.observed?.message("sent", bytes.byteLength, false);
    return bytes;
  }

  /** Decodes a response message; a bad one ends the call (it is reported in order, after the messages before it). */
  private decodeResponse(frame: Frame): unknown {
    let value: unknown;
    try {
      value = decodeMessage(this.side, this.method.output as DescMessage, frame, this.current!.responseCompression);
    } catch (e) {
      this.cancel(e as RpcError);
      throw e;
    }
    if (!(value instanceof Promise)) return value;
    return value.catch((e: unknown) => {
      this.cancel(e as RpcError);
      throw e;
    });
  }

  /** We end the call ourselves: reset the stream and fail the responses at once, dropping those queued. */
  cancel(reason: RpcError): void {
    this.abort(reason, true);
  }

  /** The response stream broke (a frame over the limit): reset it; the reader gets the messages before the break, then `reason`. */
  failAfterQueued(reason: RpcError): void {
    this.abort(reason, false);
  }

  private abort(reason: RpcError, dropQueued: boolean): void {
    if (this.done) return;
    this.stopHedging();
    this.current?.reset();
    this.finish(reason, dropQueued);
  }

  /**
   * An attempt received response headers or data. Without hedging this commits the
   * call. With hedging the first attempt to answer wins (the others are cancelled, A6) and
   * false is returned to the losers, whose answers are dropped.
   */
  claim(attempt: Attempt): boolean {
    if (this.hedges === undefined) {
      this.commit();
      return true;
    }
    if (this.committed) return attempt === this.current;
    this.current = attempt;
    this.commit();
    this.stopHedging(attempt);
    return true;
  }

  /** The next hedge after `delayMs`, while attempts remain and throttling allows. */
  private scheduleHedge(delayMs: number): void {
    const policy = this.hedging!;
    const throttle = this.channel.retryThrottle;
    this.hedgeTimer?.cancel();
    this.hedgeTimer = undefined;
    if (this.committed || this.hedgesStopped || this.attempts >= policy.maxAttempts || (throttle !== undefined && !throttle.allowsRetry)) return;
    this.hedgeTimer = startTimer(
      delayMs,
      () => {
        this.hedgeTimer = undefined;
        if (!this.done && !this.committed) this.nextAttempt();
      },
      true,
    );
  }

  /** Cancels the hedges in flight but `keep`, and any hedge still to come. */
  private stopHedging(keep?: Attempt): void {
    this.hedgeTimer?.cancel();
    this.hedgeTimer = undefined;
    const hedges = this.hedges;
    if (hedges === undefined) return;
    for (const a of hedges) if (a !== keep) a.reset();
    hedges.clear();
  }

  /** An uncommitted hedge ended (see A6 "Hedging Policy"). */
  private hedgeEnded(attempt: Attempt, error: RpcError | undefined, info: AttemptOutcome): void {
    const hedges = this.hedges!;
    hedges.delete(attempt);
    const throttle = this.channel.retryThrottle;
    if (error === undefined) {
      // An OK status without a message (a server stream of none): this attempt answered.
      this.claim(attempt);
      throttle?.onSuccess();
      this.finish(undefined);
      return;
    }
    if (info.refused && this.transparentRetries < 3) {
      this.transparentRetries++;
      this.attempts--;
      this.nextAttempt();
      return;
    }
    const decision = decideHedge(this.hedging!, this.attempts, hedges.size, error.code, info.pushbackMs, throttle);
    if (decision.finish && !this.hedging!.nonFatalStatusCodes.has(error.code)) {
      // A fatal status ends the call with it, whatever the other hedges would have said.
      this.current = attempt;
      this.stopHedging();
      this.commit();
      this.finish(error);
      return;
    }
    this.lastAttemptError = error;
    if (decision.nextHedgeMs === undefined) {
      this.hedgesStopped = true;
      this.hedgeTimer?.cancel();
      this.hedgeTimer = undefined;
    } else {
      // A non-fatal status sends the next hedge at once (or after the server's pushback).
      this.scheduleHedge(decision.nextHedgeMs);
    }
    if (hedges.size > 0 || this.hedgeTimer !== undefined) return;
    this.commit();
    this.finish(error);
  }

  /** The call has its outcome. A reader of a stream gets the messages already queued first, unless `dropQueued`. */
  private finish(error: RpcError | undefined, dropQueued = false): void {
    if (this.done) return;
    this.done = true;
    // Both ends run the idle timer; the server's may fire a moment before ours. Its
    // DEADLINE_EXCEEDED then is our idle timeout, and the caller sees it as one.
    if (error?.code === Code.DeadlineExceeded && !(error instanceof IdleTimeoutError) && this.idle?.expired(idleSlackMs) === true) {
      error = new IdleTimeoutError(this.idle.ms, { metadata: error.metadata });
    }
    this.observed?.end(error?.code ?? Code.OK, error);
    this.commit();
    this.timer?.cancel();
    this.retryTimer?.cancel();
    this.hedgeTimer?.cancel();
    this.idle?.cancel();
    this.wakePump();
    this.pickAbort?.abort(error);
    this.stopSending();
    this.options.signal?.removeEventListener("abort", this.onAbort);
    const onTrailer = this.options.onTrailer;
    if (onTrailer !== undefined) {
      const trailers = error?.metadata ?? this.current?.trailers;
      if (trailers !== undefined) onTrailer(trailers);
    }
    if (this.responses === undefined) this.settleResult(error);
    else if (error === undefined) this.responses.end();
    else this.responses.fail(error, dropQueued);
  }

  private settleResult(error: RpcError | undefined): void {
    const { resolve, reject } = this.settle!;
    const frame = this.response;
    this.response = undefined;
    if (error !== undefined) return reject(error);
    if (frame === undefined) return reject(new RpcError(Code.Unimplemented, `${this.service}/${this.method.name}: the server sent no response message`));
    let value: unknown;
    try {
      value = decodeMessage(this.side, this.method.output as DescMessage, frame, this.current!.responseCompression);
    } catch (e) {
      return reject(e);
    }
    resolve(value);
  }

  get isDone(): boolean {
    return this.done;
  }
}

const noHeaders: StreamHeaders = Object.freeze({});

/** The channel's message rules for one codec, made once per channel and codec. */
function channelSide(channel: CallChannel, codec: Codec): MessageSide {
  let byCodec = channelSides.get(channel);
  if (byCodec === undefined) channelSides.set(channel, (byCodec = new Map()));
  let side = byCodec.get(codec);
  if (side === undefined) {
    side = {
      codec,
      sends: "request",
      receives: "response",
      maxSendBytes: channel.options.maxSendMessageBytes,
      sendLimitName: "the channel's maxSendMessageBytes",
      maxReceiveBytes: channel.options.maxReceiveMessageBytes,
      receiveLimitName: "the channel's maxReceiveMessageBytes",
    };
    byCodec.set(codec, side);
  }
  return side;
}
const channelSides = new WeakMap<CallChannel, Map<Codec, MessageSide>>();

/** How close to its idle timeout a call counts as idle when the server's timer beats ours. */
const idleSlackMs = 25;

function abortReason(signal: AbortSignal | undefined): RpcError {
  const reason: unknown = signal?.reason;
  if (reason instanceof RpcError) return reason;
  return new RpcError(Code.Canceled, "the call was cancelled by the caller", { cause: reason });
}
