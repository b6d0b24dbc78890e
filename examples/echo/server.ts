/**
 * The Echo service: the four call kinds in their plainest form.
 *
 * ServerStreamingEcho never ends on its own: it sends one message every 200 ms until the
 * client leaves, and learns of that at once through `ctx.signal` (its `finally` runs).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { createServer, type ServiceImpl } from "../../src/index.js";
import { Echo } from "../../gen/echo/echo_pb.js";

/** Options of the Echo implementation. */
export interface EchoOptions {
  /** Interval of the endless server stream. Default 200 ms. */
  intervalMs?: number;
  /** Told when a server stream stops, with the number of messages it sent. */
  onStreamEnd?: (sent: number) => void;
}

/** The Echo implementation, ready for `server.add(Echo, echoService())`. */
export function echoService(options: EchoOptions = {}): ServiceImpl<typeof Echo> {
  const intervalMs = options.intervalMs ?? 200;
  return {
    async unaryEcho(req) {
      return { message: req.message };
    },

    async *serverStreamingEcho(req, ctx) {
      let sent = 0;
      try {
        for (;;) {
          yield { message: `${req.message} ${sent}` };
          sent++;
          await sleep(intervalMs, undefined, { signal: ctx.signal });
        }
      } finally {
        options.onStreamEnd?.(sent);
      }
    },

    async clientStreamingEcho(reqs) {
      const messages: string[] = [];
      for await (const req of reqs) messages.push(req.message);
      return { message: messages.join(" ") };
    },

    async *bidirectionalStreamingEcho(reqs) {
      for await (const req of reqs) yield { message: req.message };
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const port = Number(process.env.PORT ?? 50051);
  const server = createServer().add(Echo, echoService());
  const addr = await server.listen({ host: "127.0.0.1", port });
  console.log(`Echo listening on ${addr.host}:${addr.port}`);
  process.once("SIGINT", () => void server.shutdown({ graceMs: 2000 }));
  process.once("SIGTERM", () => void server.shutdown({ graceMs: 2000 }));
}
