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
import { downloadRanges, type DownloadRangesOptions, type DownloadReport, type RangeFetcher } from "./range-download.js";
import { chunkFromProto } from "./transfer-proto.js";

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
