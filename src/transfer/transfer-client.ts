/**
 * Client helpers for the ready TransferService: download a payload in parallel parts from one
 * or several servers holding it, or upload one in parts, each resuming on its own.
 *
 *   await downloadTransfer([createClient(TransferService, a), createClient(TransferService, b)], "movie", "movie.mkv");
 */
import type { Client } from "../client/client.js";
import type { TransferService } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ByteRanges, type Range } from "./byte-ranges.js";
import { downloadRanges, split, type DownloadRangesOptions, type DownloadReport, type RangeFetcher } from "./range-download.js";
import { rangeSourceSize, sendRange, type RangeSource } from "./range-sender.js";
import { sha256File } from "./file-hash.js";
import type { TransferStatus } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { chunkFromProto, chunkToProto, rangesFromProto } from "./transfer-proto.js";

type TransferClient = Client<typeof TransferService>;

/** Fetches ranges of payload `transferId` with `client`'s Download. */
export function transferFetcher(client: TransferClient, transferId: string): RangeFetcher {
  return async function* ({ offset, length }, signal) {
    for await (const r of client.download({ transferId, offset: BigInt(offset), length: BigInt(length) }, { signal })) yield chunkFromProto(r.chunk);
  };
}

/** Options of `downloadTransfer`: those of `downloadRanges` but the ones the servers answer. */
export type DownloadTransferOptions = Omit<DownloadRangesOptions, "sources" | "dest" | "totalSize" | "sha256">;

/**
 * Downloads payload `transferId` to `dest` from every server in `clients` at once (see
 * `downloadRanges`); its size and SHA-256 come from the first server that answers GetStatus.
 */
export async function downloadTransfer(clients: readonly TransferClient[], transferId: string, dest: string, options: DownloadTransferOptions = {}): Promise<DownloadReport> {
  let lastError: unknown;
  for (const client of clients) {
    let status;
    try {
      ({ status } = await client.getStatus({ transferId }, options.signal ? { signal: options.signal } : {}));
    } catch (e) {
      // Another server may be up.
      if (!(e instanceof RpcError) || e.code !== Code.Unavailable) throw e;
      lastError = e;
      continue;
    }
    if (status?.complete !== true || status.totalSize === undefined) {
      lastError = new RpcError(Code.NotFound, `the server holds no complete payload ${JSON.stringify(transferId)}`);
      continue;
    }
    return downloadRanges({
      ...options,
      sources: clients.map((c) => transferFetcher(c, transferId)),
      dest,
      totalSize: Number(status.totalSize),
      sha256: status.sha256,
    });
  }
  throw lastError;
}

/** Options of `uploadTransfer`. */
export interface UploadTransferOptions {
  /** The payload's SHA-256, when known (else it is computed first: one read of the payload). */
  sha256?: Uint8Array;
  /** Streams at once, spread over the clients. Default: 4 per client up to 8, one per 8 MiB. */
  parts?: number;
  /** Rounds of "ask what the server holds, send the rest" before giving up. Default 5. */
  attempts?: number;
  /** Bytes per chunk. Default 64 KiB. */
  chunkSize?: number;
  /** Told as chunks are handed to the calls, with the bytes sent by this call so far. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** How an upload went. */
export interface UploadReport {
  /** The server's status once the payload is complete. */
  readonly status: TransferStatus;
  /** Bytes sent by this call (chunks sent again after damage or a lost stream included). */
  readonly sent: number;
  /** Rounds it took (1 when nothing failed). */
  readonly rounds: number;
}

const RETRYABLE = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Internal, Code.Unknown, Code.DataLoss]);

/**
 * Uploads `source` as payload `transferId` in parallel parts over `clients` (one server, or
 * several connections to it). Each round asks what the server holds and sends only the rest,
 * so an interrupted stream, a lost connection or a chunk damaged on the way costs only what
 * did not arrive intact. A payload the server already holds is not sent at all.
 */
export async function uploadTransfer(clients: readonly TransferClient[], transferId: string, source: RangeSource, options: UploadTransferOptions = {}): Promise<UploadReport> {
  if (clients.length === 0) throw new RangeError("uploadTransfer needs at least one client");
  const size = await rangeSourceSize(source);
  const sha256 = options.sha256 ?? (await hashSource(source));
  const parts = options.parts ?? Math.max(1, Math.min(8, 4 * clients.length, Math.ceil(size / (8 * 1024 * 1024))));
  const attempts = options.attempts ?? 5;
  const call = options.signal ? { signal: options.signal } : {};
  let sent = 0;
  let lastError: unknown;
  for (let round = 1; round <= attempts; round++) {
    let status: TransferStatus | undefined;
    try {
      ({ status } = await clients[(round - 1) % clients.length]!.getStatus({ transferId }, call));
    } catch (e) {
      if (!(e instanceof RpcError) || !RETRYABLE.has(e.code) || options.signal?.aborted) throw e;
      lastError = e;
      await sleep(Math.min(1000, 50 * 2 ** round));
      continue;
    }
    if (status?.complete === true) return { status, sent, rounds: round };
    const held = new ByteRanges(status === undefined ? [] : rangesFromProto(status.held));
    // An empty payload is one empty final chunk.
    const missing: Range[] = size === 0 ? [[0, 0]] : held.missing(0, size);
    const ranges = size === 0 ? missing : split(missing, parts);
    let next = 0;
    const results: TransferStatus[] = [];
    const errors: unknown[] = [];
    const worker = async (w: number): Promise<void> => {
      for (let i = next++; i < ranges.length; i = next++) {
        const [start, end] = ranges[i]!;
        const client = clients[(w + i) % clients.length]!;
        try {
          const response = await client.upload(
            sendRange(source, {
              offset: start,
              length: end - start,
              sha256,
              ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
              onChunk: (c) => {
                sent += c.data.byteLength;
                options.onProgress?.(sent, size);
              },
              toMessage: (c) => ({ transferId, chunk: chunkToProto(c) }),
            }),
            call,
          );
          if (response.status !== undefined) results.push(response.status);
        } catch (e) {
          errors.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parts, ranges.length) }, (_, w) => worker(w)));
    const done = results.find((s) => s.complete);
    if (done !== undefined) return { status: done, sent, rounds: round };
    for (const e of errors) if (!(e instanceof RpcError) || !RETRYABLE.has(e.code) || options.signal?.aborted) throw e;
    lastError = errors[0] ?? lastError;
  }
  throw lastError ?? new RpcError(Code.Unavailable, `upload ${transferId} did not complete in ${attempts} rounds`);
}

async function hashSource(source: RangeSource): Promise<Uint8Array> {
  const hash = createHash("sha256");
  if (source instanceof Uint8Array) return hash.update(source).digest();
  if (source instanceof Blob) {
    for (let pos = 0; pos < source.size; pos += 1024 * 1024) hash.update(new Uint8Array(await source.slice(pos, pos + 1024 * 1024).arrayBuffer()));
    return hash.digest();
  }
  return (await sha256File(source)).digest;
}
