import { createHash } from "node:crypto";
import { Code } from "../protocol/code.js";
import { connectContentType, connectErrorJson, httpStatusForCode } from "../protocol/connect.js";
import type { RpcError } from "../protocol/errors.js";
import { encodeFrameHeader, onlyFrame } from "../protocol/frame.js";
import type { IncomingStreamHeaders, ServerCallStream, StreamHeaders } from "./call-stream.js";
import { connectCallHeaders } from "./connect-stream.js";
import { connectErrorOf } from "./connect-status.js";
import { isTransportField, TranslatedStream } from "./translated-stream.js";

/** HTTP's accept-encoding is the unary form's `grpc-accept-encoding` (its content-encoding is given apart). */
const unaryRenames = { "accept-encoding": "grpc-accept-encoding" } as const;

/** How a unary request's message arrives. */
export type UnaryBody =
  /** In the POST body, of `contentLength` bytes when the request said. */
  | { kind: "post"; contentLength: number | undefined }
  /** In the GET query, already read. */
  | { kind: "get"; message: Uint8Array };

/**
 * A Connect unary request (`application/proto`, `application/json`, or a GET) served as a gRPC
 * call. The body is the bare message, so it is framed for the call: at once when the request
 * says its length (the call's receive limit then applies before a byte is buffered), else once
 * the body ends, buffered here only up to that limit. The response waits for the status,
 * because Connect puts the outcome in the HTTP status: 200 with the bare message and the
 * trailers as `trailer-` headers, or the error's status with the error JSON.
 *
 * GET responses carry an ETag of their body and answer a matching `if-none-match` with 304, so
 * browsers and caches can revalidate them; a handler may add `cache-control` as response metadata.
 */
export class ConnectUnaryStream extends TranslatedStream {
  readonly protocol = "connect" as const;
  private headers: StreamHeaders | undefined;
  /** The response's frames as the call wrote them. */
  private readonly response: Uint8Array[] = [];
  /** Request body bytes held until its end, when its length was not given. */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private framed = false;

  constructor(
    inner: ServerCallStream,
    private readonly codec: string,
    extraHeaders: StreamHeaders | undefined,
    private readonly body: UnaryBody,
    /** Whether the request message is compressed (`content-encoding`, or `compression` in a GET). */
    private readonly compressed: boolean,
    /** The call's receive limit: a body past it is not buffered further. */
    private readonly maxBytes: number,
    /** A GET's `if-none-match`, to answer 304 when the response's ETag matches. */
    private readonly ifNoneMatch: string | undefined,
  ) {
    super(inner, extraHeaders);
    if (body.kind === "get") {
      // The call attaches its listeners right after construction; the request is complete already.
      process.nextTick(() => {
        this.emit("data", this.frame(body.message));
        this.emit("end");
      });
    }
  }

  /**
   * The call's request headers for a unary request, or the error to answer with: HTTP's
   * `content-encoding`/`accept-encoding` become `grpc-encoding`/`grpc-accept-encoding`.
   */
  static requestHeaders(headers: IncomingStreamHeaders, codec: string, compression: string | undefined): IncomingStreamHeaders | RpcError {
    const out = connectCallHeaders(headers, codec, unaryRenames);
    if (compression !== undefined && !(out instanceof Error)) out["grpc-encoding"] = compression;
    return out;
  }

  protected override requestData(chunk: Buffer): void {
    const body = this.body;
    if (body.kind === "get") return;
    if (this.framed) return void this.emit("data", chunk);
    if (body.contentLength !== undefined) {
      // The length is known: framed now, and the call's decoder buffers (or refuses) the rest.
      this.framed = true;
      this.emit("data", encodeFrameHeader(body.contentLength, this.compressed));
      this.emit("data", chunk);
      return;
    }
    (this.held ??= []).push(chunk);
    this.heldBytes += chunk.byteLength;
    if (this.heldBytes > this.maxBytes) {
      // Over the limit: the call's decoder fails it from this header alone, as for a gRPC frame.
      this.framed = true;
      this.held = undefined;
      this.emit("data", encodeFrameHeader(this.heldBytes, this.compressed));
    }
  }

  protected override requestEnd(): void {
    if (this.body.kind === "get") return;
    if (!this.framed) {
      const held = this.held ?? [];
      this.held = undefined;
      this.emit("data", this.frame(held.length === 1 ? held[0]! : Buffer.concat(held)));
    }
    this.emit("end");
  }

  private frame(message: Uint8Array): Uint8Array {
    return Buffer.concat([encodeFrameHeader(message.byteLength, this.compressed), message]);
  }

  respond(headers: StreamHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    if (options?.endStream === true) return this.answer(headers, headers);
    this.headers = headers;
    this.waitingForTrailers = options?.waitForTrailers === true;
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    // Held until the status: the HTTP status depends on it. One message, within the send limit.
    this.response.push(chunk);
    if (callback !== undefined) process.nextTick(callback);
    return true;
  }

  sendTrailers(trailers: StreamHeaders): void {
    this.answer(this.headers ?? {}, trailers);
  }

  /** Sends the whole HTTP response for the call's headers and status. */
  private answer(headers: StreamHeaders, status: StreamHeaders): void {
    let error = connectErrorOf(status);
    let message: { data: Uint8Array; compressed: boolean } | undefined;
    if (error === undefined) {
      message = onlyFrame(this.response);
      if (message === undefined) error = { code: Code.Internal, message: "the server's response is not one message", details: [] };
    }
    this.response.length = 0;
    const http: StreamHeaders = { ...this.extraHeaders };
    for (const key in headers) if (!isTransportField(key)) http[key] = headers[key];
    for (const key in status) if (!isTransportField(key)) http[`trailer-${key}`] = status[key];
    const accept = headers["grpc-accept-encoding"];
    if (accept !== undefined) http["accept-encoding"] = accept;
    let body: Uint8Array;
    if (error !== undefined) {
      http[":status"] = httpStatusForCode(error.code);
      http["content-type"] = "application/json";
      body = Buffer.from(JSON.stringify(connectErrorJson(error)));
    } else {
      http[":status"] = 200;
      http["content-type"] = connectContentType(this.codec, false);
      if (message!.compressed && typeof headers["grpc-encoding"] === "string") http["content-encoding"] = headers["grpc-encoding"];
      body = message!.data;
      if (this.body.kind === "get") {
        const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
        http.etag = etag;
        if (this.ifNoneMatch !== undefined && this.ifNoneMatch.split(/\s*,\s*/).some((t) => t === etag || t === `W/${etag}` || t === "*")) {
          http[":status"] = 304;
          delete http["content-type"];
          delete http["content-encoding"];
          this.inner.respond(http, { endStream: true });
          return;
        }
      }
    }
    http["content-length"] = body.byteLength;
    this.inner.respond(http);
    this.inner.write(body);
    this.inner.end();
  }
}
