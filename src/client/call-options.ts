import type { Metadata, MetadataInit } from "../protocol/metadata.js";
import type { CallCredentials } from "../channel/credentials.js";
import type { RetryPolicy } from "../channel/service-config.js";

/** Per-call options, the same for all four call kinds. */
export interface CallOptions {
  /** Request metadata. `-bin` keys take Uint8Array values. */
  metadata?: MetadataInit;
  /** Time allowed for the whole call, in milliseconds. Sent to the server as `grpc-timeout`. */
  timeoutMs?: number;
  /** Absolute deadline as epoch milliseconds; the earlier of this and `timeoutMs` wins. */
  deadline?: number;
  /** Aborting cancels the call (RST_STREAM CANCEL); it then fails with CANCELLED. */
  signal?: AbortSignal;
  /** Called with the response headers' metadata when they arrive. */
  onHeader?: (metadata: Metadata) => void;
  /**
   * Compression of this call's request messages: "gzip", "deflate" or "identity". Default: the
   * channel's `compression`. Mark single messages with `withCompression(msg, false)` to skip them.
   */
  compression?: string;
  /** Called with the trailing metadata when the call ends, successfully or not. */
  onTrailer?: (metadata: Metadata) => void;
  /**
   * Wait for the channel to become ready instead of failing with UNAVAILABLE while it is in
   * TRANSIENT_FAILURE (bounded by the deadline). Default: the service config's, else false.
   */
  waitForReady?: boolean;
  /**
   * End the call if no message goes either way for this long: the client fails with
   * DEADLINE_EXCEEDED (an `IdleTimeoutError`) and the server, told through the
   * `rill-idle-timeout-ms` header, aborts the handler's signal with the same reason.
   */
  idleTimeoutMs?: number;
  /** Retry policy for this call (see `parseRetryPolicy`); null disables the service config's. */
  retryPolicy?: RetryPolicy | null;
  /**
   * Call credentials for this call, run after the channel's. Refused with UNAUTHENTICATED on a
   * plaintext channel unless its credentials allow them (`insecure({ allowInsecureCallCredentials: true })`).
   */
  callCredentials?: CallCredentials;
}
