/**
 * rill/bytestream: google.bytestream.ByteStream (Read, Write, QueryWriteStatus) over a
 * content-addressed directory, with REAPI's resource names, resumable writes kept in a partial
 * store, and SHA-256 verification on finish_write.
 */
export { serveByteStream, createByteStream, ByteStream } from "./byte-stream-service.js";
export type { ByteStreamOptions, ByteStreamService } from "./byte-stream-service.js";
export { BlobDir, EMPTY_SHA256 } from "./blob-dir.js";
export { parseReadResource, parseWriteResource, blobResourceName, MAX_RESOURCE_NAME } from "./resource-name.js";
export type { BlobDigest, ReadResource, WriteResource } from "./resource-name.js";
export {
  ReadRequestSchema,
  ReadResponseSchema,
  WriteRequestSchema,
  WriteResponseSchema,
  QueryWriteStatusRequestSchema,
  QueryWriteStatusResponseSchema,
  file_google_bytestream_bytestream,
} from "../../../gen/google/bytestream/bytestream_pb.js";
export type { ReadRequest, ReadResponse, WriteRequest, WriteResponse, QueryWriteStatusRequest, QueryWriteStatusResponse } from "../../../gen/google/bytestream/bytestream_pb.js";
export { createPartialStore } from "../../transfer/partial-store.js";
export type { PartialStore, PartialStoreOptions, PartialInfo, PartialTransfer } from "../../transfer/partial-store.js";
