/**
 * Chunked-transfer benchmark (issue 8 item 4, issue 5 item 6): a large payload downloaded over a
 * server stream as 64 KiB chunks, SHA-256 computed by the sender and verified by the receiver,
 * end to end; and a 64 B bidi ping-pong on the same connection while that download runs.
 *
 *   npm run bench:transfer                        # 1 GiB, 3 rounds
 *   npm run bench:transfer -- --quick             # 256 MiB, 1 round
 *   npm run bench:transfer -- --size 512MiB --rounds 5 --only rill,raw
 *
 * Every implementation serves the same method, `rill.transfer.v1.TransferService/Download`, with
 * the same `DownloadResponse { Chunk chunk }` messages on the wire (offset, 64 KiB of data, and on
 * the last chunk `last` and the SHA-256), plus `bench.v1.BenchService/Bidi` for the ping-pong.
 * The source is one 1 MiB block repeated, so no file is read and the disk is not measured.
 * - rill: `sendChunks` over an async generator of the block, `chunkToProto`; the client
 *   `receiveChunks` + `chunkFromProto` into a sink that only counts (the helpers hash and check).
 * - grpc-js, connect, raw (node:http2 by hand, default 64 KiB windows) and raw-tuned (4 MiB
 *   stream / 16 MiB connection windows): the same chunks, hashed with node:crypto on both ends,
 *   offsets checked, digest compared at the end.
 *
 * Method as in bench/run.ts: per run a fresh server process (`taskset -c 0`) and client process
 * (`taskset -c 1`); implementations alternate run by run; medians over rounds; ratios to raw.
 * Each client first moves a short warm-up transfer (not measured), then the measured one.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomFillSync, timingSafeEqual, type Hash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { createClient as createConnectClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { BenchService, PayloadSchema, type Payload } from "../gen/bench/v1/bench_pb.js";
import {
  DownloadRequestSchema,
  DownloadResponseSchema,
  TransferService,
  type DownloadRequest,
  type DownloadResponse,
} from "../gen/rill/transfer/v1/transfer_pb.js";
import { createChannel, createClient, createPushable, createServer, type ChannelOptions, type ServerOptions } from "../src/index.js";
import { chunkFromProto, chunkToProto, receiveChunks, sendChunks, type ChunkSink } from "../src/transfer/index.js";
import { Queue, iterablePingPong, protobufSerializer, sleep, type PingPong } from "./common.js";
import { send, type Metrics } from "./ipc.js";
import { Samples, median } from "./stats.js";
import { Deframer, encodePayloadFrame, readVarint, varintSize, writeFrameHeader, writeVarint } from "./wire.js";

const impls = ["raw", "rill", "grpc-js", "connect", "raw-tuned"] as const;
type Impl = (typeof impls)[number];

const CHUNK = 64 * 1024;
const BLOCK = 1024 * 1024;
const PING_BYTES = 64;
const DOWNLOAD_PATH = "/rill.transfer.v1.TransferService/Download";
const BIDI_PATH = "/bench.v1.BenchService/Bidi";

// ---------------------------------------------------------------- the payload

/** The 1 MiB block every sender repeats (random, so nothing downstream can shortcut it). */
const block = randomFillSync(Buffer.allocUnsafe(BLOCK));

/** `size` bytes as the 1 MiB block repeated: the source Rill's `sendChunks` reads. */
async function* repeatedBlock(size: number): AsyncGenerator<Uint8Array> {
  for (let left = size; left > 0; left -= BLOCK) yield left >= BLOCK ? block : block.subarray(0, left);
}

interface PeerChunk {
  offset: number;
  data: Uint8Array;
  last: boolean;
  sha256: Uint8Array | undefined;
  totalSize: number;
}

/** The peers' sender: the same 64 KiB chunks, hashed as they go, the digest on the last one. */
function* peerChunks(size: number): Generator<PeerChunk> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < size; ) {
    const at = offset % BLOCK; // BLOCK is a multiple of CHUNK: a chunk never wraps
    const data = block.subarray(at, at + Math.min(CHUNK, size - offset));
    hash.update(data);
    const last = offset + data.byteLength === size;
    yield { offset, data, last, sha256: last ? hash.digest() : undefined, totalSize: size };
    offset += data.byteLength;
  }
}

/** The peers' receiver: checks order and size, hashes, and compares the digest on the last chunk. */
class Verifier {
  private readonly hash: Hash = createHash("sha256");
  offset = 0;
  complete = false;
  constructor(private readonly size: number) {}

  accept(offset: number, data: Uint8Array, last: boolean, sha256: Uint8Array | undefined): void {
    if (this.complete) throw new Error("a chunk after the last one");
    if (offset !== this.offset) throw new Error(`chunk at ${offset}, expected ${this.offset}`);
    this.hash.update(data);
    this.offset += data.byteLength;
    if (!last) return;
    const digest = this.hash.digest();
    if (this.offset !== this.size) throw new Error(`got ${this.offset} bytes, expected ${this.size}`);
    if (sha256 === undefined || sha256.byteLength !== 32 || !timingSafeEqual(digest, sha256)) throw new Error("SHA-256 mismatch");
    this.complete = true;
  }
}

/** The size a Download request asks for rides in its transfer id. */
const sizeOf = (req: DownloadRequest): number => Number(req.transferId);

// ---------------------------------------------------------------- raw node:http2 framing (primitives in wire.ts)

/**
 * The gRPC frame header plus every byte of `DownloadResponse { chunk: Chunk }` before the chunk's
 * data (the data itself is written after it, uncopied), and the tail after the data.
 * Field order matches protobuf-es's output: offset, data, last, sha256, total_size.
 */
function rawChunkFrame(c: PeerChunk): { head: Buffer; tail: Buffer } {
  const n = c.data.byteLength;
  const tailLen = (c.last ? 2 + 2 + 32 : 0) + 1 + varintSize(c.totalSize);
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
  writeVarint(tail, t, c.totalSize);
  return { head, tail };
}

/** Decodes `DownloadResponse` from buf[start, end) into the verifier (data as a view, no copy). */
function rawAcceptChunk(buf: Buffer, start: number, end: number, v: Verifier): void {
  const pos = { off: start };
  let chunkEnd = end;
  let offset = 0;
  let data: Uint8Array = buf.subarray(0, 0);
  let last = false;
  let sha256: Uint8Array | undefined;
  while (pos.off < end) {
    const tag = readVarint(buf, pos);
    if (tag === 0x0a) {
      const len = readVarint(buf, pos);
      chunkEnd = pos.off + len;
      continue; // descend into the Chunk
    }
    switch (tag) {
      case 0x08:
        offset = readVarint(buf, pos);
        break;
      case 0x12: {
        const len = readVarint(buf, pos);
        data = buf.subarray(pos.off, pos.off + len);
        pos.off += len;
        break;
      }
      case 0x18:
        last = readVarint(buf, pos) !== 0;
        break;
      case 0x22: {
        const len = readVarint(buf, pos);
        sha256 = buf.subarray(pos.off, pos.off + len);
        pos.off += len;
        break;
      }
      case 0x28:
        readVarint(buf, pos);
        break;
      default:
        throw new Error(`unexpected tag ${tag} in DownloadResponse`);
    }
    if (pos.off > chunkEnd) throw new Error("malformed Chunk");
  }
  v.accept(offset, data, last, sha256);
}

/** DownloadRequest { transfer_id } read by hand: the only field the raw server needs. */
function rawTransferId(buf: Buffer, start: number, end: number): string {
  const pos = { off: start };
  while (pos.off < end) {
    const tag = readVarint(buf, pos);
    if (tag === 0x0a) {
      const len = readVarint(buf, pos);
      return buf.toString("utf8", pos.off, pos.off + len);
    }
    if ((tag & 7) === 0) readVarint(buf, pos);
    else pos.off += readVarint(buf, pos);
  }
  return "";
}

// ---------------------------------------------------------------- servers

interface Windows {
  stream: number;
  connection: number;
}
const tunedWindows: Windows = { stream: 4 * 1024 * 1024, connection: 16 * 1024 * 1024 };

async function serveRaw(windows: Windows | undefined): Promise<number> {
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
    const d = new Deframer((buf, s, e) => (size = Number(rawTransferId(buf, s, e))));
    stream.on("data", (c: Buffer) => d.push(c));
    stream.on("end", () => {
      if (stream.destroyed) return;
      respond();
      const chunks = peerChunks(size);
      const pump = (): void => {
        for (let r = chunks.next(); !r.done; r = chunks.next()) {
          if (stream.destroyed) return;
          const { head, tail } = rawChunkFrame(r.value);
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

/** Extra Rill options from the environment for tuning experiments, as in bench/run.ts: BENCH_RILL_SERVER / BENCH_RILL_CHANNEL (JSON). */
function envOptions<T>(name: string): T {
  const v = process.env[name];
  return (v === undefined || v === "" ? {} : JSON.parse(v)) as T;
}

async function serveRill(): Promise<number> {
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

const downloadReq = protobufSerializer(DownloadRequestSchema);
const downloadRes = protobufSerializer(DownloadResponseSchema);
const payloadSer = protobufSerializer(PayloadSchema);

const grpcDefinition = {
  Download: {
    path: DOWNLOAD_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: downloadReq.serialize,
    requestDeserialize: downloadReq.deserialize,
    responseSerialize: downloadRes.serialize,
    responseDeserialize: downloadRes.deserialize,
  },
  Bidi: {
    path: BIDI_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: payloadSer.serialize,
    requestDeserialize: payloadSer.deserialize,
    responseSerialize: payloadSer.serialize,
    responseDeserialize: payloadSer.deserialize,
  },
} satisfies grpc.ServiceDefinition;

const peerMessage = (c: PeerChunk): DownloadResponse =>
  create(DownloadResponseSchema, {
    chunk: { offset: BigInt(c.offset), data: c.data, last: c.last, totalSize: BigInt(c.totalSize), ...(c.sha256 !== undefined ? { sha256: c.sha256 } : {}) },
  });

async function serveGrpcJs(): Promise<number> {
  const server = new grpc.Server();
  server.addService(grpcDefinition, {
    Download(call: grpc.ServerWritableStream<DownloadRequest, DownloadResponse>) {
      call.on("error", () => {});
      let cancelled = false;
      call.on("cancelled", () => (cancelled = true));
      const chunks = peerChunks(sizeOf(call.request));
      const pump = (): void => {
        for (let r = chunks.next(); !r.done; r = chunks.next()) {
          if (cancelled) return;
          if (!call.write(peerMessage(r.value))) {
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    Bidi(call: grpc.ServerDuplexStream<Payload, Payload>) {
      call.on("data", (m: Payload) => call.write(create(PayloadSchema, { data: m.data })));
      call.on("end", () => call.end());
      call.on("error", () => {});
    },
  } as grpc.UntypedServiceImplementation);
  return new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
}

async function serveConnect(): Promise<number> {
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

function serve(impl: Impl): Promise<number> {
  switch (impl) {
    case "raw":
      return serveRaw(undefined);
    case "raw-tuned":
      return serveRaw(tunedWindows);
    case "rill":
      return serveRill();
    case "grpc-js":
      return serveGrpcJs();
    case "connect":
      return serveConnect();
  }
}

// ---------------------------------------------------------------- clients

/** One connection carrying both the download and the ping-pong. */
interface TransferClient {
  /** Downloads `size` bytes; resolves once every byte arrived and the SHA-256 matched. */
  download(size: number): Promise<void>;
  bidi(): PingPong;
  close(): void;
}

async function connectRaw(port: number, windows: Windows | undefined): Promise<TransferClient> {
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
        const d = new Deframer((buf, s, e) => rawAcceptChunk(buf, s, e, v));
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

async function connectRill(port: number): Promise<TransferClient> {
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

interface GrpcGeneric extends grpc.Client {
  Download(req: DownloadRequest): grpc.ClientReadableStream<DownloadResponse>;
  Bidi(): grpc.ClientDuplexStream<Payload, Payload>;
}

async function connectGrpcJs(port: number): Promise<TransferClient> {
  const Ctor = grpc.makeGenericClientConstructor(grpcDefinition, "TransferBench");
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as GrpcGeneric;
  await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
  return {
    download(size) {
      const call = c.Download(create(DownloadRequestSchema, { transferId: String(size) }));
      const v = new Verifier(size);
      return new Promise<void>((resolve, reject) => {
        call.on("data", (m: DownloadResponse) => {
          try {
            const ch = m.chunk!;
            v.accept(Number(ch.offset), ch.data, ch.last, ch.last ? ch.sha256 : undefined);
          } catch (e) {
            reject(e);
            call.cancel();
          }
        });
        call.on("error", reject);
        call.on("status", (s: grpc.StatusObject) => (s.code === 0 && v.complete ? resolve() : reject(new Error(`status ${s.code} ${s.details}`))));
      });
    },
    bidi() {
      const call = c.Bidi();
      const waiters: Array<(d: Uint8Array) => void> = [];
      call.on("data", (m: Payload) => waiters.shift()?.(m.data));
      call.on("error", () => {});
      const done = new Promise<void>((resolve) => call.on("status", () => resolve()));
      return {
        roundTrip(data) {
          return new Promise<Uint8Array>((resolve) => {
            waiters.push(resolve);
            call.write(create(PayloadSchema, { data }));
          });
        },
        async close() {
          call.end();
          await done;
        },
      };
    },
    close: () => c.close(),
  };
}

async function connectConnect(port: number): Promise<TransferClient> {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const transfer = createConnectClient(TransferService, transport);
  const bench = createConnectClient(BenchService, transport);
  return {
    async download(size) {
      const v = new Verifier(size);
      for await (const m of transfer.download({ transferId: String(size) })) {
        const ch = m.chunk!;
        v.accept(Number(ch.offset), ch.data, ch.last, ch.last ? ch.sha256 : undefined);
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

function connect(impl: Impl, port: number): Promise<TransferClient> {
  switch (impl) {
    case "raw":
      return connectRaw(port, undefined);
    case "raw-tuned":
      return connectRaw(port, tunedWindows);
    case "rill":
      return connectRill(port);
    case "grpc-js":
      return connectGrpcJs(port);
    case "connect":
      return connectConnect(port);
  }
}

/**
 * One client run: open the ping-pong stream (its first round trip also warms the connection),
 * a warm-up download, then the measured download — alone, or with the ping-pong looping on the
 * same connection until it ends.
 */
async function runClient(impl: Impl, port: number, size: number, warmup: number, withPing: boolean): Promise<Metrics> {
  const client = await connect(impl, port);
  const pp = client.bidi();
  const ping = new Uint8Array(PING_BYTES).fill(0x70);
  await pp.roundTrip(ping);
  if (warmup > 0) await client.download(warmup);
  const samples = new Samples();
  let transferring = true;
  const t0 = performance.now();
  const download = client.download(size).finally(() => (transferring = false));
  const pinger = withPing
    ? (async () => {
        while (transferring) {
          const t = performance.now();
          await pp.roundTrip(ping);
          samples.add(performance.now() - t);
        }
      })()
    : Promise.resolve();
  await download;
  const ms = performance.now() - t0;
  await pinger;
  await pp.close();
  client.close();
  const metrics: Metrics = { bytes: size, ms, mbps: size / 1e6 / (ms / 1000) };
  if (withPing) {
    metrics.pings = samples.count;
    metrics.p50Us = samples.quantileUs(0.5);
    metrics.p99Us = samples.quantileUs(0.99);
    metrics.maxUs = samples.quantileUs(1);
  }
  return metrics;
}

// ---------------------------------------------------------------- orchestrator

const here = dirname(fileURLToPath(import.meta.url));

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|kb|mb|gb)?$/i.exec(s.trim());
  if (m === null) throw new Error(`bad --size ${s} (e.g. 1GiB, 256MiB, 1073741824)`);
  const unit = (m[2] ?? "b").toLowerCase();
  const mul: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 };
  return Math.round(Number(m[1]) * mul[unit]!);
}

interface Options {
  size: number;
  warmup: number;
  rounds: number;
  only: Impl[];
  pingImpls: Impl[];
  taskset: boolean;
  cpuProf: string | undefined;
  out: string;
}

interface Run {
  impl: Impl;
  mode: "alone" | "ping";
  round: number;
  metrics?: Metrics;
  error?: string;
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-c", "0", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function child(args: string[], core: number, o: Options, profName: string): ChildProcess {
  const node = [...(o.cpuProf !== undefined ? ["--cpu-prof", "--cpu-prof-dir", o.cpuProf, "--cpu-prof-name", `${profName}.cpuprofile`] : []), join(here, "transfer.js"), ...args];
  const [cmd, argv] = o.taskset ? ["taskset", ["-c", String(core), process.execPath, ...node]] : [process.execPath, node];
  return spawn(cmd, argv, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

function nextMessage<T>(p: ChildProcess, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      p.off("message", onMessage);
      p.off("exit", onExit);
    };
    const onMessage = (m: unknown): void => {
      done();
      const msg = m as { type: string; error?: string };
      if (msg.type === "failed") reject(new Error(`${what}: ${msg.error}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null): void => {
      done();
      reject(new Error(`${what}: exited with ${code}`));
    };
    p.on("message", onMessage);
    p.on("exit", onExit);
  });
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  if (p.connected) p.send({ type: "exit" });
  const t = setTimeout(() => p.pid !== undefined && process.kill(p.pid, "SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

async function runOnce(run: Run, o: Options): Promise<void> {
  const tag = `${run.mode}-${run.impl}-r${run.round}`;
  const server = child(["--role", "server", "--impl", run.impl], 0, o, `${tag}-server`);
  let client: ChildProcess | undefined;
  try {
    const { port } = await nextMessage<{ port: number }>(server, 15000, `${run.impl} server`);
    client = child(
      ["--role", "client", "--impl", run.impl, "--port", String(port), "--size", String(o.size), "--warmup", String(o.warmup), ...(run.mode === "ping" ? ["--ping"] : [])],
      1,
      o,
      `${tag}-client`,
    );
    // Generous: the slowest stack at 50 MB/s, plus start-up.
    const limit = 30000 + ((o.size + o.warmup) / 50e6) * 1000;
    const { metrics } = await nextMessage<{ metrics: Metrics }>(client, limit, `${run.impl} client`);
    run.metrics = metrics;
  } catch (e) {
    run.error = (e as Error).message;
  } finally {
    if (client !== undefined) await stop(client);
    await stop(server);
  }
}

const fmtRate = (v: number): string => (Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: 0 }) : "—");
const fmtRatio = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "—");
function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return "—";
  return us >= 10000 ? `${(us / 1000).toFixed(1)} ms` : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}

function summarize(runs: Run[], o: Options) {
  const med = (impl: Impl, mode: Run["mode"], key: string): number =>
    median(runs.filter((r) => r.impl === impl && r.mode === mode && r.metrics !== undefined).map((r) => r.metrics![key]!));
  const rows = o.only.map((impl) => ({
    impl,
    mbps: med(impl, "alone", "mbps"),
    pingMbps: med(impl, "ping", "mbps"),
    pings: med(impl, "ping", "pings"),
    p50Us: med(impl, "ping", "p50Us"),
    p99Us: med(impl, "ping", "p99Us"),
    maxUs: med(impl, "ping", "maxUs"),
    errors: runs.filter((r) => r.impl === impl && r.error !== undefined).map((r) => `${r.mode} r${r.round}: ${r.error}`),
  }));
  const raw = rows.find((r) => r.impl === "raw");
  return rows.map((r) => ({ ...r, ratio: raw === undefined ? NaN : r.mbps / raw.mbps, p99Ratio: raw === undefined ? NaN : r.p99Us / raw.p99Us }));
}

function table(rows: ReturnType<typeof summarize>, o: Options): string {
  const mib = (o.size / 1024 ** 2).toLocaleString("en-US");
  const lines = [
    `### ${mib} MiB chunked download (64 KiB chunks, SHA-256 both ends), ${o.rounds} round(s), medians`,
    "",
    "| impl | MB/s alone | × raw | MB/s with ping-pong | ping-pong p50 | p99 | × raw p99 | max | round trips |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const ping = o.pingImpls.includes(r.impl);
    lines.push(
      `| ${r.impl} | ${fmtRate(r.mbps)} | ${fmtRatio(r.ratio)} | ${ping ? fmtRate(r.pingMbps) : "—"} | ${ping ? fmtUs(r.p50Us) : "—"} | ${ping ? fmtUs(r.p99Us) : "—"} | ${ping ? fmtRatio(r.p99Ratio) : "—"} | ${ping ? fmtUs(r.maxUs) : "—"} | ${ping ? fmtRate(r.pings) : "—"} |`,
    );
  }
  const errors = rows.flatMap((r) => r.errors.map((e) => `- ${r.impl} ${e}`));
  if (errors.length > 0) lines.push("", "Failed runs:", ...errors);
  return lines.join("\n");
}

async function orchestrate(v: Record<string, string | boolean | undefined>): Promise<void> {
  const quick = v.quick === true;
  const size = parseSize(typeof v.size === "string" ? v.size : quick ? "256MiB" : "1GiB");
  const list = (s: unknown, d: readonly Impl[]): Impl[] => {
    if (typeof s !== "string") return [...d];
    const names = s.split(",").map((x) => x.trim()) as Impl[];
    for (const n of names) if (!impls.includes(n)) throw new Error(`unknown implementation ${n} (known: ${impls.join(", ")})`);
    return impls.filter((i) => names.includes(i));
  };
  const only = list(v.only, impls);
  const o: Options = {
    size,
    warmup: typeof v.warmup === "string" ? parseSize(v.warmup) : Math.min(size, quick ? 32 * 1024 ** 2 : 64 * 1024 ** 2),
    rounds: typeof v.rounds === "string" ? Number(v.rounds) : quick ? 1 : 3,
    only,
    pingImpls: list(v["ping-impls"], only).filter((i) => only.includes(i)),
    taskset: v["no-taskset"] !== true && hasTaskset(),
    cpuProf: typeof v["cpu-prof"] === "string" ? v["cpu-prof"] : undefined,
    out: typeof v.out === "string" ? v.out : join(here, "..", "..", "bench", "results", "transfer.json"),
  };
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error("--rounds must be a positive integer");
  if (o.cpuProf !== undefined) mkdirSync(o.cpuProf, { recursive: true });
  const started = Date.now();
  const runs: Run[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const mode of ["alone", "ping"] as const) {
      for (const impl of mode === "ping" ? o.pingImpls : o.only) {
        const run: Run = { impl, mode, round };
        await runOnce(run, o);
        runs.push(run);
        const m = run.metrics;
        const detail = m === undefined ? `FAILED ${run.error}` : `${fmtRate(m.mbps!)} MB/s${m.p99Us !== undefined ? `, ping p50 ${fmtUs(m.p50Us!)} p99 ${fmtUs(m.p99Us)} max ${fmtUs(m.maxUs!)} (${m.pings})` : ""}`;
        process.stderr.write(`round ${round} ${mode.padEnd(5)} ${impl.padEnd(9)} ${detail}\n`);
        await sleep(200);
      }
    }
  }
  const rows = summarize(runs, o);
  const text = table(rows, o);
  console.log(text);
  const argv = process.argv.slice(2).join(" ");
  console.log(`\n\`node dist/bench/transfer.js ${argv}\`, ${((Date.now() - started) / 1000).toFixed(0)} s, ${o.taskset ? "server on core 0, client on core 1" : "not pinned"}`);
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(
    o.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command: `node dist/bench/transfer.js ${argv}`,
        machine: { node: process.version, cpus: cpus().map((c) => c.model), totalMem: totalmem() },
        config: { ...o, chunkBytes: CHUNK, blockBytes: BLOCK, pingBytes: PING_BYTES },
        medians: rows,
        runs,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`JSON: ${o.out}`);
}

// ---------------------------------------------------------------- entry

const { values } = parseArgs({
  options: {
    role: { type: "string" },
    impl: { type: "string" },
    port: { type: "string" },
    ping: { type: "boolean" },
    size: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    quick: { type: "boolean" },
    only: { type: "string" },
    "ping-impls": { type: "string" },
    "no-taskset": { type: "boolean" },
    "cpu-prof": { type: "string" },
    out: { type: "string" },
  },
});

function exitOnRequest(): void {
  process.on("message", (m: { type?: string }) => {
    if (m.type === "exit") process.exit(0);
  });
  process.on("disconnect", () => process.exit(0));
}

try {
  if (values.role === "server") {
    exitOnRequest();
    send({ type: "ready", port: await serve(values.impl as Impl) });
  } else if (values.role === "client") {
    exitOnRequest();
    const metrics = await runClient(values.impl as Impl, Number(values.port), Number(values.size), Number(values.warmup ?? 0), values.ping === true);
    send({ type: "result", metrics });
  } else {
    await orchestrate(values);
  }
} catch (e) {
  if (values.role !== undefined) {
    send({ type: "failed", error: (e as Error).stack ?? String(e) });
    await sleep(100);
  }
  throw e;
}

