/**
 * The receiver's rules for the order of chunks, kept pure so every edge is unit-tested:
 * - the first chunk starts at the bytes the receiver holds (else FAILED_PRECONDITION: the sender
 *   resumed from the wrong place and should ask for the status again);
 * - each later chunk starts exactly where the previous one ended (a gap or an overlap is
 *   INVALID_ARGUMENT: the sender is broken);
 * - nothing follows the final chunk; a final chunk carries a 32-byte SHA-256;
 * - an announced total size never changes, no chunk runs past it, and the final chunk ends on it.
 */
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { TransferChunk } from "./transfer-chunk.js";

/** Tracks where the next chunk must start; `accept` throws an RpcError for a chunk out of place. */
export class ChunkSequence {
  private started = false;
  private ended = false;
  private announced: number | undefined;

  constructor(
    private position: number,
    totalSize?: number,
  ) {
    this.announced = totalSize;
  }

  /** The offset the next chunk must start at: bytes accepted so far, counting the resumed prefix. */
  get offset(): number {
    return this.position;
  }

  /** The payload's size, once the sender announced it. */
  get totalSize(): number | undefined {
    return this.announced;
  }

  /** True once the final chunk was accepted. */
  get complete(): boolean {
    return this.ended;
  }

  /** Checks `chunk` against the sequence so far and advances past it. */
  accept(chunk: TransferChunk): void {
    if (this.ended) throw new RpcError(Code.InvalidArgument, `a chunk at offset ${chunk.offset} arrived after the last chunk`);
    if (!Number.isSafeInteger(chunk.offset) || chunk.offset < 0) {
      throw new RpcError(Code.InvalidArgument, `invalid chunk offset ${chunk.offset}`);
    }
    if (chunk.offset !== this.position) {
      if (!this.started) {
        throw new RpcError(
          Code.FailedPrecondition,
          `the receiver holds ${this.position} bytes, so the transfer must resume at offset ${this.position}, but the first chunk starts at ${chunk.offset}`,
        );
      }
      throw new RpcError(
        Code.InvalidArgument,
        chunk.offset > this.position
          ? `gap in the chunk stream: expected offset ${this.position}, got ${chunk.offset} (${chunk.offset - this.position} bytes missing)`
          : `overlap in the chunk stream: expected offset ${this.position}, got ${chunk.offset} (${this.position - chunk.offset} bytes repeated)`,
      );
    }
    if (chunk.totalSize !== undefined) {
      if (this.announced !== undefined && this.announced !== chunk.totalSize) {
        throw new RpcError(Code.InvalidArgument, `the payload's total size changed from ${this.announced} to ${chunk.totalSize} bytes`);
      }
      this.announced = chunk.totalSize;
    }
    const end = chunk.offset + chunk.data.byteLength;
    if (this.announced !== undefined && end > this.announced) {
      throw new RpcError(Code.InvalidArgument, `the chunk at offset ${chunk.offset} runs to ${end}, past the payload's total size of ${this.announced} bytes`);
    }
    if (chunk.last) {
      if (this.announced !== undefined && end !== this.announced) {
        throw new RpcError(Code.InvalidArgument, `the last chunk ends at ${end}, short of the payload's total size of ${this.announced} bytes`);
      }
      if (chunk.sha256?.byteLength !== 32) {
        throw new RpcError(Code.InvalidArgument, `the last chunk must carry a 32-byte SHA-256, got ${chunk.sha256?.byteLength ?? 0} bytes`);
      }
    } else if (chunk.data.byteLength === 0) {
      throw new RpcError(Code.InvalidArgument, `empty chunk at offset ${chunk.offset} (only the last chunk may be empty)`);
    }
    this.started = true;
    this.position = end;
    this.ended = chunk.last;
  }
}
