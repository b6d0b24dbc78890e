import { deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import { RpcError } from "./errors.js";
import { Code } from "./protocol/code.js";

/**
 * A per-message compression algorithm, named as in `grpc-encoding`.
 *
 * `decompress` never produces more than `maxBytes`: a small compressed "bomb" fails with
 * RESOURCE_EXHAUSTED after at most `maxBytes` of output, not after allocating gigabytes.
 * @see https://github.com/grpc/grpc/blob/master/doc/compression.md
 */
export interface Compression {
  readonly name: string;
  compress(data: Uint8Array): Uint8Array;
  /** Throws RpcError: RESOURCE_EXHAUSTED past `maxBytes`, INTERNAL for corrupt input. */
  decompress(data: Uint8Array, maxBytes: number): Uint8Array;
}

type Zlib = (buf: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;

function zlibCompression(name: string, compress: Zlib, decompress: Zlib): Compression {
  return {
    name,
    compress: (data) => compress(data),
    decompress(data, maxBytes) {
      try {
        // maxOutputLength makes zlib stop (and throw) as soon as the output would pass the limit.
        const limit = Math.min(maxBytes + 1, 2 ** 32);
        const out = decompress(data, Number.isFinite(limit) ? { maxOutputLength: limit } : {});
        if (out.byteLength > maxBytes) throw Object.assign(new RangeError("too large"), { code: "ERR_BUFFER_TOO_LARGE" });
        return out;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          throw new RpcError(Code.ResourceExhausted, `decompressed message is larger than max (${maxBytes} bytes)`);
        }
        throw new RpcError(Code.Internal, `failed to decompress a ${name} message: ${(e as Error).message}`, { cause: e });
      }
    },
  };
}

/** gzip (RFC 1952). */
export const gzip: Compression = zlibCompression("gzip", gzipSync, gunzipSync);
/** deflate as HTTP means it: zlib-wrapped (RFC 1950), like every gRPC implementation. */
export const deflate: Compression = zlibCompression("deflate", deflateSync, inflateSync);

/** The algorithms Rill supports, by name. `identity` means "no compression" and is implicit. */
export const builtinCompressions: readonly Compression[] = [gzip, deflate];

/** Splits a `grpc-accept-encoding` value ("gzip, deflate") into names. */
export function parseAcceptEncoding(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(",") : value;
  return joined
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
}

const kCompress = Symbol("rill.compress");

/**
 * Marks one message to be sent compressed or not, overriding the call's setting for that
 * message only (the compressed flag of its frame). Returns a marked copy; `message` is untouched.
 */
export function withCompression<T extends object>(message: T, compress: boolean): T {
  return { ...message, [kCompress]: compress };
}

/** Whether a message was marked by `withCompression(message, false)`. */
export function isMarkedUncompressed(message: unknown): boolean {
  return typeof message === "object" && message !== null && (message as { [kCompress]?: boolean })[kCompress] === false;
}
