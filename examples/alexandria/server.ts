/**
 * The Alexandria service: the Library's domain methods behind the generated service, with
 * mapping.ts converting at the edge. The store is pluggable: in memory by default, on Redis (and
 * disk, for files) when ALEXANDRIA_REDIS_URL is set (see `storeFromEnv`).
 *
 *     node dist/examples/alexandria/server.js        # or `npm start`, which serves every example
 *     ALEXANDRIA_REDIS_URL=redis://127.0.0.1:6379 ALEXANDRIA_FILES_DIR=./library node dist/examples/alexandria/server.js
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
  /**
   * Where entries, bindings and files are kept (the caller closes it). Default: in memory;
   * `redisStore()` or `await storeFromEnv()` for one that survives restarts.
   */
  store?: LibraryStore;
}

/**
 * The store the environment asks for: `redisStore` when ALEXANDRIA_REDIS_URL is set (files in
 * ALEXANDRIA_FILES_DIR, default ./alexandria-files; keys under ALEXANDRIA_REDIS_PREFIX), else
 * `memoryStore()`. The Redis store is imported only then, so ioredis stays optional.
 */
export async function storeFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<LibraryStore> {
  const url = env.ALEXANDRIA_REDIS_URL;
  if (url === undefined || url === "") return memoryStore();
  const { redisStore } = await import("./redis-store.js");
  return redisStore({
    url,
    filesDir: env.ALEXANDRIA_FILES_DIR ?? "alexandria-files",
    ...(env.ALEXANDRIA_REDIS_PREFIX !== undefined ? { prefix: env.ALEXANDRIA_REDIS_PREFIX } : {}),
  });
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
  const store = await storeFromEnv();
  const server = createServer().add(Alexandria, alexandriaService({ store }));
  const addr = await server.listen({ host: "127.0.0.1", port });
  console.log(`Alexandria listening on ${addr.host}:${addr.port} (${process.env.ALEXANDRIA_REDIS_URL ? "Redis store" : "in-memory store"})`);
  const stop = () => void server.shutdown({ graceMs: 2000 }).finally(() => store.close());
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
