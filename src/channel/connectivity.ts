/**
 * Connectivity states of channels and subchannels, as gRPC defines them.
 * @see https://github.com/grpc/grpc/blob/master/doc/connectivity-semantics-and-api.md
 */
export type ConnectivityState = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN";
