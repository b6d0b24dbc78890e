/**
 * The gRPC wire written by hand, for the raw node:http2 baselines (impl/raw.ts, transfer/raw.ts):
 * the 5-byte length-prefixed message framing, protobuf varints, and `bench.v1.Payload { bytes
 * data = 1; }`. No library code: the baselines stay "node:http2 and hand-written framing".
 *
 * Varints here are non-negative integers up to 2^53 (offsets and sizes of large transfers), read
 * and written without bigints; below 2^31 they take the 32-bit fast path.
 */

/** Bytes of `v` as a varint. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (v = Math.floor(v / 0x800000000); v > 0; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Writes `v` as a varint at `off`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, off: number, v: number): number {
  while (v > 0x7fffffff) {
    buf[off++] = (v & 0x7f) | 0x80; // & takes the low bits of any integer below 2^53
    v = Math.floor(v / 0x80);
  }
  while (v > 0x7f) {
    buf[off++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[off++] = v;
  return off;
}

/** A read position in a buffer; reuse one per decoder rather than allocate per message. */
export interface Cursor {
  off: number;
}

/** Reads the varint at `at.off` and moves past it. */
export function readVarint(buf: Uint8Array, at: Cursor): number {
  let b = buf[at.off++];
  if (b !== undefined && b < 0x80) return b;
  let v = 0;
  let mul = 1;
  for (;;) {
    if (b === undefined) throw new Error("truncated varint");
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 0x80;
    b = buf[at.off++];
  }
}

/** Writes a gRPC message header (uncompressed, `length` bytes follow) at `off`; returns `off + 5`. */
export function writeFrameHeader(buf: Buffer, off: number, length: number): number {
  buf[off] = 0;
  buf.writeUInt32BE(length, off + 1);
  return off + 5;
}

/** Bytes of one gRPC frame holding a Payload with `n` bytes of data. */
export function payloadFrameSize(n: number): number {
  return 5 + (n === 0 ? 0 : 1 + varintSize(n) + n);
}

/** Writes the frame of a Payload with `data` at `off`; returns the offset after it. */
export function writePayloadFrame(buf: Buffer, off: number, data: Uint8Array): number {
  const n = data.byteLength;
  off = writeFrameHeader(buf, off, n === 0 ? 0 : 1 + varintSize(n) + n);
  if (n === 0) return off;
  buf[off++] = 0x0a;
  off = writeVarint(buf, off, n);
  buf.set(data, off);
  return off + n;
}

/** One gRPC frame holding a Payload with `data`. */
export function encodePayloadFrame(data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(payloadFrameSize(data.byteLength));
  writePayloadFrame(buf, 0, data);
  return buf;
}

const at: Cursor = { off: 0 };

/** The `data` of a Payload encoded in buf[start, end) (a view, not a copy). */
export function decodePayload(buf: Buffer, start: number, end: number): Uint8Array {
  at.off = start;
  let data: Uint8Array = buf.subarray(0, 0);
  while (at.off < end) {
    const tag = readVarint(buf, at);
    const len = readVarint(buf, at);
    if (tag !== 0x0a) throw new Error(`unexpected protobuf tag ${tag}`);
    data = buf.subarray(at.off, at.off + len);
    at.off += len;
  }
  return data;
}

/**
 * Splits a byte stream into gRPC messages, handing each over as its bytes in `buf` from `start`
 * to `end`; a message spread over several DATA frames is kept as a list of parts and joined once.
 */
export class Deframer {
  private parts: Buffer[] = [];
  private have = 0;
  private need = 0;
  constructor(private readonly onMessage: (buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.have += chunk.byteLength;
      if (this.have < this.need) return;
      chunk = Buffer.concat(this.parts, this.have);
      this.parts = [];
      this.have = 0;
    }
    let off = 0;
    for (;;) {
      const rest = chunk.byteLength - off;
      if (rest === 0) return;
      const need = rest < 5 ? 5 : 5 + chunk.readUInt32BE(off + 1);
      if (rest < need) {
        this.parts = [chunk.subarray(off)];
        this.have = rest;
        this.need = need;
        return;
      }
      this.onMessage(chunk, off + 5, off + need);
      off += need;
    }
  }
}
