/**
 * A raw HTTP/1.1 peer for hostile-peer tests of the server's gRPC-Web and Connect surface: it
 * writes bytes exactly as given (trickled, pipelined, malformed, half a body) over TCP or TLS,
 * and reads back the responses the server sends, one at a time, with a small parser that
 * understands what a server may answer (1xx, content-length, chunked, or a body up to close).
 * node:http's own client refuses to break the protocol, so it cannot play these peers.
 */
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";

export interface H1Response {
  status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/** The bytes of one request: `host` and `content-length` are added unless given (or `transfer-encoding` is). */
export function h1Request(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Uint8Array | string,
  options: { version?: "1.0" | "1.1"; host?: boolean } = {},
): Buffer {
  const lines = [`${method} ${path} HTTP/${options.version ?? "1.1"}`];
  const names = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  if ((options.host ?? true) && !names.has("host")) lines.push("host: 127.0.0.1");
  const bytes = body === undefined ? undefined : typeof body === "string" ? Buffer.from(body, "latin1") : Buffer.from(body);
  if (bytes !== undefined && !names.has("content-length") && !names.has("transfer-encoding")) lines.push(`content-length: ${bytes.byteLength}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  return bytes === undefined ? head : Buffer.concat([head, bytes]);
}

/** `parts` in chunked transfer coding, with the closing zero chunk unless `last` is false. */
export function chunked(parts: ReadonlyArray<Uint8Array | string>, last = true): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p);
    if (b.byteLength === 0) continue;
    out.push(Buffer.from(`${b.byteLength.toString(16)}\r\n`, "latin1"), b, Buffer.from("\r\n", "latin1"));
  }
  if (last) out.push(Buffer.from("0\r\n\r\n", "latin1"));
  return Buffer.concat(out);
}

/** Parses one response at the start of `buf`; undefined while incomplete. `closed`: no more bytes will come. */
export function parseH1Response(buf: Buffer, closed: boolean): { response: H1Response; rest: Buffer } | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (m === null) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(lines[0])}`);
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const k = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let at = end + 4;
  if ((status >= 100 && status < 200) || status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, rest: buf.subarray(at) };
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked") === true) {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf("\r\n", at);
      if (eol < 0) return undefined;
      const size = parseInt(buf.subarray(at, eol).toString("latin1"), 16);
      if (size === 0) {
        const trailerEnd = buf.indexOf("\r\n\r\n", eol);
        if (trailerEnd < 0 && buf.indexOf("\r\n", eol + 2) !== eol + 2) return undefined;
        const after = trailerEnd < 0 ? eol + 4 : trailerEnd + 4;
        return { response: { status, headers, body: Buffer.concat(parts) }, rest: buf.subarray(after) };
      }
      if (buf.byteLength < eol + 2 + size + 2) return undefined;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (buf.byteLength < at + n) return undefined;
    return { response: { status, headers, body: buf.subarray(at, at + n) }, rest: buf.subarray(at + n) };
  }
  if (!closed) return undefined;
  return { response: { status, headers, body: buf.subarray(at) }, rest: Buffer.alloc(0) };
}

/** A raw HTTP/1.1 connection to 127.0.0.1:`port` (TLS with `tls`). */
export class RawH1Client {
  readonly socket: Socket;
  closed = false;
  /** When the connection closed (performance.now()). */
  readonly closedAt: Promise<number>;
  /** Total bytes received. */
  receivedBytes = 0;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private readonly ready: Promise<void>;

  constructor(port: number, tls?: ConnectionOptions) {
    this.socket = tls === undefined ? connect(port, "127.0.0.1") : tlsConnect({ ...tls, port, host: "127.0.0.1" });
    this.socket.on("error", () => {});
    this.ready = new Promise((resolve, reject) => {
      this.socket.once(tls === undefined ? "connect" : "secureConnect", () => resolve());
      this.socket.once("close", () => reject(new Error("closed before connecting")));
    });
    this.ready.catch(() => {});
    this.closedAt = new Promise((resolve) =>
      this.socket.once("close", () => {
        this.closed = true;
        resolve(performance.now());
        this.wake();
      }),
    );
    this.socket.on("data", (chunk: Buffer) => {
      this.receivedBytes += chunk.byteLength;
      this.buffered = this.buffered.byteLength === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
  }

  /** Resolves once connected (and, with TLS, the handshake is done). */
  connected(): Promise<void> {
    return this.ready;
  }

  /** Writes `bytes`; resolves once they are handed to the OS (false if the connection is gone). */
  write(bytes: Uint8Array | string): Promise<boolean> {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes, (e) => resolve(e == null)));
  }

  /** Whether a complete response is waiting to be read. */
  get hasResponse(): boolean {
    return parseH1Response(this.buffered, this.closed) !== undefined;
  }

  /** The next complete response (an interim 1xx counts as one); rejects after `ms` or when the connection closes first. */
  async response(ms = 5000): Promise<H1Response> {
    const until = performance.now() + ms;
    for (;;) {
      const parsed = this.buffered.byteLength === 0 ? undefined : parseH1Response(this.buffered, this.closed);
      if (parsed !== undefined) {
        this.buffered = parsed.rest;
        return parsed.response;
      }
      if (this.closed) throw new Error(`the connection closed without a (complete) response; received ${JSON.stringify(this.buffered.toString("latin1").slice(0, 200))}`);
      const left = until - performance.now();
      if (left <= 0) throw new Error(`no complete response within ${ms} ms; received ${JSON.stringify(this.buffered.toString("latin1").slice(0, 200))}`);
      await this.next(left);
    }
  }

  /** Resolves with the time the connection closed, or undefined if still open after `ms`. */
  async closedWithin(ms: number): Promise<number | undefined> {
    const until = performance.now() + ms;
    while (!this.closed) {
      const left = until - performance.now();
      if (left <= 0) return undefined;
      await this.next(left);
    }
    return this.closedAt;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Waits for data or close, at most `ms`; the timer never outlives the wait. */
  private next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const w = (): void => {
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve();
      };
      const timer = setTimeout(w, ms);
      this.waiters.add(w);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** The frames of a gRPC-Web response body (decoded from base64 first when `text`): messages and the trailers frame. */
export function grpcWebBody(body: Buffer, text = false): { messages: Buffer[]; trailers: Record<string, string> | undefined; rest: number } {
  const bytes = text ? Buffer.from(body.toString("latin1"), "base64") : body;
  const messages: Buffer[] = [];
  let trailers: Record<string, string> | undefined;
  let at = 0;
  while (at + 5 <= bytes.byteLength) {
    const flags = bytes[at]!;
    const len = bytes.readUInt32BE(at + 1);
    if (at + 5 + len > bytes.byteLength) break;
    const payload = bytes.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if ((flags & 0x80) !== 0) {
      trailers = {};
      for (const line of payload.toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    } else messages.push(payload);
  }
  return { messages, trailers, rest: bytes.byteLength - at };
}

/** The envelopes of a Connect streaming response body: messages and the parsed end-of-stream JSON. */
export function connectStreamBody(body: Buffer): { messages: Buffer[]; end: { error?: { code: string; message?: string }; metadata?: Record<string, string[]> } | undefined } {
  const messages: Buffer[] = [];
  let end: { error?: { code: string; message?: string } } | undefined;
  let at = 0;
  while (at + 5 <= body.byteLength) {
    const flags = body[at]!;
    const len = body.readUInt32BE(at + 1);
    const payload = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if ((flags & 0x02) !== 0) end = JSON.parse(payload.toString("utf8")) as typeof end;
    else messages.push(payload);
  }
  return { messages, end };
}

/** A gRPC / gRPC-Web / Connect envelope: flags, 4-byte length, payload. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([head, payload]);
}
