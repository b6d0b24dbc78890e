/**
 * Downloads a payload as parallel parts, from one source or several holding the same payload
 * (servers, or connections to one server), into a file written in place.
 *
 * - The missing bytes are split into `parts` ranges, each fetched on its own stream; parts are
 *   spread over the sources, so N sources serve N streams at once.
 * - A damaged chunk (CRC32C mismatch) is fetched again alone; the chunks after it on the same
 *   stream are kept.
 * - A part whose stream fails (server killed, connection lost) keeps every chunk it wrote; only
 *   its unfinished rest is fetched again, from another source when there is one.
 * - What is held is saved beside the file (`<dest>.part.json`), so a download interrupted by a
 *   process exit resumes with the ranges it had, and the whole is verified against the SHA-256
 *   before the file takes its name.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import type { Range } from "./byte-ranges.js";
import { RangeFile } from "./range-file.js";
import { receiveRange } from "./range-receiver.js";
import { RateMeter } from "./rate-meter.js";
import type { TransferChunk, TransferProgress } from "./transfer-chunk.js";

/** Fetches the chunks of one range of the payload (e.g. a TransferService Download with offset and length). */
export type RangeFetcher = (range: { readonly offset: number; readonly length: number }, signal: AbortSignal) => AsyncIterable<TransferChunk>;

/** Options of `downloadRanges`. */
export interface DownloadRangesOptions {
  /** Where the payload can be fetched: one per server (or connection). At least one. */
  sources: readonly RangeFetcher[];
  /** The file to make. Bytes go to `<dest>.part` until verified, held ranges to `<dest>.part.json`. */
  dest: string;
  /** The payload's size. */
  totalSize: number;
  /** The payload's SHA-256: the file is verified against it before it takes its name. */
  sha256: Uint8Array;
  /**
   * Streams at once. Default: 4 per source up to 8, fewer for small payloads (one per 8 MiB):
   * parts pay off where one stream is limited by its window or its server's CPU.
   */
  parts?: number;
  /** Attempts per range (a stream that fails or ends early counts one) before the download fails. Default 5. */
  attempts?: number;
  /** Told as chunks are written. */
  onProgress?: (progress: TransferProgress) => void;
  /** Told when a stream failed and its rest goes to another source. */
  onRetry?: (error: unknown, range: Range) => void;
  signal?: AbortSignal;
}

/** How a download went. */
export interface DownloadReport {
  readonly path: string;
  readonly sha256: Uint8Array;
  /** Bytes written by this call (the payload's size less what an earlier call left). */
  readonly written: number;
  /** Chunks fetched again because they arrived damaged. */
  readonly refetchedChunks: number;
  /** Streams that failed and were continued elsewhere. */
  readonly failovers: number;
}

const RETRYABLE = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Internal, Code.Unknown, Code.DataLoss, Code.ResourceExhausted]);
const PART_FLOOR = 8 * 1024 * 1024;
const SAVE_EVERY = 16 * 1024 * 1024;

export async function downloadRanges(options: DownloadRangesOptions): Promise<DownloadReport> {
  const { sources, dest, totalSize, sha256 } = options;
  if (sources.length === 0) throw new RangeError("downloadRanges needs at least one source");
  const partPath = `${dest}.part`;
  const statePath = `${dest}.part.json`;
  const file = await RangeFile.open(partPath, { totalSize, held: await loadHeld(statePath, totalSize) });
  const parts = options.parts ?? Math.max(1, Math.min(8, 4 * sources.length, Math.ceil(totalSize / PART_FLOOR)));
  const attempts = options.attempts ?? 5;
  const failedAt = new Array<number>(sources.length).fill(-Infinity);
  const rate = new RateMeter();
  const startHeld = file.held.bytes;
  let refetchedChunks = 0;
  let failovers = 0;
  let unsaved = 0;
  let saving: Promise<void> = Promise.resolve();
  const save = (): Promise<void> => (saving = saving.then(() => writeFile(statePath, JSON.stringify(file.held.toJSON()))));

  const queue: Array<{ range: Range; tries: number }> = split(file.missing(), parts).map((range) => ({ range, tries: 0 }));
  let next = 0;
  /** A source for a stream: round robin, skipping those that failed in the last second while another has not. */
  const pick = (): number => {
    const now = performance.now();
    for (let i = 0; i < sources.length; i++) {
      const s = (next + i) % sources.length;
      if (now - failedAt[s]! > 1000) {
        next = s + 1;
        return s;
      }
    }
    return next++ % sources.length;
  };

  const fetchOne = async (job: { range: Range; tries: number }): Promise<void> => {
    if (fatal.signal.aborted) return;
    const [start, end] = job.range;
    const s = pick();
    const ac = new AbortController();
    const stop = () => ac.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", stop, { once: true });
    fatal.signal.addEventListener("abort", stop, { once: true });
    try {
      const receipt = await receiveRange(guarded(sources[s]!({ offset: start, length: end - start }, ac.signal), ac.signal), file, {
        fromMessage: (c: TransferChunk) => c,
        range: job.range,
        onChunk: (chunk, written) => {
          if (!written) return;
          unsaved += chunk.data.byteLength;
          if (unsaved >= SAVE_EVERY) {
            unsaved = 0;
            void save();
          }
          const bytes = file.held.bytes;
          options.onProgress?.({ bytes, transferred: bytes - startHeld, total: totalSize, bytesPerSecond: rate.add(chunk.data.byteLength), done: false });
        },
      });
      for (const r of receipt.rejected) queue.push({ range: r, tries: 0 });
      refetchedChunks += receipt.rejected.length;
      // A stream that ended before its range did (a server shutting down) continues elsewhere.
      const rest = file.held.missing(start, end).filter(([a, b]) => !receipt.rejected.some(([x, y]) => x <= a && b <= y));
      if (rest.length > 0) requeue(job, rest, new RpcError(Code.Unavailable, `the stream for [${start}, ${end}) ended early`));
    } catch (e) {
      if (options.signal?.aborted || fatal.signal.aborted) throw e;
      if (!(e instanceof RpcError) || !RETRYABLE.has(e.code)) throw e;
      failedAt[s] = performance.now();
      failovers++;
      options.onRetry?.(e, job.range);
      requeue(job, file.held.missing(start, end), e);
    } finally {
      options.signal?.removeEventListener("abort", stop);
      fatal.signal.removeEventListener("abort", stop);
      ac.abort();
    }
  };
  const requeue = (job: { range: Range; tries: number }, rest: Range[], error: unknown): void => {
    if (job.tries + 1 >= attempts) throw error;
    for (const range of rest) queue.push({ range, tries: job.tries + 1 });
  };

  const fatal = new AbortController();
  let finished = false;
  const active = new Set<Promise<void>>();
  try {
    while (queue.length > 0 || active.size > 0) {
      while (queue.length > 0 && active.size < parts) {
        const job = queue.shift()!;
        // A retried range waits a little, so a source that just went down is not hammered.
        const run = (job.tries > 0 ? sleep(Math.min(1000, 50 * 2 ** job.tries)) : Promise.resolve()).then(() => fetchOne(job));
        const p: Promise<void> = run.finally(() => active.delete(p));
        active.add(p);
      }
      try {
        await Promise.race(active);
      } catch (e) {
        // One range ran out of attempts (or the caller aborted): stop the other streams first.
        fatal.abort(e);
        await Promise.allSettled(active);
        throw e;
      }
    }
    await save();
    options.signal?.throwIfAborted();
    if (!file.complete) throw new RpcError(Code.Internal, `the download ended with ${totalSize - file.held.bytes} bytes missing`);
    const digest = await file.digest();
    if (!digest.equals(sha256)) {
      finished = true; // discarded: no state to keep
      await file.close();
      await Promise.all([rm(partPath, { force: true }), rm(statePath, { force: true })]);
      throw new RpcError(Code.DataLoss, `SHA-256 mismatch: the downloaded ${totalSize} bytes hash to ${digest.toString("hex")}, expected ${Buffer.from(sha256).toString("hex")}; the partial file was discarded`);
    }
    await file.close();
    await rename(partPath, dest);
    await rm(statePath, { force: true });
    finished = true;
    options.onProgress?.({ bytes: totalSize, transferred: totalSize - startHeld, total: totalSize, bytesPerSecond: rate.add(0), done: true });
    return { path: dest, sha256: digest, written: totalSize - startHeld, refetchedChunks, failovers };
  } finally {
    // Interrupted: what was written is kept for the next call.
    if (!finished) await save().catch(() => {});
    await saving.catch(() => {});
    await file.close();
  }
}

/**
 * The chunks of `chunks` until `signal` aborts: a source may have chunks buffered that it would
 * still hand out after the abort, and a stopped download must stop writing at once.
 */
async function* guarded(chunks: AsyncIterable<TransferChunk>, signal: AbortSignal): AsyncGenerator<TransferChunk> {
  for await (const chunk of chunks) {
    signal.throwIfAborted();
    yield chunk;
  }
}

/** Splits `ranges` into about `parts` ranges of similar size, on 64 KiB boundaries. */
export function split(ranges: readonly Range[], parts: number): Range[] {
  const total = ranges.reduce((n, [s, e]) => n + e - s, 0);
  const target = Math.max(64 * 1024, Math.ceil(total / parts / (64 * 1024)) * 64 * 1024);
  const out: Range[] = [];
  for (const [s, e] of ranges) for (let a = s; a < e; a += target) out.push([a, Math.min(e, a + target)]);
  return out;
}

async function loadHeld(statePath: string, totalSize: number): Promise<Range[]> {
  try {
    const held = JSON.parse(await readFile(statePath, "utf8")) as unknown;
    if (Array.isArray(held) && held.every((r) => Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && 0 <= r[0] && r[0] <= r[1] && r[1] <= totalSize)) {
      return held as Range[];
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" && !(e instanceof SyntaxError)) throw e;
  }
  // No state (or not ours): start over rather than trust bytes we cannot account for.
  return [];
}
