/**
 * A peer that accepts TCP connections and never says a word: a wedged server process, or an L4
 * load balancer whose backend is gone. Bytes sent to it are read and dropped, so the client's
 * writes succeed and only a protocol-level wait (the server's SETTINGS) can tell it is dead.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";

export interface SilentPeer {
  readonly port: number;
  readonly target: string;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startSilentPeer(): Promise<SilentPeer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on("data", () => {});
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    target: `127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
