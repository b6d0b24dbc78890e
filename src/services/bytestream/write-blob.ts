/**
 * ByteStream.Write and QueryWriteStatus into a BlobDir, through a partial store (so expiry,
 * abort and the disk budget apply to unfinished uploads).
 *
 * One upload is the partial `{uuid}.{hash}.{size}` of the write name; its committed size is the
 * bytes its data file holds, written in order. Rules (bytestream.proto, REAPI):
 * - A blob already present completes the Write at once with committed_size = its size, whatever
 *   was sent; checked at the start and again every 16 MiB (another client may finish it first).
 *   The empty blob is always present.
 * - The first request's write_offset must be the committed size (FAILED_PRECONDITION otherwise:
 *   ask QueryWriteStatus), except 0, which starts the upload over. Later requests must continue
 *   where the previous one ended, and name the same resource or none (INVALID_ARGUMENT).
 * - More bytes than the digest's size, or a request after finish_write, is INVALID_ARGUMENT.
 * - On finish_write the size and SHA-256 are checked; a mismatch is INVALID_ARGUMENT and the
 *   partial is discarded (REAPI: "the client should not attempt to retry the upload").
 * - A stream that ends without finish_write keeps what it wrote and answers the committed size.
 * - Two streams writing one upload at once: the second is ABORTED (the store's one writer).
 */
import { stat } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { QueryWriteStatusRequest, QueryWriteStatusResponseSchema, WriteRequest, WriteResponseSchema } from "../../../gen/google/bytestream/bytestream_pb.js";
import { Code } from "../../protocol/code.js";
import { RpcError } from "../../protocol/errors.js";
import type { PartialStore, PartialTransfer } from "../../transfer/partial-store.js";
import { RangeFile } from "../../transfer/range-file.js";
import type { BlobDir } from "./blob-dir.js";
import { parseWriteResource, type WriteResource } from "./resource-name.js";

/** Bytes written between two saves of an upload's sidecar (and two checks that the blob is not present yet). */
const SAVE_EVERY = 16 * 1024 * 1024;

type WriteResponse = MessageInitShape<typeof WriteResponseSchema>;

/** The writes of one ByteStream service. */
export class BlobWrites {
  /** Committed sizes of the uploads being written here, as each write completes. */
  private readonly writing = new Map<string, number>();

  constructor(
    private readonly blobs: BlobDir,
    private readonly partials: () => Promise<PartialStore>,
  ) {}

  async write(requests: AsyncIterable<WriteRequest>): Promise<WriteResponse> {
    const it = requests[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done === true) throw new RpcError(Code.InvalidArgument, "the Write stream carried no request");
    const name = first.value.resourceName;
    if (name === "") throw new RpcError(Code.InvalidArgument, "the first WriteRequest must set resource_name");
    const res = parseWriteResource(name);
    const { size } = res.digest;
    if (await this.blobs.has(res.digest)) return { committedSize: BigInt(size) };
    const store = await this.partials();
    const id = partialId(res);
    let partial = await store.open(id, { totalSize: size });
    let committed = (await stat(partial.path)).size;
    const offset = first.value.writeOffset;
    if (offset === 0n && committed > 0) {
      // Writing from 0 again starts over (a client that did not ask QueryWriteStatus).
      await partial.abort();
      partial = await store.open(id, { totalSize: size });
      committed = 0;
    } else if (offset !== BigInt(committed)) {
      await partial.release();
      throw new RpcError(Code.FailedPrecondition, `write_offset ${offset} is not the upload's committed size ${committed}: resume from QueryWriteStatus's committed_size, or from 0 to start over`);
    }
    this.writing.set(id, committed);
    let file: RangeFile | undefined;
    try {
      file = await RangeFile.open(partial.path, { totalSize: size, held: committed > 0 ? [[0, committed]] : [] });
      const result = await this.receive(name, res, partial, file, first.value, it, committed);
      if (result.finished) return await this.finish(res, partial, file, result.committed);
      if (result.present) {
        await partial.abort();
        return { committedSize: BigInt(size) };
      }
      return { committedSize: BigInt(result.committed) };
    } finally {
      this.writing.delete(id);
      await file?.close();
      // Keeps what was written for a resume; a no-op once completed or discarded.
      await partial.release();
    }
  }

  /** Writes the stream's data in order; stops at finish_write, at the stream's end, or when the blob turns up complete. */
  private async receive(
    name: string,
    res: WriteResource,
    partial: PartialTransfer,
    file: RangeFile,
    first: WriteRequest,
    rest: AsyncIterator<WriteRequest>,
    committed: number,
  ): Promise<{ committed: number; finished: boolean; present: boolean }> {
    const { size } = res.digest;
    let pos = committed;
    let unsaved = 0;
    let finished = false;
    for (let req: WriteRequest | undefined = first; req !== undefined; ) {
      if (finished) throw new RpcError(Code.InvalidArgument, "a WriteRequest arrived after the one with finish_write");
      if (req !== first) {
        if (req.resourceName !== "" && req.resourceName !== name) throw new RpcError(Code.InvalidArgument, `a Write stream writes one resource: ${name}, not ${req.resourceName}`);
        if (req.writeOffset !== BigInt(pos)) throw new RpcError(Code.InvalidArgument, `write_offset ${req.writeOffset} does not continue the stream: expected ${pos} (the first offset plus the bytes sent since)`);
      }
      const n = req.data.byteLength;
      if (pos + n > size) throw new RpcError(Code.InvalidArgument, `the upload would hold ${pos + n} bytes, more than the ${size} its digest names`);
      if (n > 0) {
        partial.reserve(n);
        await file.write(pos, req.data);
        pos += n;
        this.writing.set(partial.id, pos);
        unsaved += n;
        if (unsaved >= SAVE_EVERY) {
          unsaved = 0;
          await partial.save();
          if (await this.blobs.has(res.digest)) return { committed: pos, finished: false, present: true };
        }
      }
      finished = req.finishWrite;
      const next = await rest.next();
      req = next.done === true ? undefined : next.value;
    }
    return { committed: pos, finished, present: false };
  }

  /** Checks size and SHA-256, then moves the blob into place; a mismatch discards the upload. */
  private async finish(res: WriteResource, partial: PartialTransfer, file: RangeFile, committed: number): Promise<WriteResponse> {
    const { hash, size } = res.digest;
    if (committed !== size) {
      await partial.abort();
      throw new RpcError(Code.InvalidArgument, `finish_write after ${committed} bytes, but the digest names ${size}; the upload was discarded`);
    }
    const digest = (await file.digest()).toString("hex");
    await file.close();
    if (digest !== hash) {
      await partial.abort();
      throw new RpcError(Code.InvalidArgument, `the ${size} bytes written hash to SHA-256 ${digest}, not ${hash} as the resource name says; the upload was discarded`);
    }
    await this.blobs.ready();
    await partial.complete(this.blobs.path(hash));
    return { committedSize: BigInt(size) };
  }

  /** The committed size of an upload, and whether its blob is complete; NOT_FOUND when there is neither. */
  async queryWriteStatus(req: QueryWriteStatusRequest): Promise<MessageInitShape<typeof QueryWriteStatusResponseSchema>> {
    const res = parseWriteResource(req.resourceName);
    if (await this.blobs.has(res.digest)) return { committedSize: BigInt(res.digest.size), complete: true };
    const id = partialId(res);
    const writing = this.writing.get(id);
    if (writing !== undefined) return { committedSize: BigInt(writing), complete: false };
    const partial = await (await this.partials()).get(id);
    if (partial === undefined) {
      throw new RpcError(Code.NotFound, `no upload ${JSON.stringify(req.resourceName.slice(0, 200))}: it never started, expired or was aborted`);
    }
    const bytes = await stat(partial.path).then((s) => s.size, () => 0);
    return { committedSize: BigInt(bytes), complete: false };
  }
}

/** The partial store id of an upload: its uuid and digest (REAPI lets a uuid be reused for other blobs). */
export function partialId(res: WriteResource): string {
  return `${res.uuid}.${res.digest.hash}.${res.digest.size}`;
}
