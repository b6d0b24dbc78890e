import type { DescMethod } from "@bufbuild/protobuf";
import type { CallChannel } from "../channel/channel.js";
import type { Codec } from "../codec/codec.js";
import { contentTypeFor } from "../protocol/headers.js";
import { Metadata, metadataToHeaders, type MetadataInit } from "../protocol/metadata.js";
import type { StreamHeaders } from "../transport/call-stream.js";

/**
 * The header block every attempt of a call starts from. Each attempt copies it and adds what is
 * its own (grpc-timeout, grpc-previous-rpc-attempts). Throws for metadata that cannot be sent.
 *
 * Most calls have no metadata, compression or idle timeout and send the same block as every
 * other call of their method: that one is made once per channel, method and codec and shared
 * (node copies the headers it is given, so sharing is safe).
 */
export function callHeaders(
  channel: CallChannel,
  method: DescMethod,
  codec: Codec,
  metadata: MetadataInit | undefined,
  compression: string,
  idleTimeoutMs: number | undefined,
): StreamHeaders {
  if (metadata === undefined && compression === "identity" && idleTimeoutMs === undefined) return plainRequestHeaders(channel, method, codec);
  const h = requestHeaders(channel, method, codec);
  if (metadata !== undefined) Object.assign(h, metadataToHeaders(metadata instanceof Metadata ? metadata : new Metadata(metadata)));
  if (compression !== "identity") h["grpc-encoding"] = compression;
  if (idleTimeoutMs !== undefined) h["rill-idle-timeout-ms"] = String(Math.ceil(idleTimeoutMs));
  return h;
}

/** A call's request headers before metadata, compression and timeouts: a new object the caller may add to. */
function requestHeaders(channel: CallChannel, method: DescMethod, codec: Codec): StreamHeaders {
  const h: StreamHeaders = {
    ":method": "POST",
    ":scheme": channel.options.credentials.secure ? "https" : "http",
    ":authority": channel.authority,
    ":path": `/${method.parent.typeName}/${method.name}`,
    "content-type": contentTypeFor(codec.name),
    te: "trailers",
    "user-agent": channel.options.userAgent,
  };
  if (channel.options.acceptEncoding !== "") h["grpc-accept-encoding"] = channel.options.acceptEncoding;
  return h;
}

const plainHeaders = new WeakMap<CallChannel, WeakMap<DescMethod, Map<string, StreamHeaders>>>();

/** The request headers of a call with no metadata, compression or idle timeout, made once per channel, method and codec (node copies them). */
function plainRequestHeaders(channel: CallChannel, method: DescMethod, codec: Codec): StreamHeaders {
  let byMethod = plainHeaders.get(channel);
  if (byMethod === undefined) plainHeaders.set(channel, (byMethod = new WeakMap()));
  let byCodec = byMethod.get(method);
  if (byCodec === undefined) byMethod.set(method, (byCodec = new Map()));
  let h = byCodec.get(codec.name);
  if (h === undefined) byCodec.set(codec.name, (h = requestHeaders(channel, method, codec)));
  return h;
}
