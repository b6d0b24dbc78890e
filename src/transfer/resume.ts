/**
 * Retrying a chunked transfer after an interruption. Each attempt asks where to start (the
 * receiver's status for an upload, the local sink's size for a download) and sends only the rest,
 * so a retry never repeats acknowledged bytes.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { isChunkChecksumError } from "./chunk-check.js";

/** Options of `withResume`. */
export interface ResumeOptions {
  /** Attempts in all, the first included. Default 5. */
  attempts?: number;
  /**
   * Whether an error is worth another attempt. Default: an RpcError with UNAVAILABLE (connection
   * lost), DEADLINE_EXCEEDED (including an idle timeout) or ABORTED, and a chunk that arrived
   * damaged (DATA_LOSS with a CHUNK_CHECKSUM_MISMATCH ErrorInfo: resuming sends it again).
   */
  retryable?: (error: unknown) => boolean;
  /** Pause before attempt `n` (2, 3, ...). Default 100 ms doubling up to 2 s. */
  delayMs?: (attempt: number) => number;
  /** Stops waiting and retrying; the last error is thrown. */
  signal?: AbortSignal;
  /** Told before each retry, with the error that ended the previous attempt. */
  onRetry?: (error: unknown, attempt: number) => void;
}

const RETRYABLE = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted]);

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * `attempt` receives its number (1 for the first) and must look up the offset to resume from
 * itself, for example:
 *
 * ```ts
 * await withResume(async () => {
 *   const { status } = await transfer.getStatus({ transferId });
 *   return transfer.upload(sendChunks(path, { offset: Number(status!.offset), toMessage }));
 * });
 * ```
 */
export async function withResume<T>(attempt: (n: number) => Promise<T>, options: ResumeOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const retryable = options.retryable ?? ((e: unknown) => (e instanceof RpcError && RETRYABLE.has(e.code)) || isChunkChecksumError(e));
  const delayMs = options.delayMs ?? ((n: number) => Math.min(2000, 100 * 2 ** (n - 2)));
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (n >= attempts || !retryable(e) || options.signal?.aborted) throw e;
      options.onRetry?.(e, n + 1);
      try {
        await sleep(delayMs(n + 1), undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        throw e;
      }
    }
  }
}
