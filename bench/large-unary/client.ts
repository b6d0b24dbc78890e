/**
 * The Node clients of bench/large-unary.ts: `client.js rill|grpc-js PORT upload|download SIZE CALLS WARMUP`,
 * the same contract as client.py (grpcio's own client): upload sends SIZE bytes and asks for 8
 * back, download sends 8 and asks for SIZE; the request message is built before the clock
 * starts; WARMUP calls, then CALLS timed ones one after another on one connection, every
 * response's size checked; prints {"type":"result","ms":[...]} on stdout.
 *
 * Neither client has a message size limit here (grpcio's server and client are told the same).
 * `BENCH_RILL_CHANNEL` (JSON) passes extra options to Rill's `createChannel`.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { PayloadSchema, SimpleRequestSchema, SimpleResponseSchema, type SimpleRequest, type SimpleResponse } from "../../gen/grpc/testing/messages_pb.js";
import { TestService } from "../../gen/grpc/testing/test_pb.js";
import { createChannel, createClient, type ChannelOptions } from "../../src/index.js";
import { envOptions, protobufSerializer } from "../common.js";

const SMALL = 8;

type Call = (req: SimpleRequest) => Promise<SimpleResponse>;

async function rillClient(port: number): Promise<{ call: Call; close: () => void }> {
  const channel = createChannel(`127.0.0.1:${port}`, {
    maxReceiveMessageBytes: Number.POSITIVE_INFINITY,
    ...envOptions<ChannelOptions>("BENCH_RILL_CHANNEL"),
  });
  const client = createClient(TestService, channel);
  return { call: (req) => client.unaryCall(req), close: () => channel.close() };
}

async function grpcJsClient(port: number): Promise<{ call: Call; close: () => void }> {
  const req = protobufSerializer(SimpleRequestSchema);
  const res = protobufSerializer(SimpleResponseSchema);
  const definition = {
    UnaryCall: {
      path: "/grpc.testing.TestService/UnaryCall",
      requestStream: false,
      responseStream: false,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: "UnaryCall",
    },
  } satisfies grpc.ServiceDefinition;
  const Ctor = grpc.makeGenericClientConstructor(definition, "TestService");
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
  }) as unknown as grpc.Client & {
    UnaryCall(r: SimpleRequest, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: SimpleResponse) => void): void;
  };
  await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  return {
    call: (r) => new Promise((resolve, reject) => c.UnaryCall(r, { deadline: Date.now() + 120_000 }, (err, out) => (err ? reject(err) : resolve(out!)))),
    close: () => c.close(),
  };
}

const [impl, portArg, direction, sizeArg, callsArg, warmupArg] = process.argv.slice(2);
const size = Number(sizeArg);
const up = direction === "upload";
if (impl !== "rill" && impl !== "grpc-js") throw new Error(`unknown client ${impl}`);
if (!up && direction !== "download") throw new Error(`direction must be upload or download, not ${direction}`);
const { call, close } = await (impl === "rill" ? rillClient : grpcJsClient)(Number(portArg));
const request = create(SimpleRequestSchema, {
  responseSize: up ? SMALL : size,
  payload: create(PayloadSchema, { body: new Uint8Array(up ? size : SMALL) }),
});
const want = up ? SMALL : size;
const ms: number[] = [];
const warmup = Number(warmupArg);
for (let i = 0; i < warmup + Number(callsArg); i++) {
  const t0 = performance.now();
  const response = await call(request);
  const dt = performance.now() - t0;
  const got = response.payload?.body.length ?? 0;
  if (got !== want) throw new Error(`response of ${got} bytes, expected ${want}`);
  if (i >= warmup) ms.push(dt);
}
close();
console.log(JSON.stringify({ type: "result", ms }));
