/**
 * What the transfer benchmark's implementations share: the payload (one random 1 MiB block
 * repeated, so no file is read and the disk is not measured), the peers' chunker and verifier,
 * and the interface each implementation fills in.
 *
 * Invariant: every implementation serves `rill.transfer.v1.TransferService/Download` with the
 * same `DownloadResponse { Chunk chunk }` bytes on the wire (offset, 64 KiB of data, total_size,
 * the data's CRC32C, and on the last chunk `last` and the SHA-256), and every receiver checks
 * each chunk's CRC32C and the SHA-256, plus `bench.v1.BenchService/Bidi` for the ping-pong, so
 * the numbers differ only by the RPC stack.
 */
import { createHash, randomFillSync, timingSafeEqual, type Hash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { DownloadResponseSchema, type DownloadRequest, type DownloadResponse } from "../../gen/rill/transfer/v1/transfer_pb.js";
import type { PingPong } from "../common.js";
import { crc32c } from "../../src/transfer/crc32c.js";

export const CHUNK = 64 * 1024;
export const BLOCK = 1024 * 1024;
export const PING_BYTES = 64;
export const DOWNLOAD_PATH = "/rill.transfer.v1.TransferService/Download";
export const BIDI_PATH = "/bench.v1.BenchService/Bidi";

/** The 1 MiB block every sender repeats (random, so nothing downstream can shortcut it). */
const block = randomFillSync(Buffer.allocUnsafe(BLOCK));

/** `size` bytes as the 1 MiB block repeated: the source Rill's `sendChunks` reads. */
export async function* repeatedBlock(size: number): AsyncGenerator<Uint8Array> {
  for (let left = size; left > 0; left -= BLOCK) yield left >= BLOCK ? block : block.subarray(0, left);
}

export interface PeerChunk {
  offset: number;
  data: Uint8Array;
  last: boolean;
  sha256: Uint8Array | undefined;
  totalSize: number;
  crc32c: number;
}

/** The peers' sender: the same 64 KiB chunks, hashed as they go, the digest on the last one. */
export function* peerChunks(size: number): Generator<PeerChunk> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < size; ) {
    const at = offset % BLOCK; // BLOCK is a multiple of CHUNK: a chunk never wraps
    const data = block.subarray(at, at + Math.min(CHUNK, size - offset));
    hash.update(data);
    const last = offset + data.byteLength === size;
    yield { offset, data, last, sha256: last ? hash.digest() : undefined, totalSize: size, crc32c: crc32c(data) };
    offset += data.byteLength;
  }
}

/** A peer chunk as the protobuf-es message grpc-js and connect send. */
export const peerMessage = (c: PeerChunk): DownloadResponse =>
  create(DownloadResponseSchema, {
    chunk: { offset: BigInt(c.offset), data: c.data, last: c.last, totalSize: BigInt(c.totalSize), crc32c: c.crc32c, ...(c.sha256 !== undefined ? { sha256: c.sha256 } : {}) },
  });

/** The peers' receiver: checks order and size, hashes, and compares the digest on the last chunk. */
export class Verifier {
  private readonly hash: Hash = createHash("sha256");
  offset = 0;
  complete = false;
  constructor(private readonly size: number) {}

  accept(offset: number, data: Uint8Array, last: boolean, sha256: Uint8Array | undefined, crc: number | undefined): void {
    if (this.complete) throw new Error("a chunk after the last one");
    if (offset !== this.offset) throw new Error(`chunk at ${offset}, expected ${this.offset}`);
    if (crc !== crc32c(data)) throw new Error(`CRC32C mismatch in the chunk at ${offset}`);
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
export const sizeOf = (req: DownloadRequest): number => Number(req.transferId);

/** One connection carrying both the download and the ping-pong. */
export interface TransferClient {
  /** Downloads `size` bytes; resolves once every byte arrived and the SHA-256 matched. */
  download(size: number): Promise<void>;
  bidi(): PingPong;
  close(): void;
}

/** An implementation: its server (resolves with the port, on 127.0.0.1) and its client. */
export interface TransferImpl {
  serve(): Promise<number>;
  connect(port: number): Promise<TransferClient>;
}
