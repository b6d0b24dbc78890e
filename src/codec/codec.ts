import {
  create,
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { decodeFlatMessage } from "./flat-message-decoder.js";
import { encodeFlatMessage } from "./flat-message-encoder.js";

/**
 * A codec turns messages into payload bytes and back, for one content subtype
 * (`application/grpc+<name>`).
 *
 * `encode` accepts a message or a plain init object; `decode` throws on malformed input
 * (the caller maps that to `Code.Internal`).
 */
export interface Codec {
  /** The content subtype: "proto" is sent as plain `application/grpc`. */
  readonly name: string;
  encode<D extends DescMessage>(schema: D, message: MessageInitShape<D>): Uint8Array;
  decode<D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D>;
}

/** Brings a plain init object to a message; a message of the schema passes through untouched. */
export function toMessage<D extends DescMessage>(schema: D, value: MessageInitShape<D>): MessageShape<D> {
  const typeName = (value as { $typeName?: string } | null | undefined)?.$typeName;
  return typeName === schema.typeName ? (value as MessageShape<D>) : create(schema, value);
}

/**
 * Binary protobuf, the gRPC default. Flat messages take a faster, exact-size path (same bytes);
 * the simplest ones (bytes and small numbers) also a faster decoding path (same message).
 */
export const protoCodec: Codec = {
  name: "proto",
  encode: (schema, message) => {
    // A plain init object of a flat message is encoded as it is: create() would only fill defaults.
    const plain = typeof message === "object" && message !== null && (message as { $typeName?: string }).$typeName === undefined;
    const fast = encodeFlatMessage(schema, (plain ? message : toMessage(schema, message)) as Record<string, unknown>, true);
    return fast ?? toBinary(schema, toMessage(schema, message));
  },
  decode: (schema, bytes) => (decodeFlatMessage(schema, bytes) as MessageShape<typeof schema> | undefined) ?? fromBinary(schema, bytes),
};

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Canonical proto3 JSON (`application/grpc+json`); unknown fields are rejected, as the JSON mapping says. */
export const jsonCodec: Codec = {
  name: "json",
  encode: (schema, message) => utf8Encoder.encode(toJsonString(schema, toMessage(schema, message))),
  decode: (schema, bytes) => fromJsonString(schema, utf8Decoder.decode(bytes)),
};
