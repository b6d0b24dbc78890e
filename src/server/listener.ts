import { createServer as createHttp1Server, type IncomingMessage, type Server as Http1Server, type ServerResponse } from "node:http";
import {
  createSecureServer as createHttp2SecureServer,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2Session,
  type SecureServerOptions,
  type ServerHttp2Stream,
  type IncomingHttpHeaders,
} from "node:http2";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import type { Logger } from "../logger.js";
import { startTimer, type LongTimer } from "../timer.js";

/** What the listener hands the server: HTTP/2 sessions and streams, and HTTP/1.1 requests. */
export interface ListenerHandlers {
  onSession(session: Http2Session): void;
  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  /** An HTTP/1.1 request (gRPC-Web, Connect, CORS preflight); absent: HTTP/1.1 is refused. */
  onHttp1Request: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
}

export interface ListenerOptions {
  host: string;
  port: number;
  /** node:http2 options (settings, limits). */
  http2: Record<string, unknown>;
  /** TLS options; plaintext when undefined. */
  tls: SecureServerOptions | undefined;
  /** A connection must send its first bytes (or finish TLS) within this long. */
  handshakeTimeoutMs: number;
  logger: Logger;
}

// The HTTP/2 client preface starts "PRI * HTTP/2.0"; no HTTP/1.1 method starts with "PRI".
const prefaceStart = Buffer.from("PRI");

/**
 * The listening socket of a server and how a connection reaches HTTP/2 or HTTP/1.1.
 *
 * Plaintext: one TCP listener reads a connection's first three bytes; the HTTP/2 preface goes
 * to node:http2 (h2c with prior knowledge, as every gRPC client connects), anything else to
 * node:http for gRPC-Web and Connect over HTTP/1.1. The bytes read are put back (`unshift`)
 * before the socket is handed over; node:http2 takes what a socket has buffered into its
 * session (checked on Node 20, 22 and 24). With TLS, ALPN decides ("h2" or "http/1.1").
 *
 * HTTP/1.1 sockets are tracked so that shutdown can close the idle ones and end the rest after
 * their response.
 */
export class Listener {
  readonly http2: Http2Server;
  private readonly front: NetServer | Http2Server;
  private readonly http1: Http1Server | undefined;
  /** HTTP/1.1 sockets and how many requests each is serving now. */
  private readonly http1Sockets = new Map<Socket, number>();
  /** Sockets still being sniffed (plaintext), timed out if silent. */
  private readonly sniffing = new Set<Socket>();
  private closing = false;
  /** HTTP/1.1 sockets waiting for a request's headers, each with its deadline. */
  private readonly headerTimers = new Map<Socket, LongTimer>();
  /** HTTP/1.1 responses not yet finished (told to close the connection when shutdown begins). */
  private readonly http1Responses = new Set<ServerResponse>();

  private constructor(
    private readonly options: ListenerOptions,
    private readonly handlers: ListenerHandlers,
  ) {
    const tls = options.tls;
    const h1 = handlers.onHttp1Request;
    if (tls === undefined) {
      this.http2 = createHttp2Server(options.http2);
      if (h1 !== undefined) {
        // node:http enforces headersTimeout only on a server that listens itself; this one is handed
        // sockets, so slow headers are timed here (adoptHttp1). Bodies may stream as long as a call runs.
        this.http1 = createHttp1Server({ headersTimeout: 0, requestTimeout: 0, keepAliveTimeout: 5_000 });
        this.http1.on("request", (req: IncomingMessage, res: ServerResponse) => this.onHttp1Request(req, res));
        // What node answers by default (431 for headers past its limit, else 400); a TLS client
        // that reached this plaintext port reads it as "not TLS".
        this.http1.on("clientError", (e: Error & { code?: string }, socket: Socket) => {
          const status = e.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
          if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
          socket.destroy();
        });
      }
      this.front = createNetServer((socket) => this.sniff(socket));
    } else {
      const alpn = h1 === undefined ? ["h2"] : ["h2", "http/1.1"];
      this.http2 = createHttp2SecureServer({ ...options.http2, ...tls, allowHTTP1: h1 !== undefined, ALPNProtocols: alpn, handshakeTimeout: Math.min(options.handshakeTimeoutMs, 2 ** 31 - 1) });
      if (h1 !== undefined) {
        // node would also turn every HTTP/2 stream into a compatibility request/response pair
        // once a 'request' listener exists (its `setupCompat`); gRPC streams must stay streams.
        for (const f of this.http2.listeners("newListener")) if (f.name === "setupCompat") this.http2.removeListener("newListener", f as never);
        this.http2.on("request", (req: IncomingMessage, res: ServerResponse) => {
          // Should a node version name that function otherwise, HTTP/2 streams would also arrive
          // here as compatibility requests: they are served as streams, never twice.
          if (req.httpVersionMajor === 2) return;
          this.onHttp1Request(req, res);
        });
      }
      this.front = this.http2;
      // node's own HTTP/1.1 under TLS times out nothing after the handshake: the same timer as in plaintext.
      if (h1 !== undefined) {
        this.http2.on("secureConnection", (s: Socket & { alpnProtocol?: string | false }) => {
          if (s.alpnProtocol !== "h2") this.adoptHttp1(s);
        });
      }
    }
    this.http2.on("session", (session: Http2Session) => handlers.onSession(session));
    this.http2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => handlers.onStream(stream, headers));
  }

  /** Listens; resolves once bound. */
  static open(options: ListenerOptions, handlers: ListenerHandlers): Promise<{ listener: Listener; host: string; port: number }> {
    let listener: Listener;
    try {
      listener = new Listener(options, handlers);
    } catch (e) {
      // Options node refuses (a key that is not PEM): said as the option the user passed.
      return Promise.reject(options.tls !== undefined && e instanceof Error ? new Error(`listen({ tls }): ${e.message}`, { cause: e }) : e);
    }
    const server = listener.front;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        server.on("error", (e: Error) => options.logger.error("server error", e));
        // A failed handshake (no client certificate under mTLS, a plaintext client) is the client's problem.
        if (options.tls !== undefined) server.on("tlsClientError", (e: Error) => options.logger.info(`TLS handshake failed: ${e.message}`));
        const addr = server.address() as AddressInfo;
        resolve({ listener, host: addr.address, port: addr.port });
      });
    });
  }

  /** HTTP/1.1 connections open now. */
  get http1Connections(): number {
    return this.http1Sockets.size;
  }

  /** Stops accepting connections; resolves once every connection has closed too. */
  close(): Promise<void> {
    this.closing = true;
    // Answers still to come say `connection: close`: a client told keep-alive would send its next request into a closing socket.
    for (const res of this.http1Responses) if (!res.headersSent) res.shouldKeepAlive = false;
    // Connections still being sniffed finish it: an HTTP/2 one then gets its final GOAWAY from
    // the server (as one accepted a moment earlier would), an HTTP/1.1 one its answer.
    this.closeIdleHttp1();
    return new Promise((resolve) => this.front.close(() => resolve()));
  }

  /** Destroys every HTTP/1.1 connection and every one not yet handed to HTTP/2, now (their calls see the client go). */
  destroyUnserved(): void {
    for (const s of this.http1Sockets.keys()) s.destroy();
    for (const s of this.sniffing) s.destroy();
  }

  private closeIdleHttp1(): void {
    for (const [s, active] of this.http1Sockets) if (active === 0) s.destroy();
  }

  private sniff(socket: Socket): void {
    this.sniffing.add(socket);
    let head: Buffer | undefined;
    const timer = startTimer(this.options.handshakeTimeoutMs, () => socket.destroy());
    const done = (): void => {
      timer.cancel();
      this.sniffing.delete(socket);
      socket.off("data", onData);
      socket.off("close", done);
    };
    const onData = (chunk: Buffer): void => {
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      if (head.byteLength < prefaceStart.byteLength) return;
      done();
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, prefaceStart.byteLength).equals(prefaceStart)) {
        this.http2.emit("connection", socket);
      } else if (this.http1 !== undefined) {
        this.adoptHttp1(socket);
        this.http1.emit("connection", socket);
        socket.resume();
      } else {
        // Read (and drop) what the client still sends: closing with unread bytes would reset the
        // connection and could destroy this answer before the client reads it.
        socket.resume();
        socket.setTimeout(Math.min(this.options.handshakeTimeoutMs, 2 ** 31 - 1), () => socket.destroy());
        socket.end("HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nThis server speaks gRPC over HTTP/2 only.\n");
      }
    };
    socket.on("data", onData);
    socket.on("close", done);
    socket.on("error", () => socket.destroy());
  }

  /**
   * An HTTP/1.1 socket handed to node:http: counted (shutdown closes it when idle), and given
   * `handshakeTimeoutMs` to send each request's headers (a slowloris client is closed).
   */
  private adoptHttp1(socket: Socket): void {
    this.http1Sockets.set(socket, 0);
    socket.once("close", () => {
      this.http1Sockets.delete(socket);
      this.headerTimers.get(socket)?.cancel();
      this.headerTimers.delete(socket);
    });
    this.awaitHeaders(socket);
  }

  private awaitHeaders(socket: Socket): void {
    this.headerTimers.get(socket)?.cancel();
    this.headerTimers.set(socket, startTimer(this.options.handshakeTimeoutMs, () => socket.destroy()));
  }

  private onHttp1Request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    if (!this.http1Sockets.has(socket)) return void res.destroy();
    this.headerTimers.get(socket)?.cancel();
    this.http1Sockets.set(socket, this.http1Sockets.get(socket)! + 1);
    this.http1Responses.add(res);
    res.once("close", () => {
      this.http1Responses.delete(res);
      if (!this.http1Sockets.has(socket)) return;
      const left = this.http1Sockets.get(socket)! - 1;
      this.http1Sockets.set(socket, left);
      if (left === 0 && this.closing) socket.destroy();
      else if (left === 0) this.awaitHeaders(socket);
    });
    // During shutdown, answer and close: no next request on this connection.
    if (this.closing) res.shouldKeepAlive = false;
    this.handlers.onHttp1Request!(req, res);
  }
}
