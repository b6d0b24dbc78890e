/**
 * The in-process transport: a channel wired straight to a `Server` in the same process, with no
 * socket and no HTTP/2. Calls go through the same client and server code as over the network
 * (interceptors, deadlines, cancellation, metadata, status, compression, limits, retries), only
 * the stream under them is a pair of objects passing chunks to each other. For fast tests of
 * services, and for calling a service from its own process.
 *
 * Flow control: a chunk counts as in flight until the other side has taken it (its `data`
 * event), and a side that is paused takes nothing. So a reader that stops reading stops the
 * writer after its high-water mark, as HTTP/2's windows do over a socket.
 *
 * Delivery is asynchronous (one event-loop turn, `setImmediate`), never re-entrant: a producer
 * and a consumer that keep each other busy still let timers (deadlines, idle timeouts) run.
 */
import { EventEmitter } from "node:events";
import type { Channel, ChannelOptions } from "./channel/channel.js";
import { createChannelOver } from "./channel/channel.js";
import type { ConnectivityState } from "./channel/connectivity.js";
import type { Subchannel } from "./channel/subchannel.js";
import { kServeStream, type Server } from "./server/server.js";
import {
  ResetCode,
  type ClientCallStream,
  type DataObserver,
  type IncomingStreamHeaders,
  type ServerCallStream,
  type StreamHeaders,
} from "./transport/call-stream.js";

/**
 * A channel to `server` in this process. Everything a channel does applies (service config,
 * retries, interceptors, call credentials on insecure channels only if allowed, as over the
 * network); the target is named "in-process". `server` needs no `listen()`.
 */
export function createInProcessChannel(server: Server, options: ChannelOptions = {}): Channel {
  return createChannelOver("in-process", [{ host: "in-process", port: 0 }], options, () => new InProcessSubchannel(server));
}

/** The one "connection" of an in-process channel: always READY until shut down. */
class InProcessSubchannel implements Subchannel {
  state: ConnectivityState = "READY";
  readonly key = "in-process";
  readonly lastError: Error | undefined = undefined;
  private readonly open = new Set<InProcessStream>();
  private nextId = 1;

  constructor(private readonly server: Server) {}

  get activeCalls(): number {
    return this.open.size;
  }

  requestConnection(): void {}

  shutdown(graceful = true): void {
    if (this.state === "SHUTDOWN") return;
    this.state = "SHUTDOWN";
    if (!graceful) for (const s of this.open) s.close(ResetCode.Cancel);
  }

  openStream(headers: StreamHeaders, reset: AbortSignal | undefined): ClientCallStream {
    if (this.state !== "READY") throw new Error("the in-process channel is closed");
    const client = new InProcessStream(true, this.nextId);
    const server = new InProcessStream(false, this.nextId);
    this.nextId += 2;
    client.peer = server;
    server.peer = client;
    this.open.add(client);
    client.once("close", () => this.open.delete(client));
    reset?.addEventListener("abort", () => client.close(ResetCode.Cancel), { once: true });
    const incoming = stringHeaders(headers);
    // The server sees the stream after this call returned, as it would a network stream.
    queueMicrotask(() => (this.server as unknown as ServeStream)[kServeStream](server, incoming));
    return client;
  }

  dataObserver(): DataObserver | undefined {
    return undefined;
  }

  unprocessed(): boolean {
    return false;
  }

  connectionLost(): boolean {
    return false;
  }

  endReason(): Error | undefined {
    return undefined;
  }

  explain(error: Error): Error {
    return error;
  }
}

type ServeStream = { [kServeStream](stream: ServerCallStream, headers: IncomingStreamHeaders): void };

type Item =
  | { readonly kind: "data"; readonly chunk: Buffer; readonly done: ((error?: Error | null) => void) | undefined }
  | { readonly kind: "headers"; readonly event: "response" | "trailers"; readonly headers: IncomingStreamHeaders }
  | { readonly kind: "end" };

/**
 * One side of an in-process stream. Implements both the client's and the server's view (the
 * server-only methods throw on the client's side).
 */
class InProcessStream extends EventEmitter implements ClientCallStream, ServerCallStream {
  peer!: InProcessStream;
  destroyed = false;
  closed = false;
  writableEnded = false;
  readableEnded = false;
  rstCode: number | undefined;
  readonly state: { localClose?: number } = {};
  /** What the server reports as the peer (`ctx.peer`): "in-process". */
  readonly session = inProcessSession;
  private paused = false;
  private readonly inbox: Item[] = [];
  private scheduled = false;
  private waitForTrailers = false;
  private headersSent = false;

  constructor(
    private readonly isClient: boolean,
    readonly id: number,
  ) {
    super();
  }

  /** Writes go straight into the peer's inbox: nothing waits on our side. */
  get writableLength(): number {
    return 0;
  }

  get readableLength(): number {
    let n = 0;
    for (const item of this.inbox) if (item.kind === "data") n += item.chunk.byteLength;
    return n;
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.writableEnded || this.destroyed) {
      callback?.(new Error("write after end"));
      return false;
    }
    // The peer may keep views of what it receives (a stream's chunks are its own), so it gets
    // a Buffer over these bytes; the writer never reuses a buffer it wrote.
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.peer.receive({ kind: "data", chunk: buf, done: callback });
    return true;
  }

  end(): this {
    if (this.writableEnded || this.destroyed) return this;
    this.writableEnded = true;
    if (!this.isClient && this.waitForTrailers) {
      // node asks for the trailers once the last DATA is out.
      setImmediate(() => {
        if (!this.destroyed) this.emit("wantTrailers");
      });
      return this;
    }
    this.sendEnd();
    return this;
  }

  respond(headers: StreamHeaders, options: { endStream?: boolean; waitForTrailers?: boolean } = {}): void {
    if (this.isClient) throw new Error("respond() is the server's");
    if (this.headersSent || this.destroyed) return;
    this.headersSent = true;
    this.waitForTrailers = options.waitForTrailers === true;
    this.peer.receive({ kind: "headers", event: "response", headers: stringHeaders({ ":status": 200, ...headers }) });
    if (options.endStream === true) {
      this.writableEnded = true;
      this.sendEnd();
    }
  }

  sendTrailers(headers: StreamHeaders): void {
    if (this.isClient) throw new Error("sendTrailers() is the server's");
    if (this.destroyed) return;
    this.peer.receive({ kind: "headers", event: "trailers", headers: stringHeaders(headers) });
    this.sendEnd();
  }

  cork(): void {}
  uncork(): void {}

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.schedule();
    return this;
  }

  /**
   * RST_STREAM(code): this side closes now, the peer one turn later (as the frame would reach
   * it over a socket); what was in flight is dropped. The peer learns of the reset in one event
   * (destroyed and 'aborted' together), as from node: a producer looping on a stream it thinks
   * open must not see it destroyed without being told why.
   */
  close(code: number = ResetCode.NoError): void {
    if (this.closed) return;
    this.reset(code);
    const peer = this.peer;
    setImmediate(() => {
      if (peer.closed) return;
      peer.reset(code);
      // node tells a side whose own half was still open that the peer aborted the stream.
      if (!peer.writableEnded) peer.emit("aborted");
    });
  }

  destroy(error?: Error): this {
    if (!this.closed) this.close(error === undefined ? ResetCode.Cancel : ResetCode.InternalError);
    return this;
  }

  private sendEnd(): void {
    this.state.localClose = 1;
    this.peer.receive({ kind: "end" });
  }

  private receive(item: Item): void {
    if (this.closed) {
      // Taken and dropped, but a turn later: a writer looping in microtasks must fill its buffer
      // and wait, so that the reset on its way to it can arrive.
      if (item.kind === "data" && item.done !== undefined) setImmediate(item.done);
      return;
    }
    this.inbox.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(deliver, this);
  }

  /** @internal Hands the peer's items to our listeners, in order, until paused. */
  deliver(): void {
    this.scheduled = false;
    const inbox = this.inbox;
    while (inbox.length > 0 && !this.closed) {
      const item = inbox[0]!;
      if (item.kind === "data") {
        if (this.paused) return;
        inbox.shift();
        this.emit("data", item.chunk);
        item.done?.();
      } else if (item.kind === "headers") {
        // Trailers follow the data before them, as they do on the wire.
        inbox.shift();
        this.emit(item.event, item.headers);
      } else {
        if (this.paused) return;
        inbox.shift();
        this.readableEnded = true;
        this.emit("end");
        this.closeIfDone();
      }
    }
  }

  /** Both ENDs delivered: the stream is closed on both sides. */
  private closeIfDone(): void {
    const peer = this.peer;
    if (this.readableEnded && peer.readableEnded) {
      this.finish();
      peer.finish();
    }
  }

  private reset(code: number): void {
    this.rstCode = code;
    const inbox = this.inbox.splice(0);
    // Writers waiting for these bytes to be taken must not wait for ever.
    for (const item of inbox) if (item.kind === "data") item.done?.();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    setImmediate(() => this.emit("close"));
  }
}

const inProcessSession = Object.freeze({ socket: Object.freeze({ remoteAddress: "in-process", remotePort: undefined }) });

function deliver(stream: InProcessStream): void {
  stream.deliver();
}

/** Header values as a receiver gets them from node: strings (numbers converted), lists kept. */
function stringHeaders(headers: StreamHeaders): IncomingStreamHeaders {
  const out: IncomingStreamHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = typeof value === "number" ? String(value) : value;
  }
  return out;
}
