/**
 * The baseline: gRPC over `node:http2` written by hand, the fastest plausible code for these
 * four methods. No library: the 5-byte message framing and the one-field `Payload` protobuf
 * encoding (tag 0x0a, varint length, bytes) are written by hand (../wire.ts), responses are
 * framed straight into one buffer per write (up to 16 KiB of small messages per `write()`), and
 * `write()`'s backpressure is respected. It checks what the wire requires and nothing else.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import * as http2 from "node:http2";
import type { Payload } from "../../gen/bench/v1/bench_pb.js";
import {
  IDLE,
  UNLIMITED,
  decodeCount,
  decodeStreamSpec,
  encodeCount,
  payloadOf,
  streamPayloads,
  type BenchClient,
  type ConnectClient,
  type FanoutSink,
  type PingPong,
  type Reading,
  type StartServer,
} from "../common.js";
import { Deframer, decodePayload, encodePayloadFrame, payloadFrameSize, writePayloadFrame } from "../wire.js";
import { MessageIterator, writeIterated } from "./iterated.js";

const SERVICE = "/bench.v1.BenchService/";
/** Small messages are framed into one buffer of up to this size per `write()`. */
const BATCH_BYTES = 16384;
/** nghttp2's per-session memory cap, in MB; the default 10 refuses streams long before 10,000. */
const MAX_SESSION_MEMORY_MB = 1024;

/** A Deframer callback that decodes each message's `bench.v1.Payload` data. */
function payloads(onPayload: (data: Uint8Array) => void): (buf: Buffer, start: number, end: number) => void {
  return (buf, start, end) => onPayload(decodePayload(buf, start, end));
}

const responseHeaders = { ":status": 200, "content-type": "application/grpc" };
const okTrailers = { "grpc-status": "0" };

function respond(stream: http2.ServerHttp2Stream): void {
  stream.respond(responseHeaders, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers(okTrailers));
}

/** Stream and connection windows both ends advertise; undefined keeps node's (64 KiB). Set by raw-tuned. */
let windows: { stream: number; connection: number } | undefined;

/** Makes this process's server and client advertise `w` (SETTINGS_INITIAL_WINDOW_SIZE and a connection WINDOW_UPDATE). */
export function useWindows(w: { stream: number; connection: number }): void {
  windows = w;
}

/** Whether streams go through async iterators and generators, as a library's API would (set by raw-iter). */
let iterated = false;

/** Makes this process's server and client hand stream messages through async iteration (raw-iter). */
export function useIteration(): void {
  iterated = true;
}

/**
 * Set by raw-ctx: each server stream is handled, and each client call made, inside
 * `AsyncLocalStorage.run` with a store of its own, as tracing makes a call's span current.
 */
let callContext: AsyncLocalStorage<{ path: string }> | undefined;

/** Makes this process's server and client run each call in an AsyncLocalStorage context of its own (raw-ctx). */
export function useCallContext(): void {
  callContext = new AsyncLocalStorage();
}

const windowSettings = (): { settings?: http2.Settings } => (windows === undefined ? {} : { settings: { initialWindowSize: windows.stream } });

export const startServer: StartServer = async (hooks) => {
  const server = http2.createServer({ maxSessionMemory: MAX_SESSION_MEMORY_MB, ...windowSettings() });
  if (windows !== undefined) server.on("session", (s) => s.setLocalWindowSize(windows!.connection));
  server.on("stream", (stream, headers) => {
    if (callContext === undefined) handleStream(stream, headers);
    else callContext.run({ path: headers[":path"] ?? "" }, handleStream, stream, headers);
  });
  const handleStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    stream.on("error", () => {});
    switch (headers[":path"]) {
      case SERVICE + "Unary": {
        let request: Uint8Array | undefined;
        const d = new Deframer(payloads((data) => (request = data)));
        stream.on("data", (c: Buffer) => d.push(c));
        stream.on("end", () => {
          if (stream.destroyed) return;
          respond(stream);
          stream.end(encodePayloadFrame(request ?? new Uint8Array(0)));
        });
        return;
      }
      case SERVICE + "ServerStream": {
        let spec: { count: number; size: number } | undefined;
        const d = new Deframer(payloads((data) => (spec = decodeStreamSpec(data))));
        stream.on("data", (c: Buffer) => d.push(c));
        stream.on("end", () => {
          if (stream.destroyed || spec === undefined) return;
          respond(stream);
          if (spec.count === IDLE) {
            const sink: FanoutSink = { send: (data) => void stream.write(encodePayloadFrame(data)) };
            hooks.sinks.add(sink);
            stream.on("close", () => hooks.sinks.delete(sink));
            return;
          }
          const { count, size } = spec;
          if (iterated) {
            void writeIterated(
              stream,
              (async function* () {
                for (const p of streamPayloads(count, size)) {
                  hooks.produced++;
                  yield p;
                }
              })(),
              BATCH_BYTES,
            );
            return;
          }
          const shared = count === UNLIMITED ? payloadOf(size).data : undefined;
          const payloads = streamPayloads(count, size);
          const fs = payloadFrameSize(size);
          const perWrite = Math.max(1, Math.floor(BATCH_BYTES / fs));
          let sent = 0;
          const pump = (): void => {
            while (sent < count) {
              if (stream.destroyed) return;
              const n = Math.min(count - sent, perWrite);
              const buf = Buffer.allocUnsafe(n * fs);
              for (let i = 0, off = 0; i < n; i++) off = writePayloadFrame(buf, off, shared ?? payloads.next().value!.data);
              sent += n;
              hooks.produced += n;
              if (!stream.write(buf)) {
                stream.once("drain", pump);
                return;
              }
            }
            stream.end();
          };
          pump();
        });
        return;
      }
      case SERVICE + "ClientStream": {
        if (iterated) {
          const requests = new MessageIterator(stream);
          const d = new Deframer(payloads((data) => requests.push(data)));
          stream.on("data", (c: Buffer) => d.push(c));
          stream.on("end", () => requests.end());
          void (async () => {
            let n = 0;
            for await (const _ of requests) n++;
            if (stream.destroyed) return;
            respond(stream);
            stream.end(encodePayloadFrame(encodeCount(n)));
          })();
          return;
        }
        let n = 0;
        const d = new Deframer(() => n++);
        stream.on("data", (c: Buffer) => d.push(c));
        stream.on("end", () => {
          if (stream.destroyed) return;
          respond(stream);
          stream.end(encodePayloadFrame(encodeCount(n)));
        });
        return;
      }
      case SERVICE + "Bidi": {
        respond(stream);
        const d = new Deframer(payloads((data) => stream.write(encodePayloadFrame(data))));
        stream.on("data", (c: Buffer) => d.push(c));
        stream.on("end", () => {
          if (!stream.destroyed) stream.end();
        });
        return;
      }
      default:
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    }
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => server.close() };
};

export const connectClient: ConnectClient = async (port) => {
  const session = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: MAX_SESSION_MEMORY_MB, ...windowSettings() });
  session.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
  });
  if (windows !== undefined) session.setLocalWindowSize(windows.connection);

  const request = (method: string): http2.ClientHttp2Stream => {
    const req = session.request({
      ":method": "POST",
      ":path": SERVICE + method,
      "content-type": "application/grpc",
      te: "trailers",
    });
    req.on("error", () => {});
    return req;
  };

  /** Resolves with the call's single response once its OK trailers arrived. */
  const one = (req: http2.ClientHttp2Stream): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      let msg: Uint8Array | undefined;
      const d = new Deframer(payloads((data) => (msg = data)));
      req.on("data", (c: Buffer) => d.push(c));
      const finish = (h: http2.IncomingHttpHeaders): void => {
        const status = h["grpc-status"];
        if (status === undefined) return;
        if (status === "0" && msg !== undefined) resolve(msg);
        else reject(new Error(`grpc-status ${String(status)}`));
      };
      req.on("response", finish);
      req.on("trailers", finish);
      req.on("close", () => reject(new Error("stream closed without status")));
    });

  const client: BenchClient = {
    unary(data) {
      const req = request("Unary");
      req.end(encodePayloadFrame(data));
      return one(req);
    },
    serverStream(spec, onMessage): Reading {
      const req = request("ServerStream");
      req.end(encodePayloadFrame(spec));
      if (iterated) {
        const responses = new MessageIterator(req);
        const d = new Deframer(payloads((data) => responses.push(data)));
        req.on("data", (c: Buffer) => d.push(c));
        req.on("close", () => responses.end());
        const done = (async () => {
          for await (const m of responses) onMessage(m.data);
        })();
        return { cancel: () => req.close(http2.constants.NGHTTP2_CANCEL), done };
      }
      const d = new Deframer(payloads(onMessage));
      req.on("data", (c: Buffer) => d.push(c));
      const done = new Promise<void>((resolve) => req.on("close", resolve));
      return { cancel: () => req.close(http2.constants.NGHTTP2_CANCEL), done };
    },
    stall(spec) {
      const req = request("ServerStream");
      req.end(encodePayloadFrame(spec));
      return new Promise((resolve) => {
        const d = new Deframer(() => {
          req.pause();
          resolve();
        });
        req.on("data", (c: Buffer) => d.push(c));
      });
    },
    async clientStream(payload: Payload, more) {
      const req = request("ClientStream");
      const result = one(req);
      if (iterated) {
        await writeIterated(
          req,
          (async function* () {
            while (more()) yield payload;
          })(),
          BATCH_BYTES,
        );
        return decodeCount(await result);
      }
      const data = payload.data;
      const fs = payloadFrameSize(data.byteLength);
      const perWrite = Math.max(1, Math.floor(16384 / fs));
      for (;;) {
        const buf = Buffer.allocUnsafe(perWrite * fs);
        let off = 0;
        let n = 0;
        while (n < perWrite && more()) {
          off = writePayloadFrame(buf, off, data);
          n++;
        }
        if (n > 0 && !req.write(off === buf.byteLength ? buf : buf.subarray(0, off))) {
          await new Promise((r) => req.once("drain", r));
        }
        if (n < perWrite) break;
      }
      req.end();
      return decodeCount(await result);
    },
    bidi(): PingPong {
      const req = request("Bidi");
      const waiters: Array<(data: Uint8Array) => void> = [];
      const d = new Deframer(payloads((data) => waiters.shift()?.(data)));
      req.on("data", (c: Buffer) => d.push(c));
      const closed = new Promise<void>((resolve) => req.on("close", resolve));
      return {
        roundTrip(data) {
          return new Promise((resolve) => {
            waiters.push(resolve);
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
  const store = callContext;
  if (store === undefined) return client;
  // raw-ctx: every call starts in a context of its own.
  return {
    ...client,
    unary: (data) => store.run({ path: "Unary" }, client.unary, data),
    serverStream: (spec, onMessage) => store.run({ path: "ServerStream" }, client.serverStream, spec, onMessage),
    stall: (spec) => store.run({ path: "ServerStream" }, client.stall, spec),
    clientStream: (payload, more) => store.run({ path: "ClientStream" }, client.clientStream, payload, more),
    bidi: () => store.run({ path: "Bidi" }, client.bidi),
  };
};
