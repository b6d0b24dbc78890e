/**
 * The call status on the wire: `grpc-status` and `grpc-message`, and the mappings the spec gives for
 * calls that end without one (an HTTP error status, or an HTTP/2 RST_STREAM).
 *
 * Decoding never throws: a peer's malformed status becomes UNKNOWN with a message saying why.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses
 * @see https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
 */
import { Code } from "./code.js";
import type { HeaderRecord } from "./headers.js";

/** A call's outcome as carried in trailers: a code and a (decoded) message, empty when none was sent. */
export interface Status {
  code: Code;
  message: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder(); // non-fatal: invalid UTF-8 becomes U+FFFD rather than an exception
const hexDigits = "0123456789ABCDEF";

/**
 * A status message percent-encoded for `grpc-message`.
 *
 * The message is taken as UTF-8; every byte outside 0x20–0x7E, and "%" itself, becomes "%XX" with
 * upper-case hex. Lone surrogates are sent as U+FFFD.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses (Status-Message)
 */
export function encodeStatusMessage(message: string): string {
  let i = 0;
  while (i < message.length && isUnreserved(message.charCodeAt(i))) i++;
  const edges = message.charCodeAt(0) === 0x20 || message.charCodeAt(message.length - 1) === 0x20;
  if (i === message.length && !edges) return message;
  let out = message.slice(0, i);
  for (const byte of encoder.encode(message.slice(i))) {
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${hexDigits[byte >> 4]}${hexDigits[byte & 15]}`;
  }
  // HTTP/2 forbids a field value that starts or ends with whitespace (RFC 9113 §8.2.1), and
  // node:http2 trims it; "%20" survives, and every receiver percent-decodes.
  if (out.startsWith(" ")) out = `%20${out.slice(1)}`;
  if (out.endsWith(" ")) out = `${out.slice(0, -1)}%20`;
  return out;
}

function isUnreserved(c: number): boolean {
  return c >= 0x20 && c <= 0x7e && c !== 0x25;
}

/**
 * A `grpc-message` value percent-decoded and read as UTF-8.
 *
 * Lenient, as the spec asks of receivers: a "%" not followed by two hex digits is kept literally,
 * characters that should have been encoded are taken as they are, and byte sequences that are not
 * valid UTF-8 become U+FFFD. Never throws.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses (Status-Message)
 */
export function decodeStatusMessage(value: string): string {
  if (!value.includes("%")) return value;
  // One UTF-16 unit never needs more than 3 UTF-8 bytes, and "%XX" yields one byte for three units.
  const bytes = new Uint8Array(value.length * 3);
  let n = 0;
  for (let i = 0; i < value.length; ) {
    const c = value.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(value.charCodeAt(i + 1));
      const lo = hexValue(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = (hi << 4) | lo;
        i += 3;
        continue;
      }
    }
    if (c < 0x80) {
      bytes[n++] = c;
      i++;
      continue;
    }
    const char = String.fromCodePoint(value.codePointAt(i)!);
    n += encoder.encodeInto(char, bytes.subarray(n)).written;
    i += char.length;
  }
  return decoder.decode(bytes.subarray(0, n));
}

// NaN (past the end of the string) falls through every comparison to -1.
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * The gRPC code for a response that has an HTTP status but no `grpc-status`.
 *
 * 400 → INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED,
 * 429/502/503/504 → UNAVAILABLE, anything else (200 included) → UNKNOWN.
 * @see https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
 */
export function httpStatusToCode(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/**
 * The gRPC code for a stream reset by the peer with HTTP/2 error code `errorCode`.
 *
 * REFUSED_STREAM (0x7) → UNAVAILABLE (the request was not processed, so it is safe to retry),
 * CANCEL (0x8) → CANCELLED, ENHANCE_YOUR_CALM (0xb) → RESOURCE_EXHAUSTED, INADEQUATE_SECURITY (0xc)
 * → PERMISSION_DENIED. Everything else is INTERNAL: the spec's NO_ERROR, PROTOCOL_ERROR,
 * INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR and
 * CONNECT_ERROR, and also codes the spec leaves unmapped (STREAM_CLOSED, HTTP_1_1_REQUIRED, unknown).
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#errors
 */
export function rstCodeToCode(errorCode: number): Code {
  switch (errorCode) {
    case 0x7:
      return Code.Unavailable;
    case 0x8:
      return Code.Canceled;
    case 0xb:
      return Code.ResourceExhausted;
    case 0xc:
      return Code.PermissionDenied;
    default:
      return Code.Internal;
  }
}

// Leading zeros are tolerated (grpc-go parses with strconv); the length cap keeps Number() exact.
const statusPattern = /^[0-9]{1,10}$/;

/**
 * The status carried by `grpc-status` and `grpc-message`, or undefined when `grpc-status` is absent.
 *
 * A `grpc-status` that is not a decimal integer 0–16 gives UNKNOWN with the message
 * `invalid grpc-status: "<value>"`. The message is percent-decoded; a missing one is "".
 * For an array value (a repeated header) the first one counts. Never throws.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses
 */
export function parseStatus(headers: HeaderRecord): Status | undefined {
  const raw = firstValue(headers["grpc-status"]);
  if (raw === undefined) return undefined;
  const number = statusPattern.test(raw) ? Number(raw) : -1;
  if (number < 0 || number > 16) {
    return { code: Code.Unknown, message: `invalid grpc-status: ${JSON.stringify(raw)}` };
  }
  const message = firstValue(headers["grpc-message"]);
  return { code: number as Code, message: message === undefined ? "" : decodeStatusMessage(message) };
}

/**
 * The trailer fields for a status: `grpc-status`, plus `grpc-message` (percent-encoded) only when
 * `message` is not empty.
 */
export function statusHeaders(code: Code, message: string): Record<string, string> {
  const headers: Record<string, string> = { "grpc-status": String(code) };
  if (message !== "") headers["grpc-message"] = encodeStatusMessage(message);
  return headers;
}

function firstValue(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value[0];
  return typeof value === "string" ? value : String(value);
}
