/**
 * A payload being received in place: a file of known size written at chunk offsets, in any
 * order and from several streams at once, with the set of byte ranges it holds. Ranged
 * transfers (parallel parts, refetched chunks) write here; the owner persists `held` wherever
 * it keeps state (a sidecar file, a partial-transfer store) and passes it back on reopen.
 *
 * The SHA-256 of the whole is computed as bytes arrive when they arrive in order (one part, or
 * the first part of several), and the rest is read back from the file once every byte is held:
 * a sequential transfer hashes each byte once and reads nothing back; a parallel one reads back
 * what arrived ahead of the in-order prefix.
 *
 * `held` only grows after a write has completed, so a crash leaves it short of the file, never
 * ahead of it (the bytes written since are sent again). A range is never written twice: a
 * chunk already held is skipped, so a part retried on another server cannot disturb bytes
 * another stream verified.
 */
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { ByteRanges, type Range } from "./byte-ranges.js";

/** Options of `RangeFile.open`. */
export interface RangeFileOptions {
  /** The payload's size. */
  totalSize: number;
  /** Ranges already held (from the owner's saved state); the file must hold those bytes. */
  held?: Iterable<Range>;
  /**
   * Most disjoint ranges the file may hold; a write that would fragment it further is
   * RESOURCE_EXHAUSTED. Bounds the state a peer can make us keep by sending every other chunk.
   * Default 10,000.
   */
  maxRanges?: number;
}

/** Blocks of this size are read back to finish the hash. */
const READ_BACK = 1024 * 1024;

export class RangeFile {
  readonly held: ByteRanges;
  private readonly hash: Hash = createHash("sha256");
  /** Bytes [0, hashed) are in `hash`. */
  private hashed = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly totalSize: number,
    held: Iterable<Range>,
    private readonly maxRanges: number,
  ) {
    this.held = new ByteRanges(held);
  }

  /** Opens (creating if missing, never truncating) the file at `path` for a payload of `totalSize` bytes. */
  static async open(path: string, options: RangeFileOptions): Promise<RangeFile> {
    const { totalSize } = options;
    if (!Number.isSafeInteger(totalSize) || totalSize < 0) throw new RangeError(`totalSize must be a non-negative integer, got ${totalSize}`);
    const handle = await open(path, "a+").then(async (h) => {
      // "a+" creates without truncating; positional writes need a handle not in append mode.
      await h.close();
      return open(path, "r+");
    });
    // Saved state that claims bytes past the file's end (the file was replaced or truncated) is
    // cut to what the file can hold: those bytes are fetched again rather than trusted.
    const size = (await handle.stat()).size;
    const held = [...(options.held ?? [])].filter(([, end]) => end <= size);
    return new RangeFile(path, handle, totalSize, held, options.maxRanges ?? 10_000);
  }

  /** Every byte is held. */
  get complete(): boolean {
    return this.held.has(0, this.totalSize);
  }

  /** The ranges still to fetch, in order. */
  missing(): Range[] {
    return this.held.missing(0, this.totalSize);
  }

  /**
   * Writes `data` at `offset` unless that range is already held; resolves true when it wrote.
   * INVALID_ARGUMENT for a chunk outside the payload.
   */
  async write(offset: number, data: Uint8Array): Promise<boolean> {
    return (await this.writeRun(offset, [data]))[0]!;
  }

  /**
   * Writes consecutive `pieces` (chunks that follow one another) from `offset`, with one
   * `writev` per stretch not already held, and resolves with whether each piece was written (a
   * held piece is skipped). One system call for several chunks: on a small VM an async file
   * write costs the event loop several futex round trips to the thread pool whatever its size,
   * so 64 KiB chunks written one by one spent a third of a receiver's time there.
   */
  async writeRun(offset: number, pieces: readonly Uint8Array[]): Promise<boolean[]> {
    let end = offset;
    for (const p of pieces) end += p.byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > this.totalSize) {
      throw new RpcError(Code.InvalidArgument, `the chunk [${offset}, ${end}) lies outside the payload's ${this.totalSize} bytes`);
    }
    if (this.closed) throw new RpcError(Code.Aborted, "the transfer was closed while a chunk was being written");
    // Decided before the first await, so concurrent writers cannot reorder them: which pieces
    // are new, and the hash of those that continue the hashed prefix (anything else is read
    // back in digest()).
    const wrote = pieces.map(() => false);
    const stretches: Array<{ at: number; bufs: Uint8Array[]; bytes: number }> = [];
    let at = offset;
    let open: (typeof stretches)[number] | undefined;
    pieces.forEach((p, i) => {
      const pEnd = at + p.byteLength;
      if (p.byteLength > 0 && !this.held.has(at, pEnd)) {
        wrote[i] = true;
        if (at === this.hashed) {
          this.hash.update(p);
          this.hashed = pEnd;
        }
        if (open === undefined) stretches.push((open = { at, bufs: [], bytes: 0 }));
        open.bufs.push(p);
        open.bytes += p.byteLength;
      } else {
        open = undefined;
      }
      at = pEnd;
    });
    for (const stretch of stretches) {
      await this.writeAll(stretch.at, stretch.bufs, stretch.bytes);
      this.held.add(stretch.at, stretch.at + stretch.bytes);
      if (this.held.count > this.maxRanges) {
        throw new RpcError(Code.ResourceExhausted, `the transfer is fragmented into more than ${this.maxRanges} ranges; send its parts in order`);
      }
    }
    return wrote;
  }

  /** `writev` until every byte of `bufs` is at `position` (a short write continues where it stopped). */
  private async writeAll(position: number, bufs: Uint8Array[], bytes: number): Promise<void> {
    for (let done = 0; done < bytes; ) {
      const { bytesWritten } = await this.handle.writev(bufs, position + done);
      done += bytesWritten;
      if (done < bytes) bufs = remainder(bufs, bytesWritten);
    }
  }

  /**
   * The SHA-256 of the whole payload; FAILED_PRECONDITION while bytes are missing. Reads back
   * the bytes that arrived ahead of the in-order prefix.
   */
  async digest(): Promise<Buffer> {
    if (!this.complete) throw new RpcError(Code.FailedPrecondition, `the payload is not whole: ${this.totalSize - this.held.bytes} bytes missing`);
    // A file left by a longer payload under the same name must not keep its tail.
    await this.handle.truncate(this.totalSize);
    const block = Buffer.allocUnsafe(Math.min(READ_BACK, Math.max(1, this.totalSize - this.hashed)));
    while (this.hashed < this.totalSize) {
      const { bytesRead } = await this.handle.read(block, 0, Math.min(block.byteLength, this.totalSize - this.hashed), this.hashed);
      if (bytesRead === 0) throw new RpcError(Code.DataLoss, `${this.path} holds fewer bytes than its ranges say (${this.hashed} of ${this.totalSize})`);
      this.hash.update(block.subarray(0, bytesRead));
      this.hashed += bytesRead;
    }
    return this.hash.copy().digest();
  }

  /** Closes the file; writes after it fail with ABORTED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** What is left of `bufs` after its first `skip` bytes. */
function remainder(bufs: Uint8Array[], skip: number): Uint8Array[] {
  let i = 0;
  while (skip >= bufs[i]!.byteLength) skip -= bufs[i++]!.byteLength;
  return [bufs[i]!.subarray(skip), ...bufs.slice(i + 1)];
}
