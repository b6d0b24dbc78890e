/**
 * gRPC length-prefixed messages: a flag byte, a 4-byte big-endian length, then the payload.
 *
 * Invariants: a frame's declared length is checked against the receive limit from the header alone,
 * before any of its body is buffered, so a peer cannot make us allocate more than the limit; frames
 * that arrive whole inside one chunk are returned as views of that chunk, never copied.
 * @see https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests (Length-Prefixed-Message)
 */
import { RpcError } from "./errors.js";
import { Code } from "./code.js";

/** The size of a frame header in bytes: one flag byte plus a 4-byte big-endian length. */
export const FRAME_HEADER_LENGTH = 5;

const MAX_FRAME_LENGTH = 0xffff_ffff;

/** One decoded gRPC message: its payload and whether the sender compressed it (flag bit 0). */
export interface Frame {
  compressed: boolean;
  data: Uint8Array;
}

/** Takes the frames a `FrameDecoder` completes, one at a time (`pushTo`). */
export interface FrameReceiver {
  onFrame(frame: Frame): void;
}

/**
 * The 5-byte header that precedes a message of `length` bytes.
 *
 * Throws RpcError(ResourceExhausted) for a length above 4 GiB - 1 (it cannot be framed), and
 * RangeError for a negative or fractional length (a bug in the caller).
 */
export function encodeFrameHeader(length: number, compressed: boolean): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_LENGTH);
  writeHeader(header, length, compressed);
  return header;
}

/**
 * A whole frame (header and payload) in one new buffer, ready to write.
 *
 * `compressed` defaults to false; set it only when `data` is already compressed with the call's
 * `grpc-encoding`. Fails like {@link encodeFrameHeader}.
 */
export function encodeFrame(data: Uint8Array, compressed = false): Uint8Array {
  if (withHeaderRoom.has(data)) {
    // The encoder left room for the header in front of the payload: write it there, copy nothing.
    const frame = new Uint8Array(data.buffer, data.byteOffset - FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + data.byteLength);
    writeHeader(frame, data.byteLength, compressed);
    return frame;
  }
  // allocUnsafe skips zero-filling: every byte is overwritten just below.
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + data.byteLength);
  writeHeader(frame, data.byteLength, compressed);
  frame.set(data, FRAME_HEADER_LENGTH);
  return frame;
}

/**
 * Payloads allocated by `allocatePayload`: the FRAME_HEADER_LENGTH bytes in front of each are
 * theirs. A WeakSet, so a payload carries no extra property and is forgotten with it.
 */
const withHeaderRoom = new WeakSet<Uint8Array>();

/**
 * A payload buffer of `length` bytes (not zeroed: the caller writes every byte) with room for
 * its frame header in front, so `encodeFrame` frames it in place. For large messages: copying a
 * 100 MiB payload into a new frame buffer cost ~290 ms here, nearly all of it the kernel
 * faulting in the fresh pages (the copy itself, into memory already touched, takes 6 ms).
 */
export function allocatePayload(length: number): Buffer {
  const recycled = takeRecycled(length);
  if (recycled !== undefined) return recycled;
  const payload = Buffer.allocUnsafeSlow(FRAME_HEADER_LENGTH + length).subarray(FRAME_HEADER_LENGTH);
  withHeaderRoom.add(payload);
  return payload;
}

/**
 * Payloads given back by `recyclePayload`, for `allocatePayload` to hand out again. A stream of
 * large messages of one size (1 MiB responses, 64 KiB transfer chunks) then copies each message
 * into memory it already touched: a fresh 1 MiB buffer per message cost the sender its page
 * faults and a garbage collection of external memory every few dozen messages, ~5× the copy
 * itself (server-streaming 1 MiB: 2.3–2.9 ms of server CPU per message, 0.4–0.5 ms without).
 * Bounded: `maxRecycled` buffers and `maxRecycledBytes` in all, whatever the traffic.
 */
const recycled: Buffer[] = [];
let recycledBytes = 0;
const maxRecycled = 8;
const maxRecycledBytes = 8 * 1024 * 1024;

function takeRecycled(length: number): Buffer | undefined {
  for (let i = recycled.length - 1; i >= 0; i--) {
    const b = recycled[i]!;
    if (b.byteLength !== length) continue;
    recycled.splice(i, 1);
    recycledBytes -= length;
    return b;
  }
  return undefined;
}

/** Whether `payload` came from `allocatePayload` (and so may be given to `recyclePayload`). */
export function isRecyclablePayload(payload: Uint8Array): boolean {
  return withHeaderRoom.has(payload);
}

/**
 * Gives a payload from `allocatePayload` back for reuse. Only for a payload nothing refers to any
 * more: its frame was written and node reported the write done (the caller's write callback), and
 * no view of it was handed to anyone. The oldest buffers make room for newer ones.
 */
export function recyclePayload(payload: Uint8Array): void {
  if (!withHeaderRoom.has(payload) || payload.byteLength > maxRecycledBytes || recycled.includes(payload as Buffer)) return;
  recycled.push(payload as Buffer);
  recycledBytes += payload.byteLength;
  while (recycled.length > maxRecycled || recycledBytes > maxRecycledBytes) recycledBytes -= recycled.shift()!.byteLength;
}

/**
 * Writes a frame header at `pos` for a payload of `length` bytes (already checked: below 4 GiB)
 * and returns the position after it. For writers that build frames in buffers of their own.
 */
export function putHeader(out: Uint8Array, pos: number, length: number, compressed: boolean): number {
  out[pos] = compressed ? 1 : 0;
  out[pos + 1] = length >>> 24;
  out[pos + 2] = (length >>> 16) & 0xff;
  out[pos + 3] = (length >>> 8) & 0xff;
  out[pos + 4] = length & 0xff;
  return pos + FRAME_HEADER_LENGTH;
}

function writeHeader(target: Uint8Array, length: number, compressed: boolean): void {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`invalid frame length ${length}`);
  if (length > MAX_FRAME_LENGTH) {
    throw new RpcError(Code.ResourceExhausted, `message of ${length} bytes is too large to frame (max ${MAX_FRAME_LENGTH})`);
  }
  target[0] = compressed ? 1 : 0;
  target[1] = length >>> 24;
  target[2] = (length >>> 16) & 0xff;
  target[3] = (length >>> 8) & 0xff;
  target[4] = length & 0xff;
}

/**
 * An incremental decoder of a stream of length-prefixed messages.
 *
 * Feed it chunks in arrival order; each `push` returns the frames completed by that chunk (possibly
 * none, possibly many), each `pushTo` hands them to a receiver. A message may be split anywhere, header included. Frames wholly inside one
 * chunk are zero-copy `subarray` views of it, so the caller must not reuse a chunk's memory while
 * its frames are alive; a split frame is copied into one buffer allocated at its declared size.
 *
 * Failures: a declared length above `maxMessageBytes` throws RpcError(ResourceExhausted) as soon as
 * the header is complete; a flag byte other than 0x00/0x01 throws RpcError(Internal). After a throw
 * the decoder is poisoned: every later `push` rethrows the same error, since the stream's framing
 * can no longer be trusted.
 */
export class FrameDecoder {
  private readonly maxMessageBytes: number;
  // Allocated only for a header split across chunks: most streams never need it.
  private header: Uint8Array | undefined = undefined;
  private headerFilled = 0;
  private body: Uint8Array | undefined = undefined;
  private bodyFilled = 0;
  private bodyCompressed = false;
  private error: RpcError | undefined = undefined;

  /**
   * @param maxMessageBytes the largest payload accepted, in bytes (inclusive). Defaults to Infinity,
   *   which trusts the peer with up to 4 GiB per message: anything facing a network should set a limit
   *   (gRPC's customary receive default is 4 MiB).
   */
  constructor(maxMessageBytes = Infinity) {
    if (Number.isNaN(maxMessageBytes) || maxMessageBytes < 0) {
      throw new RangeError(`maxMessageBytes must be a non-negative number, got ${maxMessageBytes}`);
    }
    this.maxMessageBytes = maxMessageBytes;
  }

  /** True while bytes of an incomplete frame are buffered; at end of stream this means the last message was truncated. */
  get partial(): boolean {
    return this.headerFilled > 0 || this.body !== undefined;
  }

  /** How many bytes of the incomplete frame have been received so far, its header included. */
  get bufferedBytes(): number {
    return this.body === undefined ? this.headerFilled : FRAME_HEADER_LENGTH + this.bodyFilled;
  }

  /** Consumes `chunk` and returns the frames it completed, in order. Throws as described on the class. */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    this.pushTo(chunk, { onFrame: (f) => void frames.push(f) });
    return frames;
  }

  /**
   * Like `push`, but hands each completed frame to `receiver` as soon as it is complete, and
   * returns how many there were. No array per chunk or per decoder: a stream that receives one
   * message (10,000 idle streams of a fan-out) allocated a reused array of 17 slots for it. Frames
   * before a bad header are handed over before the throw, so an error comes after them, in order.
   */
  pushTo(chunk: Uint8Array, receiver: FrameReceiver): number {
    if (this.error !== undefined) throw this.error;
    let n = 0;
    const end = chunk.byteLength;
    let pos = 0;
    while (pos < end) {
      if (this.body !== undefined) {
        const take = Math.min(this.body.byteLength - this.bodyFilled, end - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFilled);
        this.bodyFilled += take;
        pos += take;
        if (this.bodyFilled === this.body.byteLength) {
          const frame: Frame = { compressed: this.bodyCompressed, data: this.body };
          this.body = undefined;
          this.bodyFilled = 0;
          n++;
          receiver.onFrame(frame);
        }
        continue;
      }
      let flags: number;
      let length: number;
      if (this.headerFilled === 0 && end - pos >= FRAME_HEADER_LENGTH) {
        flags = chunk[pos]!;
        length = readLength(chunk, pos);
        pos += FRAME_HEADER_LENGTH;
      } else {
        const header = (this.header ??= new Uint8Array(FRAME_HEADER_LENGTH));
        const take = Math.min(FRAME_HEADER_LENGTH - this.headerFilled, end - pos);
        header.set(chunk.subarray(pos, pos + take), this.headerFilled);
        this.headerFilled += take;
        pos += take;
        if (this.headerFilled < FRAME_HEADER_LENGTH) break;
        this.headerFilled = 0;
        flags = header[0]!;
        length = readLength(header, 0);
      }
      const compressed = this.checkHeader(flags, length);
      if (end - pos >= length) {
        const data = chunk.subarray(pos, pos + length);
        pos += length;
        n++;
        receiver.onFrame({ compressed, data });
        continue;
      }
      this.body = this.allocate(length);
      this.bodyCompressed = compressed;
    }
    return n;
  }

  // Runs before any of the body is buffered, so an oversized claim costs us nothing.
  private checkHeader(flags: number, length: number): boolean {
    if (flags > 1) {
      this.poison(new RpcError(Code.Internal, `received a message with invalid message flags 0x${flags.toString(16).padStart(2, "0")} (reserved bits set)`));
    }
    if (length > this.maxMessageBytes) {
      this.poison(new RpcError(Code.ResourceExhausted, `received message larger than max (${length} vs. ${this.maxMessageBytes})`));
    }
    return flags === 1;
  }

  private allocate(length: number): Uint8Array {
    try {
      // Zeroed memory costs nothing extra here: a large buffer comes from fresh pages the kernel
      // zeroes anyway (measured: Buffer.allocUnsafeSlow was no faster for 1 MiB messages).
      return new Uint8Array(length);
    } catch (cause) {
      // Only reachable without a limit; a peer's claim must not surface as a bare RangeError.
      this.poison(new RpcError(Code.ResourceExhausted, `cannot allocate ${length} bytes for a received message`, { cause }));
    }
  }

  // Only the framing's own errors poison the decoder; one thrown by a receiver is the receiver's.
  private poison(error: RpcError): never {
    this.error = error;
    throw error;
  }
}

function readLength(source: Uint8Array, at: number): number {
  // Multiplication, not <<, so a length with the top bit set stays positive.
  return source[at + 1]! * 0x100_0000 + ((source[at + 2]! << 16) | (source[at + 3]! << 8) | source[at + 4]!);
}

/**
 * The one frame in `chunks` (a side that sends exactly one message, written in any pieces), or
 * undefined when they hold none, several, or a partial one. One chunk holding one whole frame,
 * the usual case, is sliced rather than decoded.
 */
export function onlyFrame(chunks: readonly Uint8Array[]): Frame | undefined {
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  if (only !== undefined && only.byteLength >= FRAME_HEADER_LENGTH && only[0]! <= 1) {
    const length = ((only[1]! << 24) | (only[2]! << 16) | (only[3]! << 8) | only[4]!) >>> 0;
    if (length + FRAME_HEADER_LENGTH === only.byteLength) return { data: only.subarray(FRAME_HEADER_LENGTH), compressed: only[0] === 1 };
  }
  const decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
  const frames = chunks.flatMap((c) => decoder.push(c));
  return frames.length === 1 && !decoder.partial ? frames[0] : undefined;
}
