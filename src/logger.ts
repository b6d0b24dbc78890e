/**
 * Where Rill reports what it cannot return to a caller: handler crashes, protocol violations
 * by peers, dropped connections. Library code never writes to the console directly.
 */
export interface Logger {
  error(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
}

/** The default logger: errors and warnings to stderr, info dropped. */
export const consoleLogger: Logger = {
  error: (message, ...details) => console.error(`[rill] ${message}`, ...details),
  warn: (message, ...details) => console.warn(`[rill] ${message}`, ...details),
  info: () => {},
};

/** A logger that discards everything; useful in tests that provoke errors on purpose. */
export const silentLogger: Logger = { error: () => {}, warn: () => {}, info: () => {} };
