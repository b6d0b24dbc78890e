/**
 * The `grpc-status-details-bin` trailer: a binary google.rpc.Status carrying an error's typed
 * details beside grpc-status and grpc-message. Both sides keep the three consistent: the
 * Status's code and message are the call's, so a peer that reads only one of them reads the same
 * status (the rule of gRPC's richer error model).
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import type { Code } from "./code.js";
import type { Metadata } from "./metadata.js";

/** The trailer's key. */
export const statusDetailsKey = "grpc-status-details-bin";

/** The trailer's value for a status with `details`. */
export function encodeStatusDetails(code: Code, message: string, details: readonly Any[]): Uint8Array {
  return toBinary(StatusSchema, create(StatusSchema, { code, message, details: [...details] }));
}

/**
 * The details of a status from its trailers. None when the trailer is absent, malformed, or names
 * another code than the call's grpc-status (a peer that disagrees with itself: the status wins,
 * as the details might describe another failure).
 */
export function decodeStatusDetails(trailers: Metadata, code: Code): Any[] {
  const raw = trailers.get(statusDetailsKey);
  if (!(raw instanceof Uint8Array)) return [];
  try {
    const status = fromBinary(StatusSchema, raw);
    return status.code === code ? status.details : [];
  } catch {
    return [];
  }
}
