import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { contentTypeFor } from "../protocol/headers.js";
import { Base64Decoder, Base64Encoder, encodeTrailersFrame, grpcWebContentType, type GrpcWebContentType } from "../protocol/grpc-web.js";
import type { IncomingStreamHeaders, ServerCallStream, StreamHeaders } from "./call-stream.js";
import { TranslatedStream } from "./translated-stream.js";

/**
 * A gRPC-Web request served as a gRPC call. The body's messages are gRPC's own frames, so they
 * pass through (through base64 in the `-text` mode); the status and trailers become the body's
 * last frame (flag 0x80), since browsers cannot read HTTP trailers. A status with no message
 * before it is sent the same way, in the body, never in the HTTP headers: a browser reads
 * headers that CORS does not expose as absent, and a body frame reaches every client.
 */
export class GrpcWebStream extends TranslatedStream {
  readonly protocol = "grpc-web" as const;
  private readonly decoder: Base64Decoder | undefined;
  private readonly encoder: Base64Encoder | undefined;

  constructor(
    inner: ServerCallStream,
    private readonly type: GrpcWebContentType,
    extraHeaders: StreamHeaders | undefined,
  ) {
    super(inner, extraHeaders);
    if (type.text) {
      this.decoder = new Base64Decoder();
      this.encoder = new Base64Encoder();
    }
  }

  /** The call's request headers: a gRPC content type for the gRPC-Web one; the rest is the same. */
  static requestHeaders(headers: IncomingStreamHeaders, type: GrpcWebContentType): IncomingStreamHeaders {
    return { ...headers, "content-type": contentTypeFor(type.codec) };
  }

  protected override requestData(chunk: Buffer): void {
    if (this.decoder === undefined) return void this.emit("data", chunk);
    const bytes = this.decoder.push(chunk);
    if (bytes === undefined) this.protocolError(new RpcError(Code.Internal, "the gRPC-Web text request body is not valid base64"));
    else if (bytes.byteLength > 0) this.emit("data", bytes);
  }

  protected override requestEnd(): void {
    if (this.decoder !== undefined && !this.decoder.complete) {
      this.protocolError(new RpcError(Code.Internal, "the gRPC-Web text request body ends inside a base64 group"));
      return;
    }
    this.emit("end");
  }

  respond(headers: StreamHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    const http: StreamHeaders = { ":status": 200, "content-type": grpcWebContentType(this.type), ...this.extraHeaders };
    if (options?.endStream !== true) {
      for (const key in headers) if (key !== ":status" && key !== "content-type") http[key] = headers[key];
      this.waitingForTrailers = options?.waitForTrailers === true;
      this.inner.respond(http);
      return;
    }
    // A status without messages: the headers that describe the response stay headers, the
    // status and every metadata entry go into the trailers frame.
    const trailers: StreamHeaders = {};
    for (const key in headers) {
      if (key === ":status" || key === "content-type") continue;
      if (key === "grpc-accept-encoding") http[key] = headers[key];
      else trailers[key] = headers[key];
    }
    this.inner.respond(http);
    this.writeBody(encodeTrailersFrame(trailers), undefined, true);
    this.inner.end();
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    return this.writeBody(chunk, callback, false);
  }

  sendTrailers(trailers: StreamHeaders): void {
    this.writeBody(encodeTrailersFrame(trailers), undefined, true);
    this.inner.end();
  }

  protected override endBody(): void {
    if (this.encoder !== undefined) this.inner.write(Buffer.from(this.encoder.flush(), "latin1"));
    this.inner.end();
  }

  private writeBody(bytes: Uint8Array, callback: ((error?: Error | null) => void) | undefined, last: boolean): boolean {
    const encoder = this.encoder;
    if (encoder === undefined) return this.inner.write(bytes, callback);
    const text = last ? encoder.push(bytes) + encoder.flush() : encoder.push(bytes);
    return this.inner.write(Buffer.from(text, "latin1"), callback);
  }
}
