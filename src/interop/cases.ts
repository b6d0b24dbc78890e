/**
 * The client half of the gRPC interop tests: every case of the interop test descriptions that
 * does not need TLS, credentials or a caching proxy, each a function that throws a clear
 * Error when the server under test misbehaves.
 *
 * Message sizes, metadata values and status messages are the spec's, byte for byte.
 * Deviations, all forced by Rill's API, are named where they happen:
 * - cacheable_unary is sent as a plain POST (Rill has no GET for cacheable methods), so only
 *   "both calls succeed" is asserted: without a caching proxy the payloads differ.
 * - server_compressed_*: Rill's client cannot see the compressed flag of a response message,
 *   so only the sizes are asserted (the spec allows this "if not supported").
 *
 * @see https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client
 */
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import {
  Code,
  RpcError,
  codeName,
  createClient,
  createPushable,
  withCompression,
  type Channel,
  type Client,
  type Metadata,
} from "../index.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SimpleRequestSchema, StreamingInputCallRequestSchema, StreamingOutputCallRequestSchema } from "../../gen/grpc/testing/messages_pb.js";
import { TestService, UnimplementedService } from "../../gen/grpc/testing/test_pb.js";
import { echoInitialKey, echoTrailingKey } from "./test-service.js";

type SimpleRequest = MessageInitShape<typeof SimpleRequestSchema>;
type StreamingInputCallRequest = MessageInitShape<typeof StreamingInputCallRequestSchema>;
type StreamingOutputCallRequest = MessageInitShape<typeof StreamingOutputCallRequestSchema>;

/** What a case runs against: clients of both test services on one channel. */
export interface CaseContext {
  readonly channel: Channel;
  readonly test: Client<typeof TestService>;
  readonly unimplemented: Client<typeof UnimplementedService>;
  /**
   * Skip the client_compressed_* feature probe (an uncompressed message claiming
   * expect_compressed). For servers that cannot observe per-message compression, such as
   * grpcio's, where C-core decompresses before the handler runs.
   */
  readonly skipCompressionProbe: boolean;
}

/** One interop case. Resolves on pass; rejects with an Error that says what differed. */
export type InteropCase = (c: CaseContext) => Promise<void>;

/** Creates the case context on `channel`. */
export function createCaseContext(channel: Channel, options: { skipCompressionProbe?: boolean } = {}): CaseContext {
  return {
    channel,
    test: createClient(TestService, channel),
    unimplemented: createClient(UnimplementedService, channel),
    skipCompressionProbe: options.skipCompressionProbe ?? false,
  };
}

const zeros = (n: number) => ({ body: new Uint8Array(n) });

/** The large_unary request: 271828 zero bytes in, 314159 wanted back. */
const largeRequest = (extra: Pick<SimpleRequest, "expectCompressed" | "responseCompressed"> = {}): SimpleRequest => ({
  ...extra,
  responseSize: 314159,
  payload: zeros(271828),
});

function assertZeros(body: Uint8Array | undefined, size: number, what: string): void {
  assert.ok(body !== undefined, `${what}: the response has no payload`);
  assert.equal(body.byteLength, size, `${what}: payload body is ${body.byteLength} bytes, want ${size}`);
  assert.ok(
    body.every((b) => b === 0),
    `${what}: payload body is not all zeros`,
  );
}

/** Runs `fn` and returns the RpcError it fails with; fails itself if `fn` succeeds. */
async function failure(fn: () => Promise<unknown>, what: string): Promise<RpcError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw new Error(`${what}: failed with a non-RPC error: ${String(e)}`, { cause: e });
  }
  throw new Error(`${what}: succeeded, but it had to fail`);
}

function assertCode(err: RpcError, code: Code, what: string): void {
  assert.equal(
    err.code,
    code,
    `${what}: status ${codeName(err.code)} ("${err.rawMessage}"), want ${codeName(code)}`,
  );
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* fromArray<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const specialMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

/** Every case by its standard name, in the order the spec lists them. */
export const interopCases: Readonly<Record<string, InteropCase>> = {
  async empty_unary({ test }) {
    const res = await test.emptyCall({});
    assert.ok(res !== undefined && res !== null, "empty_unary: no response");
  },

  async cacheable_unary({ test }) {
    const req = { payload: { body: new TextEncoder().encode(String(process.hrtime.bigint())) } };
    const md = { "x-user-ip": "1.2.3.4" };
    const a = await test.cacheableUnaryCall(req, { metadata: md });
    const b = await test.cacheableUnaryCall(req, { metadata: md });
    assert.ok(a.payload !== undefined && b.payload !== undefined, "cacheable_unary: a response without payload");
  },

  async large_unary({ test }) {
    const res = await test.unaryCall(largeRequest());
    assertZeros(res.payload?.body, 314159, "large_unary");
  },

  async client_compressed_unary({ test, skipCompressionProbe }) {
    // 1. The probe: an uncompressed message that claims to be compressed must be refused.
    if (!skipCompressionProbe) {
      const probe = await failure(
        () => test.unaryCall(largeRequest({ expectCompressed: { value: true } }), { compression: "identity" }),
        "client_compressed_unary probe (uncompressed request with expect_compressed=true)",
      );
      assertCode(probe, Code.InvalidArgument, "client_compressed_unary probe");
    }
    // 2. Compressed, as announced.
    const compressed = await test.unaryCall(largeRequest({ expectCompressed: { value: true } }), { compression: "gzip" });
    assertZeros(compressed.payload?.body, 314159, "client_compressed_unary (compressed request)");
    // 3. Uncompressed, as announced.
    const plain = await test.unaryCall(largeRequest({ expectCompressed: { value: false } }), { compression: "identity" });
    assertZeros(plain.payload?.body, 314159, "client_compressed_unary (uncompressed request)");
  },

  async server_compressed_unary({ test }) {
    for (const value of [true, false]) {
      const res = await test.unaryCall(largeRequest({ responseCompressed: { value } }));
      assertZeros(res.payload?.body, 314159, `server_compressed_unary (response_compressed=${value})`);
    }
  },

  async client_streaming({ test }) {
    const sizes = [27182, 8, 1828, 45904];
    const res = await test.streamingInputCall(fromArray(sizes.map((n): StreamingInputCallRequest => ({ payload: zeros(n) }))));
    assert.equal(res.aggregatedPayloadSize, 74922, `client_streaming: aggregated_payload_size ${res.aggregatedPayloadSize}, want 74922`);
  },

  async client_compressed_streaming({ test, skipCompressionProbe }) {
    // 1. The probe: one uncompressed message with expect_compressed=true must be refused.
    if (!skipCompressionProbe) {
      const probe = await failure(
        () =>
          test.streamingInputCall(fromArray<StreamingInputCallRequest>([{ expectCompressed: { value: true }, payload: zeros(27182) }]), {
            compression: "identity",
          }),
        "client_compressed_streaming probe (uncompressed message with expect_compressed=true)",
      );
      assertCode(probe, Code.InvalidArgument, "client_compressed_streaming probe");
    }
    // 2. One gzip call: a compressed message, then one sent uncompressed (flag 0) on purpose.
    const res = await test.streamingInputCall(
      fromArray<StreamingInputCallRequest>([
        { expectCompressed: { value: true }, payload: zeros(27182) },
        withCompression<StreamingInputCallRequest>({ expectCompressed: { value: false }, payload: zeros(45904) }, false),
      ]),
      { compression: "gzip" },
    );
    assert.equal(res.aggregatedPayloadSize, 73086, `client_compressed_streaming: aggregated_payload_size ${res.aggregatedPayloadSize}, want 73086`);
  },

  async server_streaming({ test }) {
    const sizes = [31415, 9, 2653, 58979];
    const responses = await collect(test.streamingOutputCall({ responseParameters: sizes.map((size) => ({ size })) }));
    assert.equal(responses.length, 4, `server_streaming: ${responses.length} responses, want 4`);
    responses.forEach((r, i) => assertZeros(r.payload?.body, sizes[i]!, `server_streaming response ${i + 1}`));
  },

  async server_compressed_streaming({ test }) {
    const responses = await collect(
      test.streamingOutputCall({
        responseParameters: [
          { compressed: { value: true }, size: 31415 },
          { compressed: { value: false }, size: 92653 },
        ],
      }),
    );
    assert.equal(responses.length, 2, `server_compressed_streaming: ${responses.length} responses, want 2`);
    assertZeros(responses[0]!.payload?.body, 31415, "server_compressed_streaming response 1");
    assertZeros(responses[1]!.payload?.body, 92653, "server_compressed_streaming response 2");
  },

  async ping_pong({ test }) {
    const steps: Array<[number, number]> = [
      [31415, 27182],
      [9, 8],
      [2653, 1828],
      [58979, 45904],
    ];
    const requests = createPushable<StreamingOutputCallRequest>();
    const responses = test.fullDuplexCall(requests)[Symbol.asyncIterator]();
    try {
      for (const [i, [size, body]] of steps.entries()) {
        await requests.push({ responseParameters: [{ size }], payload: zeros(body) });
        const r = await responses.next();
        assert.ok(!r.done, `ping_pong: the stream ended after ${i} responses, want 4`);
        assertZeros(r.value.payload?.body, size, `ping_pong response ${i + 1}`);
      }
      requests.end();
      const end = await responses.next();
      assert.ok(end.done === true, "ping_pong: more than 4 responses");
    } finally {
      requests.end();
      await responses.return?.();
    }
  },

  async empty_stream({ test }) {
    const responses = await collect(test.fullDuplexCall(fromArray<StreamingOutputCallRequest>([])));
    assert.equal(responses.length, 0, `empty_stream: ${responses.length} responses, want 0`);
  },

  async custom_metadata({ test }) {
    const trailing = new Uint8Array([0xab, 0xab, 0xab]);
    const metadata = { [echoInitialKey]: "test_initial_metadata_value", [echoTrailingKey]: trailing };
    const check = (what: string, header: Metadata | undefined, trailer: Metadata | undefined) => {
      assert.equal(header?.get(echoInitialKey), "test_initial_metadata_value", `${what}: ${echoInitialKey} missing from the response headers`);
      const got = trailer?.get(echoTrailingKey);
      assert.ok(got instanceof Uint8Array, `${what}: ${echoTrailingKey} missing from the trailers`);
      assert.deepEqual([...got], [...trailing], `${what}: ${echoTrailingKey} is ${Buffer.from(got).toString("hex")}, want ababab`);
    };

    let header: Metadata | undefined;
    let trailer: Metadata | undefined;
    const res = await test.unaryCall(largeRequest(), { metadata, onHeader: (m) => (header = m), onTrailer: (m) => (trailer = m) });
    assertZeros(res.payload?.body, 314159, "custom_metadata (UnaryCall)");
    check("custom_metadata (UnaryCall)", header, trailer);

    header = trailer = undefined;
    const responses = await collect(
      test.fullDuplexCall(fromArray<StreamingOutputCallRequest>([{ responseParameters: [{ size: 314159 }], payload: zeros(271828) }]), {
        metadata,
        onHeader: (m) => (header = m),
        onTrailer: (m) => (trailer = m),
      }),
    );
    assert.equal(responses.length, 1, `custom_metadata (FullDuplexCall): ${responses.length} responses, want 1`);
    assertZeros(responses[0]!.payload?.body, 314159, "custom_metadata (FullDuplexCall)");
    check("custom_metadata (FullDuplexCall)", header, trailer);
  },

  async status_code_and_message({ test }) {
    const responseStatus = { code: 2, message: "test status message" };
    const unary = await failure(() => test.unaryCall({ responseStatus }), "status_code_and_message (UnaryCall)");
    assertStatus(unary, responseStatus, "status_code_and_message (UnaryCall)");
    const duplex = await failure(
      () => collect(test.fullDuplexCall(fromArray<StreamingOutputCallRequest>([{ responseStatus }]))),
      "status_code_and_message (FullDuplexCall)",
    );
    assertStatus(duplex, responseStatus, "status_code_and_message (FullDuplexCall)");
  },

  async special_status_message({ test }) {
    const responseStatus = { code: 2, message: specialMessage };
    const err = await failure(() => test.unaryCall({ responseStatus }), "special_status_message");
    assertStatus(err, responseStatus, "special_status_message");
  },

  async unimplemented_method({ test }) {
    const err = await failure(() => test.unimplementedCall({}), "unimplemented_method");
    assertCode(err, Code.Unimplemented, "unimplemented_method");
  },

  async unimplemented_service({ unimplemented }) {
    const err = await failure(() => unimplemented.unimplementedCall({}), "unimplemented_service");
    assertCode(err, Code.Unimplemented, "unimplemented_service");
  },

  async cancel_after_begin({ test }) {
    const ac = new AbortController();
    const requests = createPushable<StreamingInputCallRequest>();
    const call = test.streamingInputCall(requests, { signal: ac.signal });
    await nextTurn(); // let the request headers go out, then cancel before any message
    ac.abort();
    const err = await failure(() => call, "cancel_after_begin");
    requests.end();
    assertCode(err, Code.Canceled, "cancel_after_begin");
  },

  async cancel_after_first_response({ test }) {
    const ac = new AbortController();
    const requests = createPushable<StreamingOutputCallRequest>();
    const responses = test.fullDuplexCall(requests, { signal: ac.signal })[Symbol.asyncIterator]();
    try {
      await requests.push({ responseParameters: [{ size: 31415 }], payload: zeros(27182) });
      const first = await responses.next();
      assert.ok(!first.done, "cancel_after_first_response: the stream ended without a response");
      assertZeros(first.value.payload?.body, 31415, "cancel_after_first_response");
      ac.abort();
      const err = await failure(() => responses.next(), "cancel_after_first_response");
      assertCode(err, Code.Canceled, "cancel_after_first_response");
    } finally {
      requests.end();
      await responses.return?.();
    }
  },

  async timeout_on_sleeping_server({ test }) {
    const requests = createPushable<StreamingOutputCallRequest>();
    requests.tryPush({ payload: zeros(27182) });
    const err = await failure(() => collect(test.fullDuplexCall(requests, { timeoutMs: 1 })), "timeout_on_sleeping_server");
    requests.end();
    assertCode(err, Code.DeadlineExceeded, "timeout_on_sleeping_server");
  },

  async max_streams({ test }) {
    // From the HTTP/2 interop cases: the server limits MAX_CONCURRENT_STREAMS (to 1); the
    // client must queue its calls instead of failing them.
    const first = await test.unaryCall(largeRequest());
    assertZeros(first.payload?.body, 314159, "max_streams (initial call)");
    const all = await Promise.all(Array.from({ length: 10 }, () => test.unaryCall(largeRequest())));
    all.forEach((r, i) => assertZeros(r.payload?.body, 314159, `max_streams (concurrent call ${i + 1})`));
  },
};

function assertStatus(err: RpcError, want: { code: number; message: string }, what: string): void {
  assertCode(err, want.code as Code, what);
  assert.equal(err.rawMessage, want.message, `${what}: status message ${JSON.stringify(err.rawMessage)}, want ${JSON.stringify(want.message)}`);
}

/** The standard case names Rill's client implements, in spec order. */
export const interopCaseNames: readonly string[] = Object.keys(interopCases);
