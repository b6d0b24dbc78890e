/**
 * The per-chunk integrity check both receivers share: a chunk that carries a CRC32C must match
 * it before any of its bytes are written. A mismatch is reported as DATA_LOSS with an ErrorInfo
 * (domain `rill.transfer`, reason `CHUNK_CHECKSUM_MISMATCH`, the chunk's `offset` and `length`),
 * so a sender — ours or another implementation's — can tell a damaged chunk, worth sending
 * again from its offset, from a payload whose whole checksum failed.
 */
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code } from "../protocol/code.js";
import { errorDetail, RpcError } from "../protocol/errors.js";
import { crc32c } from "./crc32c.js";
import type { TransferChunk } from "./transfer-chunk.js";

export const CHUNK_CHECKSUM_MISMATCH = "CHUNK_CHECKSUM_MISMATCH";
export const TRANSFER_ERROR_DOMAIN = "rill.transfer";

/** Whether `chunk`'s bytes match its CRC32C; a chunk without one passes. */
export function chunkIntact(chunk: TransferChunk): boolean {
  return chunk.crc32c === undefined || crc32c(chunk.data) === chunk.crc32c;
}

/** The DATA_LOSS error for a chunk whose bytes failed their CRC32C. */
export function chunkChecksumError(chunk: TransferChunk): RpcError {
  const got = crc32c(chunk.data).toString(16).padStart(8, "0");
  const want = (chunk.crc32c ?? 0).toString(16).padStart(8, "0");
  return new RpcError(
    Code.DataLoss,
    `the chunk at offset ${chunk.offset} (${chunk.data.byteLength} bytes) arrived damaged: CRC32C ${got}, sent as ${want}; resume at offset ${chunk.offset}`,
    {
      details: [
        errorDetail(ErrorInfoSchema, {
          domain: TRANSFER_ERROR_DOMAIN,
          reason: CHUNK_CHECKSUM_MISMATCH,
          metadata: { offset: String(chunk.offset), length: String(chunk.data.byteLength) },
        }),
      ],
    },
  );
}

/** Whether `error` says a chunk arrived damaged (so resuming from the receiver's offset will mend it). */
export function isChunkChecksumError(error: unknown): boolean {
  return (
    error instanceof RpcError &&
    error.code === Code.DataLoss &&
    error.findDetails(ErrorInfoSchema).some((d) => d.domain === TRANSFER_ERROR_DOMAIN && d.reason === CHUNK_CHECKSUM_MISMATCH)
  );
}
