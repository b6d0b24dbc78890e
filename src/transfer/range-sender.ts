/**
 * The sending half of a ranged transfer: the chunks of [offset, offset + length) of a seekable
 * payload, each with its CRC32C, read one chunk per pull (so a slow receiver slows the reading,
 * as in sendChunks). The chunk that ends the payload is marked `last` and carries the SHA-256 of
 * the whole, which a ranged sender must know beforehand: it cannot hash bytes it never reads.
 */
import { open } from "node:fs/promises";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { crc32c } from "./crc32c.js";
import { DEFAULT_CHUNK_SIZE, type TransferChunk } from "./transfer-chunk.js";

/** Bytes read from a file at once (four default chunks). */
const READ_AHEAD = 256 * 1024;

/** A payload that can be read at any offset: a file path, a `Blob` or a `Uint8Array`. */
export type RangeSource = string | URL | Blob | Uint8Array;

/** Options of `sendRange`. */
export interface SendRangeOptions<M> {
  /** Maps each chunk to the message the method sends. */
  toMessage: (chunk: TransferChunk) => M;
  /** First byte to send. Default 0. */
  offset?: number;
  /** Bytes to send; default (or 0): to the end of the payload. */
  length?: number;
  /** SHA-256 of the whole payload: required when the range reaches its end. */
  sha256?: Uint8Array;
  /** Bytes per chunk. Default 64 KiB. */
  chunkSize?: number;
  /** Told as each chunk is made, before it is handed to the call. */
  onChunk?: (chunk: TransferChunk) => void;
}

/** The size of a range source. */
export async function rangeSourceSize(source: RangeSource): Promise<number> {
  if (source instanceof Uint8Array) return source.byteLength;
  if (source instanceof Blob) return source.size;
  const file = await open(source, "r");
  try {
    return (await file.stat()).size;
  } finally {
    await file.close();
  }
}

/**
 * The chunks of a range of `source`, mapped by `toMessage`. OUT_OF_RANGE when the range runs
 * past the payload; FAILED_PRECONDITION when a file shrinks while it is read.
 */
export async function* sendRange<M>(source: RangeSource, options: SendRangeOptions<M>): AsyncGenerator<M, void, undefined> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const reader = await openRangeReader(source);
  try {
    const total = reader.size;
    const offset = options.offset ?? 0;
    const end = options.length === undefined || options.length === 0 ? total : offset + options.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(end) || end > total || offset > end) {
      throw new RpcError(Code.OutOfRange, `the range [${offset}, ${end}) lies outside the payload's ${total} bytes`);
    }
    if (end === total && options.sha256?.byteLength !== 32) {
      throw new RangeError("sendRange needs the payload's SHA-256 (32 bytes) to send its final chunk");
    }
    const emit = (pos: number, data: Uint8Array): M => {
      const last = pos + data.byteLength === total;
      const chunk: TransferChunk = { offset: pos, data, last, sha256: last ? options.sha256 : undefined, totalSize: total, crc32c: crc32c(data) };
      options.onChunk?.(chunk);
      return options.toMessage(chunk);
    };
    // An empty range at the payload's end (an empty payload, say) is one empty final chunk.
    if (offset === end && end === total) yield emit(offset, new Uint8Array(0));
    for (let pos = offset; pos < end; ) {
      const n = Math.min(chunkSize, end - pos);
      yield emit(pos, await reader.read(pos, n));
      pos += n;
    }
  } finally {
    await reader.close();
  }
}

interface RangeReader {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function openRangeReader(source: RangeSource): Promise<RangeReader> {
  if (source instanceof Uint8Array) {
    return { size: source.byteLength, read: async (o, n) => source.subarray(o, o + n), close: async () => {} };
  }
  if (source instanceof Blob) {
    return { size: source.size, read: async (o, n) => new Uint8Array(await source.slice(o, o + n).arrayBuffer()), close: async () => {} };
  }
  const file = await open(source, "r");
  const size = (await file.stat()).size;
  // Reads go in blocks of READ_AHEAD, sliced into chunks: one trip to the thread pool per block
  // instead of per chunk. A stalled reader holds one block.
  let block = Buffer.alloc(0);
  let blockStart = 0;
  const fill = async (offset: number, length: number): Promise<void> => {
    const want = Math.min(Math.max(length, READ_AHEAD), size - offset);
    block = Buffer.allocUnsafe(want);
    blockStart = offset;
    for (let got = 0; got < want; ) {
      const { bytesRead } = await file.read(block, got, want - got, offset + got);
      if (bytesRead === 0) throw new RpcError(Code.FailedPrecondition, `${String(source)} shrank while being sent (expected ${size} bytes)`);
      got += bytesRead;
    }
  };
  return {
    size,
    async read(offset, length) {
      if (offset < blockStart || offset + length > blockStart + block.byteLength) await fill(offset, length);
      return block.subarray(offset - blockStart, offset - blockStart + length);
    },
    close: () => file.close(),
  };
}
