import { connectContentType, parseConnectContentType, type ConnectMetadataJson } from "../protocol/connect.js";
import { encodeFrameHeader, onlyFrame } from "../protocol/frame.js";
import { contentTypeFor } from "../protocol/headers.js";
import type { ClientCallStream, IncomingStreamHeaders, StreamHeaders } from "./call-stream.js";
import { ClientTranslatedStream } from "./client-translated-stream.js";
import { connectRequestHeaders, errorFromHttp, maxConnectControlBytes } from "./client-connect-stream.js";
import { grpcStatusOf } from "./connect-status.js";

/**
 * A unary call made with the Connect protocol on an HTTP/2 stream: one POST whose body is the
 * bare request, answered by the bare response with the outcome in the HTTP status (and the
 * trailers as `trailer-` headers), or by an error JSON.
 *
 * The stream is opened once the request is complete, because its headers depend on it
 * (`content-encoding` only when the message is compressed, `content-length`). The response is
 * framed for the call as it arrives when its length is given, so the call's receive limit
 * applies before it is buffered; without a length it is held here up to that limit, no further.
 */
export class ClientConnectUnaryStream extends ClientTranslatedStream {
  private request: Uint8Array[] | undefined = [];
  /** The response's trailers (`trailer-` headers), once its headers are in. */
  private trailer: ConnectMetadataJson = {};
  private compressed = false;
  private contentLength: number | undefined;
  private framed = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Not 200: the body is an error JSON (read up to a limit). */
  private errorStatus: number | undefined;
  private errorHeaders: IncomingStreamHeaders = {};

  constructor(
    private readonly open: (headers: StreamHeaders) => ClientCallStream,
    private readonly headers: StreamHeaders,
    private readonly codec: string,
    private readonly maxReceiveBytes: number,
  ) {
    super();
  }

  override write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    this.request?.push(chunk);
    if (callback !== undefined) process.nextTick(callback);
    return true;
  }

  override end(): this {
    const chunks = this.request;
    if (chunks === undefined || this.destroyed) return this;
    this.request = undefined;
    const frame = onlyFrame(chunks);
    if (frame === undefined) {
      this.destroy(new Error("a unary Connect call sends exactly one request message"));
      return this;
    }
    const { data, compressed } = frame;
    const h = connectRequestHeaders(this.headers, connectContentType(this.codec, false));
    const encoding = h["grpc-encoding"];
    delete h["grpc-encoding"];
    if (compressed && typeof encoding === "string") h["content-encoding"] = encoding;
    const accept = h["grpc-accept-encoding"];
    delete h["grpc-accept-encoding"];
    if (accept !== undefined) h["accept-encoding"] = accept;
    h["content-length"] = data.byteLength;
    let inner: ClientCallStream;
    try {
      inner = this.open(h);
    } catch (e) {
      this.destroy(e as Error);
      return this;
    }
    this.attach(inner);
    inner.write(data);
    inner.end();
    return this;
  }

  protected override onInnerResponse(headers: IncomingStreamHeaders): void {
    const status = Number(headers[":status"]);
    const type = parseConnectContentType(headers["content-type"] as string | undefined);
    const h: IncomingStreamHeaders = {};
    for (const key in headers) {
      const value = headers[key];
      if (value === undefined) continue;
      if (key.startsWith("trailer-")) this.trailer[key.slice(8)] = Array.isArray(value) ? value : [value];
      else if (key !== "content-encoding" && key !== "accept-encoding" && key !== "content-length") h[key] = value;
    }
    if (status !== 200 || type === undefined || type.streaming) {
      this.errorStatus = status === 200 ? 500 : status;
      this.errorHeaders = h;
      return;
    }
    const encoding = headers["content-encoding"];
    if (typeof encoding === "string" && encoding !== "identity") {
      h["grpc-encoding"] = encoding;
      this.compressed = true;
    }
    const length = headers["content-length"];
    if (typeof length === "string" && /^\d{1,15}$/.test(length)) this.contentLength = Number(length);
    this.emit("response", { ...h, "content-type": contentTypeFor(type.codec) });
  }

  protected onInnerData(chunk: Buffer): void {
    if (this.errorStatus !== undefined) {
      if (this.heldBytes < maxConnectControlBytes) {
        this.held.push(chunk);
        this.heldBytes += chunk.byteLength;
      }
      return;
    }
    if (this.framed) return void this.emit("data", chunk);
    if (this.contentLength !== undefined) {
      this.framed = true;
      this.emit("data", encodeFrameHeader(this.contentLength, this.compressed));
      this.emit("data", chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.byteLength;
    if (this.heldBytes > this.maxReceiveBytes) {
      // Over the limit: the call's decoder refuses the message from this header alone.
      this.framed = true;
      this.held = [];
      this.emit("data", encodeFrameHeader(this.heldBytes, this.compressed));
    }
  }

  protected override onInnerEnd(): void {
    if (this.errorStatus !== undefined) {
      const error = errorFromHttp(this.errorStatus, Buffer.concat(this.held));
      const metadata: ConnectMetadataJson = { ...this.trailer };
      for (const key in this.errorHeaders) {
        const v = this.errorHeaders[key];
        if (v !== undefined && key !== "content-type") metadata[key] = Array.isArray(v) ? v : [v];
      }
      this.emit("response", { ":status": 200, "content-type": "application/grpc", ...grpcStatusOf(error, metadata) });
      return;
    }
    if (!this.framed) {
      const body = Buffer.concat(this.held);
      this.held = [];
      this.emit("data", Buffer.concat([encodeFrameHeader(body.byteLength, this.compressed), body]));
    }
    this.emitTrailers(grpcStatusOf(undefined, this.trailer));
  }
}
