/**
 * rill/transfer: payloads of any size as a stream of chunks, with progress, a whole-file
 * SHA-256 and resume. A feature built on the core (it uses only the public client and server
 * API), so it lives apart from it.
 */
export {
  sendChunks,
  receiveChunks,
  fileSink,
  memorySink,
  withResume,
  chunkToProto,
  transferStatusToProto,
  chunkFromProto,
  DEFAULT_CHUNK_SIZE,
} from "./chunked.js";
export type {
  TransferChunk,
  TransferProgress,
  ChunkSource,
  SendChunksOptions,
  ReceiveChunksOptions,
  TransferResult,
  ChunkSink,
  MemorySink,
  FileSinkOptions,
  ResumeOptions,
} from "./chunked.js";
// The ready-made transfer service of proto/rill/transfer/v1/transfer.proto, for sendChunks/receiveChunks.
export { TransferService, ChunkSchema, TransferStatusSchema, file_rill_transfer_v1_transfer } from "../../gen/rill/transfer/v1/transfer_pb.js";
export type { Chunk, TransferStatus } from "../../gen/rill/transfer/v1/transfer_pb.js";
export { ByteRanges } from "./byte-ranges.js";
export type { Range } from "./byte-ranges.js";
export { crc32c } from "./crc32c.js";
export { sha256File } from "./file-hash.js";
export { CHUNK_CHECKSUM_MISMATCH, isChunkChecksumError } from "./chunk-check.js";
export { RangeFile } from "./range-file.js";
export type { RangeFileOptions } from "./range-file.js";
export { receiveRange } from "./range-receiver.js";
export type { ReceiveRangeOptions, RangeReceipt } from "./range-receiver.js";
export { sendRange, rangeSourceSize } from "./range-sender.js";
export type { RangeSource, SendRangeOptions } from "./range-sender.js";
export { downloadRanges } from "./range-download.js";
export type { DownloadRangesOptions, DownloadReport, RangeFetcher } from "./range-download.js";
export { transferService } from "./transfer-service.js";
export { createPartialStore } from "./partial-store.js";
export type { PartialStore, PartialStoreOptions, PartialInfo, PartialTransfer } from "./partial-store.js";
export type { TransferServiceOptions } from "./transfer-service.js";
export { downloadTransfer, transferFetcher, uploadTransfer } from "./transfer-client.js";
export type { DownloadTransferOptions, UploadTransferOptions, UploadReport } from "./transfer-client.js";
export { rangesToProto, rangesFromProto } from "./transfer-proto.js";
