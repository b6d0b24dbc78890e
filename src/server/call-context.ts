import type { DescMethod } from "@bufbuild/protobuf";
import type { Code } from "../protocol/code.js";
import type { Metadata } from "../protocol/metadata.js";
import type { Pushable } from "../stream/pushable.js";
import type { HandlerContext, Protocol } from "../handler-context.js";
import type { TlsPeer } from "../transport/tls-peer.js";

/**
 * The `ctx` a handler (and a server interceptor) receives: what HandlerContext promises and
 * nothing else. The call itself stays out of reach (a true `#private` field), so a handler cannot
 * end the call past its status rules (`fail`, `cancel`) or feed it data (`onData`) by mistake or
 * by a cast.
 *
 * It forwards to the call (which has every member HandlerContext names) rather than owning the
 * state, because the call's reader, writer and life read that state too: response metadata goes
 * out with the headers and the status, the signal aborts when the call ends. One object of two
 * fields per call; with the request reader dropped once the one request is in, an idle server
 * stream costs 3,022 B of heap against 3,046 B when the call was its own ctx
 * (`npm run bench -- --quick --only raw,rill --scenarios idle-streams`, rill row).
 */
/** The call a context forwards to: its HandlerContext, and where a refused `trySend` is counted. */
export interface CallBehind extends HandlerContext {
  trySendRefused(): void;
}

export class CallContext implements HandlerContext {
  readonly #call: CallBehind;
  /** Where `send`, `trySend` and `writable` go instead of the call (see `pushingTo`). */
  readonly #pushed: Pushable<unknown> | undefined;

  constructor(call: CallBehind, pushed?: Pushable<unknown>) {
    this.#call = call;
    this.#pushed = pushed;
  }

  /**
   * The same call's context whose pushed messages go to `pushed`: server interceptors see a
   * push-style handler's responses as a stream they can wrap.
   */
  pushingTo(pushed: Pushable<unknown>): CallContext {
    return new CallContext(this.#call, pushed);
  }

  get signal(): AbortSignal {
    return this.#call.signal;
  }
  get closed(): Promise<void> {
    return this.#call.closed;
  }
  get deadline(): number | undefined {
    return this.#call.deadline;
  }
  get requestMetadata(): Metadata {
    return this.#call.requestMetadata;
  }
  get peer(): string {
    return this.#call.peer;
  }
  get tls(): TlsPeer | undefined {
    return this.#call.tls;
  }
  get method(): DescMethod {
    return this.#call.method;
  }
  get protocol(): Protocol {
    return this.#call.protocol;
  }
  get responseHeader(): Metadata {
    return this.#call.responseHeader;
  }
  get responseTrailer(): Metadata {
    return this.#call.responseTrailer;
  }
  get lastRequestCompressed(): boolean {
    return this.#call.lastRequestCompressed;
  }
  get bufferedBytes(): number {
    return this.#call.bufferedBytes;
  }
  sendHeader(): void {
    this.#call.sendHeader();
  }
  setResponseCompression(name: string): void {
    this.#call.setResponseCompression(name);
  }
  send(message: unknown): Promise<void> {
    return this.#pushed === undefined ? this.#call.send(message) : this.#pushed.push(message);
  }
  trySend(message: unknown): boolean {
    if (this.#pushed === undefined) return this.#call.trySend(message);
    // Through interceptors the refusal is the pushable's; the server's stats count it all the same.
    const taken = this.#pushed.tryPush(message);
    if (!taken) this.#call.trySendRefused();
    return taken;
  }
  writable(): Promise<void> {
    return this.#pushed === undefined ? this.#call.writable() : this.#pushed.writable();
  }
  resetStream(code: Code.ResourceExhausted | Code.Canceled): void {
    this.#call.resetStream(code);
  }
}
