/**
 * A ready TransferService (proto/rill/transfer/v1/transfer.proto) to mount on any server:
 *
 *   server.add(TransferService, transferService({ dir: "/srv/payloads" }));
 *
 * Complete payloads are the files in `dir` (named by transfer id); Download serves any range of
 * them, every chunk with its CRC32C and the final one with the SHA-256 of the whole.
 *
 * Uploads arrive in parts (several streams at once, each any range) into a partial store
 * (`<dir>/.partial` by default) with expiry, abort and a disk budget; chunks that fail their
 * CRC32C are dropped and named in the status, so the client sends only them again. When every
 * byte is held and the SHA-256 matches what the final chunk stated, the payload moves into `dir`.
 * Uploading a payload that is already complete answers at once with its status (ByteStream's
 * early completion), so a client never resends what the server has.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TransferService, TransferStatusSchema } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import type { ServiceImpl } from "../server/service-impl.js";
import { join } from "node:path";
import { ByteRanges, type Range } from "./byte-ranges.js";
import { createPartialStore, type PartialStore, type PartialStoreOptions } from "./partial-store.js";
import { PartialUploads } from "./partial-uploads.js";
import { checkTransferId, PayloadDir, type Payload } from "./payload-dir.js";
import { receiveRange } from "./range-receiver.js";
import { sendRange } from "./range-sender.js";
import { chunkFromProto, chunkToProto, rangesToProto } from "./transfer-proto.js";

/** Options of `transferService`. */
export interface TransferServiceOptions {
  /** The directory of complete payloads (created by the caller). */
  dir: string;
  /** Bytes per chunk sent by Download. Default 64 KiB. */
  chunkSize?: number;
  /**
   * Where uploads wait until complete: a store, or the options of one. Default: a store in
   * `<dir>/.partial` with its default age (24 h) and disk budget.
   */
  partials?: PartialStore | PartialStoreOptions;
}

/** The TransferService implementation, ready for `server.add(TransferService, …)`. */
export function transferService(options: TransferServiceOptions): ServiceImpl<typeof TransferService> {
  const payloads = new PayloadDir(options.dir);
  let uploads: Promise<PartialUploads> | undefined;
  const partialUploads = (): Promise<PartialUploads> =>
    (uploads ??= (isStore(options.partials) ? Promise.resolve(options.partials) : createPartialStore(options.partials ?? { dir: join(options.dir, ".partial") })).then(
      (store) => new PartialUploads(store),
    ));
  return {
    async getStatus(req) {
      const payload = await payloads.get(req.transferId);
      if (payload !== undefined) return { status: completeStatus(req.transferId, payload) };
      const partial = await (await partialUploads()).peek(req.transferId);
      return { status: partial === undefined ? { transferId: req.transferId } : partialStatus(req.transferId, partial) };
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

    async upload(requests) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done === true) throw new RpcError(Code.InvalidArgument, "the upload stream carried no chunk");
      const id = checkTransferId(first.value.transferId);
      const done = await payloads.get(id);
      if (done !== undefined) return { status: completeStatus(id, done) };
      const head = chunkFromProto(first.value.chunk);
      if (head.totalSize === undefined) throw new RpcError(Code.InvalidArgument, "upload chunks must carry total_size (the payload's size)");
      const all = await partialUploads();
      const upload = await all.acquire(id, head.totalSize);
      let completed: Payload | undefined;
      let finishing = false;
      try {
        const receipt = await receiveRange(prepend(first.value, it), upload.file, {
          fromMessage: (m) => {
            if (m.transferId !== "" && m.transferId !== id) throw new RpcError(Code.InvalidArgument, `a stream uploads one transfer: ${id}, not ${m.transferId}`);
            return chunkFromProto(m.chunk);
          },
          onChunk: (chunk, written) => void (written && upload.wrote(chunk.data.byteLength)),
        });
        upload.reject(receipt.rejected);
        if (receipt.sha256 !== undefined) upload.sha256 = receipt.sha256;
        if (upload.file.complete && upload.sha256 !== undefined && upload.refs === 1) {
          finishing = true;
          await payloads.recordHash(id, await all.complete(id, upload, join(options.dir, id)));
          completed = await payloads.get(id);
        }
      } finally {
        if (!finishing) await all.release(id, upload);
      }
      if (finishing && completed === undefined) throw new RpcError(Code.Internal, `upload ${id} completed but its file is gone`);
      if (completed !== undefined) return { status: completeStatus(id, completed) };
      return { status: partialStatus(id, { held: upload.file.held.ranges(), rejected: upload.stillRejected(), totalSize: upload.file.totalSize, expiresAt: 0 }) };
    },

    async listPartial() {
      const all = await partialUploads();
      const partial = [];
      for (const info of await all.store.list()) {
        const p = await all.peek(info.id);
        if (p !== undefined) partial.push(partialStatus(info.id, p));
      }
      const usage = all.store.usage();
      return { partial, bytes: BigInt(usage.bytes), maxBytes: BigInt(Number.isFinite(usage.maxBytes) ? usage.maxBytes : 0) };
    },

    async abort(req) {
      const id = checkTransferId(req.transferId);
      const all = await partialUploads();
      // Its streams would go on writing into a file that is gone, and save its state again.
      if (all.busy(id)) throw new RpcError(Code.FailedPrecondition, `upload ${id} has streams in progress: end them (cancel the calls) before aborting it`);
      if (!(await all.store.abort(id))) throw new RpcError(Code.NotFound, `no partial upload named ${JSON.stringify(id)}`);
      return {};
    },
  };
}

function isStore(p: TransferServiceOptions["partials"]): p is PartialStore {
  return p !== undefined && typeof (p as PartialStore).open === "function";
}

async function* prepend<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  yield first;
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
}

function partialStatus(transferId: string, p: { held: Range[]; rejected: Range[]; totalSize: number; expiresAt: number }): MessageInitShape<typeof TransferStatusSchema> {
  const held = new ByteRanges(p.held);
  return {
    transferId,
    offset: BigInt(held.prefix),
    complete: false,
    totalSize: BigInt(p.totalSize),
    held: rangesToProto(p.held),
    rejected: rangesToProto(p.rejected),
    expiresAtMs: BigInt(Math.max(0, Math.round(p.expiresAt))),
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
