/**
 * The retry and hedging decisions of A6, apart from sockets and timers: what a call does after an
 * attempt failed. Pure: the random source and throttle are passed in, so tests are exact.
 * @see https://github.com/grpc/proposal/blob/master/A6-client-retries.md
 */
import type { Code } from "../protocol/code.js";
import type { HedgingPolicy, RetryPolicy, RetryThrottle } from "../channel/service-config.js";

/** What a failed attempt leads to under a retry policy. */
export type RetryDecision = { readonly retry: false } | { readonly retry: true; readonly delayMs: number };

/**
 * After attempt number `attemptsMade` (1-based) failed with `code`. `pushbackMs` is the server's
 * `grpc-retry-pushback-ms` (-1: do not retry, undefined: absent). The throttle, if any, is charged
 * for the failure of a retryable code, as A6 says.
 */
export function decideRetry(
  policy: RetryPolicy,
  attemptsMade: number,
  code: Code,
  pushbackMs: number | undefined,
  throttle: RetryThrottle | undefined,
  random: () => number,
): RetryDecision {
  if (!policy.retryableStatusCodes.has(code)) return { retry: false };
  throttle?.onFailure();
  if (attemptsMade >= policy.maxAttempts || (throttle !== undefined && !throttle.allowsRetry) || pushbackMs === -1) return { retry: false };
  // A pushback replaces the backoff; it does not advance it (the next backoff is still from attemptsMade).
  if (pushbackMs !== undefined) return { retry: true, delayMs: pushbackMs };
  const cap = Math.min(policy.initialBackoffMs * policy.backoffMultiplier ** (attemptsMade - 1), policy.maxBackoffMs);
  return { retry: true, delayMs: random() * cap };
}

/** What a failed hedged attempt leads to. */
export interface HedgeDecision {
  /** End the call with this attempt's status (and cancel the other attempts). */
  readonly finish: boolean;
  /** Start the next hedged attempt after this delay; undefined: start no more attempts. */
  readonly nextHedgeMs: number | undefined;
}

/**
 * After one of `started` hedged attempts failed with `code`, `live` others still running.
 * A fatal code ends the call at once. A non-fatal one starts the next attempt immediately (A6:
 * it shortcuts the hedging delay) or after the server's pushback; a pushback of -1, throttling
 * or maxAttempts stop new attempts, and the call then ends when the last one does.
 */
export function decideHedge(
  policy: HedgingPolicy,
  started: number,
  live: number,
  code: Code,
  pushbackMs: number | undefined,
  throttle: RetryThrottle | undefined,
): HedgeDecision {
  if (!policy.nonFatalStatusCodes.has(code)) return { finish: true, nextHedgeMs: undefined };
  throttle?.onFailure();
  const more = started < policy.maxAttempts && pushbackMs !== -1 && (throttle === undefined || throttle.allowsRetry);
  if (!more) return { finish: live === 0, nextHedgeMs: undefined };
  return { finish: false, nextHedgeMs: pushbackMs ?? 0 };
}

/** Whether another hedged attempt may start now (A6: throttling applies to hedges too). */
export function mayHedge(policy: HedgingPolicy, started: number, throttle: RetryThrottle | undefined): boolean {
  return started < policy.maxAttempts && (throttle === undefined || throttle.allowsRetry);
}
