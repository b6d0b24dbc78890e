/**
 * gRPC-Web's differences from gRPC over HTTP/2, as pure functions: its content types, the
 * trailers sent as the last message of the body (flag 0x80, HTTP/1-style header lines), and the
 * base64 text mode (`application/grpc-web-text`) cut at quantum boundaries so that any chunking
 * of the body decodes to the same bytes.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md
 */
import { FRAME_HEADER_LENGTH } from "./frame.js";

/** The flag byte of the trailers frame at the end of a gRPC-Web response body. */
export const TRAILERS_FLAG = 0x80;

/** A gRPC-Web content type: the codec and whether the body is base64 text. */
export interface GrpcWebContentType {
  codec: string;
  text: boolean;
}

const contentTypePattern = /^application\/grpc-web(-text)?(?:\+([!#$%&'*.^_`|~0-9a-z-]+))?[ \t]*(?:;.*)?$/is;

/** The codec and mode named by a gRPC-Web `content-type`, or undefined when it is not gRPC-Web. */
export function parseGrpcWebContentType(value: string | undefined): GrpcWebContentType | undefined {
  if (value === undefined) return undefined;
  const m = contentTypePattern.exec(value);
  if (m === null) return undefined;
  return { codec: m[2] === undefined ? "proto" : m[2].toLowerCase(), text: m[1] !== undefined };
}

/** The `content-type` of a gRPC-Web response. */
export function grpcWebContentType(type: GrpcWebContentType): string {
  return `application/grpc-web${type.text ? "-text" : ""}+${type.codec}`;
}

/**
 * The trailers frame for a header record (lower-case names; a list is sent as repeated lines).
 * Values are sent as they are: `grpc-message` is already percent-encoded, "-bin" values base64.
 */
export function encodeTrailersFrame(trailers: Record<string, string | string[] | number | undefined>): Uint8Array {
  let text = "";
  for (const key in trailers) {
    const value = trailers[key];
    if (value === undefined || key.charCodeAt(0) === 0x3a /* ":" */) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${key}: ${v}\r\n`;
  }
  const body = Buffer.from(text, "latin1");
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + body.byteLength);
  frame[0] = TRAILERS_FLAG;
  frame.writeUInt32BE(body.byteLength, 1);
  body.copy(frame, FRAME_HEADER_LENGTH);
  return frame;
}

/**
 * The header record in a trailers frame's payload. Names are lower-cased (the spec asks senders
 * for lower case, some send otherwise); a repeated name becomes a list; lines without a colon
 * are skipped.
 */
export function parseTrailersFrame(payload: Uint8Array): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const line of Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/**
 * Encodes a byte stream as base64 text in pieces: each `push` returns the text for the whole
 * 3-byte groups seen so far and keeps the rest; `flush` pads what is left. Every output piece
 * is a whole number of 4-character quanta, so a reader may decode any prefix on its own.
 */
export class Base64Encoder {
  private carry: Buffer | undefined;

  push(chunk: Uint8Array): string {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry !== undefined) {
      bytes = Buffer.concat([this.carry, bytes]);
      this.carry = undefined;
    }
    const whole = bytes.byteLength - (bytes.byteLength % 3);
    if (whole < bytes.byteLength) this.carry = Buffer.from(bytes.subarray(whole));
    return bytes.toString("base64", 0, whole);
  }

  flush(): string {
    const rest = this.carry;
    this.carry = undefined;
    return rest === undefined ? "" : rest.toString("base64");
  }
}

/**
 * Decodes base64 text that arrives in arbitrary pieces. Padding may appear inside the stream (a
 * sender that padded each piece, as gRPC-Web clients may); whitespace is skipped. Returns
 * undefined for text that is not base64, so the caller can answer with a protocol error.
 */
export class Base64Decoder {
  private pending = "";

  push(chunk: Uint8Array): Uint8Array | undefined {
    let text = this.pending + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1").replace(/[\r\n\t ]/g, "");
    if (!/^[A-Za-z0-9+/=]*$/.test(text)) return undefined;
    const parts: Buffer[] = [];
    // Decode up to and including each padded quantum, then the whole quanta after the last one.
    let pad = text.indexOf("=");
    while (pad >= 0) {
      let end = pad;
      while (end < text.length && text.charCodeAt(end) === 0x3d) end++;
      if (end % 4 !== 0) {
        if (end < text.length) return undefined; // padding that does not close a quantum
        break; // the rest of this quantum's padding comes in the next piece
      }
      parts.push(Buffer.from(text.slice(0, end), "base64"));
      text = text.slice(end);
      pad = text.indexOf("=");
    }
    const whole = pad >= 0 ? 0 : text.length - (text.length % 4);
    if (whole > 0) parts.push(Buffer.from(text.slice(0, whole), "base64"));
    this.pending = text.slice(whole);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Whether the text ended on a quantum boundary (no partial group left over). */
  get complete(): boolean {
    return this.pending === "";
  }
}
