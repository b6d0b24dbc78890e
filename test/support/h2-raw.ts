/**
 * HTTP/2 peers below Rill's own client, at two depths:
 *
 * - `RawH2Client`, for hostile-peer tests: writes frames byte by byte as an attacker would
 *   (node:http2's own client refuses to break the protocol, and queues streams past the server's
 *   limit instead of sending them), and reads back the frames the server sends. HPACK is written
 *   as literals without indexing or Huffman coding, which every decoder must accept (RFC 7541
 *   §6.2.2), so no encoder state is needed; received header blocks are not decoded.
 * - `http2Peer`, for tests that obey the protocol but need what Rill's client hides: a plain
 *   node:http2 session (send PINGs, open streams by hand, read the server's SETTINGS and
 *   windows) that records the GOAWAY frames and window sizes the server sends.
 */
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { connect, type Socket } from "node:net";

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** HTTP/2 error codes (RFC 9113 §7) the tests look for. */
export const H2Error = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export const clientPreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** One frame's bytes: 9-byte header + payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** An HPACK header block of literal fields without indexing (no Huffman). */
export function headerBlock(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of headers) {
    bytes.push(0x00);
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    bytes.push(...hpackInt(n.length, 7, 0), ...n, ...hpackInt(v.length, 7, 0), ...v);
  }
  return Buffer.from(bytes);
}

/** The request headers of a gRPC call to `path` (plaintext, application/grpc). */
export function grpcRequestHeaders(path: string, extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "127.0.0.1"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

/** A gRPC length-prefixed message frame around `message` (uncompressed). */
export function grpcMessage(message: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([prefix, message]);
}

export interface RawClientOptions {
  /** Send the preface and an empty SETTINGS at once (default true). */
  preface?: boolean;
  /** Acknowledge the server's SETTINGS (default true). */
  ackSettings?: boolean;
}

/** A raw HTTP/2 connection to 127.0.0.1:`port`. */
export class RawH2Client {
  readonly socket: Socket;
  readonly frames: RawFrame[] = [];
  /** Counts of received frames by type. */
  readonly counts = new Map<number, number>();
  /** RST_STREAM error codes received, by code. */
  readonly resets = new Map<number, number>();
  goaway: { lastStreamId: number; code: number; debug: string } | undefined;
  /** The server's SETTINGS values by id (0x3 = MAX_CONCURRENT_STREAMS, 0x4 = INITIAL_WINDOW_SIZE). */
  readonly serverSettings = new Map<number, number>();
  closed = false;
  readonly closedAt: Promise<number>;
  private buffered: Buffer = Buffer.alloc(0);
  private nextId = 1;
  /** Keep every received frame in `frames` (off for floods: counts are kept regardless). */
  keepFrames = true;

  constructor(
    port: number,
    private readonly options: RawClientOptions = {},
  ) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.on("error", () => {});
    this.closedAt = new Promise((resolve) =>
      this.socket.once("close", () => {
        this.closed = true;
        resolve(performance.now());
      }),
    );
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    if (options.preface ?? true) this.socket.write(Buffer.concat([clientPreface, frame(FrameType.SETTINGS, 0, 0)]));
  }

  /** Resolves once the TCP connection is up. */
  connected(): Promise<void> {
    if (!this.socket.connecting) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once("connect", () => resolve());
      this.socket.once("error", reject);
    });
  }

  /** The next client stream id (odd, increasing). */
  newStreamId(): number {
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  headers(streamId: number, headers: ReadonlyArray<readonly [string, string]>, endStream = false): Buffer {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, headerBlock(headers));
  }

  data(streamId: number, payload: Buffer, endStream = false): Buffer {
    return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, payload);
  }

  rst(streamId: number, code: number = H2Error.CANCEL): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code);
    return frame(FrameType.RST_STREAM, 0, streamId, p);
  }

  /** Resolves when a frame matching `test` arrives (or was already received), or rejects after `ms`. */
  waitFor(test: (f: RawFrame) => boolean, ms = 5000): Promise<RawFrame> {
    const seen = this.frames.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`no matching frame within ${ms} ms`));
      }, ms);
      const w = (f: RawFrame) => {
        if (!test(f)) return;
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve(f);
      };
      this.waiters.add(w);
    });
  }

  private readonly waiters = new Set<(f: RawFrame) => void>();

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      const f: RawFrame = {
        type: this.buffered[3]!,
        flags: this.buffered[4]!,
        streamId: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffered.subarray(9, 9 + length),
      };
      this.buffered = this.buffered.subarray(9 + length);
      this.onFrame(f);
    }
  }

  private onFrame(f: RawFrame): void {
    this.counts.set(f.type, (this.counts.get(f.type) ?? 0) + 1);
    if (f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0) {
      for (let i = 0; i + 6 <= f.payload.length; i += 6) this.serverSettings.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
      if (this.options.ackSettings ?? true) this.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
    } else if (f.type === FrameType.RST_STREAM) {
      const code = f.payload.readUInt32BE(0);
      this.resets.set(code, (this.resets.get(code) ?? 0) + 1);
    } else if (f.type === FrameType.GOAWAY) {
      this.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString("latin1") };
    } else if (f.type === FrameType.PING && (f.flags & Flag.ACK) === 0) {
      this.write(frame(FrameType.PING, Flag.ACK, 0, Buffer.from(f.payload)));
    }
    if (this.keepFrames) this.frames.push({ ...f, payload: Buffer.from(f.payload) });
    for (const w of [...this.waiters]) w(f);
  }
}

/** A GOAWAY frame as a node:http2 session reports it. */
export interface GoAway {
  code: number;
  lastStreamId: number;
  /** The debug data, as latin1 text ("too_many_pings", "max_idle"). */
  data: string;
}

export interface Http2PeerOptions {
  /**
   * When `http2Peer` resolves: at "connect" (the TCP connection is up and the preface sent), or,
   * the default, at "settings" (the server's first SETTINGS arrived, so `remoteSettings` holds them).
   */
  readyAt?: "connect" | "settings";
}

/** A node:http2 client session to a test server, with what the server sent it. */
export interface Http2Peer {
  readonly session: ClientHttp2Session;
  /** Every GOAWAY received, in order. */
  readonly goaways: GoAway[];
  /** Every SETTINGS_INITIAL_WINDOW_SIZE the server advertised that differs from the one before, in order (first: at connect). */
  readonly windows: number[];
  /** Resolves once the session has closed (on either side's initiative). */
  readonly closed: Promise<void>;
  /** Destroys the session if it is still open; resolves once it has closed. */
  close(): Promise<void>;
}

/** Opens a plaintext node:http2 session to `target` ("host:port"); session errors are swallowed (the tests look at `goaways` and `closed`). */
export async function http2Peer(target: string, options: Http2PeerOptions = {}): Promise<Http2Peer> {
  const session = h2connect(`http://${target}`);
  const goaways: GoAway[] = [];
  const windows: number[] = [];
  session.on("goaway", (code, lastStreamId, data) => goaways.push({ code, lastStreamId, data: data?.toString("latin1") ?? "" }));
  session.on("remoteSettings", (settings) => {
    if (settings.initialWindowSize !== undefined && windows.at(-1) !== settings.initialWindowSize) windows.push(settings.initialWindowSize);
  });
  session.on("error", () => {});
  const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    session.once(options.readyAt === "connect" ? "connect" : "remoteSettings", () => resolve());
    session.once("error", reject);
  });
  return {
    session,
    goaways,
    windows,
    closed,
    close() {
      if (!session.destroyed) session.destroy();
      return closed;
    },
  };
}
