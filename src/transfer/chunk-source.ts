/**
 * Where a chunked transfer reads its payload from, and how it starts in the middle.
 *
 * Reading is pull-based: each chunk is read only when the consumer asks for the next one (a file
 * is read with positioned reads, one chunk per pull), so a transfer never reads further ahead of
 * its stream than the chunk being sent.
 *
 * Resuming at `offset` needs the SHA-256 of the bytes before it: seekable sources (file, Blob,
 * Uint8Array) re-read that prefix locally to hash it and then start at `offset`; streams
 * (Readable, AsyncIterable) cannot seek, so they are read from their start and the prefix is
 * hashed and skipped. Nothing of the prefix goes over the wire.
 */
import type { Hash } from "node:crypto";
import { open } from "node:fs/promises";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { rechunk } from "./rechunk.js";

/**
 * A payload to send: a file path (string or `file:` URL), a `Blob`, a `Uint8Array`, a Node
 * `Readable` or any `AsyncIterable<Uint8Array>`.
 */
export type ChunkSource = string | URL | Blob | Uint8Array | AsyncIterable<Uint8Array>;

/** The opened source: its size if known, and its chunks from the requested offset on. */
export interface OpenedSource {
  readonly totalSize: number | undefined;
  /** Hashes the prefix into `hash`, then yields chunks of `chunkSize` bytes from the offset. */
  readonly chunks: AsyncGenerator<Uint8Array, void, undefined>;
}

/** Prefix re-reads of seekable sources go in blocks of this size (independent of the chunk size). */
const PREFIX_BLOCK = 1024 * 1024;

/**
 * Opens `source` for sending from `offset`, hashing the bytes before `offset` into `prefixHash`.
 * Fails with FAILED_PRECONDITION when the source is shorter than `offset`.
 */
export async function openChunkSource(
  source: ChunkSource,
  offset: number,
  chunkSize: number,
  prefixHash: Hash,
  totalSize?: number,
): Promise<OpenedSource> {
  if (typeof source === "string" || source instanceof URL) return openFile(source, offset, chunkSize, prefixHash);
  if (source instanceof Uint8Array) {
    checkLength(source.byteLength, offset);
    prefixHash.update(source.subarray(0, offset));
    return { totalSize: source.byteLength, chunks: slices(source.subarray(offset), chunkSize) };
  }
  if (source instanceof Blob) {
    checkLength(source.size, offset);
    return { totalSize: source.size, chunks: blobChunks(source, offset, chunkSize, prefixHash) };
  }
  return { totalSize, chunks: rechunk(skip(source, offset, prefixHash), chunkSize) };
}

function checkLength(length: number, offset: number): void {
  if (length < offset) {
    throw new RpcError(Code.FailedPrecondition, `cannot resume at offset ${offset}: the source has only ${length} bytes`);
  }
}

async function openFile(path: string | URL, offset: number, chunkSize: number, prefixHash: Hash): Promise<OpenedSource> {
  const file = await open(path, "r");
  let size: number;
  try {
    size = (await file.stat()).size;
    checkLength(size, offset);
  } catch (e) {
    await file.close();
    throw e;
  }
  async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      const block = Buffer.allocUnsafe(Math.min(PREFIX_BLOCK, Math.max(offset, 1)));
      for (let pos = 0; pos < offset; ) {
        const { bytesRead } = await file.read(block, 0, Math.min(block.byteLength, offset - pos), pos);
        if (bytesRead === 0) throw new RpcError(Code.FailedPrecondition, `${String(path)} shrank below ${offset} bytes while being read`);
        prefixHash.update(block.subarray(0, bytesRead));
        pos += bytesRead;
      }
      // The size is fixed when the file is opened: a file that grows meanwhile is sent as it was
      // then, one that shrinks fails rather than sending a payload that matches no checksum.
      for (let pos = offset; pos < size; ) {
        const want = Math.min(chunkSize, size - pos);
        const buf = Buffer.allocUnsafe(want);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await file.read(buf, got, want - got, pos + got);
          if (bytesRead === 0) throw new RpcError(Code.FailedPrecondition, `${String(path)} shrank while being sent (expected ${size} bytes)`);
          got += bytesRead;
        }
        pos += want;
        yield buf;
      }
    } finally {
      await file.close();
    }
  }
  return { totalSize: size, chunks: chunks() };
}

async function* slices(bytes: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array, void, undefined> {
  for (let pos = 0; pos < bytes.byteLength; pos += chunkSize) yield bytes.subarray(pos, pos + chunkSize);
}

async function* blobChunks(blob: Blob, offset: number, chunkSize: number, prefixHash: Hash): AsyncGenerator<Uint8Array, void, undefined> {
  for (let pos = 0; pos < offset; pos += PREFIX_BLOCK) {
    prefixHash.update(new Uint8Array(await blob.slice(pos, Math.min(offset, pos + PREFIX_BLOCK)).arrayBuffer()));
  }
  // Read the rest one chunk per pull: Blob.stream() would read ahead on its own schedule.
  for (let pos = offset; pos < blob.size; pos += chunkSize) {
    yield new Uint8Array(await blob.slice(pos, Math.min(blob.size, pos + chunkSize)).arrayBuffer());
  }
}

/** Hashes and drops the first `n` bytes of a stream, then passes the rest through. */
async function* skip(pieces: AsyncIterable<Uint8Array>, n: number, prefixHash: Hash): AsyncGenerator<Uint8Array, void, undefined> {
  let left = n;
  for await (const piece of pieces) {
    if (left === 0) {
      yield piece;
      continue;
    }
    const dropped = Math.min(left, piece.byteLength);
    prefixHash.update(piece.subarray(0, dropped));
    left -= dropped;
    if (dropped < piece.byteLength) yield piece.subarray(dropped);
  }
  if (left > 0) throw new RpcError(Code.FailedPrecondition, `cannot resume at offset ${n}: the source ended after ${n - left} bytes`);
}
