/**
 * How long a server keeps each client connection, how it checks that the client is still
 * there, and how often a client may ping it. Options mirror gRPC Core's channel arguments and
 * grpc-go's `keepalive.ServerParameters` / `keepalive.EnforcementPolicy`; each one names both.
 *
 * Invariants of a resolved policy: every duration is a non-negative number of milliseconds or
 * `Infinity` ("never"); `maxPingStrikes` is a non-negative integer. Validated once, when the
 * server is created, so a bad value fails `createServer` and never a connection.
 */

/** Server-side keepalive: the server's own pings, and what it tolerates from the client's. */
export interface ServerKeepaliveOptions {
  /**
   * After this long without reading anything from a client, the server sends it an HTTP/2 PING.
   * `Infinity` turns server pings off.
   * Default 7_200_000 (2 h). gRPC Core: GRPC_ARG_KEEPALIVE_TIME_MS; grpc-go: ServerParameters.Time.
   */
  timeMs?: number;
  /**
   * How long the server waits for the PING's acknowledgement (or any other byte) before it
   * declares the client dead: the connection is destroyed and its calls' signals abort with
   * UNAVAILABLE. Default 20_000 (20 s). gRPC Core: GRPC_ARG_KEEPALIVE_TIMEOUT_MS; grpc-go: ServerParameters.Timeout.
   */
  timeoutMs?: number;
  /**
   * The shortest interval allowed between two PINGs from a client while it has calls running
   * (or at any time with `permitWithoutCalls`); a PING sooner than that is a strike.
   * Default 300_000 (5 min). gRPC Core: GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
   * grpc-go: EnforcementPolicy.MinTime.
   */
  minPingIntervalMs?: number;
  /**
   * Whether a client may ping while it has no calls on the connection. When false, a PING on a
   * connection without calls less than 2 h after the previous one is a strike.
   * Default false. gRPC Core: GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS; grpc-go: EnforcementPolicy.PermitWithoutStream.
   */
  permitWithoutCalls?: boolean;
  /**
   * Strikes forgiven before the server answers GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") and
   * closes the connection; the strike after these is the last. Strikes reset whenever the server
   * sends headers or data. Default 2. gRPC Core: GRPC_ARG_HTTP2_MAX_PING_STRIKES; grpc-go: maxPingStrikes (fixed).
   */
  maxPingStrikes?: number;
}

/** Connection-lifetime options of `createServer` (part of `ServerOptions`). */
export interface ConnectionOptions {
  /** Server pings and ping enforcement; see each field for its default. */
  keepalive?: ServerKeepaliveOptions;
  /**
   * A connection without calls for this long gets a graceful GOAWAY (NO_ERROR) and is closed.
   * Default `Infinity` (never). gRPC Core: GRPC_ARG_MAX_CONNECTION_IDLE_MS; grpc-go: ServerParameters.MaxConnectionIdle.
   */
  maxConnectionIdleMs?: number;
  /**
   * A connection this old (±10 % random jitter, so clients do not reconnect in lockstep) gets a
   * graceful GOAWAY (NO_ERROR): the client starts new calls on a new connection while running
   * calls go on. Default `Infinity` (never). gRPC Core: GRPC_ARG_MAX_CONNECTION_AGE_MS;
   * grpc-go: ServerParameters.MaxConnectionAge.
   */
  maxConnectionAgeMs?: number;
  /**
   * After the max-age GOAWAY, how long running calls may still take; then the connection is
   * destroyed and the calls left fail with UNAVAILABLE. Default `Infinity` (wait for them).
   * gRPC Core: GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS; grpc-go: ServerParameters.MaxConnectionAgeGrace.
   */
  maxConnectionAgeGraceMs?: number;
  /**
   * A new connection must complete its handshake within this long — the TLS handshake when
   * serving TLS, then the client's HTTP/2 preface and SETTINGS — or it is closed. Bounds what
   * connections that trickle their first bytes can hold (a file descriptor and ~50 KB each).
   * Default 20_000 (20 s). grpc-go: ConnectionTimeout (120 s); gRPC Core: GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS (120 s).
   */
  handshakeTimeoutMs?: number;
}

/** `ConnectionOptions` with every default applied and every value checked. */
export interface ConnectionPolicy {
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly minPingIntervalMs: number;
  readonly permitWithoutCalls: boolean;
  readonly maxPingStrikes: number;
  readonly maxConnectionIdleMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  readonly handshakeTimeoutMs: number;
}

/** The defaults, the same as grpc-go's server except the handshake timeout (shorter: see the option). */
export const connectionPolicyDefaults: ConnectionPolicy = Object.freeze({
  keepaliveTimeMs: 2 * 60 * 60 * 1000,
  keepaliveTimeoutMs: 20_000,
  minPingIntervalMs: 5 * 60 * 1000,
  permitWithoutCalls: false,
  maxPingStrikes: 2,
  maxConnectionIdleMs: Number.POSITIVE_INFINITY,
  maxConnectionAgeMs: Number.POSITIVE_INFINITY,
  maxConnectionAgeGraceMs: Number.POSITIVE_INFINITY,
  handshakeTimeoutMs: 20_000,
});

/**
 * How soon after the previous PING a client without calls may ping again when
 * `permitWithoutCalls` is false (gRPC Core and grpc-go: 2 h, not configurable).
 */
export const pingIntervalWithoutCallsMs = 2 * 60 * 60 * 1000;

/** Applies the defaults to `options` and checks every value; throws naming the bad option. */
export function resolveConnectionPolicy(options: ConnectionOptions): ConnectionPolicy {
  const k = options.keepalive ?? {};
  const d = connectionPolicyDefaults;
  const policy: ConnectionPolicy = {
    keepaliveTimeMs: duration("keepalive.timeMs", k.timeMs, d.keepaliveTimeMs),
    keepaliveTimeoutMs: duration("keepalive.timeoutMs", k.timeoutMs, d.keepaliveTimeoutMs),
    minPingIntervalMs: duration("keepalive.minPingIntervalMs", k.minPingIntervalMs, d.minPingIntervalMs),
    permitWithoutCalls: k.permitWithoutCalls ?? d.permitWithoutCalls,
    maxPingStrikes: k.maxPingStrikes ?? d.maxPingStrikes,
    maxConnectionIdleMs: duration("maxConnectionIdleMs", options.maxConnectionIdleMs, d.maxConnectionIdleMs),
    maxConnectionAgeMs: duration("maxConnectionAgeMs", options.maxConnectionAgeMs, d.maxConnectionAgeMs),
    maxConnectionAgeGraceMs: duration("maxConnectionAgeGraceMs", options.maxConnectionAgeGraceMs, d.maxConnectionAgeGraceMs),
    handshakeTimeoutMs: duration("handshakeTimeoutMs", options.handshakeTimeoutMs, d.handshakeTimeoutMs),
  };
  if (!Number.isInteger(policy.maxPingStrikes) || policy.maxPingStrikes < 0) {
    throw new Error(`keepalive.maxPingStrikes must be a non-negative integer, got ${policy.maxPingStrikes}`);
  }
  if (policy.keepaliveTimeMs === 0) throw new Error("keepalive.timeMs must be positive (Infinity turns server pings off)");
  return Object.freeze(policy);
}

function duration(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number of milliseconds or Infinity, got ${String(value)}`);
  }
  return value;
}

/** A duration with grpc-go's ±10 % jitter; `random` returns a number in [0, 1). */
export function withJitter(ms: number, random: () => number): number {
  if (!Number.isFinite(ms)) return ms;
  return ms + (random() * 2 - 1) * ms * 0.1;
}
