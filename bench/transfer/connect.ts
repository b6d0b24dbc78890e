/**
 * connect-node in the transfer benchmark: `connectNodeAdapter` on `http2.createServer` with
 * async-generator handlers, `createGrpcTransport` + `createClient` on the client.
 */
import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { BenchService } from "../../gen/bench/v1/bench_pb.js";
import { TransferService } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { Queue, iterablePingPong } from "../common.js";
import { Verifier, peerChunks, peerMessage, sizeOf, type TransferClient } from "./common.js";

export async function serve(): Promise<number> {
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(TransferService, {
        async *download(req) {
          for (const c of peerChunks(sizeOf(req))) yield peerMessage(c);
        },
      });
      router.service(BenchService, {
        async *bidi(reqs) {
          for await (const r of reqs) yield { data: r.data };
        },
      });
    },
  });
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

export async function connect(port: number): Promise<TransferClient> {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const transfer = createClient(TransferService, transport);
  const bench = createClient(BenchService, transport);
  return {
    async download(size) {
      const v = new Verifier(size);
      for await (const m of transfer.download({ transferId: String(size) })) {
        const ch = m.chunk!;
        v.accept(Number(ch.offset), ch.data, ch.last, ch.last ? ch.sha256 : undefined, ch.crc32c);
      }
      if (!v.complete) throw new Error(`incomplete: ${v.offset} of ${size}`);
    },
    bidi() {
      const requests = new Queue<{ data: Uint8Array }>();
      // An async generator over the queue: connect calls throw() on the request iterable.
      const responses = bench.bidi(
        (async function* () {
          yield* requests;
        })(),
      );
      return iterablePingPong(responses, (r) => requests.push(r), () => requests.end());
    },
    close: () => {},
  };
}
