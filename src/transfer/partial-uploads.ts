/**
 * The uploads a TransferService is receiving: for each transfer id, one `RangeFile` over the
 * partial store's data file, shared by every Upload stream of that id in this process (parts
 * run at once), with what the store must remember across restarts: the payload's size, the
 * ranges held and the SHA-256 the sender stated with its final chunk.
 *
 * State is saved when a stream ends and every 16 MiB written, after the bytes (so a crash leaves
 * it short of the file, never ahead). Chunks that failed their CRC32C are remembered until they
 * arrive intact, so GetStatus can name them.
 *
 * One process owns an upload: two servers writing one partial directory would each keep their
 * own ranges. Put a shared directory behind one server, or route an id to one server.
 */
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { ByteRanges, type Range } from "./byte-ranges.js";
import type { PartialStore, PartialTransfer } from "./partial-store.js";
import { RangeFile } from "./range-file.js";

/** What an upload's partial keeps in its sidecar. */
interface UploadState {
  totalSize: number;
  held: Array<[number, number]>;
  /** Hex SHA-256 stated by the final chunk, once it arrived. */
  sha256?: string;
}

/** One upload in progress. */
export class PartialUpload {
  readonly rejected = new ByteRanges();
  sha256: Uint8Array | undefined;
  refs = 0;
  private unsaved = 0;

  constructor(
    readonly partial: PartialTransfer,
    readonly file: RangeFile,
  ) {
    const state = partial.state as UploadState | undefined;
    if (state?.sha256 !== undefined) this.sha256 = Buffer.from(state.sha256, "hex");
  }

  /** Counts `bytes` written; saves the state every 16 MiB. */
  async wrote(bytes: number): Promise<void> {
    this.unsaved += bytes;
    if (this.unsaved >= 16 * 1024 * 1024) await this.save();
  }

  /** Records chunks that arrived damaged, and forgets those now held. */
  reject(ranges: readonly Range[]): void {
    for (const [s, e] of ranges) this.rejected.add(s, e);
  }

  /** Damaged chunks not yet received intact. */
  stillRejected(): Range[] {
    return this.rejected.ranges().flatMap(([s, e]) => this.file.held.missing(s, e));
  }

  async save(): Promise<void> {
    this.unsaved = 0;
    const state: UploadState = { totalSize: this.file.totalSize, held: this.file.held.toJSON() };
    if (this.sha256 !== undefined) state.sha256 = Buffer.from(this.sha256).toString("hex");
    this.partial.state = state;
    await this.partial.save();
  }
}

export class PartialUploads {
  private readonly open = new Map<string, Promise<PartialUpload>>();

  constructor(readonly store: PartialStore) {}

  /** The upload `id` of a payload of `totalSize` bytes, opened (or created) and held until `release`. */
  async acquire(id: string, totalSize: number): Promise<PartialUpload> {
    let pending = this.open.get(id);
    if (pending === undefined) {
      pending = this.load(id, totalSize);
      this.open.set(id, pending);
      pending.catch(() => this.open.delete(id));
    }
    const upload = await pending;
    if (upload.file.totalSize !== totalSize) {
      throw new RpcError(Code.FailedPrecondition, `upload ${id} is for a payload of ${upload.file.totalSize} bytes, not ${totalSize}; abort it to start another`);
    }
    upload.refs++;
    return upload;
  }

  /** Lets go of an upload; the last stream out saves its state and closes the file. */
  async release(id: string, upload: PartialUpload): Promise<void> {
    if (--upload.refs > 0) return;
    this.open.delete(id);
    try {
      await upload.save();
    } finally {
      await upload.file.close();
      await upload.partial.release();
    }
  }

  /**
   * Ends a whole upload (its last stream holds it): verifies it against the SHA-256 its final
   * chunk stated, then moves its file to `to` — or discards it with DATA_LOSS. Either way the
   * upload is gone afterwards, with no state saved.
   */
  async complete(id: string, upload: PartialUpload, to: string): Promise<Buffer> {
    this.open.delete(id);
    let digest: Buffer;
    try {
      digest = await upload.file.digest();
    } finally {
      await upload.file.close();
    }
    if (!digest.equals(upload.sha256!)) {
      await upload.partial.abort();
      throw new RpcError(
        Code.DataLoss,
        `SHA-256 mismatch: the ${upload.file.totalSize} bytes received hash to ${digest.toString("hex")}, but the sender's is ${Buffer.from(upload.sha256!).toString("hex")}; the partial upload was discarded`,
      );
    }
    await upload.partial.complete(to);
    return digest;
  }

  /** Whether streams of upload `id` are running in this process. */
  busy(id: string): boolean {
    return this.open.has(id);
  }

  /** The upload `id` if one is open here or kept by the store (without holding it). */
  async peek(id: string): Promise<{ held: Range[]; rejected: Range[]; totalSize: number; expiresAt: number } | undefined> {
    const info = (await this.store.list()).find((p) => p.id === id);
    if (info === undefined) return undefined;
    const open = this.open.get(id);
    if (open !== undefined) {
      const u = await open;
      return { held: u.file.held.ranges(), rejected: u.stillRejected(), totalSize: u.file.totalSize, expiresAt: info.expiresAt };
    }
    const partial = await this.store.get(id);
    const state = partial?.state as UploadState | undefined;
    if (state === undefined) return undefined;
    return { held: new ByteRanges(state.held).ranges(), rejected: [], totalSize: state.totalSize, expiresAt: info.expiresAt };
  }

  private async load(id: string, totalSize: number): Promise<PartialUpload> {
    const partial = await this.store.open(id, { totalSize });
    const state = partial.state as UploadState | undefined;
    const fresh = state === undefined || typeof state !== "object";
    try {
      if (fresh) {
        // A new upload reserves its whole size at once: one too big for the disk budget is
        // refused before any byte of it is written.
        partial.reserve(totalSize);
      } else if (state.totalSize !== totalSize) {
        throw new RpcError(Code.FailedPrecondition, `upload ${id} is for a payload of ${state.totalSize} bytes, not ${totalSize}; abort it to start another`);
      }
      const file = await RangeFile.open(partial.path, { totalSize, held: fresh ? [] : state.held });
      const upload = new PartialUpload(partial, file);
      await upload.save();
      return upload;
    } catch (e) {
      // The store holds a partial for one writer at a time: let go of it (a refused new one
      // is not kept at all), or every later stream of this id would be ABORTED.
      await (fresh ? partial.abort() : partial.release());
      throw e;
    }
  }
}
