import type { DescMessage } from "@bufbuild/protobuf";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { Frame } from "../protocol/frame.js";
import { protoCodec, type Codec } from "./codec.js";
import { dropSizedFlatMessage, sizeFlatMessage } from "./flat-message-encoder.js";
import { compressMessage, decompressMessage, isMarkedUncompressed, type Compression } from "./compression.js";

/**
 * The one message path of both sides: a message becomes a gRPC frame payload (serialize, send
 * limit, compression) and a received frame becomes a message (compression flag, decompression
 * within the receive limit, parse). The client sends requests and receives responses, the server
 * the other way round; the rules, the errors and their wording are the same, so a fix to limits or
 * compression is made once.
 *
 * These are plain functions over a `MessageSide`, which each side builds once per channel or server
 * (and per call only when a call's limits differ): nothing here allocates per message beyond the
 * bytes themselves.
 *
 * Large messages are compressed and decompressed off the event loop (see `compressMessage`), so
 * both directions may answer with a Promise. Callers keep order by awaiting it before the next.
 */
export interface MessageSide {
  readonly codec: Codec;
  /** What this side sends and receives: "request"/"response" on the client, the reverse on the server. */
  readonly sends: "request" | "response";
  readonly receives: "request" | "response";
  readonly maxSendBytes: number;
  /** How the send limit is named in errors, so users know which option to raise. */
  readonly sendLimitName: string;
  readonly maxReceiveBytes: number;
  readonly receiveLimitName: string;
}

/**
 * Serializes `message` and checks the send limit. Throws RpcError: INTERNAL when the message
 * cannot be serialized, RESOURCE_EXHAUSTED when it is over the limit (before a byte is sent).
 */
export function serializeMessage(side: MessageSide, schema: DescMessage, message: unknown): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = side.codec.encode(schema, message as never);
  } catch (e) {
    throw new RpcError(Code.Internal, `failed to serialize ${side.sends} ${schema.typeName}: ${(e as Error).message}`, { cause: e });
  }
  if (bytes.byteLength > side.maxSendBytes) {
    throw new RpcError(
      Code.ResourceExhausted,
      `${side.sends} message of ${bytes.byteLength} bytes is larger than the send limit (${side.sendLimitName} = ${side.maxSendBytes})`,
    );
  }
  return bytes;
}

/**
 * The size of `message` when the proto codec's flat encoder takes it and it is under `below`
 * bytes (and the send limit): the encoder then holds it for `writeSizedFlatMessage`, which the
 * caller passes to `FrameWriter.writeEncoded` at once. -1 otherwise: the caller uses
 * `serializeMessage` (which also produces any error).
 */
export function sizeSmallMessage(side: MessageSide, schema: DescMessage, message: unknown, below: number): number {
  if (side.codec !== protoCodec || typeof message !== "object" || message === null) return -1;
  // A message of another type is left to protoCodec.encode, which converts it.
  const typeName = (message as { $typeName?: string }).$typeName;
  if (typeName !== undefined && typeName !== schema.typeName) return -1;
  const size = sizeFlatMessage(schema, message as Record<string, unknown>, true);
  if (size < 0) return -1;
  if (size < below && size <= side.maxSendBytes) return size;
  dropSizedFlatMessage();
  return -1;
}

/** Whether `message` goes out compressed with the call's `compression` (a message may opt out: `withCompression`). */
export function sendsCompressed(compression: Compression | undefined, message: unknown): compression is Compression {
  return compression !== undefined && !isMarkedUncompressed(message);
}

/**
 * The payload of a serialized message as it goes on the wire: compressed when `compressed`
 * (off the event loop, a Promise, when large), else as it is.
 */
export function sendPayload(compression: Compression | undefined, bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
  return compression === undefined ? bytes : compressMessage(compression, bytes);
}

/**
 * Turns a received frame into a message. Throws (or rejects, when the frame is large and
 * compressed) RpcError: INTERNAL for a compressed frame on an identity stream, corrupt
 * compressed data or a message that does not parse; RESOURCE_EXHAUSTED when decompression
 * passes the receive limit.
 */
export function decodeMessage(side: MessageSide, schema: DescMessage, frame: Frame, compression: Compression | undefined): unknown {
  if (!frame.compressed) return parse(side, schema, frame.data);
  if (compression === undefined) {
    throw new RpcError(Code.Internal, `received a compressed message, but the ${side.receives}'s grpc-encoding is identity`);
  }
  let data: Uint8Array | Promise<Uint8Array>;
  try {
    data = decompressMessage(compression, frame.data, side.maxReceiveBytes);
  } catch (e) {
    throw receiveLimitError(side, RpcError.from(e, Code.Internal));
  }
  if (!(data instanceof Promise)) return parse(side, schema, data);
  return data.then(
    (bytes) => parse(side, schema, bytes),
    (e: unknown) => {
      throw receiveLimitError(side, RpcError.from(e, Code.Internal));
    },
  );
}

/** Names the receive limit in a RESOURCE_EXHAUSTED (from the deframer or decompression), so users know what to raise. */
export function receiveLimitError(side: MessageSide, error: RpcError): RpcError {
  if (error.code !== Code.ResourceExhausted) return error;
  return new RpcError(
    Code.ResourceExhausted,
    `${error.rawMessage}: ${side.receives} exceeds the receive limit (${side.receiveLimitName} = ${side.maxReceiveBytes})`,
  );
}

function parse(side: MessageSide, schema: DescMessage, bytes: Uint8Array): unknown {
  try {
    return side.codec.decode(schema, bytes);
  } catch (e) {
    throw new RpcError(Code.Internal, `failed to parse ${side.receives} ${schema.typeName}: ${(e as Error).message}`, { cause: e });
  }
}
