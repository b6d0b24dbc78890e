/**
 * A TCP proxy that damages data the way a faulty NIC, a bad RAM stick or a buggy middlebox does
 * and TCP's checksum misses: it flips one bit inside the payload of chosen HTTP/2 DATA frames,
 * leaving the framing intact so the connection survives and only the message bytes are wrong.
 *
 * It reads the HTTP/2 frames of the chosen direction (the client's starts with the 24-byte
 * preface) and forwards each frame whole; the other direction passes through untouched.
 * `corruptDataFrames([n, …])` damages the n-th DATA frames (counting from 1, only frames of at
 * least `minPayload` bytes, so small frames holding message prefixes are never hit) from then on.
 */
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import type { Direction } from "./fault-proxy.js";

export interface CorruptingProxy {
  readonly port: number;
  /** DATA frames damaged so far. */
  readonly corrupted: number;
  /** Damages the `ordinals`-th large DATA frames from now on (counted from this call). */
  corruptDataFrames(ordinals: readonly number[]): void;
  close(): Promise<void>;
}

const DATA = 0x0;
const PREFACE = 24;

export async function startCorruptingProxy(upstreamPort: number, options: { direction: Exclude<Direction, "both">; minPayload?: number }): Promise<CorruptingProxy> {
  const minPayload = options.minPayload ?? 8192;
  let targets = new Set<number>();
  let seen = 0;
  let corrupted = 0;
  const sockets = new Set<Socket>();

  /** Forwards whole frames from `from` to `to`, damaging the targeted DATA frames. */
  const frames = (from: Socket, to: Socket, skip: number): void => {
    let buf: Buffer = Buffer.alloc(0);
    let skipLeft = skip;
    from.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const out: Buffer[] = [];
      if (skipLeft > 0) {
        const n = Math.min(skipLeft, buf.length);
        out.push(buf.subarray(0, n));
        buf = buf.subarray(n);
        skipLeft -= n;
      }
      while (skipLeft === 0 && buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) break;
        const frame = Buffer.from(buf.subarray(0, 9 + length));
        buf = buf.subarray(9 + length);
        if (frame[3] === DATA && length >= minPayload && targets.has(++seen)) {
          frame[9 + (length >> 1)]! ^= 0x10;
          corrupted++;
        }
        out.push(frame);
      }
      if (out.length > 0 && !to.destroyed) to.write(Buffer.concat(out));
    });
  };

  const server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    if (options.direction === "toClient") {
      frames(upstream, client, 0);
      client.pipe(upstream);
    } else {
      frames(client, upstream, PREFACE);
      upstream.pipe(client);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get corrupted() {
      return corrupted;
    },
    corruptDataFrames(ordinals) {
      targets = new Set(ordinals.map((n) => seen + n));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
