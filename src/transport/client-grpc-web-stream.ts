import { parseGrpcWebContentType, parseTrailersFrame, TRAILERS_FLAG } from "../protocol/grpc-web.js";
import { contentTypeFor } from "../protocol/headers.js";
import { EnvelopeSplitter } from "../protocol/envelope-splitter.js";
import type { ClientCallStream, IncomingStreamHeaders, StreamHeaders } from "./call-stream.js";
import { ClientTranslatedStream } from "./client-translated-stream.js";

/** Trailers are a few header lines; a server that sends more than this is not a gRPC-Web server. */
const maxTrailerBytes = 64 * 1024;

/**
 * A call made with gRPC-Web (binary) on an HTTP/2 stream: the request is gRPC's, under a
 * gRPC-Web content type; the response's messages pass through and its last envelope (flag 0x80)
 * becomes the call's trailers. A status sent in the response headers (trailers-only) is read as
 * gRPC reads it.
 */
export class ClientGrpcWebStream extends ClientTranslatedStream {
  private readonly splitter = new EnvelopeSplitter(TRAILERS_FLAG, maxTrailerBytes);

  constructor(open: (headers: StreamHeaders) => ClientCallStream, headers: StreamHeaders, codec: string) {
    super();
    const h: StreamHeaders = { ...headers, "content-type": `application/grpc-web+${codec}`, "x-grpc-web": "1" };
    delete h.te;
    this.attach(open(h));
  }

  protected override onInnerResponse(headers: IncomingStreamHeaders): void {
    const type = parseGrpcWebContentType(headers["content-type"] as string | undefined);
    // Anything else (an HTTP error page, a status in the headers) is the call's to judge as it is.
    this.emit("response", type === undefined ? headers : { ...headers, "content-type": contentTypeFor(type.codec) });
  }

  protected onInnerData(chunk: Buffer): void {
    if (this.hasTrailers) return;
    const control = this.passFrames(this.splitter, chunk);
    if (control !== undefined) this.emitTrailers(parseTrailersFrame(control.payload));
  }
}
