/**
 * The receiving half of a ranged transfer: the chunks of one stream (a part, or a refetch of a
 * few chunks) written in place into a `RangeFile`. Several streams may write into one file at
 * once.
 *
 * A chunk that fails its CRC32C is not written and not fatal: its range is reported back as
 * `rejected`, so the caller fetches that chunk alone, while the chunks after it on the same
 * stream are kept. Only a stream that damages more than `maxRejected` chunks is given up on
 * (DATA_LOSS): the path is broken, and a retry elsewhere beats refetching chunk by chunk.
 */
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { chunkIntact } from "./chunk-check.js";
import type { Range } from "./byte-ranges.js";
import type { RangeFile } from "./range-file.js";
import type { TransferChunk } from "./transfer-chunk.js";

/** Chunk writes one stream keeps in flight. */
const MAX_WRITES = 4;

/** Options of `receiveRange`. */
export interface ReceiveRangeOptions<M> {
  /** Maps a received message to its chunk. */
  fromMessage: (message: M) => TransferChunk;
  /** The range this stream was asked for: a chunk outside it is INVALID_ARGUMENT. Default: the whole payload. */
  range?: Range;
  /** Damaged chunks one stream may deliver before it is given up (DATA_LOSS). Default 16. */
  maxRejected?: number;
  /** Told after each chunk is handled: `written` is false for a damaged chunk or one already held. */
  onChunk?: (chunk: TransferChunk, written: boolean) => void;
}

/** What one stream delivered. */
export interface RangeReceipt {
  /** Bytes this stream wrote. */
  readonly written: number;
  /** Chunks dropped for a CRC32C mismatch: fetch these again. */
  readonly rejected: Range[];
  /** The payload's SHA-256 as the sender stated it, when this stream carried the final chunk. */
  readonly sha256: Uint8Array | undefined;
}

/**
 * Writes the chunks of `messages` into `file`. Within a stream, chunks must come in increasing
 * offsets without overlap (INVALID_ARGUMENT otherwise: a sender that repeats itself is broken or
 * hostile), inside `range`, and a final chunk must end the payload and carry its SHA-256.
 */
export async function receiveRange<M>(messages: AsyncIterable<M>, file: RangeFile, options: ReceiveRangeOptions<M>): Promise<RangeReceipt> {
  const [from, to] = options.range ?? [0, file.totalSize];
  const maxRejected = options.maxRejected ?? 16;
  const rejected: Range[] = [];
  let next = from;
  let written = 0;
  let sha256: Uint8Array | undefined;
  const writing = new Set<Promise<void>>();
  try {
    for await (const message of messages) {
      const chunk = options.fromMessage(message);
      const end = chunk.offset + chunk.data.byteLength;
      if (chunk.totalSize !== undefined && chunk.totalSize !== file.totalSize) {
        throw new RpcError(Code.InvalidArgument, `the chunk at offset ${chunk.offset} names a payload of ${chunk.totalSize} bytes, not ${file.totalSize}`);
      }
      if (!Number.isSafeInteger(chunk.offset) || chunk.offset < next || end > to) {
        throw new RpcError(
          Code.InvalidArgument,
          chunk.offset < next
            ? `the chunk at offset ${chunk.offset} overlaps or precedes the stream's previous chunk (expected offset ${next} or later)`
            : `the chunk [${chunk.offset}, ${end}) lies outside the requested range [${from}, ${to})`,
        );
      }
      if (chunk.data.byteLength === 0 && !chunk.last) throw new RpcError(Code.InvalidArgument, `empty chunk at offset ${chunk.offset} (only the last chunk may be empty)`);
      if (chunk.last) {
        if (end !== file.totalSize) throw new RpcError(Code.InvalidArgument, `the last chunk ends at ${end}, not at the payload's ${file.totalSize} bytes`);
        if (chunk.sha256?.byteLength !== 32) throw new RpcError(Code.InvalidArgument, `the last chunk must carry a 32-byte SHA-256, got ${chunk.sha256?.byteLength ?? 0} bytes`);
      }
      next = end;
      if (!chunkIntact(chunk)) {
        rejected.push([chunk.offset, end]);
        if (rejected.length > maxRejected) {
          throw new RpcError(Code.DataLoss, `${rejected.length} chunks of this stream arrived damaged (CRC32C mismatch); the path corrupts data`);
        }
        options.onChunk?.(chunk, false);
        continue;
      }
      if (chunk.last) sha256 = chunk.sha256;
      // Up to MAX_WRITES chunks are written at once while the next ones are read: the disk and the
      // network overlap, and memory stays bounded by the writes in flight.
      const write = file.write(chunk.offset, chunk.data).then((wrote) => {
        if (wrote) written += chunk.data.byteLength;
        options.onChunk?.(chunk, wrote);
      });
      writing.add(write);
      void write.then(
        () => writing.delete(write),
        () => {},
      );
      if (writing.size >= MAX_WRITES) await Promise.race(writing);
    }
    await Promise.all(writing);
  } catch (e) {
    // Writes still in flight finish (or fail) before the caller may close the file.
    await Promise.allSettled(writing);
    throw e;
  }
  return { written, rejected, sha256 };
}
