/**
 * Splits a response body of length-prefixed envelopes into the message frames, passed on as the
 * bytes they are (no copy, no reassembly: the gRPC frame decoder downstream does that within its
 * receive limit), and the one control envelope a protocol ends its body with: gRPC-Web's
 * trailers (flag 0x80) or Connect's end-of-stream message (flag 0x02). Only a control envelope
 * is buffered, up to `maxControlBytes`.
 */
import { FRAME_HEADER_LENGTH } from "./frame.js";

/** What a chunk of the body holds: message bytes to pass on, and a control envelope if one ended in it. */
export interface SplitChunk {
  /** Message frames' bytes, in order (views of the input where possible). */
  data: Uint8Array[];
  /** A control envelope completed in this chunk: its flags and payload. */
  control?: { flags: number; payload: Uint8Array } | undefined;
}

export class EnvelopeSplitter {
  /** Bytes of the current envelope's header seen so far (a header may be split across chunks). */
  private readonly header = new Uint8Array(FRAME_HEADER_LENGTH);
  private headerFilled = 0;
  /** Bytes of the current message envelope's payload still to pass on. */
  private passing = 0;
  /** The control envelope being collected. */
  private control: { flags: number; payload: Uint8Array; filled: number } | undefined;
  /** A control envelope was completed: the body must end here. */
  finished = false;

  constructor(
    /** Flag bits that mark a control envelope. */
    private readonly controlMask: number,
    private readonly maxControlBytes: number,
  ) {}

  /** Whether the body stopped inside an envelope. */
  get partial(): boolean {
    return this.headerFilled > 0 || this.passing > 0 || this.control !== undefined;
  }

  /** Splits `chunk`; throws (a protocol error) for a control envelope over its limit or data after it. */
  push(chunk: Uint8Array): SplitChunk {
    const out: SplitChunk = { data: [] };
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.finished) throw new Error("the server sent data after the end of the stream");
      if (this.passing > 0) {
        const n = Math.min(this.passing, chunk.byteLength - at);
        out.data.push(chunk.subarray(at, at + n));
        this.passing -= n;
        at += n;
        continue;
      }
      const control = this.control;
      if (control !== undefined) {
        const n = Math.min(control.payload.byteLength - control.filled, chunk.byteLength - at);
        control.payload.set(chunk.subarray(at, at + n), control.filled);
        control.filled += n;
        at += n;
        if (control.filled === control.payload.byteLength) this.endControl(out);
        continue;
      }
      // A header: whole in this chunk (the usual case), or completed from the bytes kept.
      if (this.headerFilled === 0 && chunk.byteLength - at >= FRAME_HEADER_LENGTH) {
        this.startEnvelope(chunk.subarray(at, at + FRAME_HEADER_LENGTH), out);
        at += FRAME_HEADER_LENGTH;
        continue;
      }
      const n = Math.min(FRAME_HEADER_LENGTH - this.headerFilled, chunk.byteLength - at);
      this.header.set(chunk.subarray(at, at + n), this.headerFilled);
      this.headerFilled += n;
      at += n;
      if (this.headerFilled === FRAME_HEADER_LENGTH) {
        this.headerFilled = 0;
        this.startEnvelope(this.header.slice(), out);
      }
    }
    return out;
  }

  private startEnvelope(header: Uint8Array, out: SplitChunk): void {
    const flags = header[0]!;
    const length = ((header[1]! << 24) | (header[2]! << 16) | (header[3]! << 8) | header[4]!) >>> 0;
    if ((flags & this.controlMask) === 0) {
      out.data.push(header);
      this.passing = length;
      return;
    }
    if (length > this.maxControlBytes) throw new Error(`the end-of-stream envelope is ${length} bytes, over the limit of ${this.maxControlBytes}`);
    this.control = { flags, payload: new Uint8Array(length), filled: 0 };
    if (length === 0) this.endControl(out);
  }

  private endControl(out: SplitChunk): void {
    const c = this.control!;
    this.control = undefined;
    this.finished = true;
    out.control = { flags: c.flags, payload: c.payload };
  }
}
