/**
 * Rill in the transfer benchmark, with its own helpers: the server's `sendChunks` over an async
 * generator of the block with `chunkToProto`; the client's `receiveChunks` + `chunkFromProto`
 * into a sink that only counts (the helpers hash and check).
 */
import { BenchService } from "../../gen/bench/v1/bench_pb.js";
import { TransferService } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { createChannel, createClient, createPushable, createServer, type ChannelOptions, type ServerOptions } from "../../src/index.js";
import { chunkFromProto, chunkToProto, receiveChunks, sendChunks, type ChunkSink } from "../../src/transfer/index.js";
import { envOptions, iterablePingPong } from "../common.js";
import { repeatedBlock, sizeOf, type TransferClient } from "./common.js";

export async function serve(): Promise<number> {
  const server = createServer(envOptions<ServerOptions>("BENCH_RILL_SERVER"));
  server.add(TransferService, {
    download(req) {
      const size = sizeOf(req);
      return sendChunks(repeatedBlock(size), { totalSize: size, toMessage: (c) => ({ chunk: chunkToProto(c) }) });
    },
  });
  server.add(BenchService, {
    async *bidi(reqs) {
      for await (const r of reqs) yield { data: r.data };
    },
  });
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return port;
}

/** Rill's receiving sink for the benchmark: counts bytes and keeps none (the helper hashes and checks). */
function countingSink(): ChunkSink & { bytes: number } {
  return {
    bytes: 0,
    size: async () => 0,
    async write(data) {
      this.bytes += data.byteLength;
    },
  };
}

export async function connect(port: number): Promise<TransferClient> {
  const channel = createChannel(`127.0.0.1:${port}`, envOptions<ChannelOptions>("BENCH_RILL_CHANNEL"));
  await channel.waitForReady({ timeoutMs: 5000 });
  const transfer = createClient(TransferService, channel);
  const bench = createClient(BenchService, channel);
  return {
    async download(size) {
      const result = await receiveChunks(transfer.download({ transferId: String(size) }), countingSink(), {
        fromMessage: (m) => chunkFromProto(m.chunk),
        totalSize: size,
      });
      if (!result.complete || result.offset !== size) throw new Error(`incomplete: ${result.offset} of ${size}`);
    },
    bidi() {
      const requests = createPushable<{ data: Uint8Array }>();
      return iterablePingPong(
        bench.bidi(requests),
        (r) => (requests.tryPush(r) ? undefined : requests.push(r)),
        () => requests.end(),
      );
    },
    close: () => channel.close(),
  };
}
