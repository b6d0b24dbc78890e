/**
 * Chunked transfer: payloads of any size over a client-streaming or server-streaming method, as
 * ordered chunks (64 KiB by default) with progress, SHA-256 verification and resume from the
 * receiver's last acknowledged offset.
 *
 * - `sendChunks(source, { toMessage, offset })`: a file path, Blob, Uint8Array, Readable or
 *   AsyncIterable as an async iterable of messages, read only as fast as the call sends.
 * - `receiveChunks(messages, sink, { fromMessage })`: checks order and checksum, writes to a
 *   `ChunkSink` (`fileSink`, `memorySink`, or your own) and reports where a resume starts.
 * - `withResume(attempt)`: retries an interrupted transfer; each attempt resumes at the offset.
 * - `chunkToProto` / `chunkFromProto`: mapping for the ready-made `rill.transfer.v1.Chunk`.
 *
 * Large payloads do not block other streams on the connection: each chunk is its own message,
 * and HTTP/2 interleaves the DATA frames of all streams.
 */
export { DEFAULT_CHUNK_SIZE } from "./transfer-chunk.js";
export type { TransferChunk, TransferProgress } from "./transfer-chunk.js";
export type { ChunkSource } from "./chunk-source.js";
export { sendChunks } from "./chunk-sender.js";
export type { SendChunksOptions } from "./chunk-sender.js";
export { receiveChunks } from "./chunk-receiver.js";
export type { ReceiveChunksOptions, TransferResult } from "./chunk-receiver.js";
export { fileSink, memorySink } from "./chunk-sink.js";
export type { ChunkSink, MemorySink, FileSinkOptions } from "./chunk-sink.js";
export { ChunkSequence } from "./chunk-sequence.js";
export { rechunk } from "./rechunk.js";
export { RateMeter } from "./rate-meter.js";
export { withResume } from "./resume.js";
export type { ResumeOptions } from "./resume.js";
export { chunkToProto, chunkFromProto, transferStatusToProto } from "./transfer-proto.js";
