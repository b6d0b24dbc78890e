import { EventEmitter } from "node:events";
import type { EnvelopeSplitter, SplitChunk } from "../protocol/envelope-splitter.js";
import { encodeStatusMessage } from "../protocol/status.js";
import { ResetCode, type ClientCallStream, type IncomingStreamHeaders } from "./call-stream.js";

/**
 * The client's half of a protocol translation: a gRPC call's attempt writes gRPC frames and reads
 * `response`, `data` (gRPC frames), `trailers` and `close` as it does from an HTTP/2 stream,
 * while the subclass speaks gRPC-Web or Connect on `inner`. The mirror of the server's
 * `TranslatedStream`: the call's retries, deadlines, limits and decoding stay the call's.
 *
 * `inner` may be opened late (Connect unary knows its headers only once the request is
 * complete): until then writes are the subclass's to hold, and the stream reports no id.
 */
export abstract class ClientTranslatedStream extends EventEmitter implements ClientCallStream {
  protected inner: ClientCallStream | undefined;
  /** The trailers (the status) were emitted: the body is complete. */
  private trailersSent = false;
  private ended = false;
  private closedEarly = false;

  /** Starts reading `inner`'s events; call once it exists. */
  protected attach(inner: ClientCallStream): void {
    this.inner = inner;
    inner.on("response", (headers: IncomingStreamHeaders) => this.onInnerResponse(headers));
    inner.on("data", (chunk: Buffer) => this.onInnerData(chunk));
    inner.on("end", () => this.onInnerEnd());
    // A server that sends real HTTP trailers (gRPC-Web through a proxy that keeps them) is read as gRPC.
    inner.on("trailers", (headers: IncomingStreamHeaders) => this.emitTrailers(headers));
    inner.on("aborted", () => this.emit("aborted"));
    inner.on("error", (e: Error) => this.emit("error", e));
    inner.on("close", () => this.emit("close"));
  }

  /** The underlying HTTP/2 stream, for the transport's questions about it (GOAWAY, lost connection). */
  get innerStream(): ClientCallStream | undefined {
    return this.inner;
  }

  get id(): number | undefined {
    return this.inner?.id;
  }
  get destroyed(): boolean {
    return this.inner?.destroyed ?? this.closedEarly;
  }
  get closed(): boolean {
    return this.inner?.closed ?? this.closedEarly;
  }
  get writableEnded(): boolean {
    return this.ended || (this.inner?.writableEnded ?? false);
  }
  get rstCode(): number | undefined {
    return this.inner?.rstCode;
  }
  get writableLength(): number {
    return this.inner?.writableLength ?? 0;
  }
  get readableLength(): number {
    return this.inner?.readableLength ?? 0;
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    return this.inner!.write(chunk, callback);
  }
  end(): this {
    this.ended = true;
    this.inner?.end();
    return this;
  }
  cork(): void {
    this.inner?.cork();
  }
  uncork(): void {
    this.inner?.uncork();
  }
  pause(): this {
    this.inner?.pause();
    return this;
  }
  resume(): this {
    this.inner?.resume();
    return this;
  }
  close(code?: number): void {
    if (this.inner !== undefined) return this.inner.close(code);
    this.closeUnopened();
  }
  destroy(error?: Error): this {
    if (this.inner !== undefined) this.inner.destroy(error);
    else this.closeUnopened(error);
    return this;
  }

  /** Closed before the stream was opened: the call sees the close a reset stream would give. */
  private closeUnopened(error?: Error): void {
    if (this.closedEarly) return;
    this.closedEarly = true;
    process.nextTick(() => {
      if (error !== undefined) this.emit("error", error);
      this.emit("close");
    });
  }

  /** The response headers, translated; by default passed on. */
  protected onInnerResponse(headers: IncomingStreamHeaders): void {
    this.emit("response", headers);
  }
  protected abstract onInnerData(chunk: Buffer): void;
  protected onInnerEnd(): void {}

  /** Emits the call's status once; what follows it is ignored. */
  protected emitTrailers(headers: IncomingStreamHeaders): void {
    if (this.trailersSent) return;
    this.trailersSent = true;
    this.emit("trailers", headers);
  }

  protected get hasTrailers(): boolean {
    return this.trailersSent;
  }

  /**
   * Passes the message frames of a body chunk on as `data`, and returns the control envelope
   * (trailers, end of stream) that ended the body in it, if one did.
   */
  protected passFrames(splitter: EnvelopeSplitter, chunk: Buffer): SplitChunk["control"] {
    let split: SplitChunk;
    try {
      split = splitter.push(chunk);
    } catch (e) {
      this.protocolError((e as Error).message);
      return undefined;
    }
    for (const d of split.data) this.emit("data", d);
    return split.control;
  }

  /** The stream broke the protocol: the call fails with `message` (INTERNAL) as an HTTP/2 error would fail it. */
  protected protocolError(message: string): void {
    this.emitTrailers({ "grpc-status": "13", "grpc-message": encodeStatusMessage(`protocol error: ${message}`) });
    this.inner?.close(ResetCode.Cancel);
  }
}
