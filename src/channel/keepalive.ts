/**
 * Client keepalive settings, shared by all subchannels of a channel so that a server's
 * "too_many_pings" complaint slows every connection of the channel down, as in grpc-go.
 * @see https://github.com/grpc/grpc/blob/master/doc/keepalive.md
 */
export interface KeepaliveOptions {
  /**
   * Send a PING after this long without one (GRPC_ARG_KEEPALIVE_TIME_MS). Default: Infinity
   * (off), as in gRPC. grpc-go servers reject pings more often than every 5 minutes by default.
   */
  timeMs?: number;
  /** Close the connection if a PING is not acknowledged within this (GRPC_ARG_KEEPALIVE_TIMEOUT_MS). Default 20 s. */
  timeoutMs?: number;
  /** Ping even with no calls in flight (GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS). Default false. */
  permitWithoutCalls?: boolean;
}

/** Live keepalive state of a channel. `timeMs` doubles on each too_many_pings GOAWAY. */
export class KeepaliveState {
  timeMs: number;
  readonly timeoutMs: number;
  readonly permitWithoutCalls: boolean;

  constructor(options: KeepaliveOptions = {}) {
    this.timeMs = options.timeMs ?? Number.POSITIVE_INFINITY;
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.permitWithoutCalls = options.permitWithoutCalls ?? false;
    if (!(this.timeMs > 0 && this.timeoutMs > 0)) throw new Error("keepalive timeMs and timeoutMs must be positive");
  }

  /** The server said we ping too often: back off like grpc-go (double, capped at ~24 days). */
  tooManyPings(): void {
    if (Number.isFinite(this.timeMs)) this.timeMs = Math.min(this.timeMs * 2, 2 ** 31 - 1);
  }
}
