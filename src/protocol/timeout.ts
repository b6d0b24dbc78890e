/**
 * The `grpc-timeout` request header: at most 8 ASCII digits and a unit (H M S m u n).
 *
 * Durations here are milliseconds, possibly fractional, to match `Date.now()` and timers.
 * Invariant: `parseTimeout(formatTimeout(ms)) >= ms` for every ms up to the 99999999H maximum,
 * so encoding never shortens a deadline.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Timeout)
 */
import { RpcError } from "./errors.js";
import { Code } from "./code.js";

const MAX_VALUE = 99_999_999;
const timeoutPattern = /^([0-9]{1,8})([HMSmun])$/;

// Finest unit first, as formatTimeout tries them. Sub-millisecond units divide and coarser ones
// multiply, so the arithmetic on both sides stays exact for whole numbers of each unit.
const units = [
  { unit: "n", toMs: (v: number) => v / 1e6, fromMs: (ms: number) => ms * 1e6 },
  { unit: "u", toMs: (v: number) => v / 1e3, fromMs: (ms: number) => ms * 1e3 },
  { unit: "m", toMs: (v: number) => v, fromMs: (ms: number) => ms },
  { unit: "S", toMs: (v: number) => v * 1_000, fromMs: (ms: number) => ms / 1_000 },
  { unit: "M", toMs: (v: number) => v * 60_000, fromMs: (ms: number) => ms / 60_000 },
  { unit: "H", toMs: (v: number) => v * 3_600_000, fromMs: (ms: number) => ms / 3_600_000 },
] as const;

const toMsByUnit: Record<string, (v: number) => number> = Object.fromEntries(units.map((u) => [u.unit, u.toMs]));

/**
 * The duration of a `grpc-timeout` value in milliseconds (fractional for "u" and "n").
 *
 * "0" of any unit is accepted and gives 0: the deadline has already passed. Anything but 1–8 digits
 * followed by one unit letter (no sign, no spaces, no 9-digit values) throws
 * RpcError(Internal, `malformed grpc-timeout "<value>"`), which is how grpc-go answers it.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Timeout)
 */
export function parseTimeout(value: string): number {
  const match = timeoutPattern.exec(value);
  if (match === null) throw new RpcError(Code.Internal, `malformed grpc-timeout "${value}"`);
  return toMsByUnit[match[2]!]!(Number(match[1]));
}

/**
 * A `grpc-timeout` value for a duration of `ms` milliseconds.
 *
 * Uses the finest unit (n, u, m, S, M, H) whose value fits in 8 digits, rounding up so the deadline
 * the server sees is never earlier than ours. `ms <= 0` (and NaN) gives "1n": already expired, but
 * still a valid header, so the server fails the call with DEADLINE_EXCEEDED itself. Durations
 * beyond 99999999 hours (Infinity included) are clamped to "99999999H".
 */
export function formatTimeout(ms: number): string {
  if (!(ms > 0)) return "1n";
  for (const { unit, toMs, fromMs } of units) {
    let value = Math.ceil(fromMs(ms));
    // Floating point can land a hair under the true product; one more unit keeps the invariant.
    if (toMs(value) < ms) value++;
    if (value <= MAX_VALUE) return `${value}${unit}`;
  }
  return `${MAX_VALUE}H`;
}
