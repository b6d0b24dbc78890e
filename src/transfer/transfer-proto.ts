/**
 * Mapping between `TransferChunk` and the ready-made `rill.transfer.v1.Chunk` message
 * (proto/rill/transfer/v1/transfer.proto), for `sendChunks({ toMessage })` and
 * `receiveChunks({ fromMessage })`.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ByteRange, ByteRangeSchema, Chunk, ChunkSchema, TransferStatusSchema } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { TransferResult } from "./chunk-receiver.js";
import type { Range } from "./byte-ranges.js";
import type { TransferChunk } from "./transfer-chunk.js";

/** The `rill.transfer.v1.Chunk` message for `chunk`. */
export function chunkToProto(chunk: TransferChunk): MessageInitShape<typeof ChunkSchema> {
  return {
    offset: BigInt(chunk.offset),
    data: chunk.data,
    last: chunk.last,
    ...(chunk.sha256 !== undefined ? { sha256: chunk.sha256 } : {}),
    ...(chunk.totalSize !== undefined ? { totalSize: BigInt(chunk.totalSize) } : {}),
    ...(chunk.crc32c !== undefined ? { crc32c: chunk.crc32c } : {}),
  };
}

/**
 * The `rill.transfer.v1.TransferStatus` for what `receiveChunks` returned. Fields the result
 * lacks (a digest before completion) are left out rather than set to undefined, so the value
 * type-checks under `exactOptionalPropertyTypes`.
 */
export function transferStatusToProto(result: TransferResult, transferId = ""): MessageInitShape<typeof TransferStatusSchema> {
  return {
    transferId,
    offset: BigInt(result.offset),
    complete: result.complete,
    ...(result.sha256 !== undefined ? { sha256: result.sha256 } : {}),
    ...(result.totalSize !== undefined ? { totalSize: BigInt(result.totalSize) } : {}),
  };
}

/**
 * The chunk in a received `rill.transfer.v1.Chunk`. A missing message or an offset beyond 2^53
 * is INVALID_ARGUMENT.
 */
export function chunkFromProto(message: Chunk | undefined): TransferChunk {
  if (message === undefined) throw new RpcError(Code.InvalidArgument, "the message carries no chunk");
  return {
    offset: toNumber(message.offset, "offset"),
    data: message.data,
    last: message.last,
    sha256: message.last ? message.sha256 : undefined,
    totalSize: message.totalSize === undefined ? undefined : toNumber(message.totalSize, "total_size"),
    crc32c: message.crc32c,
  };
}

/** `rill.transfer.v1.ByteRange` messages for `ranges`. */
export function rangesToProto(ranges: Iterable<Range>): Array<MessageInitShape<typeof ByteRangeSchema>> {
  return [...ranges].map(([start, end]) => ({ offset: BigInt(start), length: BigInt(end - start) }));
}

/** The ranges of received `rill.transfer.v1.ByteRange` messages (INVALID_ARGUMENT past 2^53). */
export function rangesFromProto(ranges: readonly ByteRange[]): Range[] {
  return ranges.map((r) => {
    const start = toNumber(r.offset, "range offset");
    return [start, toNumber(BigInt(start) + r.length, "range end")] as const;
  });
}

function toNumber(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RpcError(Code.InvalidArgument, `chunk ${field} ${v} is too large`);
  return Number(v);
}
