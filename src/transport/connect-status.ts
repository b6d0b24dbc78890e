import { create, toBinary } from "@bufbuild/protobuf";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { Code } from "../protocol/code.js";
import { detailFromAny, typeUrlOf, type ConnectError, type ConnectMetadataJson } from "../protocol/connect.js";
import { metadataFromHeaders } from "../protocol/metadata.js";
import { encodeStatusMessage, parseStatus } from "../protocol/status.js";
import { decodeStatusDetails } from "../protocol/status-details.js";
import type { IncomingStreamHeaders, StreamHeaders } from "./call-stream.js";
import { isTransportField } from "./translated-stream.js";

/**
 * The Connect protocol's outcome of a call and gRPC's, each made from the other: a gRPC status
 * record (`grpc-status`, `grpc-message`, `grpc-status-details-bin` and the trailers' metadata)
 * and a Connect error with its metadata. The server translates one way, the client the other.
 */

/** The error a gRPC status record describes (details included), or undefined for OK. */
export function connectErrorOf(status: StreamHeaders): ConnectError | undefined {
  const parsed = parseStatus(status);
  const code = parsed?.code ?? Code.Unknown;
  if (code === Code.OK) return undefined;
  const details = status["grpc-status-details-bin"] === undefined ? [] : decodeStatusDetails(metadataFromHeaders({ "grpc-status-details-bin": status["grpc-status-details-bin"] }), code);
  return { code, message: parsed?.message ?? "the server sent no status", details: details.map((d) => detailFromAny(d.typeUrl, d.value)) };
}

/** The metadata entries of a header record, as Connect's JSON carries them. */
export function metadataJsonOf(headers: StreamHeaders): ConnectMetadataJson {
  const out: ConnectMetadataJson = {};
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || isTransportField(key)) continue;
    out[key] = Array.isArray(value) ? value : [String(value)];
  }
  return out;
}

/** The gRPC status record of a Connect outcome: the status, its details and the metadata. */
export function grpcStatusOf(error: ConnectError | undefined, metadata: ConnectMetadataJson): IncomingStreamHeaders {
  const out: IncomingStreamHeaders = {};
  for (const key in metadata) {
    const values = metadata[key]!;
    if (!isTransportField(key) && values.length > 0) out[key] = values.length === 1 ? values[0] : values;
  }
  out["grpc-status"] = String(error?.code ?? Code.OK);
  if (error === undefined) return out;
  if (error.message !== "") out["grpc-message"] = encodeStatusMessage(error.message);
  if (error.details.length > 0) {
    const status = create(StatusSchema, {
      code: error.code,
      message: error.message,
      details: error.details.map((d) => ({ typeUrl: typeUrlOf(d), value: d.value })),
    });
    out["grpc-status-details-bin"] = Buffer.from(toBinary(StatusSchema, status)).toString("base64");
  }
  return out;
}
