/**
 * connect-es v2: the server is `connectNodeAdapter` on a plain `http2.createServer` (on
 * `http.createServer` for the Connect rows over HTTP/1.1: cleartext node:http2 servers speak
 * HTTP/2 only), the client is `createGrpcTransport` (the gRPC protocol, HTTP/2) with
 * `createClient`. Handlers are async generators, as the connect docs show; an idle fan-out
 * stream iterates a per-stream queue. `connectJsonClient` is the Connect rows' client, used
 * against every server there.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { BenchService } from "../../gen/bench/v1/bench_pb.js";
import {
  IDLE,
  Queue,
  decodeCount,
  decodeStreamSpec,
  encodeCount,
  iterablePingPong,
  streamPayloads,
  type BenchClient,
  type ConnectClient,
  type FanoutSink,
  type PingPong,
  type Reading,
  type StartServer,
  type UnaryClient,
} from "../common.js";

export const startServer: StartServer = async (hooks, variant) => {
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(BenchService, {
        unary: (req) => ({ data: req.data }),
        async *serverStream(req, ctx) {
          const { count, size } = decodeStreamSpec(req.data);
          if (count === IDLE) {
            const q = new Queue<{ data: Uint8Array }>();
            const sink: FanoutSink = { send: (data) => q.push({ data }) };
            hooks.sinks.add(sink);
            ctx.signal.addEventListener("abort", () => {
              hooks.sinks.delete(sink);
              q.end();
            });
            yield* q;
            return;
          }
          for (const p of streamPayloads(count, size)) {
            if (ctx.signal.aborted) return;
            hooks.produced++;
            yield p;
          }
        },
        async clientStream(reqs) {
          let n = 0;
          for await (const _ of reqs) n++;
          return { data: encodeCount(n) };
        },
        async *bidi(reqs) {
          for await (const r of reqs) yield { data: r.data };
        },
      }),
  });
  const server = variant?.http1 === true ? http.createServer(handler) : http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => {
      server.close();
    },
  };
};

export const connectClient: ConnectClient = async (port) => {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const client = createClient(BenchService, transport);
  await client.unary({ data: new Uint8Array(0) }); // connects
  const stalled: unknown[] = [];
  const bench: BenchClient = {
    async unary(data) {
      return (await client.unary({ data })).data;
    },
    serverStream(spec, onMessage): Reading {
      const ac = new AbortController();
      const done = (async () => {
        try {
          for await (const m of client.serverStream({ data: spec }, { signal: ac.signal })) onMessage(m.data);
        } catch {
          // cancelled
        }
      })();
      return { cancel: () => ac.abort(), done };
    },
    async stall(spec) {
      const it = client.serverStream({ data: spec })[Symbol.asyncIterator]();
      stalled.push(it);
      await it.next();
    },
    async clientStream(payload, more) {
      const res = await client.clientStream(
        (async function* () {
          while (more()) yield payload;
        })(),
      );
      return decodeCount(res.data);
    },
    bidi(): PingPong {
      const requests = new Queue<{ data: Uint8Array }>();
      // An async generator over the queue: connect calls throw() on the request iterable.
      const responses = client.bidi(
        (async function* () {
          yield* requests;
        })(),
      );
      return iterablePingPong(responses, (r) => requests.push(r), () => requests.end());
    },
    close: () => {},
  };
  return bench;
};

/**
 * The Connect rows' client, the same whichever server it calls: connect-node's Connect transport
 * with JSON (`application/json` unary requests, as a browser sends), over HTTP/2 (one session) or
 * HTTP/1.1 (node's global agent: keep-alive, no socket limit, so a connection per call in flight).
 */
export async function connectJsonClient(port: number, httpVersion: "1.1" | "2"): Promise<UnaryClient> {
  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion, useBinaryFormat: false });
  const client = createClient(BenchService, transport);
  // Connects, and checks once that the server echoes over Connect JSON (the loop does not look).
  const probe = new Uint8Array(64).fill(0x61);
  const echoed = (await client.unary({ data: probe })).data;
  if (echoed.byteLength !== probe.byteLength || !echoed.every((b, i) => b === probe[i])) throw new Error("the server did not echo the Connect JSON request");
  return {
    async unary(data) {
      return (await client.unary({ data })).data;
    },
  };
}
