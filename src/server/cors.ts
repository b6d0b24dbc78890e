import type { IncomingStreamHeaders, StreamHeaders } from "../transport/call-stream.js";

/**
 * CORS for browser clients (gRPC-Web, Connect). Nothing is allowed unless configured: without
 * `cors`, a browser on another origin gets no Access-Control headers and its browser refuses the
 * response. With it, the allowed origins may send the headers each protocol needs (and the
 * metadata keys listed) and read the status, compression and listed metadata headers.
 */
export interface CorsOptions {
  /**
   * Origins allowed to call, as browsers send them ("https://app.example.com"): a list, a
   * predicate, or "*" for any origin (then credentials are never allowed, as browsers require).
   */
  allowedOrigins: readonly string[] | "*" | ((origin: string) => boolean);
  /** Request metadata keys browsers may send, besides the protocols' own headers. Default none. */
  allowedHeaders?: readonly string[];
  /** Response metadata keys browser code may read, besides the status and encoding headers. Default none. */
  exposedHeaders?: readonly string[];
  /** Allow cookies and HTTP authentication (`credentials: "include"`). Default false. */
  allowCredentials?: boolean;
  /** How long a browser may reuse a preflight answer, in seconds. Default 7200 (Chromium's cap). */
  maxAgeSeconds?: number;
}

/** The request headers gRPC-Web and Connect clients send, which a preflight must allow. */
export const protocolRequestHeaders: readonly string[] = [
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
  "grpc-timeout",
  "grpc-accept-encoding",
  "grpc-encoding",
  "x-grpc-web",
  "x-user-agent",
];

/** The response headers browser clients must be able to read. */
export const protocolResponseHeaders: readonly string[] = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "grpc-encoding",
  "grpc-accept-encoding",
  "connect-content-encoding",
  "connect-accept-encoding",
  "content-encoding",
  "etag",
];

/** A server's CORS rules, resolved once. */
export class Cors {
  private readonly allowHeaders: string;
  private readonly exposeHeaders: string;
  private readonly allowed: (origin: string) => boolean;
  private readonly anyOrigin: boolean;

  constructor(private readonly options: CorsOptions) {
    const origins = options.allowedOrigins;
    this.anyOrigin = origins === "*";
    this.allowed = typeof origins === "function" ? origins : origins === "*" ? () => true : (o) => origins.includes(o);
    this.allowHeaders = [...protocolRequestHeaders, ...(options.allowedHeaders ?? [])].join(", ");
    this.exposeHeaders = [...protocolResponseHeaders, ...(options.exposedHeaders ?? [])].join(", ");
  }

  /** The CORS headers of a response to `origin`; undefined when the request has none or it is not allowed. */
  responseHeaders(headers: IncomingStreamHeaders): StreamHeaders | undefined {
    const origin = headers.origin;
    if (typeof origin !== "string" || !this.allowed(origin)) return undefined;
    const out: StreamHeaders = {
      "access-control-allow-origin": this.allowOrigin(origin),
      "access-control-expose-headers": this.exposeHeaders,
      vary: "origin",
    };
    if (this.credentials) out["access-control-allow-credentials"] = "true";
    return out;
  }

  /** The answer to a preflight (OPTIONS) request: its status and headers. */
  preflight(headers: IncomingStreamHeaders): StreamHeaders {
    const origin = headers.origin;
    const method = headers["access-control-request-method"];
    if (typeof origin !== "string" || !this.allowed(origin) || (method !== "POST" && method !== "GET")) {
      return { ":status": 403, "content-type": "text/plain", vary: "origin" };
    }
    const out: StreamHeaders = {
      ":status": 204,
      "access-control-allow-origin": this.allowOrigin(origin),
      "access-control-allow-methods": "POST, GET",
      "access-control-allow-headers": this.allowHeaders,
      "access-control-max-age": String(this.options.maxAgeSeconds ?? 7200),
      vary: "origin, access-control-request-method, access-control-request-headers",
    };
    if (this.credentials) out["access-control-allow-credentials"] = "true";
    return out;
  }

  private get credentials(): boolean {
    return this.options.allowCredentials === true && !this.anyOrigin;
  }

  private allowOrigin(origin: string): string {
    return this.anyOrigin && !this.credentials ? "*" : origin;
  }
}
