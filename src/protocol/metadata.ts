/**
 * Custom metadata: the application's request headers, response headers and trailers.
 *
 * Invariants of a {@link Metadata}: keys are lower case and match /^[0-9a-z_.-]+$/; keys ending in
 * "-bin" hold only Uint8Array values and all other keys only strings of printable ASCII; no key is a
 * header the gRPC transport owns ({@link isReservedHeader}). User input that breaks one throws
 * {@link MetadataError}; a peer's headers that break one are dropped, never thrown on.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Custom-Metadata)
 */
import type { HeaderRecord } from "./headers.js";

/** One metadata value: a string for ordinary keys, bytes for keys ending in "-bin". */
export type MetadataValue = string | Uint8Array;

/**
 * Anything a {@link Metadata} can be built from: another Metadata (copied), an iterable of
 * [key, value] pairs, or a record whose values are a value or an array of values.
 */
export type MetadataInit =
  | Metadata
  | Iterable<readonly [string, MetadataValue]>
  | Record<string, MetadataValue | readonly MetadataValue[]>;

/**
 * A metadata key or value that gRPC cannot carry; the message says what is wrong and what to do.
 * `key` is the offending key as given.
 */
export class MetadataError extends Error {
  override name = "MetadataError";
  /** The key the error is about, as the caller spelled it. */
  readonly key: string;

  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}

const keyPattern = /^[0-9a-z_.-]+$/;
const asciiPattern = /^[\x20-\x7e]*$/;
const nonAsciiPattern = /[^\x20-\x7e]/;
// Either alphabet (standard or url-safe), padded or not; length is checked separately.
const base64Pattern = /^[A-Za-z0-9+/_-]*={0,2}$/;

// Connection-level and gRPC-owned request/response fields (RFC 9113 §8.2.2 and the gRPC spec).
const reservedHeaders: ReadonlySet<string> = new Set([
  "content-type",
  "te",
  "host",
  "connection",
  "transfer-encoding",
  "upgrade",
  "keep-alive",
  "proxy-connection",
]);

/**
 * Whether `key` (lower case) is a header the transport owns and metadata may not carry.
 *
 * True for pseudo-headers (":path"…), connection-level headers (content-type, te, host, connection,
 * transfer-encoding, upgrade, keep-alive, proxy-connection) and every "grpc-" key except
 * "grpc-status-details-bin", which carries rich error details and belongs to the application.
 * "user-agent" is not reserved.
 */
export function isReservedHeader(key: string): boolean {
  if (key.charCodeAt(0) === 0x3a /* ":" */) return true;
  if (key.startsWith("grpc-")) return key !== "grpc-status-details-bin";
  return reservedHeaders.has(key);
}

function isBinaryKey(key: string): boolean {
  return key.endsWith("-bin");
}

// Returns the normalised key; throws MetadataError when the key or value is not allowed.
function checkEntry(key: unknown, value: unknown): string {
  // Untyped callers can get here with anything; say so rather than fail inside toLowerCase.
  if (typeof key !== "string") throw new MetadataError(String(key), `metadata key ${String(key)} is invalid: keys must be strings`);
  const normal = key.toLowerCase();
  if (normal === "") throw new MetadataError(key, `metadata key "" is invalid: keys must not be empty`);
  // Reserved first: ":path" is better explained as reserved than as containing a colon.
  if (isReservedHeader(normal)) {
    throw new MetadataError(key, `metadata key ${JSON.stringify(key)} is reserved for the gRPC transport: use call options for deadlines and encodings, or pick another key`);
  }
  if (!keyPattern.test(normal)) {
    throw new MetadataError(key, `metadata key ${JSON.stringify(key)} is invalid: keys may contain only 0-9 a-z _ . - (upper case is lowered)`);
  }
  if (isBinaryKey(normal)) {
    if (!(value instanceof Uint8Array)) {
      throw new MetadataError(key, `metadata key ${JSON.stringify(key)} ends in "-bin" and needs a Uint8Array value, got ${describe(value)}: pass bytes, or drop the "-bin" suffix for text`);
    }
  } else if (typeof value !== "string") {
    throw new MetadataError(key, `metadata key ${JSON.stringify(key)} needs a string value, got ${describe(value)}: binary values need a key ending in "-bin"`);
  } else if (!asciiPattern.test(value)) {
    const at = value.search(nonAsciiPattern);
    throw new MetadataError(
      key,
      `metadata value for ${JSON.stringify(key)} is invalid: text values may contain only printable ASCII (0x20-0x7E), found 0x${value.charCodeAt(at).toString(16).padStart(2, "0")} at index ${at}; use a "-bin" key for other bytes`,
    );
  }
  return normal;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return "a Uint8Array";
  if (typeof value === "string") return "a string";
  return value === null ? "null" : typeof value;
}

// Set once by Metadata's static block: lets this module fill a Metadata from trusted sources
// (a peer's already-validated headers, another Metadata) without re-validating.
let appendTrusted: (md: Metadata, key: string, value: MetadataValue) => void;

/**
 * A multi-map of metadata: lower-case keys, each with one or more values.
 *
 * Iteration yields [key, value] pairs grouped by key, keys in the order first added and each key's
 * values in the order added. Keys passed to any method are lower-cased first. Every mutator
 * validates its input and throws {@link MetadataError} (see the module invariants); Uint8Array
 * values are stored by reference, not copied.
 */
export class Metadata implements Iterable<[string, MetadataValue]> {
  readonly #map = new Map<string, MetadataValue[]>();
  #size = 0;

  static {
    appendTrusted = (md, key, value) => md.#add(key, value);
  }

  /** A Metadata holding the entries of `init` (copied), or empty. Throws MetadataError on an invalid entry. */
  constructor(init?: MetadataInit) {
    if (init !== undefined) this.merge(init);
  }

  /** Replaces all values of `key` with `value`. Returns this. */
  set(key: string, value: MetadataValue): this {
    const normal = checkEntry(key, value);
    this.#size -= this.#map.get(normal)?.length ?? 0;
    this.#map.set(normal, [value]);
    this.#size++;
    return this;
  }

  /** Adds `value` after any existing values of `key`. Returns this. */
  append(key: string, value: MetadataValue): this {
    this.#add(checkEntry(key, value), value);
    return this;
  }

  /** The first value of `key`, or undefined. */
  get(key: string): MetadataValue | undefined {
    return this.#map.get(key.toLowerCase())?.[0];
  }

  /** All values of `key` in the order added (a new array; empty when absent). */
  getAll(key: string): MetadataValue[] {
    return this.#map.get(key.toLowerCase())?.slice() ?? [];
  }

  /** Whether `key` has at least one value. */
  has(key: string): boolean {
    return this.#map.has(key.toLowerCase());
  }

  /** Removes every value of `key`; returns whether there were any. */
  delete(key: string): boolean {
    const normal = key.toLowerCase();
    const values = this.#map.get(normal);
    if (values === undefined) return false;
    this.#size -= values.length;
    return this.#map.delete(normal);
  }

  /** The number of values (not keys). */
  get size(): number {
    return this.#size;
  }

  /** The [key, value] pairs, grouped by key (see the class comment for the order). */
  *[Symbol.iterator](): Generator<[string, MetadataValue], void, undefined> {
    for (const [key, values] of this.#map) {
      for (const value of values) yield [key, value];
    }
  }

  /** The distinct keys, in the order first added. */
  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  /** An independent copy; Uint8Array values are shared, not copied. */
  clone(): Metadata {
    const copy = new Metadata();
    for (const [key, value] of this) appendTrusted(copy, key, value);
    return copy;
  }

  /**
   * Appends every entry of `other` (nothing is replaced). Returns this.
   * Entries of another Metadata are already valid and are not checked again; others are validated
   * one by one, so a MetadataError may leave the entries before the bad one appended.
   */
  merge(other: MetadataInit): this {
    if (other instanceof Metadata) {
      // Snapshot when merging into itself, or the loop would chase its own appends.
      for (const [key, value] of other === this ? [...other] : other) this.#add(key, value);
    } else if (Symbol.iterator in other) {
      for (const [key, value] of other as Iterable<readonly [string, MetadataValue]>) this.append(key, value);
    } else {
      for (const [key, value] of Object.entries(other)) {
        if (Array.isArray(value)) {
          for (const item of value as readonly MetadataValue[]) this.append(key, item);
        } else {
          this.append(key, value as MetadataValue);
        }
      }
    }
    return this;
  }

  /**
   * A plain record for logging and JSON: one value as a string, several as an array; binary values
   * as standard base64 with padding.
   */
  toJSON(): Record<string, string | string[]> {
    const record: Record<string, string | string[]> = {};
    for (const [key, values] of this.#map) {
      const texts = values.map((v) => (typeof v === "string" ? v : toBase64(v)));
      record[key] = texts.length === 1 ? texts[0]! : texts;
    }
    return record;
  }

  #add(key: string, value: MetadataValue): void {
    const values = this.#map.get(key);
    if (values === undefined) this.#map.set(key, [value]);
    else values.push(value);
    this.#size++;
  }
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * The header fields for `md`, ready for `node:http2`: one value as a string, several as an array
 * (sent as repeated fields). Binary values are base64 without padding, as the spec asks senders to emit.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Binary-Header)
 */
export function metadataToHeaders(md: Metadata): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const key of md.keys()) {
    const texts = md.getAll(key).map((v) => (typeof v === "string" ? v : unpadded(toBase64(v))));
    headers[key] = texts.length === 1 ? texts[0]! : texts;
  }
  return headers;
}

function unpadded(base64: string): string {
  let end = base64.length;
  while (end > 0 && base64.charCodeAt(end - 1) === 0x3d /* = */) end--;
  return base64.slice(0, end);
}

/**
 * The custom metadata in a received header block.
 *
 * Reserved headers ({@link isReservedHeader}: pseudo-headers, content-type, te, grpc-timeout,
 * grpc-status, grpc-message…) are left out; "user-agent" and "grpc-status-details-bin" are kept.
 * "-bin" values are base64 in either alphabet, padded or not; since `node:http2` joins repeated
 * fields with ", ", a "-bin" value is split on commas into several values (base64 has no commas;
 * text values are left joined, as a comma may be part of them). A field whose name or value is
 * invalid is skipped, never thrown on: a misbehaving peer must not fail the call.
 */
export function metadataFromHeaders(headers: HeaderRecord): Metadata {
  return readHeaders(headers, false);
}

/**
 * Like {@link metadataFromHeaders}, but throws MetadataError on the first invalid field instead of
 * skipping it. For tests and diagnostics; reserved headers are still skipped silently.
 */
export function parseMetadataStrict(headers: HeaderRecord): Metadata {
  return readHeaders(headers, true);
}

// Transport headers that applications may read (as grpc-go exposes them) but never set.
const readableTransportHeaders = new Set(["grpc-previous-rpc-attempts", "grpc-retry-pushback-ms"]);

function readHeaders(headers: HeaderRecord, strict: boolean): Metadata {
  const md = new Metadata();
  for (const name in headers) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const key = name.toLowerCase();
    if (isReservedHeader(key) && !readableTransportHeaders.has(key)) continue;
    if (!keyPattern.test(key)) {
      if (strict) throw new MetadataError(name, `metadata key ${JSON.stringify(name)} is invalid: keys may contain only 0-9 a-z _ . -`);
      continue;
    }
    const binary = isBinaryKey(key);
    if (Array.isArray(raw)) {
      for (const item of raw) readValue(md, key, binary, item, strict);
    } else {
      readValue(md, key, binary, typeof raw === "string" ? raw : String(raw), strict);
    }
  }
  return md;
}

function readValue(md: Metadata, key: string, binary: boolean, value: string, strict: boolean): void {
  if (!binary) {
    if (asciiPattern.test(value)) appendTrusted(md, key, value);
    else if (strict) throw new MetadataError(key, `metadata value for ${JSON.stringify(key)} is invalid: text values may contain only printable ASCII (0x20-0x7E)`);
    return;
  }
  for (const part of value.split(",")) {
    const bytes = decodeBase64(part.trim());
    if (bytes !== undefined) appendTrusted(md, key, bytes);
    else if (strict) throw new MetadataError(key, `metadata value for ${JSON.stringify(key)} is invalid: "-bin" values must be base64`);
  }
}

function decodeBase64(text: string): Uint8Array | undefined {
  if (!base64Pattern.test(text)) return undefined;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const digits = text.length - padding;
  // A lone sixth bit group cannot encode a byte; padding, when present, must complete a quantum.
  if (digits % 4 === 1 || (padding > 0 && text.length % 4 !== 0)) return undefined;
  const buffer = Buffer.from(text, "base64");
  // A plain view, so values compare equal to the Uint8Arrays users put in.
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
