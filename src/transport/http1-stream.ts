import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ResetCode, type IncomingStreamHeaders, type ServerCallStream, type StreamHeaders } from "./call-stream.js";

/**
 * An HTTP/1.1 request and its response in the shape of an HTTP/2 stream, so the gRPC-Web and
 * Connect translations (`grpc-web-stream.ts`, `connect-stream.ts`) serve browsers and curl on
 * HTTP/1.1 with the same code as on HTTP/2. HTTP/1.1 has no trailers a browser can read and no
 * stream reset: `sendTrailers` is never asked of it (both protocols put the status in the body
 * or the headers), and a reset closes the connection.
 */
export class Http1Stream extends EventEmitter implements ServerCallStream {
  private localClosed = false;
  private bodyWritten = false;
  private done = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    super();
    req.on("data", (chunk: Buffer) => this.emit("data", chunk));
    req.on("end", () => this.emit("end"));
    req.on("error", (e: Error) => this.emit("error", e));
    res.on("error", (e: Error) => this.emit("error", e));
    res.on("finish", () => (this.localClosed = true));
    res.on("close", () => {
      this.done = true;
      // The connection went before the response was complete: the client left (a reset, on HTTP/2).
      if (!res.writableFinished) this.emit("aborted");
      this.emit("close");
    });
  }

  /** The request's headers as HTTP/2 gives them: lower-case names and the pseudo-headers. */
  static headersOf(req: IncomingMessage): IncomingStreamHeaders {
    const headers: IncomingStreamHeaders = {
      ":method": req.method,
      ":path": req.url,
      ":scheme": (req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http",
      ":authority": req.headers.host,
    };
    for (const key in req.headers) {
      // Hop-by-hop fields describe this connection, not the call.
      if (key === "host" || key === "connection" || key === "keep-alive" || key === "transfer-encoding" || key === "upgrade") continue;
      headers[key] = req.headers[key];
    }
    return headers;
  }

  get destroyed(): boolean {
    return this.res.destroyed;
  }
  get closed(): boolean {
    return this.done;
  }
  get writableEnded(): boolean {
    return this.res.writableEnded;
  }
  get readableEnded(): boolean {
    return this.req.readableEnded;
  }
  get rstCode(): number | undefined {
    return undefined;
  }
  get state(): { readonly localClose?: number | undefined } {
    return { localClose: this.localClosed ? 1 : 0 };
  }
  get session(): ServerCallStream["session"] {
    return { socket: this.req.socket };
  }

  respond(headers: StreamHeaders, options?: { endStream?: boolean }): void {
    const fields: Record<string, string | string[] | number> = {};
    for (const key in headers) {
      const value = headers[key];
      if (value !== undefined && key.charCodeAt(0) !== 0x3a) fields[key] = value;
    }
    this.res.writeHead(Number(headers[":status"] ?? 200), fields);
    if (options?.endStream === true) this.res.end();
    // node holds the head until the first body write; a stream's headers must go soon anyway (a
    // subscription waits on them to know it is live, and a quiet stream may write nothing for
    // long). After the current task: an answer written at once leaves in one packet with them.
    // (`headersSent` is already true here: node counts the head as sent once it is formatted.)
    else queueMicrotask(() => {
      if (!this.bodyWritten && !this.res.writableEnded && !this.res.destroyed) this.res.flushHeaders();
    });
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    this.bodyWritten = true;
    if (this.res.writableEnded) {
      if (callback !== undefined) process.nextTick(callback);
      return true;
    }
    return this.res.write(chunk, callback);
  }

  sendTrailers(): void {
    throw new Error("HTTP/1.1 responses carry no trailers here: the protocol translation puts the status in the body");
  }

  end(): this {
    this.res.end();
    return this;
  }
  cork(): void {
    this.res.cork();
  }
  uncork(): void {
    this.res.uncork();
  }
  pause(): this {
    this.req.pause();
    return this;
  }
  resume(): this {
    this.req.resume();
    return this;
  }

  /**
   * HTTP/1.1 cannot reset one exchange. After a complete response (the call's status is out),
   * NO_ERROR lets node discard the rest of the request body; any other code closes the connection.
   */
  close(code?: number): void {
    if (code === ResetCode.NoError && this.res.writableFinished) return;
    this.res.destroy();
  }

  destroy(error?: Error): this {
    this.res.destroy(error);
    return this;
  }
}
