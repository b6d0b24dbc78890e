import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code } from "../protocol/code.js";
import { parseConnectContentType, parseConnectGetQuery } from "../protocol/connect.js";
import { RpcError } from "../protocol/errors.js";
import { parseGrpcWebContentType } from "../protocol/grpc-web.js";
import { parseContentType } from "../protocol/headers.js";
import { statusHeaders } from "../protocol/status.js";
import type { IncomingStreamHeaders, ServerCallStream, StreamHeaders } from "../transport/call-stream.js";
import { ConnectStream } from "../transport/connect-stream.js";
import { ConnectUnaryStream } from "../transport/connect-unary-stream.js";
import { GrpcWebStream } from "../transport/grpc-web-stream.js";
import type { Logger } from "../logger.js";
import type { Cors } from "./cors.js";

/** What the server knows that deciding on a non-gRPC request needs. */
export interface WebEnvironment {
  readonly cors: Cors | undefined;
  /** The method served at a `:path` (without query), if any. */
  methodAt(path: string): DescMethod | undefined;
  /** Whether the server has a codec of this name ("proto", "json", …). */
  hasCodec(name: string): boolean;
  /** The receive limit: a Connect unary body without a length is buffered up to it, no further. */
  readonly maxReceiveBytes: number;
  /** Answers GET and HEAD requests for paths that are no method (pages, /metrics), if the server has such a handler. */
  readonly http: HttpHandler | undefined;
  readonly logger: Logger;
}

/** A GET or HEAD request for a path that is no method: a page, `/metrics`, a load balancer's probe. */
export interface HttpRequest {
  readonly method: "GET" | "HEAD";
  /** The path without the query ("/", "/metrics"). */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingStreamHeaders;
}

/** The answer to an `HttpRequest`. */
export interface HttpResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/**
 * Serves what is not an RPC on the server's port (`createServer({ http })`): return a response,
 * or undefined for 404. Runs for GET and HEAD of paths where no method is served.
 */
export type HttpHandler = (request: HttpRequest) => HttpResponse | undefined | Promise<HttpResponse | undefined>;

/** A request turned into a gRPC call's stream and headers. */
export interface TranslatedRequest {
  stream: ServerCallStream;
  headers: IncomingStreamHeaders;
  codec: string;
}

const servedTypes = "gRPC (application/grpc, over HTTP/2), gRPC-Web (application/grpc-web[-text][+proto|+json]) and Connect (application/proto, application/json, application/connect+proto|json, or GET)";

/**
 * Decides what a request that is not plain gRPC over HTTP/2 is, and either returns it as a gRPC
 * call (through the protocol's translation) or answers it here as its protocol's spec says:
 * CORS preflights; 405 for other methods; 415 for an unknown content type, a codec the server
 * lacks, or a Connect form that does not fit the method's kind; 505 for gRPC over HTTP/1.1.
 * Errors found in the request's Connect headers (a malformed timeout) are answered as Connect
 * errors. Unknown methods are left to the call path, which answers UNIMPLEMENTED in the
 * request's protocol.
 */
export function translateWebRequest(raw: ServerCallStream, headers: IncomingStreamHeaders, env: WebEnvironment): TranslatedRequest | undefined {
  const method = headers[":method"];
  if (method === "OPTIONS") {
    if (env.cors === undefined) plainAnswer(raw, { ":status": 403 }, "CORS is not enabled on this server (createServer({ cors }))");
    else plainAnswer(raw, env.cors.preflight(headers));
    return undefined;
  }
  const cors = env.cors?.responseHeaders(headers);
  if (method === "GET" || method === "HEAD") {
    const full = (headers[":path"] as string | undefined) ?? "";
    const q = full.indexOf("?");
    const path = q < 0 ? full : full.slice(0, q);
    if (env.methodAt(path) === undefined && !(q >= 0 && /(^|&)encoding=/.test(full.slice(q + 1)))) {
      servePage(raw, { method, path, query: new URLSearchParams(q < 0 ? "" : full.slice(q + 1)), headers }, env, cors);
      return undefined;
    }
    if (method === "GET") return connectGet(raw, headers, env, cors);
  }
  if (method !== "POST") {
    plainAnswer(raw, { ":status": 405, allow: "POST, GET", ...cors }, `method ${String(method)} is not allowed: RPCs are POST (or GET for Connect's side-effect-free methods)`);
    return undefined;
  }
  const contentType = typeof headers["content-type"] === "string" ? headers["content-type"] : undefined;
  const web = parseGrpcWebContentType(contentType);
  if (web !== undefined) {
    if (!env.hasCodec(web.codec)) return unsupported(raw, contentType, cors);
    return { stream: new GrpcWebStream(raw, web, cors), headers: GrpcWebStream.requestHeaders(headers, web), codec: web.codec };
  }
  const connect = parseConnectContentType(contentType);
  if (connect !== undefined) {
    const target = env.methodAt(headers[":path"] as string);
    if (!env.hasCodec(connect.codec) || (target !== undefined && (target.methodKind === "unary") === connect.streaming)) return unsupported(raw, contentType, cors);
    if (connect.streaming) {
      const stream = new ConnectStream(raw, connect.codec, cors);
      const translated = ConnectStream.requestHeaders(headers, connect.codec);
      return translated instanceof RpcError ? answerStatus(stream, translated) : { stream, headers: translated, codec: connect.codec };
    }
    const encoding = typeof headers["content-encoding"] === "string" ? headers["content-encoding"].trim().toLowerCase() : undefined;
    const compression = encoding === undefined || encoding === "" || encoding === "identity" ? undefined : encoding;
    const length = typeof headers["content-length"] === "string" && /^\d{1,15}$/.test(headers["content-length"]) ? Number(headers["content-length"]) : undefined;
    const stream = new ConnectUnaryStream(raw, connect.codec, cors, { kind: "post", contentLength: length }, compression !== undefined, env.maxReceiveBytes, undefined);
    const translated = ConnectUnaryStream.requestHeaders(headers, connect.codec, compression);
    return translated instanceof RpcError ? answerStatus(stream, translated) : { stream, headers: translated, codec: connect.codec };
  }
  if (parseContentType(contentType) !== undefined) {
    plainAnswer(raw, { ":status": 505, ...cors }, "gRPC needs HTTP/2; over HTTP/1.1 use gRPC-Web or the Connect protocol");
    return undefined;
  }
  return unsupported(raw, contentType, cors);
}

/** A Connect unary GET: the request is in the query; only methods declared free of side effects. */
function connectGet(raw: ServerCallStream, headers: IncomingStreamHeaders, env: WebEnvironment, cors: StreamHeaders | undefined): TranslatedRequest | undefined {
  const full = (headers[":path"] as string | undefined) ?? "";
  const q = full.indexOf("?");
  const path = q < 0 ? full : full.slice(0, q);
  const target = env.methodAt(path);
  if (target !== undefined && (target.methodKind !== "unary" || target.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS)) {
    plainAnswer(raw, { ":status": 405, allow: "POST", ...cors }, `${path} has side effects: call it with POST (GET is for methods with idempotency_level = NO_SIDE_EFFECTS)`);
    return undefined;
  }
  const request = parseConnectGetQuery(q < 0 ? "" : full.slice(q + 1));
  if ("error" in request) {
    const stream = new ConnectUnaryStream(raw, "json", cors, { kind: "get", message: new Uint8Array(0) }, false, env.maxReceiveBytes, undefined);
    return answerStatus(stream, new RpcError(Code.InvalidArgument, request.error));
  }
  if (!env.hasCodec(request.codec)) return unsupported(raw, `encoding=${request.codec}`, cors);
  const ifNoneMatch = typeof headers["if-none-match"] === "string" ? headers["if-none-match"] : undefined;
  const stream = new ConnectUnaryStream(raw, request.codec, cors, { kind: "get", message: request.message }, request.compression !== undefined, env.maxReceiveBytes, ifNoneMatch);
  const translated = ConnectUnaryStream.requestHeaders({ ...headers, ":path": path, ":method": "POST" }, request.codec, request.compression);
  return translated instanceof RpcError ? answerStatus(stream, translated) : { stream, headers: translated, codec: request.codec };
}

/** A request for a path that is no method: the server's `http` handler answers it, or 404. */
function servePage(raw: ServerCallStream, request: HttpRequest, env: WebEnvironment, cors: StreamHeaders | undefined): void {
  const notFound = () => plainAnswer(raw, { ":status": 404, ...cors }, `no method or page at ${request.path}`);
  if (env.http === undefined) return notFound();
  const answer = (r: HttpResponse | undefined): void => {
    if (r === undefined) return notFound();
    if (raw.destroyed) return;
    const body = typeof r.body === "string" ? Buffer.from(r.body) : (r.body ?? new Uint8Array(0));
    const head: StreamHeaders = { ":status": r.status ?? 200, "content-length": body.byteLength, ...cors };
    for (const [k, v] of Object.entries(r.headers ?? {})) head[k.toLowerCase()] = v;
    if (request.method === "HEAD" || body.byteLength === 0) return raw.respond(head, { endStream: true });
    raw.respond(head);
    raw.write(body);
    raw.end();
  };
  const failed = (e: unknown): void => {
    env.logger.error(`http handler failed for ${request.method} ${request.path}`, e);
    plainAnswer(raw, { ":status": 500, ...cors }, "the page handler failed (details are in the server log)");
  };
  try {
    const r = env.http(request);
    if (r instanceof Promise) r.then(answer, failed);
    else answer(r);
  } catch (e) {
    failed(e);
  }
}

function unsupported(raw: ServerCallStream, contentType: string | undefined, cors: StreamHeaders | undefined): undefined {
  plainAnswer(raw, { ":status": 415, "accept-post": "application/grpc-web, application/grpc-web-text, application/proto, application/json, application/connect+proto, application/connect+json", ...cors }, `unsupported content type ${JSON.stringify(contentType ?? "")}: this server speaks ${servedTypes}`);
  return undefined;
}

/** Answers a protocol-level error through the protocol's own stream (Connect error JSON). */
function answerStatus(stream: ServerCallStream, error: RpcError): undefined {
  stream.respond({ ":status": 200, ...statusHeaders(error.code, error.rawMessage) }, { endStream: true });
  return undefined;
}

/** An HTTP answer that is not a call: the status, and a line of text saying what to do. */
function plainAnswer(raw: ServerCallStream, headers: StreamHeaders, text?: string): void {
  if (raw.destroyed) return;
  if (text === undefined) return raw.respond(headers, { endStream: true });
  const body = Buffer.from(`${text}\n`);
  raw.respond({ "content-type": "text/plain; charset=utf-8", "content-length": body.byteLength, ...headers });
  raw.write(body);
  raw.end();
}
