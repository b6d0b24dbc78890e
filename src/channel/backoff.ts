/**
 * gRPC connection backoff: exponential with jitter, exactly as the connection-backoff spec
 * describes. Time and randomness are injected so tests are fast and exact.
 * @see https://github.com/grpc/grpc/blob/master/doc/connection-backoff.md
 */

/** Options of the connection backoff; the defaults are the spec's. */
export interface BackoffOptions {
  /** Delay after the first failure. Default 1000 ms (INITIAL_BACKOFF). */
  initialMs?: number;
  /** Growth per failure. Default 1.6 (MULTIPLIER). */
  multiplier?: number;
  /** Random spread, as a fraction of the delay. Default 0.2 (JITTER). */
  jitter?: number;
  /** Largest delay. Default 120_000 ms (MAX_BACKOFF). */
  maxMs?: number;
  /** Shortest time a connection attempt is given. Default 20_000 ms (MIN_CONNECT_TIMEOUT). */
  minConnectTimeoutMs?: number;
  /** Random source in [0, 1). Default Math.random. */
  random?: () => number;
}

/** A clock: `now()` in ms. Injected for tests. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * The backoff state of one subchannel.
 *
 * `begin()` starts an attempt and says how long it may take; `fail()` says when the next may
 * start; `reset()` after a successful connection. The first retry waits exactly `initialMs`
 * (no jitter), as the spec's pseudo-code does.
 */
export class ConnectionBackoff {
  readonly initialMs: number;
  readonly multiplier: number;
  readonly jitter: number;
  readonly maxMs: number;
  readonly minConnectTimeoutMs: number;
  private readonly random: () => number;
  private currentMs: number;
  private deadline: number | undefined;

  constructor(
    options: BackoffOptions = {},
    private readonly clock: Clock = systemClock,
  ) {
    this.initialMs = options.initialMs ?? 1000;
    this.multiplier = options.multiplier ?? 1.6;
    this.jitter = options.jitter ?? 0.2;
    this.maxMs = options.maxMs ?? 120_000;
    this.minConnectTimeoutMs = options.minConnectTimeoutMs ?? 20_000;
    this.random = options.random ?? Math.random;
    if (!(this.initialMs >= 0 && this.multiplier >= 1 && this.jitter >= 0 && this.jitter < 1 && this.maxMs >= this.initialMs)) {
      throw new Error("invalid backoff options: need initialMs >= 0, multiplier >= 1, 0 <= jitter < 1, maxMs >= initialMs");
    }
    this.currentMs = this.initialMs;
  }

  /** Starts an attempt; returns how long it may run before it counts as failed. */
  begin(): number {
    const now = this.clock.now();
    if (this.deadline === undefined) this.deadline = now + this.initialMs;
    return Math.max(this.deadline - now, this.minConnectTimeoutMs);
  }

  /** The attempt failed: returns the delay until the next attempt may start, and advances. */
  fail(): number {
    const now = this.clock.now();
    const wait = Math.max(0, (this.deadline ?? now) - now);
    this.currentMs = Math.min(this.currentMs * this.multiplier, this.maxMs);
    const spread = this.jitter * this.currentMs;
    this.deadline = now + wait + this.currentMs + (this.random() * 2 - 1) * spread;
    return wait;
  }

  /** A connection succeeded: the next failure starts over at `initialMs`. */
  reset(): void {
    this.currentMs = this.initialMs;
    this.deadline = undefined;
  }
}
