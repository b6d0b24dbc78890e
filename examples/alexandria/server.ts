/**
 * The Alexandria service: the Library's domain methods behind the generated service, with
 * mapping.ts converting at the edge. The store is pluggable (in memory by default).
 *
 *     node dist/examples/alexandria/server.js        # or `npm start`, which serves every example
 */
import { pathToFileURL } from "node:url";
import { Code, createServer, RpcError, type ServiceImpl } from "../../src/index.js";
import { chunkFromProto, chunkToProto, type TransferChunk } from "../../src/transfer/index.js";
import { Alexandria, type LendFileRequest } from "../../gen/alexandria/alexandria_pb.js";
import { Library } from "./library.js";
import { ackToMessage, bindingToMessage, entryFromMessage, offerFromMessage } from "./mapping.js";
import { memoryStore, type LibraryStore } from "./store.js";

/** The request metadata key naming the agent that reports its library. */
export const AGENT_ID_KEY = "agent-id";

/** Options of the Alexandria implementation. */
export interface AlexandriaOptions {
  /** Where entries, bindings and files are kept. Default: in memory. */
  store?: LibraryStore;
}

/** The Alexandria implementation, ready for `server.add(Alexandria, alexandriaService())`. */
export function alexandriaService(options: AlexandriaOptions = {}): ServiceImpl<typeof Alexandria> {
  const library = new Library(options.store ?? memoryStore());
  return {
    async *getBindings(query, ctx) {
      for await (const b of library.bindings(query.agentId, query.watch, ctx.signal)) yield bindingToMessage(b);
    },

    async *updateLibraryEntries(entries, ctx) {
      const agent = ctx.requestMetadata.get(AGENT_ID_KEY);
      if (typeof agent !== "string" || agent === "") {
        throw new RpcError(Code.InvalidArgument, `name the agent in the "${AGENT_ID_KEY}" request metadata`);
      }
      // One ack per entry as soon as it is saved: the agent reads acks while it is still sending.
      for await (const entry of entries) yield ackToMessage(await library.saveEntry(agent, entryFromMessage(entry)));
    },

    async lendFile(requests) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      const offer = offerFromMessage(!first.done && first.value.kind.case === "offer" ? first.value.kind.value : undefined);
      const { result, binding } = await library.lend(offer, chunksAfterOffer(it));
      return {
        ...(binding !== undefined ? { binding: bindingToMessage(binding) } : {}),
        status: {
          transferId: offer.hash,
          offset: BigInt(result.offset),
          complete: result.complete,
          ...(result.sha256 !== undefined ? { sha256: result.sha256 } : {}),
          totalSize: BigInt(offer.size),
        },
      };
    },

    async getLendStatus(req) {
      const { offset, complete } = await library.lendStatus(req.hash);
      return { transferId: req.hash, offset: BigInt(offset), complete };
    },

    async *fetchFile(req) {
      for await (const chunk of library.fetch(req.hash, Number(req.offset))) yield chunkToProto(chunk);
    },
  };
}

/** The chunks that follow the offer in a LendFile stream. */
async function* chunksAfterOffer(it: AsyncIterator<LendFileRequest>): AsyncGenerator<TransferChunk> {
  for (let next = await it.next(); !next.done; next = await it.next()) {
    const kind = next.value.kind;
    if (kind.case !== "chunk") throw new RpcError(Code.InvalidArgument, "after the offer, every LendFile message must be a chunk");
    yield chunkFromProto(kind.value);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const port = Number(process.env.PORT ?? 50051);
  const server = createServer().add(Alexandria, alexandriaService());
  const addr = await server.listen({ host: "127.0.0.1", port });
  console.log(`Alexandria listening on ${addr.host}:${addr.port}`);
  process.once("SIGINT", () => void server.shutdown({ graceMs: 2000 }));
  process.once("SIGTERM", () => void server.shutdown({ graceMs: 2000 }));
}
