/**
 * The receiving half of a chunked transfer: consumes a client-streaming call's requests (in a
 * handler) or a server-streaming call's responses (in a client), checks every chunk's place,
 * writes it to a sink and verifies the payload's SHA-256.
 *
 * Reading is pull-based: the next message is read only after the previous chunk was written, so
 * a slow sink (disk) slows the sender through HTTP/2 flow control instead of buffering.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { chunkChecksumError, chunkIntact } from "./chunk-check.js";
import { ChunkSequence } from "./chunk-sequence.js";
import type { ChunkSink } from "./chunk-sink.js";
import { RateMeter } from "./rate-meter.js";
import type { TransferChunk, TransferProgress } from "./transfer-chunk.js";

/** Options of `receiveChunks`. */
export interface ReceiveChunksOptions<M> {
  /** Maps a received message to its chunk (e.g. `(req) => chunkFromProto(req.chunk)`). */
  fromMessage: (message: M) => TransferChunk;
  /** The payload's size when known in advance; a sender announcing another one is rejected. */
  totalSize?: number;
  /** A checksum known in advance (e.g. from a catalogue); checked as well as the sender's. */
  expectedSha256?: Uint8Array;
  /** Told after each chunk is written (acknowledged). */
  onProgress?: (progress: TransferProgress) => void;
}

/** How a `receiveChunks` call ended. */
export interface TransferResult {
  /** Bytes the sink holds now: where a resumed transfer starts. */
  readonly offset: number;
  /** Bytes written by this call. */
  readonly transferred: number;
  /** The final chunk arrived and the checksum matched. */
  readonly complete: boolean;
  /** The verified SHA-256, when complete. */
  readonly sha256: Uint8Array | undefined;
  /** The payload's size, when announced. */
  readonly totalSize: number | undefined;
}

/**
 * Receives one payload from `messages` into `sink`, or into the sink `sink(first)` picks from the
 * first message (e.g. by its transfer id).
 *
 * Resumes where the sink left off: the first chunk must start at `sink.size()` (else
 * FAILED_PRECONDITION naming the offset to resume at). A gap or overlap later in the stream, or a
 * chunk past the last, is INVALID_ARGUMENT. A chunk whose CRC32C does not match its bytes is
 * DATA_LOSS with a CHUNK_CHECKSUM_MISMATCH ErrorInfo (see chunk-check.ts); the sink holds every
 * chunk before it, so a resume sends that chunk again and what follows it. A checksum mismatch discards the sink's bytes and
 * fails with DATA_LOSS. A stream that ends (cleanly) before the final chunk keeps what arrived
 * and resolves with `complete: false`; a stream that fails rejects with its error, keeping what
 * was written too. One transfer at a time per sink object: a second one waits for the first.
 */
export async function receiveChunks<M>(
  messages: AsyncIterable<M>,
  sink: ChunkSink | ((first: M) => ChunkSink | Promise<ChunkSink>),
  options: ReceiveChunksOptions<M>,
): Promise<TransferResult> {
  const it = messages[Symbol.asyncIterator]();
  let first: IteratorResult<M> | undefined;
  let target: ChunkSink;
  if (typeof sink === "function") {
    first = await it.next();
    if (first.done) throw new RpcError(Code.InvalidArgument, "the transfer stream carried no chunk");
    target = await sink(first.value);
  } else {
    target = sink;
  }
  try {
    return await exclusive(target, () => receiveInto(it, first, target, options));
  } finally {
    // Ends the stream early if we stopped reading it (an error); a no-op once it is done.
    await it.return?.();
  }
}

async function receiveInto<M>(
  it: AsyncIterator<M>,
  first: IteratorResult<M> | undefined,
  sink: ChunkSink,
  options: ReceiveChunksOptions<M>,
): Promise<TransferResult> {
  try {
    const start = await sink.size();
    const hash = createHash("sha256");
    if (start > 0) await hashPrefix(sink, start, hash);
    const sequence = new ChunkSequence(start, options.totalSize);
    const rate = new RateMeter();
    let sha256: Uint8Array | undefined;
    for (let next = first ?? (await it.next()); !next.done; next = await it.next()) {
      const chunk = options.fromMessage(next.value);
      // Checked before its place is accepted: a damaged chunk leaves the sink where it was, so
      // the sender resumes from exactly this chunk.
      if (!chunkIntact(chunk)) throw chunkChecksumError(chunk);
      sequence.accept(chunk);
      if (chunk.data.byteLength > 0) {
        hash.update(chunk.data);
        await sink.write(chunk.data);
      }
      if (chunk.last) {
        const digest = hash.digest();
        const claimed = chunk.sha256!;
        const expected = options.expectedSha256;
        if (!equalBytes(digest, claimed) || (expected !== undefined && !equalBytes(digest, expected))) {
          await sink.discard?.();
          throw new RpcError(
            Code.DataLoss,
            `SHA-256 mismatch: the received ${sequence.offset} bytes hash to ${hex(digest)}, ` +
              `but the ${expected !== undefined && !equalBytes(digest, expected) ? "expected checksum is " + hex(expected) : "sender's is " + hex(claimed)}; the partial payload was discarded`,
          );
        }
        await sink.complete?.(digest);
        sha256 = digest;
      }
      options.onProgress?.({
        bytes: sequence.offset,
        transferred: sequence.offset - start,
        total: sequence.totalSize,
        bytesPerSecond: rate.add(chunk.data.byteLength),
        done: chunk.last,
      });
    }
    return {
      offset: sequence.offset,
      transferred: sequence.offset - start,
      complete: sequence.complete,
      sha256,
      totalSize: sequence.totalSize,
    };
  } finally {
    await sink.close?.();
  }
}

async function hashPrefix(sink: ChunkSink, start: number, hash: ReturnType<typeof createHash>): Promise<void> {
  if (sink.read === undefined) {
    throw new RpcError(Code.FailedPrecondition, `the sink holds ${start} bytes but cannot read them back to verify a resumed transfer`);
  }
  let n = 0;
  for await (const piece of sink.read()) {
    hash.update(piece);
    n += piece.byteLength;
  }
  if (n !== start) throw new RpcError(Code.Internal, `the sink reported ${start} bytes held but read back ${n}`);
}

const busy = new WeakMap<ChunkSink, Promise<void>>();

/** Runs `fn` once no other transfer into `sink` is running. */
async function exclusive<T>(sink: ChunkSink, fn: () => Promise<T>): Promise<T> {
  const previous = busy.get(sink);
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = (previous ?? Promise.resolve()).then(() => mine);
  busy.set(sink, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (busy.get(sink) === tail) busy.delete(sink);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
