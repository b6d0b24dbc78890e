import { Code } from "../protocol/code.js";
import { connectContentType, encodeEndStream, EnvelopeFlag, grpcTimeoutForMs, parseConnectTimeout } from "../protocol/connect.js";
import { RpcError } from "../protocol/errors.js";
import { encodeFrameHeader } from "../protocol/frame.js";
import { contentTypeFor } from "../protocol/headers.js";
import type { IncomingStreamHeaders, ServerCallStream, StreamHeaders } from "./call-stream.js";
import { connectErrorOf, metadataJsonOf } from "./connect-status.js";
import { isTransportField, TranslatedStream } from "./translated-stream.js";

/**
 * A Connect streaming request (client, server or bidi streaming; `application/connect+<codec>`)
 * served as a gRPC call. Connect's envelopes are gRPC's frames (flag 0x01: compressed), so the
 * messages pass through both ways; the compression headers are renamed, and the status and
 * trailers become the end-of-stream message (flag 0x02, JSON) that closes the body. The HTTP
 * status is 200 once the call started, whatever its outcome, as the protocol says.
 */
export class ConnectStream extends TranslatedStream {
  readonly protocol = "connect" as const;

  constructor(
    inner: ServerCallStream,
    private readonly codec: string,
    extraHeaders: StreamHeaders | undefined,
  ) {
    super(inner, extraHeaders);
  }

  /**
   * The call's request headers, or the error to answer with (a malformed timeout): the gRPC
   * content type, `grpc-encoding`/`grpc-accept-encoding` for Connect's stream compression
   * headers, `grpc-timeout` for `connect-timeout-ms`.
   */
  static requestHeaders(headers: IncomingStreamHeaders, codec: string): IncomingStreamHeaders | RpcError {
    return connectCallHeaders(headers, codec, streamingRenames);
  }

  respond(headers: StreamHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    const http: StreamHeaders = { ":status": 200, "content-type": connectContentType(this.codec, true), ...this.extraHeaders };
    if (options?.endStream === true) {
      // A status with no message before it: the HTTP headers, then the end-of-stream message.
      const accept = headers["grpc-accept-encoding"];
      if (accept !== undefined) http["connect-accept-encoding"] = accept;
      this.inner.respond(http);
      this.inner.write(endStreamEnvelope(headers));
      this.inner.end();
      return;
    }
    for (const key in headers) {
      if (key === "grpc-encoding") http["connect-content-encoding"] = headers[key];
      else if (key === "grpc-accept-encoding") http["connect-accept-encoding"] = headers[key];
      else if (!isTransportField(key)) http[key] = headers[key];
    }
    this.waitingForTrailers = options?.waitForTrailers === true;
    this.inner.respond(http);
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    return this.inner.write(chunk, callback);
  }

  sendTrailers(trailers: StreamHeaders): void {
    this.inner.write(endStreamEnvelope(trailers));
    this.inner.end();
  }
}

/** Request fields the call's headers never take from a Connect request (they are translated, or gRPC's alone). */
const dropped: ReadonlySet<string> = new Set(["content-type", "content-length", "content-encoding", "connect-protocol-version", "grpc-encoding", "grpc-accept-encoding", "grpc-timeout"]);

/**
 * The call's request headers from a Connect request's, in one pass: the gRPC content type,
 * `grpc-timeout` for `connect-timeout-ms`, the fields in `renames` under their gRPC names, and
 * none of `dropped` (a stray `grpc-encoding` means nothing in Connect). One loop, because a
 * spread of node's header object followed by deletes made it slow: 2 µs of a call's ~60.
 */
export function connectCallHeaders(headers: IncomingStreamHeaders, codec: string, renames: Readonly<Record<string, string>>): IncomingStreamHeaders | RpcError {
  const out: IncomingStreamHeaders = { "content-type": contentTypeFor(codec) };
  let timeout: string | string[] | undefined;
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || dropped.has(key)) continue;
    if (key === "connect-timeout-ms") timeout = value;
    else out[renames[key] ?? key] = value;
  }
  if (timeout !== undefined) {
    const parsed = parseConnectTimeout(Array.isArray(timeout) ? (timeout[0] ?? "") : timeout);
    if ("error" in parsed) return new RpcError(Code.InvalidArgument, parsed.error);
    out["grpc-timeout"] = grpcTimeoutForMs(parsed.ms);
  }
  return out;
}

/** Connect's streaming compression headers under their gRPC names. */
const streamingRenames = { "connect-content-encoding": "grpc-encoding", "connect-accept-encoding": "grpc-accept-encoding" } as const;

/** The end-of-stream envelope for a gRPC status record (the status and its trailers). */
function endStreamEnvelope(status: StreamHeaders): Uint8Array {
  const body = encodeEndStream({ error: connectErrorOf(status), metadata: metadataJsonOf(status) });
  return Buffer.concat([encodeFrameHeader(body.byteLength, false), body]).fill(EnvelopeFlag.EndStream, 0, 1);
}
