/**
 * The 17 gRPC status codes.
 *
 * Values are the wire values of `grpc-status`; names follow grpc-go's `codes` package.
 * @see https://github.com/grpc/grpc/blob/master/doc/statuscodes.md
 */
export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

const names: readonly string[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The canonical upper-snake name of a code ("DEADLINE_EXCEEDED"), as grpcurl and the spec print it. */
export function codeName(code: Code): string {
  return names[code] ?? `CODE_${code}`;
}

/**
 * Parses a code from its canonical name ("UNAVAILABLE") or number ("14").
 * Returns undefined for anything else, so callers choose their own fallback.
 */
export function parseCode(value: string | number): Code | undefined {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 0 && value <= 16 ? (value as Code) : undefined;
  }
  if (/^\d{1,2}$/.test(value)) return parseCode(Number(value));
  const i = names.indexOf(value.toUpperCase() === "CANCELED" ? "CANCELLED" : value.toUpperCase());
  return i < 0 ? undefined : (i as Code);
}
