/**
 * The pure gRPC wire protocol: framing, status, metadata, timeouts and header checks.
 *
 * Nothing under this folder does I/O or keeps time; everything is a function over bytes and header
 * records, so it can be tested exhaustively and reused by any transport.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 */
export { Code, codeName, parseCode } from "./code.js";
export { FRAME_HEADER_LENGTH, FrameDecoder, encodeFrame, encodeFrameHeader } from "./frame.js";
export type { Frame } from "./frame.js";
export { contentTypeFor, parseContentType, parsePath, validateRequestHeaders } from "./headers.js";
export type { CodecName, HeaderRecord } from "./headers.js";
export {
  Metadata,
  MetadataError,
  isReservedHeader,
  metadataFromHeaders,
  metadataToHeaders,
  parseMetadataStrict,
} from "./metadata.js";
export type { MetadataInit, MetadataValue } from "./metadata.js";
export { decodeStatusMessage, encodeStatusMessage, httpStatusToCode, parseStatus, rstCodeToCode, statusHeaders } from "./status.js";
export type { Status } from "./status.js";
export { formatTimeout, parseTimeout } from "./timeout.js";
