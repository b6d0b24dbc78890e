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
