/**
 * `rill/error-details`: the standard detail messages of gRPC's richer error model
 * (google/rpc/error_details.proto) and the google.rpc.Status that carries them, for
 * `errorDetail(Schema, init)` on the server and `err.findDetails(Schema)` on the client.
 *
 *   throw new RpcError(Code.InvalidArgument, "bad point", {
 *     details: [errorDetail(BadRequestSchema, { fieldViolations: [{ field: "latitude", description: "must be within ±90°" }] })],
 *   });
 */
export * from "../gen/google/rpc/error_details_pb.js";
export { StatusSchema, file_google_rpc_status, type Status } from "../gen/google/rpc/status_pb.js";
export { errorDetail } from "./protocol/errors.js";
export { statusDetailsKey } from "./protocol/status-details.js";
