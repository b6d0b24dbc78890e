/**
 * Observers: hooks a call invokes itself as it starts, moves messages and ends, for metrics and
 * tracing. Beside interceptors, not instead of them: an interceptor may change a call (its
 * metadata, its messages, its outcome), so it wraps the call's iterables and copies its request;
 * an observer only watches, so the call tells it what happens from the code that does it (the one
 * message path, the one place a call ends) with no iterator layer, no copy and no read per side.
 *
 * What a call costs:
 * - with no observers, nothing: the call holds one empty field;
 * - with observers, one `CallObservations` per call (a few fields), whatever each observer's
 *   `start` returns, and per message one call of each `onMessage` (counters are kept here).
 *
 * Order: observers start, see messages and end in the order they are listed. On the server the
 * first one's `run` is the outermost.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import type { Protocol } from "./handler-context.js";
import type { Peer } from "./interceptor.js";
import type { Logger } from "./logger.js";
import { Code } from "./protocol/code.js";
import type { RpcError } from "./protocol/errors.js";
import type { Metadata } from "./protocol/metadata.js";

/** A call as an observer sees it when it starts. Read it during `start`; it is not kept by the call. */
export interface ObservedCall {
  /** "client" on a channel, "server" on a server. */
  readonly side: "client" | "server";
  /** The method descriptor (its `parent` is the service). */
  readonly method: DescMethod;
  /** The HTTP/2 path, "/package.Service/Method". */
  readonly path: string;
  /** The wire protocol: on the server the one the client used, on the client the channel's. */
  readonly protocol: Protocol;
  /** Client only: the channel's `:authority` ("host:port"), the server the call is addressed to. */
  readonly authority: string | undefined;
  /** Server only: who called. */
  readonly peer: Peer | undefined;
  /**
   * The request metadata. On the client it may be changed during `start` (the headers are sent
   * after every observer started; tracing adds `traceparent` here); the caller's own metadata
   * object is not modified. Made on first access: an observer that does not read it costs nothing.
   */
  readonly metadata: Metadata;
}

/** How a call ended, given to `onEnd` once. */
export interface ObservedOutcome {
  /** The status: OK, or the error's code (CANCELLED when the caller stopped reading or cancelled). */
  readonly code: Code;
  /** The error when the call did not end OK. */
  readonly error: RpcError | undefined;
  /**
   * From the start of the observation to the end: on the server until the status was written (or
   * the call was cancelled), on the client until the status arrived (or the call was cancelled).
   */
  readonly durationMs: number;
  /** Messages this side sent (the client's requests, the server's responses). */
  readonly sent: number;
  /** Messages this side received. */
  readonly received: number;
}

/** What an observer keeps of one call. Every member is optional. */
export interface CallObservation {
  /**
   * A message was sent or received. `bytes` is its serialized size before compression; for a
   * received message that arrived compressed (`compressed` true) it is the compressed size (the
   * call decompresses later, when the message is read). Sent messages are reported once per call,
   * not per retry attempt.
   */
  onMessage?(direction: "sent" | "received", bytes: number, compressed: boolean): void;
  /** The call ended; called exactly once. */
  onEnd?(outcome: ObservedOutcome): void;
  /**
   * Server only: runs the call (the handler and the pulling of its responses) inside `fn`, e.g.
   * in the span's OpenTelemetry context, so that what the handler does (a nested client call)
   * sees it. Must call `fn` once, synchronously, and return what it returns.
   */
  run?<T>(fn: () => T): T;
}

/**
 * Watches calls: `createServer({ observers })`, `createChannel(target, { observers })`. `start`
 * runs when a call starts (on the server for known methods only, after routing) and returns what
 * it keeps of the call, or undefined to ignore it. It must not throw (a throw is logged and the
 * observer ignores that call).
 */
export interface CallObserver {
  start(call: ObservedCall): CallObservation | undefined;
}

/**
 * @internal The observations of one call: the counters, the start time, and each observer's
 * `CallObservation`. One object per observed call (a class, not closures: an idle stream keeps it).
 */
export class CallObservations {
  private sent = 0;
  private received = 0;
  private ended = false;
  private readonly t0 = performance.now();

  private constructor(
    /** The first observation (most calls have one observer). */
    private readonly first: CallObservation,
    /** The others, in order, when several observers returned one. */
    private readonly rest: CallObservation[] | undefined,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts `observers` on `call`: undefined when none returned an observation (then the call
   * holds nothing and reports nothing).
   */
  static start(observers: readonly CallObserver[], call: ObservedCall, logger: Logger): CallObservations | undefined {
    let first: CallObservation | undefined;
    let rest: CallObservation[] | undefined;
    for (const o of observers) {
      let obs: CallObservation | undefined;
      try {
        obs = o.start(call);
      } catch (e) {
        logger.error(`${call.path}: a call observer failed to start`, e);
        continue;
      }
      if (obs === undefined) continue;
      if (first === undefined) first = obs;
      else (rest ??= []).push(obs);
    }
    return first === undefined ? undefined : new CallObservations(first, rest, logger);
  }

  message(direction: "sent" | "received", bytes: number, compressed: boolean): void {
    if (this.ended) return;
    if (direction === "sent") this.sent++;
    else this.received++;
    try {
      this.first.onMessage?.(direction, bytes, compressed);
      if (this.rest !== undefined) for (const o of this.rest) o.onMessage?.(direction, bytes, compressed);
    } catch (e) {
      this.logger.error("a call observer's onMessage failed", e);
    }
  }

  /** The call ended with `code` (and `error` unless OK). Reports once; later calls do nothing. */
  end(code: Code, error: RpcError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const outcome: ObservedOutcome = { code, error: code === Code.OK ? undefined : error, durationMs: performance.now() - this.t0, sent: this.sent, received: this.received };
    this.endOne(this.first, outcome);
    if (this.rest !== undefined) for (const o of this.rest) this.endOne(o, outcome);
  }

  private endOne(o: CallObservation, outcome: ObservedOutcome): void {
    try {
      o.onEnd?.(outcome);
    } catch (e) {
      this.logger.error("a call observer's onEnd failed", e);
    }
  }

  /** Runs `fn` inside every observation's `run`, the first outermost (server). */
  run<T>(fn: () => T): T {
    const rest = this.rest;
    if (rest === undefined) return this.first.run === undefined ? fn() : this.first.run(fn);
    // Usually one observation has a `run` (tracing's context) and the others only count (metrics):
    // then no array and no closure per call, just that one.
    let runner = this.first.run === undefined ? undefined : this.first;
    for (const o of rest) {
      if (o.run === undefined) continue;
      if (runner !== undefined) return this.nested(fn);
      runner = o;
    }
    return runner === undefined ? fn() : runner.run!(fn);
  }

  /** Several observations with a `run`: each inside the one before it. */
  private nested<T>(fn: () => T): T {
    const all = [this.first, ...this.rest!];
    const at = (i: number): T => {
      if (i === all.length) return fn();
      const o = all[i]!;
      return o.run === undefined ? at(i + 1) : o.run(() => at(i + 1));
    };
    return at(0);
  }
}
