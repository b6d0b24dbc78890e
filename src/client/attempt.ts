import type { CallChannel } from "../channel/channel.js";
import type { Compression } from "../codec/compression.js";
import { receiveLimitError, type MessageSide } from "../codec/message-codec.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { FRAME_HEADER_LENGTH, FrameDecoder, encodeFrame, putHeader, type Frame } from "../protocol/frame.js";
import { parseContentType } from "../protocol/headers.js";
import { Metadata, metadataFromHeaders } from "../protocol/metadata.js";
import { httpStatusToCode, parseStatus, rstCodeToCode, type Status } from "../protocol/status.js";
import { decodeStatusDetails } from "../protocol/status-details.js";
import { FrameWriter } from "../stream/frame-writer.js";
import { ResetCode, type ClientCallStream, type ClientTransport, type DataObserver, type IncomingStreamHeaders, type StreamHeaders } from "../transport/call-stream.js";
import type { CallOptions } from "./call-options.js";

/** How an attempt ended, beyond its error: what the retry decision needs. */
export interface AttemptOutcome {
  /** The server never processed the stream (REFUSED_STREAM, or beyond a GOAWAY's last stream id). */
  readonly refused: boolean;
  /** `grpc-retry-pushback-ms`: a delay to use, -1 for "do not retry", undefined when absent. */
  readonly pushbackMs: number | undefined;
  /**
   * The server reset the stream with an error code instead of sending a status: the responses
   * it had sent and we have not handed out are dropped (node drops its own buffer on an RST),
   * so the reader learns at once, not after reading what a server far ahead had buffered.
   */
  readonly reset?: boolean;
}

/**
 * What an attempt needs of the call it belongs to: the call decides (commit, hedging winner,
 * retry), the attempt only reads its stream and reports.
 */
export interface AttemptHost {
  readonly channel: Pick<CallChannel, "target" | "options">;
  readonly options: Pick<CallOptions, "onHeader">;
  /** How messages are limited and decoded for this call. */
  readonly side: MessageSide;
  readonly isDone: boolean;
  /** The attempt received headers or data: true if it is (or now becomes) the one the call listens to. */
  claim(attempt: Attempt): boolean;
  pushResponse(frame: Frame): void;
  /** The server has its status: stop producing requests. */
  stopSending(): void;
  /** The response stream broke: end the call with `reason` after the messages already queued. */
  failAfterQueued(reason: RpcError): void;
  attemptEnded(attempt: Attempt, error: RpcError | undefined, outcome: AttemptOutcome): void;
}

/** One HTTP/2 stream of a call. Reports its outcome to the call once, when the stream closes. */
export class Attempt {
  stream: ClientCallStream | undefined;
  // The trailers as received; a call that ends OK rarely reads them as Metadata, so that is made on first use.
  private trailerHeaders: IncomingStreamHeaders | undefined;
  private trailerMetadata: Metadata | undefined;

  get trailers(): Metadata | undefined {
    if (this.trailerMetadata === undefined && this.trailerHeaders !== undefined) this.trailerMetadata = metadataFromHeaders(this.trailerHeaders);
    return this.trailerMetadata;
  }
  /** Told of every DATA chunk read (BDP probing); called from our own listener, not a second one. */
  private tuner: DataObserver | undefined;
  // Only a call still sending requests needs the signal to reset its stream (see reset()); node's
  // abort listener per stream was ~10% of a unary client's time.
  private resetter: AbortController | undefined;
  private readonly decoder: FrameDecoder;
  private writer: FrameWriter | undefined;
  private status: Status | undefined;
  private httpError: RpcError | undefined;
  /** @internal The stream's first error, if any. */
  streamError: Error | undefined;
  private responded = false;
  /** @internal The response's grpc-encoding, once its headers are in. */
  responseCompression: Compression | undefined;
  private ended = false;

  constructor(
    private readonly call: AttemptHost,
    private readonly transport: ClientTransport,
  ) {
    this.decoder = new FrameDecoder(call.side.maxReceiveBytes);
  }

  /**
   * Opens the stream; false when that failed and the outcome was already reported. `paced`: the
   * requests go through a FrameWriter (a stream, or one message above the send high-water mark)
   * rather than straight to the stream.
   */
  open(headers: StreamHeaders, paced: boolean): boolean {
    let stream: ClientCallStream;
    try {
      stream = this.transport.openStream(headers, paced ? (this.resetter = new AbortController()).signal : undefined);
    } catch (e) {
      // The subchannel lost its session between pick and open: the server never saw this stream.
      this.call.attemptEnded(this, RpcError.from(e, Code.Unavailable, `cannot start a call on ${this.call.channel.target}: ${(e as Error).message}`), {
        refused: true,
        pushbackMs: undefined,
      });
      return false;
    }
    this.stream = stream;
    this.tuner = this.transport.dataObserver(stream);
    // A call whose small requests are all in hand writes them straight to the stream: nothing to
    // pace. A large one goes through the writer: node would hold it all in the session's memory.
    if (paced) this.writer = new FrameWriter(stream, this.call.channel.options.sendHighWaterMark);
    // Shared listener functions that find the attempt on the stream: no closures per call.
    (stream as AttemptStream)[kAttempt] = this;
    stream.on("response", onAttemptResponse);
    stream.on("data", onAttemptData);
    stream.on("trailers", onAttemptTrailers);
    stream.on("error", onAttemptError);
    stream.on("aborted", onAttemptAborted);
    stream.on("close", onAttemptClose);
    return true;
  }

  write(frame: Uint8Array): boolean {
    if (this.writer !== undefined) return this.writer.write(frame);
    const s = this.stream;
    if (s !== undefined && !s.destroyed && !s.writableEnded) s.write(frame);
    return true;
  }

  /** Frames and writes an uncompressed message (`write(encodeFrame(payload))` without the copy). */
  writeMessage(payload: Uint8Array): boolean {
    if (this.writer !== undefined) return this.writer.writeMessage(payload);
    return this.write(encodeFrame(payload));
  }

  /** Writes an uncompressed message that `encode` writes in place (see FrameWriter.writeEncoded). */
  writeEncoded(size: number, encode: (out: Buffer, pos: number) => number): boolean {
    if (this.writer !== undefined) return this.writer.writeEncoded(size, encode);
    const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + size);
    encode(frame, putHeader(frame, 0, size, false));
    return this.write(frame);
  }

  writable(): Promise<void> {
    return this.writer === undefined ? Promise.resolve() : this.writer.writable();
  }

  end(): void {
    if (this.writer !== undefined) this.writer.close(() => this.endStream());
    else this.endStream();
  }

  private endStream(): void {
    const s = this.stream;
    if (s !== undefined && !s.destroyed && !s.writableEnded) s.end();
  }

  reset(): void {
    this.writer?.abort();
    const stream = this.stream;
    if (stream === undefined || stream.destroyed) return;
    // A bare RST_STREAM(CANCEL): aborting the request's signal destroys the stream with node's
    // AbortError. stream.close() would first end our side, which a server reads as a clean
    // half-close; that is harmless only once the requests were all sent (END_STREAM is out).
    if (this.resetter !== undefined) this.resetter.abort();
    else stream.close(ResetCode.Cancel);
  }

  /** @internal */
  onResponse(headers: IncomingStreamHeaders): void {
    this.responded = true;
    const httpStatus = Number(headers[":status"]);
    const status = parseStatus(headers);
    if (status !== undefined) {
      // Trailers-only: the whole response is this one header block (and does not commit).
      this.status = status;
      this.trailerHeaders = headers;
      this.call.stopSending();
      // Answered early: feed no more of the request to a stream the server has finished with.
      this.writer?.abort();
      return;
    }
    if (httpStatus !== 200) {
      this.httpError = new RpcError(
        httpStatusToCode(httpStatus),
        `the server answered HTTP ${httpStatus} instead of gRPC (is ${this.call.channel.target} a gRPC server?)`,
      );
      return;
    }
    if (parseContentType(headers["content-type"] as string | undefined) === undefined) {
      this.httpError = new RpcError(Code.Unknown, `the server answered with content-type "${headers["content-type"] ?? ""}", not gRPC`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (typeof encoding === "string" && encoding !== "identity") {
      this.responseCompression = this.call.channel.options.compressions.get(encoding);
      if (this.responseCompression === undefined) {
        this.httpError = new RpcError(Code.Internal, `the server compressed with "${encoding}", which this channel does not support`);
        return;
      }
    }
    if (!this.call.claim(this)) return;
    this.call.options.onHeader?.(metadataFromHeaders(headers));
  }

  /** @internal */
  onData(chunk: Buffer): void {
    this.tuner?.dataTaken(chunk.byteLength);
    if (this.call.isDone || this.httpError !== undefined || !this.call.claim(this)) return;
    try {
      this.decoder.pushTo(chunk, this);
    } catch (e) {
      // Framing errors (poisoned decoder); the responses before the bad one are queued already.
      this.call.failAfterQueued(receiveLimitError(this.call.side, RpcError.from(e, Code.Internal)));
    }
  }

  /** @internal A response message the decoder completed (FrameReceiver). */
  onFrame(frame: Frame): void {
    this.call.pushResponse(frame);
  }

  /** @internal */
  onTrailers(headers: IncomingStreamHeaders): void {
    this.trailerHeaders = headers;
    this.status = parseStatus(headers) ?? { code: Code.Internal, message: "the server's trailers carry no grpc-status" };
    // Node keeps a stream open until both sides end: end ours now that the server is done.
    this.call.stopSending();
    this.writer?.abort();
    const stream = this.stream;
    if (stream === undefined || stream.writableEnded || stream.destroyed) return;
    if (stream.writableLength === 0) return stream.close(ResetCode.NoError);
    // Writes are still queued behind flow control (a server that answered a client stream
    // early): on Node 20, close() of such a stream spins the process at 100% CPU inside
    // node:http2; destroy() (RST_STREAM NO_ERROR as well) does not. destroy() also drops
    // responses the reader has not taken yet, so with any left it waits for the readable end.
    if (stream.readableLength === 0) stream.destroy();
    else stream.once("end", () => stream.destroy());
  }

  /** @internal */
  onClose(): void {
    if (this.ended) return;
    this.ended = true;
    this.writer?.abort();
    const stream = this.stream!;
    let error: RpcError | undefined;
    let refused = false;
    let reset = false;
    if (this.httpError !== undefined) {
      error = this.httpError;
    } else if (this.status !== undefined) {
      if (this.status.code !== Code.OK) {
        const trailers = this.trailers ?? new Metadata();
        error = new RpcError(this.status.code, this.status.message, { metadata: trailers, details: decodeStatusDetails(trailers, this.status.code) });
      } else if (this.decoder.partial) {
        error = new RpcError(Code.Internal, "the response stream ended in the middle of a message");
      }
    } else if (
      stream.rstCode === ResetCode.RefusedStream ||
      (!this.responded && this.transport.unprocessed(stream, this.streamError))
    ) {
      refused = true;
      error = new RpcError(Code.Unavailable, `${this.call.channel.target} refused the stream (it is going away)`);
    } else if (!this.responded && this.streamError !== undefined) {
      error = this.connectionFailure(this.streamError);
    } else if (this.transport.connectionLost(stream)) {
      // The connection died under the stream (socket closed, GOAWAY with error, server killed).
      const reason = this.transport.endReason(stream);
      error = new RpcError(Code.Unavailable, `lost the connection to ${this.call.channel.target} before the call finished${reason === undefined ? "" : `: ${reason.message}`}`, {
        cause: reason ?? this.streamError,
      });
    } else if (stream.rstCode !== undefined && stream.rstCode !== ResetCode.NoError) {
      reset = true;
      error = new RpcError(rstCodeToCode(stream.rstCode), resetMessage(stream.rstCode));
    } else {
      error = new RpcError(Code.Internal, "the server closed the stream without sending a status");
    }
    this.call.attemptEnded(this, error, error === undefined ? cleanEnd : { refused, pushbackMs: this.pushback(), reset });
  }

  /** See AttemptOutcome.pushbackMs. */
  private pushback(): number | undefined {
    const raw = this.trailerHeaders?.["grpc-retry-pushback-ms"];
    if (raw === undefined) return undefined;
    const v = Array.isArray(raw) ? raw[0] : raw;
    return typeof v === "string" && /^\d+$/.test(v) ? Number(v) : -1;
  }

  private connectionFailure(e: Error): RpcError {
    const cause = this.transport.explain(this.transport.endReason(this.stream!) ?? this.transport.lastError ?? e);
    return new RpcError(Code.Unavailable, `connection to ${this.call.channel.target} failed: ${cause.message}`, { cause });
  }
}

const cleanEnd: AttemptOutcome = { refused: false, pushbackMs: undefined };

/** What a server's RST_STREAM without a status tells the caller. */
function resetMessage(rstCode: number): string {
  if (rstCode === ResetCode.EnhanceYourCalm) {
    return "the server reset the stream with ENHANCE_YOUR_CALM (HTTP/2 error code 11): it would not buffer more for this call, typically because the client read its responses too slowly; read faster, or resume from the last response handled";
  }
  if (rstCode === ResetCode.Cancel) return "the server cancelled the stream (RST_STREAM CANCEL, HTTP/2 error code 8)";
  return `the server reset the stream (HTTP/2 error code ${rstCode})`;
}

/** Where a stream keeps its attempt, for the shared listeners below. */
const kAttempt = Symbol("rill.attempt");
type AttemptStream = ClientCallStream & { [kAttempt]: Attempt };

function onAttemptResponse(this: AttemptStream, headers: IncomingStreamHeaders): void {
  this[kAttempt].onResponse(headers);
}

function onAttemptData(this: AttemptStream, chunk: Buffer): void {
  this[kAttempt].onData(chunk);
}

function onAttemptTrailers(this: AttemptStream, headers: IncomingStreamHeaders): void {
  this[kAttempt].onTrailers(headers);
}

function onAttemptError(this: AttemptStream, e: Error): void {
  this[kAttempt].streamError ??= e;
}

/**
 * The server reset the stream. node emits 'close' only once our pending writes are done, and
 * after a reset they never are: a large request still being sent would wait for its deadline
 * (forever without one) although the server gave up on it, with or without a status first.
 */
function onAttemptAborted(this: AttemptStream): void {
  if (!this.destroyed) this.destroy();
}

function onAttemptClose(this: AttemptStream): void {
  this[kAttempt].onClose();
}
