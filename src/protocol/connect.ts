/**
 * The Connect protocol's wire rules, as pure functions: its content types, error codes and their
 * HTTP statuses, the error JSON, the streaming end-of-stream message, `connect-timeout-ms`, and
 * unary GET requests. Both sides of Rill use these: the server translates a Connect request into
 * a gRPC call and the call's outcome back (`transport/connect-stream.ts`), the client the reverse.
 *
 * Nothing here throws on a peer's input: parsers return undefined or an error to answer with.
 * @see https://connectrpc.com/docs/protocol
 */
import { Code } from "./code.js";

/** A Connect request's content type: the codec, and whether the call uses streaming envelopes. */
export interface ConnectContentType {
  codec: string;
  streaming: boolean;
}

// application/proto, application/json (unary); application/connect+proto… (streaming). A
// `charset=utf-8` parameter is allowed on JSON; other parameters are ignored.
const contentTypePattern = /^application\/(connect\+)?([!#$%&'*.^_`|~0-9a-z-]+)[ \t]*(?:;.*)?$/is;

/**
 * The codec and kind named by a Connect `content-type`, or undefined for anything else (gRPC and
 * gRPC-Web types included: they are not Connect's).
 */
export function parseConnectContentType(value: string | undefined): ConnectContentType | undefined {
  if (value === undefined) return undefined;
  const m = contentTypePattern.exec(value);
  if (m === null) return undefined;
  const codec = m[2]!.toLowerCase();
  if (codec === "grpc" || codec.startsWith("grpc+") || codec.startsWith("grpc-web")) return undefined;
  return { codec, streaming: m[1] !== undefined };
}

/** The `content-type` of a Connect response for `codec`. */
export function connectContentType(codec: string, streaming: boolean): string {
  return streaming ? `application/connect+${codec}` : `application/${codec}`;
}

const codeNames: readonly string[] = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** A code as Connect names it in error JSON ("invalid_argument"). */
export function connectCodeName(code: Code): string {
  return codeNames[code] ?? "unknown";
}

/** The code for a Connect code name; undefined for a name Connect does not define (and for "ok"). */
export function codeFromConnectName(name: unknown): Code | undefined {
  if (typeof name !== "string") return undefined;
  const i = codeNames.indexOf(name);
  return i > 0 ? (i as Code) : undefined;
}

/** The HTTP status a Connect unary error is sent with (the protocol's table). */
export function httpStatusForCode(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499;
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.Unauthenticated:
      return 401;
    default:
      return 500;
  }
}

/** One error detail as Connect's JSON carries it: the message's full name and its bytes. */
export interface ConnectErrorDetail {
  /** The fully-qualified message name, without "type.googleapis.com/". */
  type: string;
  value: Uint8Array;
}

/** An error as Connect sends it (unary body, or `error` of the end-of-stream message). */
export interface ConnectError {
  code: Code;
  message: string;
  details: ConnectErrorDetail[];
}

const typeUrlPrefix = "type.googleapis.com/";

/** The detail of a `google.protobuf.Any` type URL and value. */
export function detailFromAny(typeUrl: string, value: Uint8Array): ConnectErrorDetail {
  const slash = typeUrl.lastIndexOf("/");
  return { type: slash < 0 ? typeUrl : typeUrl.slice(slash + 1), value };
}

/** The `google.protobuf.Any` type URL of a detail. */
export function typeUrlOf(detail: ConnectErrorDetail): string {
  return typeUrlPrefix + detail.type;
}

/** The JSON object of an error (without `JSON.stringify`, so an end-of-stream message can nest it). */
export function connectErrorJson(error: ConnectError): Record<string, unknown> {
  const json: Record<string, unknown> = { code: connectCodeName(error.code) };
  if (error.message !== "") json.message = error.message;
  if (error.details.length > 0) {
    // Connect's values are base64 without padding; decoders accept either.
    json.details = error.details.map((d) => ({ type: d.type, value: Buffer.from(d.value).toString("base64").replace(/=+$/, "") }));
  }
  return json;
}

/**
 * An error from its JSON object, or undefined when `json` is not one (a proxy's HTML page, say):
 * the caller then falls back to the HTTP status. Details that are malformed are left out.
 */
export function parseConnectErrorJson(json: unknown): ConnectError | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const code = codeFromConnectName(o.code);
  if (code === undefined) return undefined;
  const message = typeof o.message === "string" ? o.message : "";
  const details: ConnectErrorDetail[] = [];
  if (Array.isArray(o.details)) {
    for (const d of o.details as unknown[]) {
      if (d === null || typeof d !== "object") continue;
      const { type, value } = d as { type?: unknown; value?: unknown };
      if (typeof type !== "string" || typeof value !== "string" || !/^[A-Za-z0-9+/_-]*=*$/.test(value)) continue;
      details.push({ type, value: new Uint8Array(Buffer.from(value, value.includes("-") || value.includes("_") ? "base64url" : "base64")) });
    }
  }
  return { code, message, details };
}

/** The flag bits of a Connect streaming envelope (the same 5-byte prefix as a gRPC frame). */
export const EnvelopeFlag = {
  Compressed: 0x01,
  EndStream: 0x02,
} as const;

/** Metadata as the end-of-stream message carries it: each key with its list of values. */
export type ConnectMetadataJson = Record<string, string[]>;

/** The end-of-stream message of a streaming response: the error (if the call failed) and the trailers. */
export interface EndStream {
  error?: ConnectError | undefined;
  metadata: ConnectMetadataJson;
}

/** The end-of-stream message's JSON bytes. */
export function encodeEndStream(end: EndStream): Uint8Array {
  const json: Record<string, unknown> = {};
  if (end.error !== undefined) json.error = connectErrorJson(end.error);
  if (Object.keys(end.metadata).length > 0) json.metadata = end.metadata;
  return new TextEncoder().encode(JSON.stringify(json));
}

/**
 * An end-of-stream message from its bytes. A malformed one is a protocol error of the server:
 * it comes back as an INTERNAL error, as the spec says a client must treat it.
 */
export function parseEndStream(bytes: Uint8Array): EndStream {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { error: { code: Code.Internal, message: "protocol error: the end-of-stream message is not valid JSON", details: [] }, metadata: {} };
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return { error: { code: Code.Internal, message: "protocol error: the end-of-stream message is not a JSON object", details: [] }, metadata: {} };
  }
  const o = json as Record<string, unknown>;
  const metadata: ConnectMetadataJson = {};
  if (o.metadata !== null && typeof o.metadata === "object" && !Array.isArray(o.metadata)) {
    for (const [key, values] of Object.entries(o.metadata as Record<string, unknown>)) {
      if (Array.isArray(values)) metadata[key.toLowerCase()] = values.filter((v): v is string => typeof v === "string");
    }
  }
  if (o.error === undefined || o.error === null) return { metadata };
  const error = parseConnectErrorJson(o.error) ?? { code: Code.Unknown, message: "protocol error: the end-of-stream error has no valid code", details: [] };
  return { error, metadata };
}

/**
 * The deadline a `connect-timeout-ms` value asks for, in milliseconds; `{ error }` for a value
 * that is not 1–10 ASCII digits (the spec's limit).
 */
export function parseConnectTimeout(value: string): { ms: number } | { error: string } {
  if (!/^\d{1,10}$/.test(value)) return { error: `invalid connect-timeout-ms ${JSON.stringify(value)}: must be 1 to 10 digits` };
  return { ms: Number(value) };
}

/** A `grpc-timeout` value for `ms` milliseconds (8 digits at most, rounding up to whole seconds past that). */
export function grpcTimeoutForMs(ms: number): string {
  return ms <= 99_999_999 ? `${ms}m` : `${Math.min(Math.ceil(ms / 1000), 99_999_999)}S`;
}

/** A unary GET request's parts, from its query string. */
export interface ConnectGetRequest {
  codec: string;
  /** The request message's bytes (compressed when `compression` is set). */
  message: Uint8Array;
  compression: string | undefined;
}

/**
 * The request a Connect GET carries in its query (`connect=v1`, `encoding`, `message`, `base64`,
 * `compression`), or `{ error }` saying what is missing or malformed.
 */
export function parseConnectGetQuery(query: string): ConnectGetRequest | { error: string } {
  const params = new URLSearchParams(query);
  const version = params.get("connect");
  if (version !== null && version !== "v1") return { error: `unsupported connect version ${JSON.stringify(version)} (this server speaks v1)` };
  const codec = params.get("encoding");
  if (codec === null || codec === "") return { error: 'missing "encoding" query parameter (proto or json)' };
  const raw = params.get("message") ?? "";
  let message: Uint8Array;
  if (params.get("base64") === "1") {
    if (!/^[A-Za-z0-9+/_-]*=*$/.test(raw)) return { error: 'the "message" query parameter is not base64' };
    message = new Uint8Array(Buffer.from(raw, "base64url"));
  } else {
    message = new TextEncoder().encode(raw);
  }
  const compression = params.get("compression");
  return { codec, message, compression: compression === null || compression === "" || compression === "identity" ? undefined : compression };
}
