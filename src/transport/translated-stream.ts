import { EventEmitter } from "node:events";
import type { RpcError } from "../protocol/errors.js";
import type { ServerCallStream, StreamHeaders, WebProtocol } from "./call-stream.js";

/**
 * A gRPC call's stream made of another protocol's request (gRPC-Web, Connect): the server's call
 * sees the seam it always sees (gRPC frames in and out, headers, trailers), and the subclass
 * rewrites each of them into its protocol on `inner`, an HTTP/2 stream or an HTTP/1.1 exchange.
 * So handlers, interceptors, limits, deadlines and budgets are the gRPC call's, once, for every
 * protocol; only the bytes on the wire differ.
 *
 * Events are re-emitted on this object, so the call's shared listeners (which find the call on
 * `this`) work unchanged. The call asks for trailers as it does of node: `respond` with
 * `waitForTrailers`, `end()`, then `sendTrailers` from the `wantTrailers` listener, which this
 * class runs at once (nothing sits between it and the wire that would make it wait).
 */
export abstract class TranslatedStream extends EventEmitter implements ServerCallStream {
  abstract readonly protocol: WebProtocol;
  /** The response headers were sent with `waitForTrailers`: `end()` asks for them. */
  protected waitingForTrailers = false;
  private ended = false;

  constructor(
    protected readonly inner: ServerCallStream,
    /** Headers every response carries besides the protocol's own (CORS). */
    protected readonly extraHeaders: StreamHeaders | undefined,
  ) {
    super();
    // Shared listener functions that find this object on the inner stream: no closures per call.
    (inner as Inner)[kOuter] = this;
    inner.on("data", TranslatedStream.onInnerData);
    inner.on("end", TranslatedStream.onInnerEnd);
    inner.on("aborted", TranslatedStream.onInnerAborted);
    inner.on("close", TranslatedStream.onInnerClose);
    inner.on("error", TranslatedStream.onInnerError);
  }

  private static onInnerData(this: Inner, chunk: Buffer): void {
    this[kOuter]!.requestData(chunk);
  }
  private static onInnerEnd(this: Inner): void {
    this[kOuter]!.requestEnd();
  }
  private static onInnerAborted(this: Inner): void {
    this[kOuter]!.emit("aborted");
  }
  private static onInnerClose(this: Inner): void {
    this[kOuter]!.emit("close");
  }
  private static onInnerError(this: Inner, e: Error): void {
    const outer = this[kOuter]!;
    // Heard by the call once there is one; before (a request answered without a call) there is no one to tell.
    if (outer.listenerCount("error") > 0) outer.emit("error", e);
  }

  get destroyed(): boolean {
    return this.inner.destroyed;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  get writableEnded(): boolean {
    return this.ended || this.inner.writableEnded;
  }
  get readableEnded(): boolean {
    return this.inner.readableEnded;
  }
  get rstCode(): number | undefined {
    return this.inner.rstCode;
  }
  get state(): { readonly localClose?: number | undefined } {
    return this.inner.state;
  }
  get session(): ServerCallStream["session"] {
    return this.inner.session;
  }

  cork(): void {
    this.inner.cork();
  }
  uncork(): void {
    this.inner.uncork();
  }
  pause(): this {
    this.inner.pause();
    return this;
  }
  resume(): this {
    this.inner.resume();
    return this;
  }
  close(code?: number): void {
    this.inner.close(code);
  }
  destroy(error?: Error): this {
    this.inner.destroy(error);
    return this;
  }

  end(): this {
    if (this.ended) return this;
    this.ended = true;
    if (this.waitingForTrailers) this.emit("wantTrailers");
    else this.endBody();
    return this;
  }

  abstract respond(headers: StreamHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void;
  abstract write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  abstract sendTrailers(trailers: StreamHeaders): void;

  /** Ends the response body (after the last message, or after the status the subclass wrote into it). */
  protected endBody(): void {
    this.inner.end();
  }

  /** A chunk of the request body in the protocol's form; emits it as gRPC frames. */
  protected requestData(chunk: Buffer): void {
    this.emit("data", chunk);
  }

  protected requestEnd(): void {
    this.emit("end");
  }

  /** The request cannot be translated: the call ends with `error` as its status. */
  protected protocolError(error: RpcError): void {
    this.emit("protocolError", error);
  }
}

const kOuter = Symbol("rill.translatedStream");
type Inner = ServerCallStream & { [kOuter]?: TranslatedStream };

/** The response header fields that describe the HTTP response itself rather than the call's metadata. */
export function isTransportField(key: string): boolean {
  return key.charCodeAt(0) === 0x3a || key === "content-type" || key.startsWith("grpc-") || key === "content-length";
}
