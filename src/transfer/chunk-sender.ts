/**
 * The sending half of a chunked transfer: a payload becomes an async iterable of messages, ready
 * to be a client-streaming call's requests or to be yielded by a server-streaming handler.
 *
 * Backpressure is Rill's: the iterable reads the next chunk only when the call pulls it, which it
 * does only when the HTTP/2 stream has room and the send buffer is under its high-water mark. So
 * a slow receiver slows the reading of the source; it never fills memory.
 */
import { createHash } from "node:crypto";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { crc32c } from "./crc32c.js";
import { RateMeter } from "./rate-meter.js";
import { openChunkSource, type ChunkSource } from "./chunk-source.js";
import { DEFAULT_CHUNK_SIZE, type TransferChunk, type TransferProgress } from "./transfer-chunk.js";

/** Options of `sendChunks`. */
export interface SendChunksOptions<M> {
  /** Maps each chunk to the message the method sends (e.g. `chunkToProto` wrapped in a request). */
  toMessage: (chunk: TransferChunk) => M;
  /**
   * Where to start: the bytes the receiver already holds (its last acknowledged offset).
   * Default 0. The bytes before it are hashed locally, never sent.
   */
  offset?: number;
  /** Bytes per chunk. Default 64 KiB. Must fit the receiver's `maxReceiveMessageBytes` (4 MiB). */
  chunkSize?: number;
  /** Size of a Readable or AsyncIterable payload, announced to the receiver when given. */
  totalSize?: number;
  /** Told after each chunk is handed to the call (not yet acknowledged by the receiver). */
  onProgress?: (progress: TransferProgress) => void;
  /**
   * Per-chunk checksum: `"crc32c"` (default) puts each chunk's CRC32C in it, so the receiver
   * finds a damaged chunk on arrival; `"none"` leaves it out (for receivers that reject unknown
   * fields — none do in proto3 — or to measure its cost).
   */
  chunkChecksum?: "crc32c" | "none";
  /** Told once the final chunk has been handed over, with the SHA-256 of the whole payload. */
  onComplete?: (summary: { readonly bytes: number; readonly sha256: Uint8Array }) => void;
}

/**
 * The chunks of `source` from `options.offset` on, each mapped by `toMessage`. Every chunk but
 * the last has exactly `chunkSize` bytes; the final one has `last` set and the payload's SHA-256.
 * When the size is known (file, Blob, Uint8Array, or `totalSize`) the last data chunk is marked
 * final; otherwise an empty final chunk closes the payload.
 *
 * Fails with FAILED_PRECONDITION when the source is shorter than `offset`, a file shrinks while
 * it is read, or a stream's length differs from `totalSize`.
 *
 * ```ts
 * const status = await transfer.upload(sendChunks("movie.mkv", {
 *   offset: held, toMessage: (c) => ({ transferId, chunk: chunkToProto(c) }),
 *   onProgress: (p) => bar.update(p.bytes, p.total),
 * }));
 * ```
 */
export async function* sendChunks<M>(source: ChunkSource, options: SendChunksOptions<M>): AsyncGenerator<M, void, undefined> {
  const offset = options.offset ?? 0;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const hash = createHash("sha256");
  const opened = await openChunkSource(source, offset, chunkSize, hash, options.totalSize);
  const total = opened.totalSize;
  if (total !== undefined && total < offset) throw new RangeError(`offset ${offset} is past the payload's ${total} bytes`);
  const rate = new RateMeter();
  const withCrc = (options.chunkChecksum ?? "crc32c") === "crc32c";
  let pos = offset;
  const report = (n: number, done: boolean) =>
    options.onProgress?.({ bytes: pos, transferred: pos - offset, total, bytesPerSecond: rate.add(n), done });

  let finished = false;
  for await (const data of opened.chunks) {
    hash.update(data);
    const end = pos + data.byteLength;
    if (total !== undefined && end > total) {
      throw new RpcError(Code.FailedPrecondition, `the source is longer than its announced size of ${total} bytes`);
    }
    const last = total !== undefined && end === total;
    const sha256 = last ? hash.digest() : undefined;
    const chunk: TransferChunk = { offset: pos, data, last, sha256, totalSize: total, crc32c: withCrc ? crc32c(data) : undefined };
    pos = end;
    yield options.toMessage(chunk);
    report(data.byteLength, last);
    if (last) {
      finished = true;
      options.onComplete?.({ bytes: pos, sha256: sha256! });
    }
  }
  if (finished) return;
  if (total !== undefined && pos !== total) {
    throw new RpcError(Code.FailedPrecondition, `the source ended after ${pos} bytes, short of its announced size of ${total}`);
  }
  // Unknown length (or an empty payload): an empty final chunk carries the checksum.
  const sha256 = hash.digest();
  yield options.toMessage({ offset: pos, data: new Uint8Array(0), last: true, sha256, totalSize: pos, crc32c: withCrc ? 0 : undefined });
  report(0, true);
  options.onComplete?.({ bytes: pos, sha256 });
}
