/**
 * The transfer benchmark's baseline: node:http2 with the gRPC framing and the protobuf of
 * `DownloadResponse { Chunk chunk }` written by hand (../wire.ts primitives): the sender writes
 * each chunk as a small head, the data uncopied, and a small tail; the receiver decodes the
 * chunk in place. `raw` keeps node's 64 KiB windows, `raw-tuned` advertises 4 MiB per stream and
 * 16 MiB per connection on both ends.
 */
import * as http2 from "node:http2";
import { Deframer, encodePayloadFrame, readVarint, varintSize, writeFrameHeader, writeVarint, type Cursor } from "../wire.js";
import { BIDI_PATH, DOWNLOAD_PATH, Verifier, peerChunks, type PeerChunk, type TransferImpl } from "./common.js";

interface Windows {
  readonly stream: number;
  readonly connection: number;
}

/**
 * The gRPC frame header plus every byte of `DownloadResponse { chunk: Chunk }` before the chunk's
 * data (the data itself is written after it, uncopied), and the tail after the data.
 * Field order matches protobuf-es's output: offset, data, last, sha256, total_size, crc32c.
 */
function chunkFrame(c: PeerChunk): { head: Buffer; tail: Buffer } {
  const n = c.data.byteLength;
  const tailLen = (c.last ? 2 + 2 + 32 : 0) + 1 + varintSize(c.totalSize) + 5;
  const innerLen = (c.offset > 0 ? 1 + varintSize(c.offset) : 0) + 1 + varintSize(n) + n + tailLen;
  const msgLen = 1 + varintSize(innerLen) + innerLen;
  const head = Buffer.allocUnsafe(5 + msgLen - n - tailLen);
  let off = writeFrameHeader(head, 0, msgLen);
  head[off++] = 0x0a;
  off = writeVarint(head, off, innerLen);
  if (c.offset > 0) {
    head[off++] = 0x08;
    off = writeVarint(head, off, c.offset);
  }
  head[off++] = 0x12;
  writeVarint(head, off, n);
  const tail = Buffer.allocUnsafe(tailLen);
  let t = 0;
  if (c.last) {
    tail[t++] = 0x18;
    tail[t++] = 1;
    tail[t++] = 0x22;
    tail[t++] = 32;
    tail.set(c.sha256!, t);
    t += 32;
  }
  tail[t++] = 0x28;
  t = writeVarint(tail, t, c.totalSize);
  tail[t++] = 0x35; // field 6, fixed32
  tail.writeUInt32LE(c.crc32c, t);
  return { head, tail };
}

const at: Cursor = { off: 0 };

/** Decodes `DownloadResponse` from buf[start, end) into the verifier (data as a view, no copy). */
function acceptChunk(buf: Buffer, start: number, end: number, v: Verifier): void {
  at.off = start;
  let chunkEnd = end;
  let offset = 0;
  let data: Uint8Array = buf.subarray(0, 0);
  let last = false;
  let sha256: Uint8Array | undefined;
  let crc: number | undefined;
  while (at.off < end) {
    const tag = readVarint(buf, at);
    if (tag === 0x0a) {
      const len = readVarint(buf, at);
      chunkEnd = at.off + len;
      continue; // descend into the Chunk
    }
    switch (tag) {
      case 0x08:
        offset = readVarint(buf, at);
        break;
      case 0x12: {
        const len = readVarint(buf, at);
        data = buf.subarray(at.off, at.off + len);
        at.off += len;
        break;
      }
      case 0x18:
        last = readVarint(buf, at) !== 0;
        break;
      case 0x22: {
        const len = readVarint(buf, at);
        sha256 = buf.subarray(at.off, at.off + len);
        at.off += len;
        break;
      }
      case 0x28:
        readVarint(buf, at);
        break;
      case 0x35:
        crc = buf.readUInt32LE(at.off);
        at.off += 4;
        break;
      default:
        throw new Error(`unexpected tag ${tag} in DownloadResponse`);
    }
    if (at.off > chunkEnd) throw new Error("malformed Chunk");
  }
  v.accept(offset, data, last, sha256, crc);
}

/** DownloadRequest { transfer_id } read by hand: the only field the raw server needs. */
function transferId(buf: Buffer, start: number, end: number): string {
  at.off = start;
  while (at.off < end) {
    const tag = readVarint(buf, at);
    if (tag === 0x0a) {
      const len = readVarint(buf, at);
      return buf.toString("utf8", at.off, at.off + len);
    }
    if ((tag & 7) === 0) readVarint(buf, at);
    else at.off += readVarint(buf, at);
  }
  return "";
}

async function serve(windows: Windows | undefined): Promise<number> {
  const server = http2.createServer(windows === undefined ? {} : { settings: { initialWindowSize: windows.stream } });
  if (windows !== undefined) server.on("session", (s) => s.setLocalWindowSize(windows.connection));
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const respond = (): void => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    };
    if (headers[":path"] === BIDI_PATH) {
      respond();
      // An echo of a gRPC frame is the frame itself.
      stream.on("data", (c: Buffer) => stream.write(c));
      stream.on("end", () => void (stream.destroyed || stream.end()));
      return;
    }
    if (headers[":path"] !== DOWNLOAD_PATH) {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    let size = 0;
    const d = new Deframer((buf, s, e) => (size = Number(transferId(buf, s, e))));
    stream.on("data", (c: Buffer) => d.push(c));
    stream.on("end", () => {
      if (stream.destroyed) return;
      respond();
      const chunks = peerChunks(size);
      const pump = (): void => {
        for (let r = chunks.next(); !r.done; r = chunks.next()) {
          if (stream.destroyed) return;
          const { head, tail } = chunkFrame(r.value);
          stream.cork();
          stream.write(head);
          stream.write(r.value.data);
          const room = stream.write(tail);
          stream.uncork();
          if (!room) {
            stream.once("drain", pump);
            return;
          }
        }
        stream.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function connect(port: number, windows: Windows | undefined): ReturnType<TransferImpl["connect"]> {
  const session = http2.connect(`http://127.0.0.1:${port}`, windows === undefined ? {} : { settings: { initialWindowSize: windows.stream } });
  session.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
  });
  if (windows !== undefined) session.setLocalWindowSize(windows.connection);
  const request = (path: string): http2.ClientHttp2Stream => {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => {});
    return req;
  };
  return {
    download(size) {
      const req = request(DOWNLOAD_PATH);
      // DownloadRequest { string transfer_id = 1 } has Payload { bytes data = 1 }'s wire shape.
      req.end(encodePayloadFrame(Buffer.from(String(size))));
      const v = new Verifier(size);
      return new Promise<void>((resolve, reject) => {
        const d = new Deframer((buf, s, e) => acceptChunk(buf, s, e, v));
        req.on("data", (c: Buffer) => {
          try {
            d.push(c);
          } catch (e) {
            reject(e);
            req.close(http2.constants.NGHTTP2_CANCEL);
          }
        });
        const finish = (h: http2.IncomingHttpHeaders): void => {
          const status = h["grpc-status"];
          if (status === undefined) return;
          if (status === "0" && v.complete) resolve();
          else reject(new Error(`grpc-status ${String(status)}, complete ${v.complete}`));
        };
        req.on("response", finish);
        req.on("trailers", finish);
        req.on("close", () => reject(new Error("stream closed without status")));
      });
    },
    bidi() {
      const req = request(BIDI_PATH);
      const waiters: Array<() => void> = [];
      const d = new Deframer(() => waiters.shift()?.());
      req.on("data", (c: Buffer) => d.push(c));
      const closed = new Promise<void>((resolve) => req.on("close", resolve));
      return {
        roundTrip(data) {
          return new Promise<Uint8Array>((resolve) => {
            waiters.push(() => resolve(data));
            req.write(encodePayloadFrame(data));
          });
        },
        async close() {
          req.end();
          await closed;
        },
      };
    },
    close: () => session.destroy(),
  };
}

/** The raw implementation with `windows` on both ends (undefined: node's 64 KiB). */
export function rawTransfer(windows: Windows | undefined): TransferImpl {
  return { serve: () => serve(windows), connect: (port) => connect(port, windows) };
}
