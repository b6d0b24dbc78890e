/**
 * Mapping between `TransferChunk` and the ready-made `rill.transfer.v1.Chunk` message
 * (proto/rill/transfer/v1/transfer.proto), for `sendChunks({ toMessage })` and
 * `receiveChunks({ fromMessage })`.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Chunk, ChunkSchema, TransferStatusSchema } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { TransferResult } from "./chunk-receiver.js";
import type { TransferChunk } from "./transfer-chunk.js";

/** The `rill.transfer.v1.Chunk` message for `chunk`. */
export function chunkToProto(chunk: TransferChunk): MessageInitShape<typeof ChunkSchema> {
  return {
    offset: BigInt(chunk.offset),
    data: chunk.data,
    last: chunk.last,
    ...(chunk.sha256 !== undefined ? { sha256: chunk.sha256 } : {}),
    ...(chunk.totalSize !== undefined ? { totalSize: BigInt(chunk.totalSize) } : {}),
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
  };
}

function toNumber(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RpcError(Code.InvalidArgument, `chunk ${field} ${v} is too large`);
  return Number(v);
}
