import { deflate as deflateAsync, deflateSync, gunzip as gunzipAsync, gunzipSync, gzip as gzipAsync, gzipSync, inflate as inflateAsync, inflateSync, type ZlibOptions } from "node:zlib";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";

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
  /** The same off the event loop (zlib's thread pool); `compressMessage` picks it for large messages. */
  compressAsync?(data: Uint8Array): Promise<Uint8Array>;
  /** The same off the event loop, with the same limits and errors as `decompress`. */
  decompressAsync?(data: Uint8Array, maxBytes: number): Promise<Uint8Array>;
}

/**
 * Message sizes from which compression runs off the event loop. Measured on this project's
 * 2-core machine (Node 20, half-compressible data, `node dist/bench/zlib-threshold.js`): gzipSync takes ~0.3 ms at 16 KiB, ~1–1.5 ms at 32–64 KiB, ~3 ms at
 * 128 KiB, ~24 ms at 1 MiB and ~100 ms at 4 MiB, while the thread-pool round trip of the async
 * API costs ~0.5–1 ms whatever the size. Below 64 KiB the hop costs as much as the work it
 * would move; above, the loop would stall for milliseconds per message. Decompression is ~5×
 * faster per input byte but its output is a multiple of its input, so its threshold is on
 * the compressed size, four times lower.
 */
export const asyncCompressThresholdBytes = 64 * 1024;
export const asyncDecompressThresholdBytes = 16 * 1024;

/** Compresses `data` with `c`: synchronously when small, off the event loop (a Promise) when large. */
export function compressMessage(c: Compression, data: Uint8Array): Uint8Array | Promise<Uint8Array> {
  return data.byteLength >= asyncCompressThresholdBytes && c.compressAsync !== undefined ? c.compressAsync(data) : c.compress(data);
}

/** Decompresses `data` with `c` (at most `maxBytes`): synchronously when small, off the event loop when large. */
export function decompressMessage(c: Compression, data: Uint8Array, maxBytes: number): Uint8Array | Promise<Uint8Array> {
  return data.byteLength >= asyncDecompressThresholdBytes && c.decompressAsync !== undefined ? c.decompressAsync(data, maxBytes) : c.decompress(data, maxBytes);
}

/**
 * Output chunk size for the thread-pool zlib calls. node's default (16 KiB) makes a 4 MiB
 * message a few hundred round trips between the pool and the loop: ten 4 MiB gzip echoes took
 * 4.4 s against 3.0 s with the sync call; with chunks of about the input's size, 3.1–3.7 s
 * (`node dist/bench/compression-stall.js`).
 */
function asyncChunkSize(data: Uint8Array): number {
  return Math.min(Math.max(data.byteLength, 64 * 1024), 4 * 1024 * 1024);
}

type Zlib = (buf: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;
type ZlibAsync = (buf: Uint8Array, options: ZlibOptions, callback: (error: Error | null, result: Buffer) => void) => void;

function zlibCompression(name: string, compress: Zlib, decompress: Zlib, compressAsync: ZlibAsync, decompressAsync: ZlibAsync): Compression {
  // maxOutputLength makes zlib stop (and throw) as soon as the output would pass the limit.
  const limitOptions = (maxBytes: number) => {
    const limit = Math.min(maxBytes + 1, 2 ** 32);
    return Number.isFinite(limit) ? { maxOutputLength: limit } : {};
  };
  const checked = (out: Buffer, maxBytes: number) => {
    if (out.byteLength > maxBytes) throw Object.assign(new RangeError("too large"), { code: "ERR_BUFFER_TOO_LARGE" });
    return out;
  };
  const failure = (e: unknown, maxBytes: number) => {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      return new RpcError(Code.ResourceExhausted, `decompressed message is larger than max (${maxBytes} bytes)`);
    }
    return new RpcError(Code.Internal, `failed to decompress a ${name} message: ${(e as Error).message}`, { cause: e });
  };
  return {
    name,
    compress: (data) => compress(data),
    decompress(data, maxBytes) {
      try {
        return checked(decompress(data, limitOptions(maxBytes)), maxBytes);
      } catch (e) {
        throw failure(e, maxBytes);
      }
    },
    compressAsync: (data) => new Promise((resolve, reject) => compressAsync(data, { chunkSize: asyncChunkSize(data) }, (e, out) => (e !== null ? reject(e) : resolve(out)))),
    decompressAsync: (data, maxBytes) =>
      new Promise((resolve, reject) =>
        decompressAsync(data, { ...limitOptions(maxBytes), chunkSize: Math.min(asyncChunkSize(data) * 4, maxBytes + 1) }, (e, out) => {
          if (e !== null) return reject(failure(e, maxBytes));
          try {
            resolve(checked(out, maxBytes));
          } catch (err) {
            reject(failure(err, maxBytes));
          }
        }),
      ),
  };
}

/** gzip (RFC 1952). */
export const gzip: Compression = zlibCompression("gzip", gzipSync, gunzipSync, gzipAsync, gunzipAsync);
/** deflate as HTTP means it: zlib-wrapped (RFC 1950), like every gRPC implementation. */
export const deflate: Compression = zlibCompression("deflate", deflateSync, inflateSync, deflateAsync, inflateAsync);

/** The algorithms Rill supports, by name. `identity` means "no compression" and is implicit. */
export const builtinCompressions: readonly Compression[] = [gzip, deflate];

/**
 * The compressions named in an `acceptCompression` option (default gzip and deflate), by name in
 * the given order (the order of `grpc-accept-encoding`). Throws for a name Rill does not know.
 */
export function compressionsByName(names: readonly string[] = ["gzip", "deflate"]): Map<string, Compression> {
  const table = new Map<string, Compression>();
  for (const name of names) {
    const c = builtinCompressions.find((b) => b.name === name);
    if (c === undefined) throw new Error(`unknown compression "${name}" in acceptCompression (known: ${builtinCompressions.map((b) => b.name).join(", ")})`);
    table.set(name, c);
  }
  return table;
}

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
