import { connectContentType, EnvelopeFlag, parseConnectContentType, parseConnectErrorJson, parseEndStream, type ConnectError } from "../protocol/connect.js";
import { EnvelopeSplitter } from "../protocol/envelope-splitter.js";
import { contentTypeFor } from "../protocol/headers.js";
import { httpStatusToCode } from "../protocol/status.js";
import { parseTimeout } from "../protocol/timeout.js";
import type { ClientCallStream, IncomingStreamHeaders, StreamHeaders } from "./call-stream.js";
import { ClientTranslatedStream } from "./client-translated-stream.js";
import { grpcStatusOf } from "./connect-status.js";

/** The end-of-stream message and an error body are small JSON; past this a peer is not a Connect server. */
export const maxConnectControlBytes = 1024 * 1024;

/** Decompresses a Connect control message the server compressed (its stream's encoding). */
export type Decompress = (encoding: string, data: Uint8Array) => Uint8Array | undefined;

/**
 * The Connect request headers both forms share, from a gRPC call's: `connect-protocol-version`,
 * `connect-timeout-ms` for `grpc-timeout`, and no `te` (Connect does not need trailers).
 */
export function connectRequestHeaders(headers: StreamHeaders, contentType: string): StreamHeaders {
  const h: StreamHeaders = { ...headers, "content-type": contentType, "connect-protocol-version": "1" };
  delete h.te;
  const timeout = h["grpc-timeout"];
  delete h["grpc-timeout"];
  if (typeof timeout === "string") h["connect-timeout-ms"] = String(Math.max(1, Math.min(Math.ceil(parseTimeout(timeout)), 9_999_999_999)));
  return h;
}

/** The call's outcome from an HTTP error answer: the Connect error JSON if the body is one, else the HTTP status's code. */
export function errorFromHttp(status: number, body: Uint8Array): ConnectError {
  try {
    const parsed = parseConnectErrorJson(JSON.parse(Buffer.from(body).toString("utf8")));
    if (parsed !== undefined) return parsed;
  } catch {
    // not JSON: the HTTP status decides
  }
  return { code: httpStatusToCode(status), message: `HTTP ${status} from a server that did not answer in the Connect protocol`, details: [] };
}

/**
 * A client-, server- or bidi-streaming call made with the Connect protocol on an HTTP/2 stream.
 * Envelopes are gRPC frames, so requests and response messages pass through; the compression
 * headers are renamed, and the end-of-stream message (flag 0x02) becomes the call's trailers.
 * An answer that is not 200 carries the error as JSON (or only an HTTP status).
 */
export class ClientConnectStream extends ClientTranslatedStream {
  private readonly splitter = new EnvelopeSplitter(EnvelopeFlag.EndStream, maxConnectControlBytes);
  private encoding: string | undefined;
  /** A non-200 answer's body, read for its error JSON. */
  private errorBody: Buffer[] | undefined;
  private errorStatus = 0;

  constructor(
    open: (headers: StreamHeaders) => ClientCallStream,
    headers: StreamHeaders,
    codec: string,
    private readonly decompress: Decompress,
  ) {
    super();
    const h = connectRequestHeaders(headers, connectContentType(codec, true));
    rename(h, "grpc-encoding", "connect-content-encoding");
    rename(h, "grpc-accept-encoding", "connect-accept-encoding");
    this.attach(open(h));
  }

  protected override onInnerResponse(headers: IncomingStreamHeaders): void {
    const status = Number(headers[":status"]);
    const type = parseConnectContentType(headers["content-type"] as string | undefined);
    if (status !== 200 || type === undefined || !type.streaming) {
      this.errorStatus = status === 200 ? 500 : status;
      this.errorBody = [];
      return;
    }
    const h: IncomingStreamHeaders = { ...headers, "content-type": contentTypeFor(type.codec) };
    const encoding = h["connect-content-encoding"];
    delete h["connect-content-encoding"];
    delete h["connect-accept-encoding"];
    if (typeof encoding === "string" && encoding !== "identity") h["grpc-encoding"] = this.encoding = encoding;
    this.emit("response", h);
  }

  protected onInnerData(chunk: Buffer): void {
    if (this.errorBody !== undefined) {
      if (this.errorBody.reduce((n, b) => n + b.byteLength, 0) < maxConnectControlBytes) this.errorBody.push(chunk);
      return;
    }
    if (this.hasTrailers) return;
    const control = this.passFrames(this.splitter, chunk);
    if (control === undefined) return;
    let payload: Uint8Array | undefined = control.payload;
    if ((control.flags & EnvelopeFlag.Compressed) !== 0) {
      payload = this.encoding === undefined ? undefined : this.decompress(this.encoding, payload);
      if (payload === undefined) return this.protocolError("the end-of-stream message is compressed with an unknown encoding");
    }
    const end = parseEndStream(payload);
    this.emitTrailers(grpcStatusOf(end.error, end.metadata));
  }

  protected override onInnerEnd(): void {
    if (this.errorBody !== undefined) {
      const error = errorFromHttp(this.errorStatus, Buffer.concat(this.errorBody));
      this.errorBody = undefined;
      // A status with no messages: the call reads it as trailers-only.
      this.emit("response", { ":status": 200, "content-type": "application/grpc", ...grpcStatusOf(error, {}) });
      return;
    }
    if (!this.hasTrailers) this.protocolError("the stream ended without an end-of-stream message");
  }
}

function rename(headers: StreamHeaders, from: string, to: string): void {
  const value = headers[from];
  delete headers[from];
  if (value !== undefined) headers[to] = value;
}

