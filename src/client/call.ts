import { constants, type Http2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import type { Channel } from "../channel/channel.js";
import type { Codec } from "../codec.js";
import { isMarkedUncompressed, type Compression } from "../compression.js";
import { RpcError } from "../errors.js";
import { Code } from "../protocol/code.js";
import { encodeFrame, FrameDecoder, type Frame } from "../protocol/frame.js";
import { contentTypeFor, parseContentType } from "../protocol/headers.js";
import { Metadata, metadataFromHeaders, metadataToHeaders } from "../protocol/metadata.js";
import { httpStatusToCode, parseStatus, rstCodeToCode, type Status } from "../protocol/status.js";
import { formatTimeout } from "../protocol/timeout.js";
import { drained } from "../stream/drain.js";
import { MessageQueue } from "../stream/message-queue.js";
import type { CallOptions } from "./call-options.js";

/** The request side of a call: exactly one message, or a stream of them. */
export type Requests = { readonly single: unknown } | { readonly stream: AsyncIterable<unknown> };

/**
 * Starts one call and returns its responses as an async iterator.
 *
 * The iterator yields every response message, then ends if the status is OK or throws the
 * RpcError of the status. Leaving it early (`break`, `return()`) cancels the call with
 * RST_STREAM(CANCEL). The same path serves all four kinds; the typed client only decides
 * how requests go in and how many responses come out.
 */
export function startCall(
  channel: Channel,
  method: DescMethod,
  codec: Codec,
  requests: Requests,
  options: CallOptions,
): AsyncIterableIterator<unknown> {
  return new ClientCall(channel, method, codec, options).start(requests);
}

/**
 * Life of a client call: OPEN → (headers) → (messages) → DONE, where DONE is reached once
 * with one status: the server's trailers, a trailers-only response, an HTTP error, a stream
 * reset, a lost connection, the deadline, or the caller's cancellation.
 */
class ClientCall {
  private readonly responses: MessageQueue<unknown>;
  private readonly decoder: FrameDecoder;
  private stream: ClientHttp2Stream | undefined;
  private done = false;
  private status: Status | undefined;
  private trailers: Metadata | undefined;
  private httpError: RpcError | undefined;
  private streamError: Error | undefined;
  private responded = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.cancel(abortReason(this.options.signal));
  private readonly path: string;
  private readonly reset = new AbortController();
  private session: Http2Session | undefined;
  private requestIterator: AsyncIterator<unknown> | undefined;
  private requestCompression: Compression | undefined;
  private responseCompression: Compression | undefined;

  constructor(
    private readonly channel: Channel,
    private readonly method: DescMethod,
    private readonly codec: Codec,
    private readonly options: CallOptions,
  ) {
    this.path = `/${method.parent.typeName}/${method.name}`;
    this.decoder = new FrameDecoder(channel.options.maxReceiveMessageBytes);
    const output = method.output as DescMessage;
    this.responses = new MessageQueue<unknown>(
      (frame) => this.decodeResponse(output, frame),
      {
        pause: () => this.stream?.pause(),
        resume: () => this.stream?.resume(),
        abandon: () => this.cancel(new RpcError(Code.Canceled, "the caller stopped reading responses")),
      },
      channel.options.receiveHighWaterMark,
    );
  }

  start(requests: Requests): AsyncIterableIterator<unknown> {
    const { options } = this;
    if (options.signal?.aborted) {
      this.finish(abortReason(options.signal));
      return this.responses;
    }
    let deadline = options.deadline;
    if (options.timeoutMs !== undefined) {
      const d = Date.now() + options.timeoutMs;
      deadline = deadline === undefined ? d : Math.min(deadline, d);
    }
    let headers: OutgoingHttpHeaders;
    try {
      headers = {
        ":method": "POST",
        ":path": this.path,
        "content-type": contentTypeFor(this.codec.name),
        te: "trailers",
        "user-agent": this.channel.options.userAgent,
        ...metadataToHeaders(options.metadata instanceof Metadata ? options.metadata : new Metadata(options.metadata)),
      };
    } catch (e) {
      this.finish(RpcError.from(e, Code.Internal));
      return this.responses;
    }
    const { acceptEncoding, compressions } = this.channel.options;
    if (acceptEncoding !== "") headers["grpc-accept-encoding"] = acceptEncoding;
    const compression = options.compression ?? this.channel.options.compression;
    if (compression !== "identity") {
      this.requestCompression = compressions.get(compression);
      if (this.requestCompression === undefined) {
        this.finish(new RpcError(Code.Internal, `unknown compression "${compression}" (known: ${[...compressions.keys()].join(", ")})`));
        return this.responses;
      }
      headers["grpc-encoding"] = compression;
    }
    if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.finish(new RpcError(Code.DeadlineExceeded, "deadline exceeded before the call started"));
        return this.responses;
      }
      headers["grpc-timeout"] = formatTimeout(remaining);
      this.timer = setTimeout(() => this.cancel(new RpcError(Code.DeadlineExceeded, `deadline exceeded after ${Date.now() - (deadline! - remaining)} ms`)), remaining);
    }
    options.signal?.addEventListener("abort", this.onAbort, { once: true });

    let stream: ClientHttp2Stream;
    try {
      stream = this.channel.openStream(headers, this.reset.signal);
    } catch (e) {
      this.finish(RpcError.from(e, Code.Unavailable, `cannot start a call on ${this.channel.target}: ${(e as Error).message}`));
      return this.responses;
    }
    this.stream = stream;
    this.session = stream.session;
    stream.on("response", (h) => this.onResponse(h));
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("trailers", (h) => this.onTrailers(h));
    stream.on("error", (e) => {
      this.streamError ??= e;
    });
    stream.on("close", () => this.onClose());

    if ("single" in requests) {
      const frame = this.encodeRequest(requests.single);
      if (frame !== undefined) stream.end(frame);
    } else {
      void this.pump(requests.stream);
    }
    return this.responses;
  }

  /** Sends a request stream, one message at a time, waiting whenever HTTP/2 pushes back. */
  private async pump(requests: AsyncIterable<unknown>): Promise<void> {
    const stream = this.stream!;
    const it = requests[Symbol.asyncIterator]();
    this.requestIterator = it;
    try {
      for (;;) {
        const r = await it.next();
        if (this.requestIterator === undefined || this.done || stream.destroyed || stream.writableEnded) return;
        if (r.done) break;
        const frame = this.encodeRequest(r.value);
        if (frame === undefined) return;
        if (!stream.write(frame)) await drained(stream);
      }
      this.requestIterator = undefined;
      if (!this.done && !stream.destroyed && !stream.writableEnded) stream.end();
    } catch (e) {
      if (this.requestIterator === undefined) return;
      this.requestIterator = undefined;
      this.cancel(e instanceof RpcError ? e : new RpcError(Code.Canceled, `the request stream failed: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
    }
  }

  private encodeRequest(message: unknown): Uint8Array | undefined {
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(this.method.input as DescMessage, message as never);
    } catch (e) {
      this.cancel(new RpcError(Code.Internal, `failed to serialize request ${this.method.input.typeName}: ${(e as Error).message}`, { cause: e }));
      return undefined;
    }
    const max = this.channel.options.maxSendMessageBytes;
    if (bytes.byteLength > max) {
      this.cancel(new RpcError(Code.ResourceExhausted, `request message of ${bytes.byteLength} bytes is larger than the channel's send limit (maxSendMessageBytes = ${max})`));
      return undefined;
    }
    const c = this.requestCompression;
    return c !== undefined && !isMarkedUncompressed(message) ? encodeFrame(c.compress(bytes), true) : encodeFrame(bytes);
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    this.responded = true;
    const httpStatus = Number(headers[":status"]);
    const status = parseStatus(headers);
    if (status !== undefined) {
      // Trailers-only: the whole response is this one header block.
      this.status = status;
      this.trailers = metadataFromHeaders(headers);
      return;
    }
    if (httpStatus !== 200) {
      this.httpError = new RpcError(httpStatusToCode(httpStatus), `the server answered HTTP ${httpStatus} instead of gRPC (is ${this.channel.target} a gRPC server?)`);
      return;
    }
    if (parseContentType(headers["content-type"]) === undefined) {
      this.httpError = new RpcError(Code.Unknown, `the server answered with content-type "${headers["content-type"] ?? ""}", not gRPC`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (typeof encoding === "string" && encoding !== "identity") {
      this.responseCompression = this.channel.options.compressions.get(encoding);
      if (this.responseCompression === undefined) {
        this.httpError = new RpcError(Code.Internal, `the server compressed with "${encoding}", which this channel does not support`);
        return;
      }
    }
    this.options.onHeader?.(metadataFromHeaders(headers));
  }

  private onData(chunk: Buffer): void {
    if (this.done || this.httpError !== undefined) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.cancel(this.limitError(RpcError.from(e, Code.Internal)), false);
      return;
    }
    for (const f of frames) this.responses.push(f);
  }

  private onTrailers(headers: IncomingHttpHeaders): void {
    this.trailers = metadataFromHeaders(headers);
    this.status = parseStatus(headers) ?? { code: Code.Internal, message: "the server's trailers carry no grpc-status" };
    this.stopSending();
  }

  /**
   * The server has sent its status while we may still be sending: the call is over, so stop
   * the request producer and close our half, or node would keep the stream open forever.
   */
  private stopSending(): void {
    const it = this.requestIterator;
    this.requestIterator = undefined;
    if (it !== undefined) void it.return?.()?.catch?.(() => {});
    const stream = this.stream;
    if (stream !== undefined && !stream.writableEnded && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
  }

  private onClose(): void {
    if (this.done) return;
    const stream = this.stream!;
    let error: RpcError | undefined;
    if (this.httpError !== undefined) {
      error = this.httpError;
    } else if (this.status !== undefined) {
      if (this.status.code !== Code.OK) {
        error = new RpcError(this.status.code, this.status.message, { metadata: this.trailers });
      } else if (this.decoder.partial) {
        error = new RpcError(Code.Internal, "the response stream ended in the middle of a message");
      }
    } else if (!this.responded && (this.streamError !== undefined || this.channel.connectionError() !== undefined)) {
      error = this.connectionFailure(this.streamError);
    } else if (this.session === undefined || this.session.destroyed) {
      // The connection died under the stream (socket closed, GOAWAY with error, server killed).
      error = new RpcError(Code.Unavailable, `lost the connection to ${this.channel.target} before the call finished`, { cause: this.streamError });
    } else if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) {
      error = new RpcError(rstCodeToCode(stream.rstCode), `the server reset the stream (HTTP/2 error code ${stream.rstCode})`);
    } else if (this.streamError !== undefined) {
      error = this.connectionFailure(this.streamError);
    } else {
      error = new RpcError(Code.Internal, "the server closed the stream without sending a status");
    }
    this.finish(error);
  }

  private connectionFailure(e: Error | undefined): RpcError {
    let cause: Error = this.channel.connectionError() ?? e ?? new Error("connection lost");
    // node wraps the socket's error (ECONNREFUSED...) in ERR_HTTP2_STREAM_CANCEL; report the socket's.
    if (cause.cause instanceof Error) cause = cause.cause;
    return new RpcError(Code.Unavailable, `connection to ${this.channel.target} failed: ${cause.message}`, { cause });
  }

  /** We end the call ourselves: reset the stream and fail the responses at once. */
  private cancel(reason: RpcError, immediate = true): void {
    if (this.done) return;
    if (this.stream !== undefined && !this.stream.destroyed) this.reset.abort();
    this.finish(reason, immediate);
  }

  private finish(error: RpcError | undefined, immediate = false): void {
    if (this.done) return;
    this.done = true;
    const it = this.requestIterator;
    this.requestIterator = undefined;
    if (it !== undefined) void it.return?.()?.catch?.(() => {});
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.options.signal?.removeEventListener("abort", this.onAbort);
    const trailers = error?.metadata ?? this.trailers;
    if (trailers !== undefined) this.options.onTrailer?.(trailers);
    if (error === undefined) this.responses.end();
    else this.responses.fail(error, immediate);
  }

  private limitError(error: RpcError): RpcError {
    return limitErrorFor(error, this.channel.options.maxReceiveMessageBytes);
  }

  private decodeResponse(schema: DescMessage, frame: Frame): unknown {
    let data = frame.data;
    if (frame.compressed) {
      let err: RpcError | undefined;
      if (this.responseCompression === undefined) {
        err = new RpcError(Code.Internal, "received a compressed message, but the response's grpc-encoding is identity");
      } else {
        try {
          data = this.responseCompression.decompress(data, this.channel.options.maxReceiveMessageBytes);
        } catch (e) {
          err = this.limitError(RpcError.from(e, Code.Internal));
        }
      }
      if (err !== undefined) {
        this.cancel(err);
        throw err;
      }
    }
    try {
      return this.codec.decode(schema, data);
    } catch (e) {
      const err = new RpcError(Code.Internal, `failed to parse response ${schema.typeName}: ${(e as Error).message}`, { cause: e });
      this.cancel(err);
      throw err;
    }
  }
}

/** Names the channel's receive limit in a size error, so the reader knows which knob to turn. */
function limitErrorFor(error: RpcError, max: number): RpcError {
  if (error.code !== Code.ResourceExhausted) return error;
  return new RpcError(Code.ResourceExhausted, `${error.rawMessage}: response exceeds the channel's receive limit (maxReceiveMessageBytes = ${max})`);
}

function abortReason(signal: AbortSignal | undefined): RpcError {
  const reason: unknown = signal?.reason;
  if (reason instanceof RpcError) return reason;
  return new RpcError(Code.Canceled, "the call was cancelled by the caller", { cause: reason });
}
