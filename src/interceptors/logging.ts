/**
 * A ready-made interceptor that logs one line per call: side, method, status code, duration,
 * message counts (and the peer on the server). Works on clients and servers alike.
 */
import type { Interceptor } from "../interceptor.js";
import { observeCall } from "./observe-call.js";
import type { Logger } from "../logger.js";
import { Code, codeName } from "../protocol/code.js";

/** One finished call, as the logging interceptor reports it. */
export interface CallLogEntry {
  readonly side: "client" | "server";
  /** "/package.Service/Method". */
  readonly path: string;
  readonly kind: string;
  readonly code: Code;
  /** The status message (empty for OK). */
  readonly message: string;
  /** From the interceptor's start to the end of the response stream, in milliseconds. */
  readonly durationMs: number;
  readonly requestMessages: number;
  readonly responseMessages: number;
  /** The caller's address, on the server. */
  readonly peer: string | undefined;
  /** The trace the call belongs to, when `traceId` is given (e.g. rill/otel's `activeTraceId`). */
  readonly traceId?: string | undefined;
}

/** Options of `createLoggingInterceptor`. */
export interface LoggingInterceptorOptions {
  /** Where lines go: `info` for OK, `warn` for any other status. Default: both to stderr. */
  logger?: Logger;
  /** Receives each entry instead of a line being logged (for structured logs and metrics). */
  onCall?: (entry: CallLogEntry) => void;
  /** Time source in milliseconds. Default `performance.now`. */
  now?: () => number;
  /**
   * The current trace id, read when a call starts, so log lines and traces can be joined:
   * `activeTraceId` from rill/otel, with the tracing interceptor placed before this one.
   */
  traceId?: () => string | undefined;
}

const stderrLogger: Logger = {
  error: (m, ...d) => console.error(m, ...d),
  warn: (m, ...d) => console.error(m, ...d),
  info: (m, ...d) => console.error(m, ...d),
};

/** Formats an entry as the interceptor's log line: `server /pkg.S/M OK 1.2 ms (1 → 1 msgs) peer=…`. */
export function formatCallLogEntry(e: CallLogEntry): string {
  const status = e.code === Code.OK ? "OK" : `${codeName(e.code)}${e.message === "" ? "" : `: ${e.message}`}`;
  const peer = e.peer === undefined ? "" : ` peer=${e.peer}`;
  const trace = e.traceId === undefined ? "" : ` trace=${e.traceId}`;
  return `${e.side} ${e.path} ${status} ${e.durationMs.toFixed(1)} ms (${e.requestMessages} → ${e.responseMessages} msgs)${peer}${trace}`;
}

/**
 * An interceptor that reports every call once it ends. Add it first to time the whole call
 * including the other interceptors (on the client: all retries, and the time until the caller
 * finished reading). A caller that stops reading early is reported as CANCELLED.
 */
export function createLoggingInterceptor(options: LoggingInterceptorOptions = {}): Interceptor {
  const logger = options.logger ?? stderrLogger;
  const now = options.now ?? (() => performance.now());
  const report =
    options.onCall ??
    ((entry: CallLogEntry) => {
      if (entry.code === Code.OK) logger.info(formatCallLogEntry(entry));
      else logger.warn(formatCallLogEntry(entry));
    });
  return (next) => (request) => {
    const traceId = options.traceId?.();
    return observeCall(request, next, now, (o) =>
      report({
        side: request.side,
        path: request.path,
        kind: request.kind,
        code: o.code,
        message: o.error?.rawMessage ?? "",
        durationMs: o.durationMs,
        requestMessages: o.requests,
        responseMessages: o.responses,
        peer: request.peer?.address,
        ...(traceId === undefined ? {} : { traceId }),
      }),
    );
  };
}
