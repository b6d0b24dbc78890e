/**
 * Request and response header helpers: content type, `:path`, and the checks a server makes before
 * routing a request.
 *
 * Everything here reads header records and returns plain values; nothing throws on a peer's input.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests
 */
import { Code } from "./code.js";

/**
 * A header block as `node:http2` delivers it: lower-case names; a repeated header may arrive as an
 * array or joined with ", "; numbers only for `:status`.
 */
export type HeaderRecord = Record<string, string | string[] | number | undefined>;

/** The codec names Rill ships with; `parseContentType` also passes through any other `+suffix`. */
export type CodecName = "proto" | "json";

// The suffix is an RFC 9110 token; parameters after ";" are allowed and ignored.
/** The answer for plain `application/grpc`, by far the most common value: no match or object per call. */
const protoContentType: { codec: string } = Object.freeze({ codec: "proto" });

const contentTypePattern = /^application\/grpc(?:\+([!#$%&'*.^_`|~0-9a-z-]+))?[ \t]*(?:;.*)?$/is;

/**
 * The codec named by a `content-type`, or undefined when it is not a gRPC content type.
 *
 * `application/grpc` means "proto"; `application/grpc+<codec>` names the codec, lower-cased.
 * Matching is case-insensitive and ignores parameters. `application/grpc-web`, `application/json`
 * and an empty suffix are not gRPC and give undefined.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Content-Type)
 */
export function parseContentType(value: string | undefined): { codec: string } | undefined {
  if (value === undefined) return undefined;
  if (value === "application/grpc") return protoContentType;
  const match = contentTypePattern.exec(value);
  if (match === null) return undefined;
  return { codec: match[1] === undefined ? "proto" : match[1].toLowerCase() };
}

/**
 * The `content-type` to send for `codec`: plain `application/grpc` for "proto", which every peer
 * understands, otherwise `application/grpc+<codec>`.
 */
export function contentTypeFor(codec: string): string {
  return codec === "proto" ? "application/grpc" : `application/grpc+${codec}`;
}

// A fully-qualified protobuf service name (dotted identifiers) and a method identifier.
const pathPattern = /^\/((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*)\/([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * The service and method named by a request's `:path` ("/pkg.Service/Method").
 *
 * Returns undefined for anything else: a missing path, extra segments, a query string, or names
 * that are not protobuf identifiers. Callers answer that with UNIMPLEMENTED.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Path)
 */
export function parsePath(path: string | undefined): { service: string; method: string } | undefined {
  if (path === undefined) return undefined;
  const match = pathPattern.exec(path);
  if (match === null) return undefined;
  return { service: match[1]!, method: match[2]! };
}

/**
 * The checks a server runs on request headers before routing; undefined when the request is gRPC.
 *
 * `:method` must be POST (else HTTP 405, INTERNAL, as grpc-go answers) and `content-type` must be a
 * gRPC content type (else HTTP 415 Unsupported Media Type, as the spec asks, with INVALID_ARGUMENT).
 * `te: trailers` is deliberately not required: grpc-js and some proxies omit it.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests
 */
export function validateRequestHeaders(headers: HeaderRecord): { code: Code; message: string; httpStatus?: number } | undefined {
  const method = firstValue(headers[":method"]);
  if (method !== "POST") {
    return { code: Code.Internal, message: `invalid gRPC request method ${JSON.stringify(method ?? "")}: must be POST`, httpStatus: 405 };
  }
  const contentType = firstValue(headers["content-type"]);
  if (parseContentType(contentType) === undefined) {
    return { code: Code.InvalidArgument, message: `invalid gRPC request content-type ${JSON.stringify(contentType ?? "")}`, httpStatus: 415 };
  }
  return undefined;
}

function firstValue(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value[0];
  return typeof value === "string" ? value : String(value);
}
