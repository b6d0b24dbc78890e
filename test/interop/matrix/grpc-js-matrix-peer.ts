/**
 * The @grpc/grpc-js program of the interop matrix (./matrix.test.ts): `grpc.testing.TestService`
 * served by grpc-js, and the interop client cases run by a grpc-js client. (The Echo/RouteGuide
 * scenario suite has its own grpc-js server, test/interop/scenario/grpc-js-scenario-server.ts.) The protos are loaded from
 * proto/grpc/testing/test.proto with @grpc/proto-loader (keepCase: the spec's field names).
 *
 *   node grpc-js-matrix-peer.js server --port=N [--use_tls=false] [--max_concurrent_streams=N]
 *   node grpc-js-matrix-peer.js client --server_host=H --server_port=N --test_case=NAME|all [--use_tls=false]
 *
 * The server prints "listening on 127.0.0.1:PORT" once bound; the client exits 0 when every
 * case passed and 1 (printing what differed) otherwise.
 *
 * What grpc-js cannot do, and what this peer does instead:
 * - A grpc-js handler cannot see whether a request message arrived compressed. The
 *   `compressionTap` interceptor reads the flag byte of each message in grpc-js's
 *   BaseServerInterceptingCall (a private method, `decompressAndMaybePush`), so that
 *   CompressedRequest is checked per message like the spec wants. It fails loudly if grpc-js
 *   internals change.
 * - grpc-js servers never compress responses (1.14: "response compression is currently not
 *   supported"), so `response_compressed` / `compressed` are accepted and ignored.
 * - A grpc-js client cannot see a response's compressed flag: server_compressed_* assert sizes.
 * - cacheable_unary is sent as a plain POST (no caching proxy): both calls must succeed.
 */
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** The repository root; this file compiles to dist/test/interop/matrix/. */
const repoRoot = new URL("../../../../", import.meta.url);

const echoInitialKey = "x-grpc-test-echo-initial";
const echoTrailingKey = "x-grpc-test-echo-trailing-bin";
const specialMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

// ---------------------------------------------------------------- protos

interface BoolValue {
  value: boolean;
}
interface Payload {
  type?: string;
  body: Buffer;
}
interface EchoStatus {
  code: number;
  message: string;
}
interface ResponseParameters {
  size: number;
  interval_us: number;
  compressed: BoolValue | null;
}
interface SimpleRequest {
  response_type: string;
  response_size: number;
  payload: Payload | null;
  response_compressed: BoolValue | null;
  response_status: EchoStatus | null;
  expect_compressed: BoolValue | null;
}
interface StreamingOutputCallRequest {
  response_parameters: ResponseParameters[];
  payload: Payload | null;
  response_status: EchoStatus | null;
}
interface StreamingInputCallRequest {
  payload: Payload | null;
  expect_compressed: BoolValue | null;
}

type Ctor = grpc.ServiceClientConstructor;

function loadServices(): { TestService: Ctor; UnimplementedService: Ctor } {
  const definition = protoLoader.loadSync("grpc/testing/test.proto", {
    includeDirs: [fileURLToPath(new URL("proto", repoRoot))],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const testing = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { testing: Record<string, Ctor> } }).grpc.testing;
  return { TestService: testing.TestService!, UnimplementedService: testing.UnimplementedService! };
}

// ---------------------------------------------------------------- server

/** Whether each request message object arrived compressed, filled by `compressionTap`. */
const arrivedCompressed = new WeakMap<object, boolean>();

/** Records the compressed flag of every request message (see the module comment). */
const compressionTap: grpc.ServerInterceptor = (_method, call) => {
  type Entry = { type: string; compressedMessage: Buffer | null };
  const base = call as unknown as { decompressAndMaybePush?: (entry: Entry) => Promise<void> };
  const original = base.decompressAndMaybePush;
  if (typeof original !== "function") {
    throw new Error("grpc-js-matrix-peer: grpc-js internals changed (no decompressAndMaybePush); update compressionTap");
  }
  const flags: boolean[] = [];
  base.decompressAndMaybePush = function (this: unknown, entry: Entry) {
    if (entry.compressedMessage !== null) flags.push(entry.compressedMessage.readUInt8(0) === 1);
    return original.call(this, entry);
  };
  return new grpc.ServerInterceptingCall(call, {
    start(next) {
      next(
        new grpc.ServerListenerBuilder()
          .withOnReceiveMessage((message: unknown, nextMessage: (m: unknown) => void) => {
            const flag = flags.shift();
            if (typeof message === "object" && message !== null && flag !== undefined) arrivedCompressed.set(message, flag);
            nextMessage(message);
          })
          .build(),
      );
    },
  });
};

type AnyCall = { metadata: grpc.Metadata; sendMetadata(md: grpc.Metadata): void };

/** Echo Metadata: returns the trailers to send; sends the echoed initial metadata now. */
function echoMetadata(call: AnyCall): grpc.Metadata {
  const initial = new grpc.Metadata();
  for (const v of call.metadata.get(echoInitialKey)) initial.add(echoInitialKey, v);
  call.sendMetadata(initial);
  const trailer = new grpc.Metadata();
  for (const v of call.metadata.get(echoTrailingKey)) trailer.add(echoTrailingKey, v);
  return trailer;
}

function statusError(status: EchoStatus, trailer: grpc.Metadata): Partial<grpc.StatusObject> {
  return { code: status.code, details: status.message, metadata: trailer };
}

function expectCompressedError(expect: BoolValue | null, message: object, trailer: grpc.Metadata): Partial<grpc.StatusObject> | undefined {
  if (expect === null) return undefined;
  const compressed = arrivedCompressed.get(message);
  if (compressed === undefined) throw new Error("grpc-js-matrix-peer: compressionTap saw no flag for this message");
  if (expect.value === compressed) return undefined;
  const details = expect.value ? "expected a compressed request message" : "expected an uncompressed request message";
  return { code: grpc.status.INVALID_ARGUMENT, details, metadata: trailer };
}

const zeros = (n: number): Payload => ({ type: "COMPRESSABLE", body: Buffer.alloc(n) });

/**
 * The requests of a bidi call. `destroyOnReturn: false`: node's default async iterator
 * destroys the stream when the loop ends, which would kill the response side too.
 */
function requestsOf(call: grpc.ServerDuplexStream<StreamingOutputCallRequest, unknown>): AsyncIterable<StreamingOutputCallRequest> {
  return call.iterator({ destroyOnReturn: false }) as AsyncIterable<StreamingOutputCallRequest>;
}

/** The writable side shared by server-streaming and bidi calls. */
type ResponseStream = NodeJS.EventEmitter & { write(message: unknown): boolean; readonly cancelled: boolean };

async function respond(call: ResponseStream, params: ResponseParameters[]): Promise<void> {
  for (const p of params) {
    if (p.interval_us > 0) await sleep(p.interval_us / 1000);
    if (call.cancelled) return;
    if (!call.write({ payload: zeros(p.size) })) await once(call, "drain");
  }
}

function fail(call: ResponseStream, err: Partial<grpc.StatusObject>): void {
  call.emit("error", err);
}

const serverImpl: grpc.UntypedServiceImplementation = {
  EmptyCall(call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const trailer = echoMetadata(call);
    cb(null, {}, trailer);
  },
  UnaryCall(call: grpc.ServerUnaryCall<SimpleRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const req = call.request;
    const trailer = echoMetadata(call);
    const bad = expectCompressedError(req.expect_compressed, req, trailer);
    if (bad !== undefined) return cb(bad);
    if (req.response_status !== null && req.response_status.code !== 0) return cb(statusError(req.response_status, trailer));
    cb(null, { payload: zeros(req.response_size) }, trailer);
  },
  CacheableUnaryCall(call: grpc.ServerUnaryCall<SimpleRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const trailer = echoMetadata(call);
    cb(null, { payload: { body: Buffer.from(String(process.hrtime.bigint())) } }, trailer);
  },
  StreamingOutputCall(call: grpc.ServerWritableStream<StreamingOutputCallRequest, unknown>) {
    const trailer = echoMetadata(call);
    const req = call.request;
    if (req.response_status !== null && req.response_status.code !== 0) return fail(call, statusError(req.response_status, trailer));
    respond(call, req.response_parameters).then(
      () => call.end(trailer),
      (e: Error) => fail(call, { code: grpc.status.INTERNAL, details: e.message }),
    );
  },
  StreamingInputCall(call: grpc.ServerReadableStream<StreamingInputCallRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const trailer = echoMetadata(call);
    let total = 0;
    let done = false;
    call.on("data", (req: StreamingInputCallRequest) => {
      if (done) return;
      const bad = expectCompressedError(req.expect_compressed, req, trailer);
      if (bad !== undefined) {
        done = true;
        cb(bad);
        return;
      }
      total += req.payload?.body.length ?? 0;
    });
    call.on("end", () => {
      if (!done) cb(null, { aggregated_payload_size: total }, trailer);
    });
  },
  FullDuplexCall(call: grpc.ServerDuplexStream<StreamingOutputCallRequest, unknown>) {
    const trailer = echoMetadata(call);
    void (async () => {
      try {
        for await (const req of requestsOf(call)) {
          if (req.response_status !== null && req.response_status.code !== 0) return fail(call, statusError(req.response_status, trailer));
          await respond(call, req.response_parameters);
        }
        if (!call.cancelled) call.end(trailer);
      } catch (e) {
        if (!call.cancelled) fail(call, { code: grpc.status.INTERNAL, details: (e as Error).message });
      }
    })();
  },
  HalfDuplexCall(call: grpc.ServerDuplexStream<StreamingOutputCallRequest, unknown>) {
    const trailer = echoMetadata(call);
    void (async () => {
      const all: StreamingOutputCallRequest[] = [];
      for await (const req of requestsOf(call)) all.push(req);
      for (const req of all) {
        if (req.response_status !== null && req.response_status.code !== 0) return fail(call, statusError(req.response_status, trailer));
        await respond(call, req.response_parameters);
      }
      if (!call.cancelled) call.end(trailer);
    })();
  },
  // UnimplementedCall is left out: grpc-js answers UNIMPLEMENTED.
};

async function runServer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: "string" }, use_tls: { type: "string" }, max_concurrent_streams: { type: "string" }, cert_file: { type: "string" }, key_file: { type: "string" } },
  });
  if (values.port === undefined) throw new Error("--port is required");
  let credentials = grpc.ServerCredentials.createInsecure();
  if (values.use_tls === "true") {
    if (values.cert_file === undefined || values.key_file === undefined) throw new Error("--use_tls=true needs --cert_file=PATH and --key_file=PATH");
    credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(values.cert_file), private_key: readFileSync(values.key_file) }]);
  }
  const options: grpc.ServerOptions = { interceptors: [compressionTap] };
  if (values.max_concurrent_streams !== undefined) options["grpc.max_concurrent_streams"] = Number(values.max_concurrent_streams);
  const server = new grpc.Server(options);
  server.addService(loadServices().TestService.service, serverImpl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${values.port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.stdout.write(`listening on 127.0.0.1:${port}\n`);
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

// ---------------------------------------------------------------- client

interface Stubs {
  test: grpc.Client & Record<string, Function>;
  gzip: grpc.Client & Record<string, Function>;
  unimplemented: grpc.Client & Record<string, Function>;
}

class CaseFailure extends Error {}

function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new CaseFailure(msg);
}

function checkPayload(payload: Payload | null | undefined, size: number, what: string): void {
  check(payload !== null && payload !== undefined, `${what}: the response has no payload`);
  check(payload.body.length === size, `${what}: payload body is ${payload.body.length} bytes, want ${size}`);
  check(payload.body.every((b) => b === 0), `${what}: payload body is not all zeros`);
}

const bodyOf = (n: number) => ({ body: Buffer.alloc(n) });
const large = (extra: object = {}) => ({ response_size: 314159, payload: bodyOf(271828), ...extra });

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: any) => void) => grpc.ClientUnaryCall;

function unary(client: Stubs["test"], method: string, req: object, md = new grpc.Metadata(), opts: grpc.CallOptions = {}) {
  return new Promise<any>((resolve, reject) => {
    const call = (client[method] as Unary).call(client, req, md, opts, (e, r) => (e ? reject(e) : resolve(r)));
    void call;
  });
}

async function failure(p: Promise<unknown>, what: string): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    if (typeof (e as grpc.ServiceError).code === "number") return e as grpc.ServiceError;
    throw e;
  }
  throw new CaseFailure(`${what}: succeeded, but it had to fail`);
}

function checkCode(err: grpc.ServiceError, code: grpc.status, what: string): void {
  check(err.code === code, `${what}: status ${grpc.status[err.code]} (${JSON.stringify(err.details)}), want ${grpc.status[code]}`);
}

/** Ends with the stream's responses, or rejects with its error. */
function readAll(call: grpc.ClientReadableStream<any> | grpc.ClientDuplexStream<any, any>): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const out: any[] = [];
    call.on("data", (r) => out.push(r));
    call.on("error", reject);
    call.on("end", () => resolve(out));
  });
}

/** Reads the next response of a stream (undefined at its end), or rejects with its error. */
function nextResponse(call: grpc.ClientDuplexStream<any, any>): Promise<any> {
  return new Promise((resolve, reject) => {
    const onData = (r: unknown) => (cleanup(), resolve(r));
    const onEnd = () => (cleanup(), resolve(undefined));
    const onError = (e: unknown) => (cleanup(), reject(e));
    const cleanup = () => {
      call.off("data", onData);
      call.off("end", onEnd);
      call.off("error", onError);
      call.pause();
    };
    call.on("data", onData);
    call.on("end", onEnd);
    call.on("error", onError);
    call.resume();
  });
}

function clientStreaming(client: Stubs["test"], write: (call: grpc.ClientWritableStream<any>) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const call = (client.StreamingInputCall as Function).call(client, (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)));
    write(call);
  });
}

const NO_COMPRESS = 2; // grpc-js WriteFlags.NoCompress, passed where node streams take an encoding

const cases: Record<string, (s: Stubs) => Promise<void>> = {
  async empty_unary({ test }) {
    const res = await unary(test, "EmptyCall", {});
    check(res !== undefined && res !== null, "empty_unary: no response");
  },
  async cacheable_unary({ test }) {
    const req = { payload: { body: Buffer.from(String(process.hrtime.bigint())) } };
    const md = new grpc.Metadata();
    md.set("x-user-ip", "1.2.3.4");
    const a = await unary(test, "CacheableUnaryCall", req, md);
    const b = await unary(test, "CacheableUnaryCall", req, md);
    check(a.payload !== null && b.payload !== null, "cacheable_unary: a response without payload");
  },
  async large_unary({ test }) {
    checkPayload((await unary(test, "UnaryCall", large())).payload, 314159, "large_unary");
  },
  async client_compressed_unary({ test, gzip }) {
    const probe = await failure(
      unary(test, "UnaryCall", large({ expect_compressed: { value: true } })),
      "client_compressed_unary probe (uncompressed request with expect_compressed=true)",
    );
    checkCode(probe, grpc.status.INVALID_ARGUMENT, "client_compressed_unary probe");
    const res = await unary(gzip, "UnaryCall", large({ expect_compressed: { value: true } }));
    checkPayload(res.payload, 314159, "client_compressed_unary (compressed request)");
    const plain = await unary(test, "UnaryCall", large({ expect_compressed: { value: false } }));
    checkPayload(plain.payload, 314159, "client_compressed_unary (uncompressed request)");
  },
  async server_compressed_unary({ test }) {
    for (const value of [true, false]) {
      const res = await unary(test, "UnaryCall", large({ response_compressed: { value } }));
      checkPayload(res.payload, 314159, `server_compressed_unary (response_compressed=${value})`);
    }
  },
  async client_streaming({ test }) {
    const res = await clientStreaming(test, (call) => {
      for (const n of [27182, 8, 1828, 45904]) call.write({ payload: bodyOf(n) });
      call.end();
    });
    check(res.aggregated_payload_size === 74922, `client_streaming: aggregated_payload_size ${res.aggregated_payload_size}, want 74922`);
  },
  async client_compressed_streaming({ test, gzip }) {
    const probe = await failure(
      clientStreaming(test, (call) => {
        call.write({ expect_compressed: { value: true }, payload: bodyOf(27182) });
        call.end();
      }),
      "client_compressed_streaming probe (uncompressed message with expect_compressed=true)",
    );
    checkCode(probe, grpc.status.INVALID_ARGUMENT, "client_compressed_streaming probe");
    const res = await clientStreaming(gzip, (call) => {
      call.write({ expect_compressed: { value: true }, payload: bodyOf(27182) });
      call.write({ expect_compressed: { value: false }, payload: bodyOf(45904) }, NO_COMPRESS);
      call.end();
    });
    check(res.aggregated_payload_size === 73086, `client_compressed_streaming: aggregated_payload_size ${res.aggregated_payload_size}, want 73086`);
  },
  async server_streaming({ test }) {
    const sizes = [31415, 9, 2653, 58979];
    const responses = await readAll((test.StreamingOutputCall as Function).call(test, { response_parameters: sizes.map((size) => ({ size })) }));
    check(responses.length === 4, `server_streaming: ${responses.length} responses, want 4`);
    responses.forEach((r, i) => checkPayload(r.payload, sizes[i]!, `server_streaming response ${i + 1}`));
  },
  async server_compressed_streaming({ test }) {
    const req = {
      response_parameters: [
        { compressed: { value: true }, size: 31415 },
        { compressed: { value: false }, size: 92653 },
      ],
    };
    const responses = await readAll((test.StreamingOutputCall as Function).call(test, req));
    check(responses.length === 2, `server_compressed_streaming: ${responses.length} responses, want 2`);
    checkPayload(responses[0].payload, 31415, "server_compressed_streaming response 1");
    checkPayload(responses[1].payload, 92653, "server_compressed_streaming response 2");
  },
  async ping_pong({ test }) {
    const steps: Array<[number, number]> = [
      [31415, 27182],
      [9, 8],
      [2653, 1828],
      [58979, 45904],
    ];
    const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test);
    call.pause();
    for (const [i, [size, body]] of steps.entries()) {
      call.write({ response_parameters: [{ size }], payload: bodyOf(body) });
      const r = await nextResponse(call);
      check(r !== undefined, `ping_pong: the stream ended after ${i} responses, want 4`);
      checkPayload(r.payload, size, `ping_pong response ${i + 1}`);
    }
    call.end();
    check((await nextResponse(call)) === undefined, "ping_pong: more than 4 responses");
  },
  async empty_stream({ test }) {
    const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test);
    call.end();
    const responses = await readAll(call);
    check(responses.length === 0, `empty_stream: ${responses.length} responses, want 0`);
  },
  async custom_metadata({ test }) {
    const trailing = Buffer.from([0xab, 0xab, 0xab]);
    const md = new grpc.Metadata();
    md.set(echoInitialKey, "test_initial_metadata_value");
    md.set(echoTrailingKey, trailing);
    const checkMd = (what: string, initial: grpc.Metadata | undefined, trailer: grpc.Metadata | undefined) => {
      check(initial?.get(echoInitialKey)[0] === "test_initial_metadata_value", `${what}: ${echoInitialKey} missing from the response headers`);
      const got = trailer?.get(echoTrailingKey)[0];
      check(Buffer.isBuffer(got) && got.equals(trailing), `${what}: ${echoTrailingKey} missing from the trailers or wrong`);
    };
    {
      let initial: grpc.Metadata | undefined;
      let trailer: grpc.Metadata | undefined;
      const res = await new Promise<any>((resolve, reject) => {
        const call = (test.UnaryCall as Unary).call(test, large(), md, {}, (e, r) => (e ? reject(e) : resolve(r)));
        call.on("metadata", (m) => (initial = m));
        call.on("status", (s) => (trailer = s.metadata));
      });
      await sleep(0); // the status event follows the callback
      checkPayload(res.payload, 314159, "custom_metadata (UnaryCall)");
      checkMd("custom_metadata (UnaryCall)", initial, trailer);
    }
    {
      let initial: grpc.Metadata | undefined;
      let trailer: grpc.Metadata | undefined;
      const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test, md);
      call.on("metadata", (m) => (initial = m));
      const status = new Promise<void>((resolve) => call.on("status", (s) => ((trailer = s.metadata), resolve())));
      call.write({ response_parameters: [{ size: 314159 }], payload: bodyOf(271828) });
      call.end();
      const responses = await readAll(call);
      await status;
      check(responses.length === 1, `custom_metadata (FullDuplexCall): ${responses.length} responses, want 1`);
      checkPayload(responses[0].payload, 314159, "custom_metadata (FullDuplexCall)");
      checkMd("custom_metadata (FullDuplexCall)", initial, trailer);
    }
  },
  async status_code_and_message({ test }) {
    const response_status = { code: 2, message: "test status message" };
    const checkStatus = (err: grpc.ServiceError, what: string) => {
      checkCode(err, grpc.status.UNKNOWN, what);
      check(err.details === response_status.message, `${what}: status message ${JSON.stringify(err.details)}, want "test status message"`);
    };
    checkStatus(await failure(unary(test, "UnaryCall", { response_status }), "status_code_and_message (UnaryCall)"), "status_code_and_message (UnaryCall)");
    const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test);
    call.write({ response_status });
    call.end();
    checkStatus(await failure(readAll(call), "status_code_and_message (FullDuplexCall)"), "status_code_and_message (FullDuplexCall)");
  },
  async special_status_message({ test }) {
    const err = await failure(unary(test, "UnaryCall", { response_status: { code: 2, message: specialMessage } }), "special_status_message");
    checkCode(err, grpc.status.UNKNOWN, "special_status_message");
    check(err.details === specialMessage, `special_status_message: status message ${JSON.stringify(err.details)}, want ${JSON.stringify(specialMessage)}`);
  },
  async unimplemented_method({ test }) {
    checkCode(await failure(unary(test, "UnimplementedCall", {}), "unimplemented_method"), grpc.status.UNIMPLEMENTED, "unimplemented_method");
  },
  async unimplemented_service({ unimplemented }) {
    checkCode(await failure(unary(unimplemented, "UnimplementedCall", {}), "unimplemented_service"), grpc.status.UNIMPLEMENTED, "unimplemented_service");
  },
  async cancel_after_begin({ test }) {
    let call!: grpc.ClientWritableStream<any>;
    const result = clientStreaming(test, (c) => (call = c));
    await sleep(10); // let the headers go out; no message is ever sent
    call.cancel();
    checkCode(await failure(result, "cancel_after_begin"), grpc.status.CANCELLED, "cancel_after_begin");
  },
  async cancel_after_first_response({ test }) {
    const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test);
    call.pause();
    call.write({ response_parameters: [{ size: 31415 }], payload: bodyOf(27182) });
    const first = await nextResponse(call);
    check(first !== undefined, "cancel_after_first_response: the stream ended without a response");
    checkPayload(first.payload, 31415, "cancel_after_first_response");
    const err = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.cancel();
    checkCode(await err, grpc.status.CANCELLED, "cancel_after_first_response");
  },
  async timeout_on_sleeping_server({ test }) {
    const call: grpc.ClientDuplexStream<any, any> = (test.FullDuplexCall as Function).call(test, new grpc.Metadata(), {
      deadline: Date.now() + 1,
    });
    call.write({ payload: bodyOf(27182) });
    const err = await failure(readAll(call), "timeout_on_sleeping_server");
    checkCode(err, grpc.status.DEADLINE_EXCEEDED, "timeout_on_sleeping_server");
  },
  async max_streams({ test }) {
    checkPayload((await unary(test, "UnaryCall", large())).payload, 314159, "max_streams (initial call)");
    const all = await Promise.all(Array.from({ length: 10 }, () => unary(test, "UnaryCall", large())));
    all.forEach((r, i) => checkPayload(r.payload, 314159, `max_streams (concurrent call ${i + 1})`));
  },
};

async function runClient(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      server_host: { type: "string" },
      server_port: { type: "string" },
      server_host_override: { type: "string" },
      test_case: { type: "string" },
      use_tls: { type: "string" },
      use_test_ca: { type: "string" },
      ca_file: { type: "string" },
    },
  });
  let credentials = () => grpc.credentials.createInsecure();
  if (values.use_tls === "true") {
    let ca: Buffer | null = null;
    if (values.use_test_ca === "true") {
      if (values.ca_file === undefined) throw new Error("--use_test_ca=true needs --ca_file=PATH (the test CA)");
      ca = readFileSync(values.ca_file);
    }
    credentials = () => grpc.credentials.createSsl(ca);
  }
  if (values.server_port === undefined || values.test_case === undefined) throw new Error("--server_port and --test_case are required");
  const names = values.test_case === "all" ? Object.keys(cases) : [values.test_case];
  for (const n of names) if (!(n in cases)) throw new Error(`unknown --test_case "${n}"`);
  const target = `${values.server_host ?? "localhost"}:${values.server_port}`;
  const { TestService, UnimplementedService } = loadServices();
  const override = values.server_host_override;
  const options: grpc.ChannelOptions =
    override === undefined ? {} : { "grpc.default_authority": override, ...(values.use_tls === "true" ? { "grpc.ssl_target_name_override": override } : {}) };
  let failed = 0;
  for (const name of names) {
    const channelCredentials = credentials();
    const stubs: Stubs = {
      test: new TestService(target, channelCredentials, options) as Stubs["test"],
      // A second channel whose requests are gzip-compressed (grpc-js sets compression per channel).
      gzip: new TestService(target, channelCredentials, { ...options, "grpc.default_compression_algorithm": 2 }) as Stubs["test"],
      unimplemented: new UnimplementedService(target, channelCredentials, options) as Stubs["test"],
    };
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        cases[name]!(stubs),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("no result after 30 s")), 30_000))),
      ]);
      process.stdout.write(`PASS ${name} (${Date.now() - started} ms)\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    } finally {
      clearTimeout(timer);
      for (const s of Object.values(stubs)) s.close();
    }
  }
  return failed === 0 ? 0 : 1;
}

// ---------------------------------------------------------------- main

const [mode, ...rest] = process.argv.slice(2);
if (mode === "server") {
  runServer(rest).catch((e: unknown) => {
    process.stderr.write(`grpc-js-matrix-peer server: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
} else if (mode === "client") {
  runClient(rest).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`grpc-js-matrix-peer client: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
} else {
  process.stderr.write("usage: grpc-js-matrix-peer.js server --port=N | client --server_host=H --server_port=N --test_case=NAME\n");
  process.exit(2);
}
