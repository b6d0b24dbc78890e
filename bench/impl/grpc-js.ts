/**
 * @grpc/grpc-js with a hand-rolled service definition whose serializers are protobuf-es's
 * `toBinary`/`fromBinary` over the generated `PayloadSchema` (wrapped in a Buffer without a
 * copy) — the same protobuf code Rill and connect-node run, so only the RPC stacks differ
 * (proto-loader would swap in protobufjs). Handlers use grpc-js's usual event/callback style;
 * an unlimited server stream respects `write()`'s backpressure ('drain'), a finite one calls
 * `write()` in a loop the usual way (the stalled-reader scenario measures what that costs).
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { PayloadSchema, type Payload } from "../../gen/bench/v1/bench_pb.js";
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
  protobufSerializer,
} from "../common.js";

const { serialize, deserialize } = protobufSerializer(PayloadSchema);

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Payload, Payload> {
  return {
    path: `/bench.v1.BenchService/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
    originalName: name,
  };
}

const definition = {
  Unary: method("Unary", false, false),
  ServerStream: method("ServerStream", false, true),
  ClientStream: method("ClientStream", true, false),
  Bidi: method("Bidi", true, true),
};

const payload = (data: Uint8Array): Payload => create(PayloadSchema, { data });

export const startServer: StartServer = async (hooks) => {
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {
    Unary(call: grpc.ServerUnaryCall<Payload, Payload>, callback: grpc.sendUnaryData<Payload>) {
      callback(null, payload(call.request.data));
    },
    ServerStream(call: grpc.ServerWritableStream<Payload, Payload>) {
      const { count, size } = decodeStreamSpec(call.request.data);
      call.on("error", () => {});
      if (count === IDLE) {
        const sink: FanoutSink = { send: (data) => void call.write(payload(data)) };
        hooks.sinks.add(sink);
        call.sendMetadata(new grpc.Metadata());
        call.on("cancelled", () => hooks.sinks.delete(sink));
        return;
      }
      if (count !== UNLIMITED) {
        for (const p of streamPayloads(count, size)) {
          hooks.produced++;
          call.write(p);
        }
        call.end();
        return;
      }
      const p = payloadOf(size);
      let cancelled = false;
      call.on("cancelled", () => (cancelled = true));
      const pump = (): void => {
        while (!cancelled) {
          hooks.produced++;
          if (!call.write(p)) {
            call.once("drain", pump);
            return;
          }
        }
      };
      pump();
    },
    ClientStream(call: grpc.ServerReadableStream<Payload, Payload>, callback: grpc.sendUnaryData<Payload>) {
      let n = 0;
      call.on("data", () => n++);
      call.on("end", () => callback(null, payload(encodeCount(n))));
      call.on("error", () => {});
    },
    Bidi(call: grpc.ServerDuplexStream<Payload, Payload>) {
      call.on("data", (m: Payload) => call.write(payload(m.data)));
      call.on("end", () => call.end());
      call.on("error", () => {});
    },
  };
  server.addService(definition, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => server.forceShutdown() };
};

type AnyCall = grpc.ClientReadableStream<Payload> & grpc.ClientWritableStream<Payload>;
interface GenericClient extends grpc.Client {
  Unary(req: Payload, cb: (err: grpc.ServiceError | null, res?: Payload) => void): grpc.ClientUnaryCall;
  ServerStream(req: Payload): grpc.ClientReadableStream<Payload>;
  ClientStream(cb: (err: grpc.ServiceError | null, res?: Payload) => void): grpc.ClientWritableStream<Payload>;
  Bidi(): grpc.ClientDuplexStream<Payload, Payload>;
}

export const connectClient: ConnectClient = async (port) => {
  const Ctor = grpc.makeGenericClientConstructor(definition, "BenchService");
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as GenericClient;
  await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  const statusOf = (call: grpc.ClientReadableStream<Payload> | grpc.ClientWritableStream<Payload>): Promise<void> =>
    new Promise((resolve) => (call as AnyCall).on("status", () => resolve()));
  const stalled: unknown[] = [];
  const client: BenchClient = {
    unary(data) {
      return new Promise((resolve, reject) => c.Unary(payload(data), (err, res) => (err ? reject(err) : resolve(res!.data))));
    },
    serverStream(spec, onMessage): Reading {
      const call = c.ServerStream(payload(spec));
      call.on("data", (m: Payload) => onMessage(m.data));
      call.on("error", () => {});
      return { cancel: () => call.cancel(), done: statusOf(call) };
    },
    stall(spec) {
      const call = c.ServerStream(payload(spec));
      stalled.push(call);
      call.on("error", () => {});
      return new Promise((resolve) =>
        call.once("data", () => {
          call.pause();
          resolve();
        }),
      );
    },
    async clientStream(p, more) {
      let call!: grpc.ClientWritableStream<Payload>;
      const result = new Promise<Payload>((resolve, reject) => {
        call = c.ClientStream((err, res) => (err ? reject(err) : resolve(res!)));
      });
      while (more()) {
        if (!call.write(p)) await new Promise((r) => call.once("drain", r));
      }
      call.end();
      return decodeCount((await result).data);
    },
    bidi(): PingPong {
      const call = c.Bidi();
      const waiters: Array<(data: Uint8Array) => void> = [];
      call.on("data", (m: Payload) => waiters.shift()?.(m.data));
      call.on("error", () => {});
      const done = statusOf(call as unknown as grpc.ClientReadableStream<Payload>);
      return {
        roundTrip(data) {
          return new Promise((resolve) => {
            waiters.push(resolve);
            call.write(payload(data));
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
  return client;
};
