/**
 * A gRPC server that answers before the request is in: as soon as a call's headers arrive it
 * sends a trailers-only RESOURCE_EXHAUSTED and RST_STREAM(NO_ERROR), the way grpc-go refuses a
 * request whose length prefix is over its receive limit (RFC 9113 §8.1: a server may answer
 * early and reset the stream with NO_ERROR; the client must then stop sending and take the
 * answer). A plain node:http2 server, so the behaviour does not depend on Rill's.
 */
import { createServer, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { stopClientAfterStatusHeaders } from "../../../src/server/stop-after-status-headers.js";

export interface EarlyAnswerServer {
  readonly port: number;
  readonly target: string;
  /** Calls answered so far. */
  readonly answered: number;
  close(): Promise<void>;
}

export interface EarlyAnswerOptions {
  /** grpc-status of the answer. Default 8 (RESOURCE_EXHAUSTED). */
  code?: number;
  /** grpc-message of the answer. */
  message?: string;
  /**
   * Which calls are answered early; the others read their whole request and get one empty
   * message and OK, so small calls beside a refused one can succeed. Default: every call.
   */
  refuse?: (headers: IncomingHttpHeaders) => boolean;
}

export async function startEarlyAnswerServer(options: EarlyAnswerOptions = {}): Promise<EarlyAnswerServer> {
  const sessions = new Set<Http2Session>();
  let answered = 0;
  const server = createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on("error", () => {});
    if (options.refuse !== undefined && !options.refuse(headers)) {
      stream.resume();
      stream.on("end", () => {
        if (stream.destroyed) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.alloc(5));
      });
      return;
    }
    answered++;
    stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(options.code ?? 8),
        "grpc-message": encodeURIComponent(options.message ?? "request refused before it was read"),
      },
      { endStream: true },
    );
    // RST_STREAM(NO_ERROR) once the status is on the wire, as grpc-go does (Node 22 drops the
    // status HEADERS when the stream is reset in the same turn).
    stopClientAfterStatusHeaders(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    target: `127.0.0.1:${port}`,
    get answered() {
      return answered;
    },
    close() {
      for (const s of sessions) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
