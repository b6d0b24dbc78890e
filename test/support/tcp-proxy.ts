/**
 * A tiny TCP proxy on 127.0.0.1 for fault tests: forwards to `target`, and can cut every
 * connection at once (`cut()`: both sockets destroyed, like a crashed peer or a dropped NAT
 * entry) or stop forwarding bytes without closing anything (`blackhole()`).
 */
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface TcpProxy {
  readonly port: number;
  readonly target: string;
  /** Destroys every open connection through the proxy. New connections still work. */
  cut(): void;
  /** Silently drops bytes in both directions from now on (sockets stay open). */
  blackhole(): void;
  /** Forwards again after `blackhole()`. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let dropping = false;
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on("data", (chunk) => {
        if (!dropping) to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const cut = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    target: `127.0.0.1:${port}`,
    cut,
    blackhole() {
      dropping = true;
    },
    restore() {
      dropping = false;
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
