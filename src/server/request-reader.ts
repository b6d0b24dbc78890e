import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import type { Compression } from "../codec/compression.js";
import { decodeMessage, receiveLimitError, type MessageSide } from "../codec/message-codec.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { FrameDecoder, type Frame } from "../protocol/frame.js";
import { MessageQueue, type QueueSource } from "../stream/message-queue.js";
import type { IdleTimer } from "../stream/idle-timer.js";
import type { ServerCallStream } from "../transport/call-stream.js";
import type { ConnectionBudget } from "./memory-budget.js";
import type { CallObservations } from "../observer.js";

/** What the reader tells its connection (the part of the call's hooks it uses). */
export interface ReaderHooks {
  /** The call read `bytes` of DATA (the connection's window tuner, when it probes). */
  readonly onData?: ((bytes: number) => void) | undefined;
  /** The connection's memory budget, which the call's buffered requests and responses count against. */
  readonly budget?: ConnectionBudget | undefined;
}

/** What the reader needs of its call. */
export interface RequestReaderHost {
  readonly isDone: boolean;
  /** Reset by every request message that arrives. */
  readonly idle: IdleTimer | undefined;
  /** Whether the request message read last arrived compressed (its frame's flag was set). */
  lastRequestCompressed: boolean;
  /** The call's observers, told of each request message as its frame arrives. */
  readonly observed: CallObservations | undefined;
  /** A request broke the rules (size, framing): the call ends with `error`. */
  fail(error: RpcError): void;
  /**
   * The one request of a unary or server-streaming call (or its error) was handed over: this
   * reader holds nothing any more, and the call may drop it.
   */
  requestTaken(): void;
}

/**
 * The request side of a server call: decodes the DATA of its stream into messages within the
 * receive limit, holds them for the handler, and pauses reading while the handler is behind (the
 * queue's high-water mark) or the connection is over its memory budget.
 *
 * Client- and bidi-streaming calls read their requests through a queue (`requests`). Unary and
 * server-streaming calls keep their one request frame and hand it over (`single()`) when the
 * request stream ends: one promise per call instead of a queue, two reads and an async frame.
 */
export class RequestReader implements QueueSource {
  /** The requests of a client- or bidi-streaming call. */
  readonly requests: MessageQueue<unknown> | undefined;
  private onlyRequest: Frame | undefined;
  /** Who waits for that request (`single()`), or how it settled before anyone asked (one field: an open call's size counts). */
  private request: RequestWaiter | { value?: unknown; error?: unknown } | undefined;
  // Released once a unary or server-streaming call has its one request: an open server stream
  // then holds no request-side state.
  private decoder: FrameDecoder | undefined;
  /** Request bytes this call counts against the connection's budget (partial + unread messages). */
  private held = 0;
  /** Reading is paused until the connection's budget admits more. */
  private budgetPaused = false;
  /** Reading is paused by the request queue's high-water mark. */
  private queuePaused = false;

  constructor(
    private readonly call: RequestReaderHost,
    private readonly stream: ServerCallStream,
    private readonly method: DescMethod,
    private readonly side: MessageSide,
    /** The request's grpc-encoding; undefined for identity. */
    private readonly compression: Compression | undefined,
    highWaterMark: number,
    private readonly hooks: ReaderHooks,
  ) {
    this.decoder = new FrameDecoder(side.maxReceiveBytes);
    const kind = method.methodKind;
    if (kind === "client_streaming" || kind === "bidi_streaming") {
      this.requests = new MessageQueue<unknown>((frame: Frame) => this.decodeRequest(frame), this, highWaterMark);
    }
  }

  /** Whether the handler took every request message queued for it. */
  get drained(): boolean {
    return this.requests?.drained ?? true;
  }

  /** The call ended: requests not yet taken fail with `reason` at once, and the budget gets back what they held. */
  cancel(reason: RpcError): void {
    if (this.requests !== undefined) this.requests.fail(reason, true);
    else this.settleRequest(reason);
  }

  /** Gives the connection's budget back what this call still counts against it. */
  release(): void {
    if (this.held > 0) {
      this.hooks.budget?.release(this.held);
      this.held = 0;
    }
  }

  /** A chunk of the request body arrived. */
  onData(chunk: Buffer): void {
    this.hooks.onData?.(chunk.byteLength);
    const decoder = this.decoder;
    if (decoder === undefined) return;
    let n: number;
    try {
      n = decoder.pushTo(chunk, this);
    } catch (e) {
      const err = receiveLimitError(this.side, RpcError.from(e, Code.Internal));
      if (this.requests !== undefined) this.requests.fail(err);
      else this.settleRequest(err);
      this.call.fail(err);
      return;
    }
    if (n > 0) this.call.idle?.touch();
    if (this.hooks.budget !== undefined) this.account();
  }

  /** @internal A request message the decoder completed (FrameReceiver). */
  onFrame(frame: Frame): void {
    this.call.observed?.message("received", frame.data.byteLength, frame.compressed);
    if (this.requests !== undefined) {
      this.requests.push(frame);
    } else if (this.decoder === undefined) {
      // Settled by a second request earlier in the same chunk: the rest of it is dropped.
    } else if (this.onlyRequest === undefined) {
      this.onlyRequest = frame;
    } else {
      this.settleRequest(new RpcError(Code.Internal, `/${this.method.parent.typeName}/${this.method.name} expects one request message, the client sent more`));
    }
  }

  /**
   * Brings the bytes this call counts against its connection's budget up to date, and pauses
   * reading while the connection is over budget. A call holding only a message in progress reads
   * it to its end (it is bounded by maxReceiveMessageBytes), so calls waiting on each other's
   * partial messages can never wedge a connection.
   */
  private account(): void {
    const budget = this.hooks.budget;
    if (budget === undefined) return;
    const decoder = this.decoder;
    const complete = (this.requests?.bufferedBytes ?? 0) + (this.onlyRequest === undefined ? 0 : this.onlyRequest.data.byteLength);
    const now = this.call.isDone || decoder === undefined ? 0 : decoder.bufferedBytes + complete;
    const delta = now - this.held;
    this.held = now;
    if (delta > 0) budget.add(delta);
    else if (delta < 0) budget.release(-delta);
    // Mid-message only when the call also holds a whole message its handler has yet to take:
    // taking it releases bytes, so this pause cannot wait on another call's partial message.
    if (now > 0 && !this.budgetPaused && (!decoder!.partial || complete > 0) && budget.over) {
      this.budgetPaused = true;
      this.stream.pause();
      budget.whenAdmits(0, () => {
        this.budgetPaused = false;
        if (!this.call.isDone && !this.queuePaused) this.stream.resume();
      });
    }
  }

  // QueueSource of the request queue (the reader itself: no object per call for it). The queue's
  // own backpressure (its high-water mark) pauses reading as the connection's budget does.
  pause(): void {
    this.queuePaused = true;
    this.stream.pause();
  }

  resume(): void {
    this.queuePaused = false;
    if (!this.budgetPaused) this.stream.resume();
  }

  consumed(): void {
    this.account();
  }

  abandon(): void {}

  /** The client ended its request stream. */
  onEnd(): void {
    const kind = this.method.methodKind;
    if (kind === "unary" || kind === "server_streaming") return this.endRequests();
    // node clients (grpc-js among them) cancel with END_STREAM and then RST_STREAM(CANCEL) in a
    // separate write. Holding the end of a request stream for two event-loop turns lets such a
    // reset arrive first, so the handler sees a cancellation instead of a clean end of input.
    setImmediate(() => setImmediate(() => this.endRequests()));
  }

  private endRequests(): void {
    if (this.decoder?.partial === true) {
      const err = new RpcError(Code.Internal, "request stream ended in the middle of a message");
      if (this.requests !== undefined) this.requests.fail(err);
      else this.settleRequest(err);
      this.call.fail(err);
    } else if (this.requests !== undefined) {
      this.requests.end();
    } else if (this.decoder !== undefined) {
      const frame = this.onlyRequest;
      this.settleRequest(frame === undefined ? new RpcError(Code.Internal, `/${this.method.parent.typeName}/${this.method.name} expects one request message, the client sent none`) : undefined, frame);
    }
  }

  /**
   * Hands the one request of a unary or server-streaming call to `single()` (or its error), once;
   * from then on the call holds no request-side state and ignores further data.
   */
  private settleRequest(error: unknown, frame?: Frame): void {
    if (this.decoder === undefined) return;
    this.decoder = undefined;
    this.onlyRequest = undefined;
    if (this.held > 0) this.account();
    const w = this.request !== undefined && "resolve" in this.request ? this.request : undefined;
    this.request = undefined;
    if (error === undefined) {
      let value: unknown;
      try {
        value = this.decodeRequest(frame!);
      } catch (e) {
        error = e;
      }
      if (value instanceof Promise) {
        // Decompressed off the event loop: delivered (or failed) when ready.
        value.then(
          (v: unknown) => this.deliverRequest(w, undefined, v),
          (e: unknown) => this.deliverRequest(w, e),
        );
        return;
      }
      if (error === undefined) return this.deliverRequest(w, undefined, value);
    }
    this.deliverRequest(w, error);
  }

  private deliverRequest(w: RequestWaiter | undefined, error: unknown, value?: unknown): void {
    // Whoever asked while the request was being decompressed off the event loop takes it too.
    const waiter = w ?? (this.request !== undefined && "resolve" in this.request ? this.request : undefined);
    if (waiter === undefined) {
      // Nobody asked yet: kept as a value, for single().
      if (this.request === undefined) this.request = error === undefined ? { value } : { error };
      return;
    }
    this.request = undefined;
    if (error === undefined) waiter.resolve(value);
    else waiter.reject(error);
    this.call.requestTaken();
  }

  /** The one request of a unary or server-streaming call, once the client ended its request stream. */
  single(): Promise<unknown> {
    // Settled early, it is kept as a value: a rejected promise nobody awaits yet would be reported as unhandled.
    const settled = this.request;
    if (settled !== undefined && !("resolve" in settled)) {
      this.request = undefined;
      this.call.requestTaken();
      return "error" in settled ? Promise.reject(settled.error) : Promise.resolve(settled.value);
    }
    return new Promise((resolve, reject) => (this.request = { resolve, reject }));
  }

  private decodeRequest(frame: Frame): unknown {
    this.call.lastRequestCompressed = frame.compressed;
    return decodeMessage(this.side, this.method.input as DescMessage, frame, this.compression);
  }
}

interface RequestWaiter {
  resolve(value: unknown): void;
  reject(e: unknown): void;
}
