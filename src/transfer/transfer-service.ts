/**
 * A ready TransferService (proto/rill/transfer/v1/transfer.proto) to mount on any server:
 *
 *   server.add(TransferService, transferService({ dir: "/srv/payloads" }));
 *
 * Complete payloads are the files in `dir` (named by transfer id); Download serves any range of
 * them, every chunk with its CRC32C and the final one with the SHA-256 of the whole.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TransferService, TransferStatusSchema } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import type { ServiceImpl } from "../server/service-impl.js";
import { PayloadDir, type Payload } from "./payload-dir.js";
import { sendRange } from "./range-sender.js";
import { chunkToProto, rangesToProto } from "./transfer-proto.js";

/** Options of `transferService`. */
export interface TransferServiceOptions {
  /** The directory of complete payloads (created by the caller). */
  dir: string;
  /** Bytes per chunk sent by Download. Default 64 KiB. */
  chunkSize?: number;
}

/** The TransferService implementation, ready for `server.add(TransferService, …)`. */
export function transferService(options: TransferServiceOptions): ServiceImpl<typeof TransferService> {
  const payloads = new PayloadDir(options.dir);
  return {
    async getStatus(req) {
      const payload = await payloads.get(req.transferId);
      return { status: payload === undefined ? { transferId: req.transferId } : completeStatus(req.transferId, payload) };
    },

    async *download(req, ctx) {
      const payload = await payloads.get(req.transferId);
      if (payload === undefined) throw new RpcError(Code.NotFound, `no complete payload named ${JSON.stringify(req.transferId)}`);
      const offset = Number(req.offset);
      const length = Number(req.length);
      if (req.offset > BigInt(payload.size) || req.offset + req.length > BigInt(payload.size)) {
        throw new RpcError(Code.OutOfRange, `the range [${req.offset}, ${req.offset + (req.length === 0n ? BigInt(payload.size) - req.offset : req.length)}) lies outside payload ${req.transferId}'s ${payload.size} bytes`);
      }
      for await (const chunk of sendRange(payload.path, {
        offset,
        length,
        sha256: payload.sha256,
        ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
        toMessage: (c) => ({ chunk: chunkToProto(c) }),
      })) {
        if (ctx.signal.aborted) return;
        yield chunk;
      }
    },

    async upload() {
      throw new RpcError(Code.Unimplemented, "Upload is not served yet");
    },

    async listPartial() {
      return { partial: [], bytes: 0n, maxBytes: 0n };
    },

    async abort(req) {
      throw new RpcError(Code.NotFound, `no partial upload named ${JSON.stringify(req.transferId)}`);
    },
  };
}

function completeStatus(transferId: string, p: Payload): MessageInitShape<typeof TransferStatusSchema> {
  return {
    transferId,
    offset: BigInt(p.size),
    complete: true,
    sha256: p.sha256,
    totalSize: BigInt(p.size),
    held: p.size > 0 ? rangesToProto([[0, p.size]]) : [],
  };
}
