/**
 * Timers for durations users give (deadlines, idle and age limits, grace periods): setTimeout
 * fires at once for a delay over 2^31 − 1 ms (about 24.8 days) — a 25-day deadline would expire
 * in a millisecond — so longer delays are chained instead.
 */

/** setTimeout's longest delay. */
export const maxTimerDelayMs = 2 ** 31 - 1;

/** A running long timer; `cancel()` stops it (idempotent). */
export interface LongTimer {
  cancel(): void;
}

const never: LongTimer = { cancel() {} };

/**
 * Runs `fn` after `ms` milliseconds. `Infinity` never runs; delays past setTimeout's limit are
 * chained. The timer does not keep the process alive unless `ref` is true.
 */
export function startTimer(ms: number, fn: () => void, ref = false): LongTimer {
  if (!Number.isFinite(ms)) return never;
  let handle: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    handle = setTimeout(() => (left > maxTimerDelayMs ? arm(left - maxTimerDelayMs) : fn()), Math.max(0, Math.min(left, maxTimerDelayMs)));
    if (!ref) handle.unref();
  };
  arm(ms);
  return { cancel: () => clearTimeout(handle) };
}
