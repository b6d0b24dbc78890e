/**
 * What the benchmark's implementations share: the request encoding of `ServerStream`, the
 * payload messages, the fan-out registry of idle streams, and the two interfaces every
 * implementation fills in (one for its server process, one for its client process).
 *
 * Invariant: every implementation moves the same `bench.v1.Payload` bytes on the wire, so the
 * numbers differ only by the RPC stack.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { PayloadSchema, type Payload } from "../gen/bench/v1/bench_pb.js";

/** The names the implementations go by, in the order each round runs them. */
export const implNames = ["raw", "raw-iter", "raw-ctx", "rill", "rill-observed", "grpc-js", "grpc-js-observed", "connect", "raw-tuned"] as const;
/**
 * Implementations that run only in the scenarios whose `extraImpls` name them (issue 8's window
 * rows), or everywhere when asked: `--observed` adds rill-observed, grpc-js-observed and raw-ctx
 * (issue 17's overhead rows).
 */
export const optionalImpls: readonly ImplName[] = ["raw-tuned", "raw-iter", "rill-observed", "grpc-js-observed", "raw-ctx"];
export type ImplName = (typeof implNames)[number];

/** The windows raw-tuned advertises on both ends: 4 MiB per stream, 16 MiB per connection (issue 8). */
export const tunedWindows = { stream: 4 * 1024 * 1024, connection: 16 * 1024 * 1024 } as const;

/** `ServerStream` count meaning "until the client cancels". */
export const UNLIMITED = 0xffffffff;
/** `ServerStream` count meaning "idle until the server process fans a message out". */
export const IDLE = 0;

/** How many idle streams the fan-out's warm-up opens (client.ts, run.ts): a tenth of the measured ones. */
export const warmupStreams = (idleStreams: number): number => Math.ceil(idleStreams / 10);

/** Encodes a `ServerStream` request's data: big-endian uint32 count, big-endian uint32 size. */
export function encodeStreamSpec(count: number, size: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, count);
  v.setUint32(4, size);
  return b;
}

/** Decodes a `ServerStream` request's data; a malformed one reads as count 1, size 0. */
export function decodeStreamSpec(data: Uint8Array): { count: number; size: number } {
  if (data.byteLength !== 8) return { count: 1, size: 0 };
  const v = new DataView(data.buffer, data.byteOffset, 8);
  return { count: v.getUint32(0), size: v.getUint32(4) };
}

/** A big-endian uint32, the `ClientStream` response's data. */
export function encodeCount(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

export function decodeCount(data: Uint8Array): number {
  return data.byteLength === 4 ? new DataView(data.buffer, data.byteOffset, 4).getUint32(0) : -1;
}

const payloads = new Map<number, Payload>();
/** One shared, pre-created Payload per size: producers resend it rather than allocate. */
export function payloadOf(size: number): Payload {
  let p = payloads.get(size);
  if (p === undefined) {
    p = create(PayloadSchema, { data: new Uint8Array(size).fill(0x61) });
    payloads.set(size, p);
  }
  return p;
}

/**
 * The messages a ServerStream handler sends: for an unlimited stream the one shared Payload
 * (as fast as possible), for a finite one a fresh Payload per message, as a real producer
 * (file chunks, query rows) would make — so memory held for a slow reader shows up.
 */
export function* streamPayloads(count: number, size: number): Generator<Payload> {
  if (count === UNLIMITED) {
    const p = payloadOf(size);
    for (;;) yield p;
  }
  for (let i = 0; i < count; i++) yield create(PayloadSchema, { data: new Uint8Array(size).fill(0x62) });
}

/** Monotonic milliseconds that are comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Idle fan-out streams registered by the server handlers, whatever the implementation. */
export interface FanoutSink {
  /** Queues one message on the stream; must not wait. */
  send(data: Uint8Array): void;
}

/** What a server implementation gets from the server process. */
export interface ServerHooks {
  /** Streams opened with count IDLE; a handler adds its sink and deletes it when the call ends. */
  readonly sinks: Set<FanoutSink>;
  /** Bumped by the ServerStream handlers per message handed to the library (stalled-reader scenario). */
  produced: number;
}

/** A running benchmark server. */
export interface BenchServer {
  readonly port: number;
  close(): void;
}

/** How the server process asks for its server. */
export interface ServerVariant {
  /**
   * Serve HTTP/1.1 (the Connect rows over HTTP/1.1). Only connect-node needs a separate server
   * for it (`http.createServer`); Rill serves HTTP/1.1 and HTTP/2 on one port anyway, and the
   * others are not run over HTTP/1.1.
   */
  http1?: boolean;
}

export type StartServer = (hooks: ServerHooks, variant?: ServerVariant) => Promise<BenchServer>;

/** A bidi stream driven one message at a time. */
export interface PingPong {
  /** Sends `data` and resolves with the next response. */
  roundTrip(data: Uint8Array): Promise<Uint8Array>;
  /** Half-closes and waits for the end of the call. */
  close(): Promise<void>;
}

/**
 * Ping-pong over a bidi method that reads its requests from an iterable (Rill's and connect's
 * typed clients): `send` queues one request (a promise when it has to wait for room), `end`
 * half-closes, and `responses` is what the call returned.
 */
export function iterablePingPong(
  responses: AsyncIterable<{ data: Uint8Array }>,
  send: (request: { data: Uint8Array }) => Promise<void> | void,
  end: () => void,
): PingPong {
  const it = responses[Symbol.asyncIterator]();
  return {
    async roundTrip(data) {
      const waiting = send({ data });
      if (waiting !== undefined) await waiting;
      const r = await it.next();
      if (r.done === true) throw new Error("bidi ended early");
      return r.value.data;
    },
    async close() {
      end();
      while ((await it.next()).done !== true);
    },
  };
}

/** A server stream being read. */
export interface Reading {
  /** Cancels the call (RST_STREAM CANCEL); resolves once the library let go. */
  cancel(): void;
  /** Settles when the call ended (normally, by cancel, or with an error). */
  readonly done: Promise<void>;
}

/** A client that makes unary calls only (the Connect rows' client). */
export interface UnaryClient {
  unary(data: Uint8Array): Promise<Uint8Array>;
}

/** What a client implementation offers the client process; one connection per client. */
export interface BenchClient extends UnaryClient {
  /** Calls ServerStream and hands every response's data to `onMessage` until the call ends or `cancel()`. */
  serverStream(spec: Uint8Array, onMessage: (data: Uint8Array) => void): Reading;
  /** Calls ServerStream, waits for the first response, then never reads again (the call stays open). */
  stall(spec: Uint8Array): Promise<void>;
  /** Calls ClientStream, sending `payload` while `more()` is true; resolves with the server's count. */
  clientStream(payload: Payload, more: () => boolean): Promise<number>;
  bidi(): PingPong;
  close(): void;
}

export type ConnectClient = (port: number) => Promise<BenchClient>;

/** A minimal single-reader async queue (no dependency on Rill for the peers' code). */
export class Queue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;

  push(value: T): void {
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value, done: false });
    } else this.items.push(value);
  }

  end(): void {
    this.ended = true;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: (): Promise<IteratorResult<T>> => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: (): Promise<IteratorResult<T>> => {
        this.ended = true;
        this.items.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Extra Rill options from the environment, for tuning experiments: BENCH_RILL_SERVER / BENCH_RILL_CHANNEL (JSON). */
export function envOptions<T>(name: "BENCH_RILL_SERVER" | "BENCH_RILL_CHANNEL"): T {
  const v = process.env[name];
  return (v === undefined || v === "" ? {} : JSON.parse(v)) as T;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** protobuf-es serializers for grpc-js method definitions (the same protobuf code Rill and connect run). */
export function protobufSerializer<D extends DescMessage>(schema: D) {
  return {
    serialize: (m: MessageShape<D>): Buffer => {
      const u = toBinary(schema, m);
      return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    },
    deserialize: (b: Buffer): MessageShape<D> => fromBinary(schema, b),
  };
}
