import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, createFileRegistry, isMessage, ScalarType, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import * as alexandria from "../../gen/alexandria/alexandria_pb.js";
import * as bench from "../../gen/bench/v1/bench_pb.js";
import * as echo from "../../gen/echo/echo_pb.js";
import * as health from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import * as empty from "../../gen/grpc/testing/empty_pb.js";
import * as messages from "../../gen/grpc/testing/messages_pb.js";
import * as testService from "../../gen/grpc/testing/test_pb.js";
import * as longlived from "../../gen/longlived/longlived_pb.js";
import * as pubsub from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import * as transfer from "../../gen/rill/transfer/v1/transfer_pb.js";
import * as routeguide from "../../gen/routeguide/route_guide_pb.js";
import * as video from "../../gen/video/video_pb.js";
import {
  DoubleValueSchema,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FloatValueSchema,
  Int64ValueSchema,
  UInt32ValueSchema,
  UInt64ValueSchema,
} from "@bufbuild/protobuf/wkt";
import { protoCodec } from "../../src/codec/codec.js";
import { encodeFlatMessage } from "../../src/codec/flat-message-encoder.js";
import { FRAME_HEADER_LENGTH, FrameDecoder, encodeFrame } from "../../src/protocol/frame.js";
import { descriptorField } from "../support/descriptors.js";

const T = FieldDescriptorProto_Type;
/** Every scalar type, so the runtime-built messages below cover the kinds gen/ lacks (64-bit, sint, fixed, float). */
const scalarTypes = [
  T.DOUBLE, T.FLOAT, T.INT64, T.UINT64, T.INT32, T.FIXED64, T.FIXED32, T.BOOL, T.STRING, T.BYTES,
  T.UINT32, T.SFIXED32, T.SFIXED64, T.SINT32, T.SINT64,
];

/**
 * Messages built at run time from descriptors: `test.flat.Scalars` (every scalar with implicit
 * presence, the same with proto3 `optional`, an enum, a nested `Inner` and an optional enum),
 * `test.flat.Outer` (Scalars nested twice, plus Inner), the proto2 twin `test.flat2.Scalars2`
 * (explicit presence with prototype defaults), a recursive `Node`, and a chain of 20 nested types.
 */
function buildSchemas() {
  const field = descriptorField;
  const implicit = scalarTypes.map((t, i) => field(`s${i}`, i + 1, t));
  const optional = scalarTypes.map((t, i) => field(`o${i}`, 100 + i, t, { oneofIndex: i, proto3Optional: true }));
  const chain = Array.from({ length: 20 }, (_, i) => ({
    name: `Level${i}`,
    field: [field("label", 1, T.STRING), ...(i < 19 ? [field("next", 2, T.MESSAGE, { typeName: `.test.flat.Level${i + 1}` })] : [])],
  }));
  const proto3 = create(FileDescriptorProtoSchema, {
    name: "test/flat.proto",
    package: "test.flat",
    syntax: "proto3",
    enumType: [{ name: "Color", value: [{ name: "COLOR_UNSPECIFIED", number: 0 }, { name: "COLOR_RED", number: 1 }, { name: "COLOR_BLUE", number: -5 }] }],
    messageType: [
      { name: "Inner", field: [field("id", 1, T.INT64), field("note", 2, T.STRING)] },
      {
        name: "Scalars",
        field: [
          ...implicit,
          ...optional,
          field("color", 50, T.ENUM, { typeName: ".test.flat.Color" }),
          field("inner", 51, T.MESSAGE, { typeName: ".test.flat.Inner" }),
          field("ocolor", 200, T.ENUM, { typeName: ".test.flat.Color", oneofIndex: scalarTypes.length, proto3Optional: true }),
        ],
        oneofDecl: [...scalarTypes.map((_, i) => ({ name: `_o${i}` })), { name: "_ocolor" }],
      },
      {
        name: "Outer",
        field: [
          field("a", 3, T.MESSAGE, { typeName: ".test.flat.Scalars" }),
          field("name", 1, T.STRING),
          field("b", 2, T.MESSAGE, { typeName: ".test.flat.Scalars" }),
          field("inner", 4, T.MESSAGE, { typeName: ".test.flat.Inner" }),
        ],
      },
      { name: "Node", field: [field("name", 1, T.STRING), field("next", 2, T.MESSAGE, { typeName: ".test.flat.Node" })] },
      { name: "Ping", field: [field("pong", 1, T.MESSAGE, { typeName: ".test.flat.Pong" })] },
      { name: "Pong", field: [field("ping", 1, T.MESSAGE, { typeName: ".test.flat.Ping" })] },
      { name: "HoldsPing", field: [field("ping", 1, T.MESSAGE, { typeName: ".test.flat.Ping" })] },
      ...chain,
    ],
  });
  const proto2 = create(FileDescriptorProtoSchema, {
    name: "test/flat2.proto",
    package: "test.flat2",
    syntax: "proto2",
    messageType: [{ name: "Scalars2", field: scalarTypes.map((t, i) => field(`p${i}`, i + 1, t)) }],
  });
  const r3 = createFileRegistry(proto3, () => undefined);
  const r2 = createFileRegistry(proto2, () => undefined);
  const get = (r: typeof r3, name: string) => r.getMessage(name)!;
  return {
    scalars: get(r3, "test.flat.Scalars"),
    outer: get(r3, "test.flat.Outer"),
    inner: get(r3, "test.flat.Inner"),
    scalars2: get(r2, "test.flat2.Scalars2"),
    node: get(r3, "test.flat.Node"),
    ping: get(r3, "test.flat.Ping"),
    holdsPing: get(r3, "test.flat.HoldsPing"),
    level: (i: number) => get(r3, `test.flat.Level${i}`),
  };
}
const built = buildSchemas();

/** Every message schema exported by the generated modules, the runtime-built ones, and wrappers. */
const schemas: DescMessage[] = [
  ...[alexandria, bench, echo, health, reflectionV1, reflectionV1alpha, empty, messages, testService, longlived, pubsub, transfer, routeguide, video].flatMap((mod) =>
    Object.values(mod).filter((v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message"),
  ),
  built.scalars,
  built.outer,
  built.inner,
  built.scalars2,
  built.level(5),
  DoubleValueSchema,
  UInt32ValueSchema,
  FloatValueSchema,
  Int64ValueSchema,
  UInt64ValueSchema,
];

/** A small deterministic generator (xorshift32), so a failure reproduces. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

const texts = ["", "a", "hello, world", "ü", "日本語", "emoji 😀", "lone \ud800 surrogate", "x".repeat(200), "y".repeat(20_000)];

function randomValue(field: DescField, g: ReturnType<typeof rng>, depth = 0): unknown {
  const zeroSometimes = g.next() < 0.25;
  if (field.presence === 1 && field.fieldKind !== "message" && g.next() < 0.2) return undefined; // explicit presence: unset
  if (field.fieldKind === "enum") return zeroSometimes ? field.enum.values[0]!.number : field.enum.values[g.int(field.enum.values.length)]!.number;
  if (field.fieldKind === "message") {
    // Unset, set but empty, or set with random fields (the nested init, or a created message).
    const r = g.next();
    if (r < 0.3 || depth > 4) return undefined;
    if (r < 0.45) return {};
    const init = randomInit(field.message, g, depth + 1);
    return r < 0.7 ? init : create(field.message, init as never);
  }
  if (field.fieldKind !== "scalar") return undefined;
  const pick = <V>(zero: V, picks: V[]): V => (zeroSometimes ? zero : picks[g.int(picks.length)]!);
  switch (field.scalar) {
    case ScalarType.STRING:
      return zeroSometimes ? "" : texts[g.int(texts.length)];
    case ScalarType.BYTES: {
      const sizes = [0, 1, 64, 127, 128, 300, 16_383, 16_384, 70_000];
      const b = new Uint8Array(zeroSometimes ? 0 : sizes[g.int(sizes.length)]!);
      for (let i = 0; i < b.length; i += 97) b[i] = i & 0xff;
      return b;
    }
    case ScalarType.BOOL:
      return !zeroSometimes && g.next() < 0.5;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return pick(0, [-0, 1, -1, 63, -64, 64, 127, 128, -128, 0x7fff_ffff, -0x8000_0000, 300, -300000]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick(0, [1, 127, 128, 16_383, 16_384, 0x1fffff, 0x200000, 0x0fff_ffff, 0x1000_0000, 0xffff_ffff]);
    case ScalarType.DOUBLE:
      return pick(0, [-0, 1.5, -2.25, Number.NaN, Number.POSITIVE_INFINITY, 1e300, 5e-324]);
    case ScalarType.FLOAT:
      return pick(0, [-0, 1.5, -2.25, 0.1, Number.NaN, Number.NEGATIVE_INFINITY, 3.4028234663852886e38, 1e-45]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return pick(0n, [1n, -1n, 63n, -64n, 127n, 128n, 2n ** 31n, -(2n ** 31n), 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return pick(0n, [1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n, 2n ** 49n, 2n ** 56n, 2n ** 63n, 2n ** 64n - 1n]);
    default:
      return undefined;
  }
}

function randomInit(schema: DescMessage, g: ReturnType<typeof rng>, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const f of schema.fields) init[f.localName] = randomValue(f, g, depth);
  return init;
}

describe("flat message encoder", () => {
  test("writes exactly what toBinary writes for every flat message schema, over many random messages", () => {
    const g = rng(20261123);
    let flat = 0;
    let compared = 0;
    const flatNames = new Set<string>();
    for (const schema of schemas) {
      if (encodeFlatMessage(schema, create(schema) as never) === undefined) continue;
      flat++;
      flatNames.add(schema.typeName);
      for (let round = 0; round < 200; round++) {
        const init = randomInit(schema, g);
        const message = create(schema, init as never);
        const fast = encodeFlatMessage(schema, message as never);
        assert.ok(fast !== undefined, `${schema.typeName} is flat, so every valid message of it takes the fast path`);
        assert.deepEqual(new Uint8Array(fast), toBinary(schema, message), `${schema.typeName} ${JSON.stringify(init, (_, v) => (v instanceof Uint8Array ? v.length : typeof v === "bigint" ? `${v}n` : v))}`);
        compared++;
      }
    }
    // Among them: bytes (bench Payload), string (Echo), bool, int32 and enum (grpc.testing), double and uint32 (wrappers),
    // nested messages with uint64 and optional fields (rill.transfer), and every scalar kind (the runtime-built ones).
    assert.ok(flat >= 20, `only ${flat} flat schemas found`);
    for (const name of ["rill.transfer.v1.DownloadResponse", "rill.transfer.v1.UploadRequest", "test.flat.Scalars", "test.flat.Outer", "test.flat2.Scalars2", "test.flat.Level5"]) {
      assert.ok(flatNames.has(name), `${name} takes the fast path`);
    }
    assert.ok(compared >= 4000);
  });

  test("encodes plain init objects (fields left out or undefined) exactly as toBinary(create(init))", () => {
    const g = rng(7);
    let compared = 0;
    for (const schema of schemas) {
      if (encodeFlatMessage(schema, create(schema) as never) === undefined) continue;
      for (let round = 0; round < 100; round++) {
        const init: Record<string, unknown> = {};
        for (const f of schema.fields) {
          const r = g.next();
          if (r < 0.2) continue; // left out
          init[f.localName] = r < 0.3 ? undefined : randomValue(f, g);
        }
        const expected = toBinary(schema, create(schema, init as never));
        assert.deepEqual(new Uint8Array(encodeFlatMessage(schema, init)!), expected, schema.typeName);
        assert.deepEqual(new Uint8Array(protoCodec.encode(schema, init as never)), expected, schema.typeName);
        compared++;
      }
    }
    assert.ok(compared >= 1000);
    assert.deepEqual(new Uint8Array(protoCodec.encode(bench.PayloadSchema, undefined as never)), toBinary(bench.PayloadSchema, create(bench.PayloadSchema)));
  });

  test("declines messages that are not flat, carry unknown fields, or hold values toBinary must coerce or reject", () => {
    assert.equal(encodeFlatMessage(messages.SimpleRequestSchema, create(messages.SimpleRequestSchema) as never), undefined, "a nested message type (TestOrcaReport) with maps");
    const withUnknown = create(bench.PayloadSchema, { data: new Uint8Array([1]) });
    withUnknown.$unknown = [{ no: 9, wireType: 0, data: new Uint8Array([1]) }];
    assert.equal(encodeFlatMessage(bench.PayloadSchema, withUnknown as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), code: 1.5 } as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), code: 2 ** 31 } as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), message: 7 } as never), undefined);
  });

  test("encodes the transfer messages (a Chunk nested in DownloadResponse / UploadRequest) in one exact-size buffer", () => {
    const data = new Uint8Array(65_536).map((_, i) => i * 31);
    const sha256 = new Uint8Array(32).fill(0xab);
    const chunks = [
      { offset: 0n, data, last: false },
      { offset: 2n ** 64n - 1n, data, last: true, sha256, totalSize: 2n ** 64n - 1n },
      { offset: 123_456_789_012n, data: new Uint8Array(0), last: true, sha256, totalSize: 0n },
      {},
    ];
    for (const chunk of chunks) {
      for (const [schema, init] of [
        [transfer.DownloadResponseSchema, { chunk }],
        [transfer.UploadRequestSchema, { transferId: "id-1", chunk }],
        [transfer.ChunkSchema, chunk],
      ] as [DescMessage, Record<string, unknown>][]) {
        const expected = toBinary(schema, create(schema, init as never));
        for (const value of [init, create(schema, init as never)]) {
          const fast = encodeFlatMessage(schema, value as never);
          assert.ok(fast !== undefined, `${schema.typeName} takes the fast path`);
          assert.deepEqual(new Uint8Array(fast), expected, schema.typeName);
          // A large message gets an ArrayBuffer of its own, exactly its size plus its frame header in
          // front: nothing is copied out afterwards, and framing it writes the header in place.
          if (fast.byteLength >= 65_536) {
            assert.equal(fast.buffer.byteLength, FRAME_HEADER_LENGTH + fast.byteLength);
            const frame = encodeFrame(fast);
            assert.equal(frame.buffer, fast.buffer, "framed in place");
            assert.deepEqual(new FrameDecoder().push(frame), [{ compressed: false, data: new Uint8Array(expected) }]);
          } else if (fast.byteLength > 8192) assert.equal(fast.buffer.byteLength, fast.byteLength);
        }
      }
    }
    const status = { transferId: "t", offset: 2n ** 63n, complete: true, sha256, totalSize: 1n };
    for (const [schema, init] of [[transfer.DownloadRequestSchema, { transferId: "t", offset: 5n, length: 7n }]] as [DescMessage, Record<string, unknown>][]) {
      assert.deepEqual(new Uint8Array(encodeFlatMessage(schema, init)!), toBinary(schema, create(schema, init as never)), schema.typeName);
    }
    // TransferStatus has lists (held and rejected ranges): not flat, so its messages take toBinary.
    assert.equal(encodeFlatMessage(transfer.GetStatusResponseSchema, { status }), undefined);
    assert.equal(encodeFlatMessage(transfer.UploadResponseSchema, { status }), undefined);
  });

  test("writes a set nested message even when empty, and explicit presence fields even when zero", () => {
    assert.deepEqual([...encodeFlatMessage(transfer.DownloadResponseSchema, {})!], []);
    assert.deepEqual([...encodeFlatMessage(transfer.DownloadResponseSchema, { chunk: undefined })!], []);
    assert.deepEqual([...encodeFlatMessage(transfer.DownloadResponseSchema, { chunk: {} })!], [0x0a, 0x00]);
    assert.deepEqual([...encodeFlatMessage(transfer.DownloadResponseSchema, create(transfer.DownloadResponseSchema, { chunk: {} }))!], [0x0a, 0x00]);
    // total_size = 0 is written (field 5, varint 0); offset = 0 is not.
    assert.deepEqual([...encodeFlatMessage(transfer.ChunkSchema, { offset: 0n, totalSize: 0n })!], [0x28, 0x00]);
    // proto2: unset fields read their defaults from the prototype and are not written; a set zero is.
    const p2 = create(built.scalars2);
    assert.deepEqual([...encodeFlatMessage(built.scalars2, p2 as never)!], [...toBinary(built.scalars2, p2)]);
    assert.equal(encodeFlatMessage(built.scalars2, p2 as never)!.byteLength, 0);
    (p2 as Record<string, unknown>).p2 = 0n;
    assert.deepEqual([...encodeFlatMessage(built.scalars2, p2 as never)!], [...toBinary(built.scalars2, p2)]);
    assert.deepEqual([...encodeFlatMessage(built.scalars2, p2 as never)!], [0x18, 0x00]);
  });

  test("declines recursive message types and nesting deeper than 16 levels, but takes 15", () => {
    assert.equal(encodeFlatMessage(built.node, create(built.node) as never), undefined, "Node { Node next }");
    assert.equal(encodeFlatMessage(built.ping, create(built.ping) as never), undefined, "Ping { Pong } / Pong { Ping }");
    assert.equal(encodeFlatMessage(built.holdsPing, create(built.holdsPing) as never), undefined, "a type reaching a cycle");
    assert.equal(encodeFlatMessage(built.level(0), create(built.level(0)) as never), undefined, "20 levels");
    assert.equal(encodeFlatMessage(built.level(3), create(built.level(3)) as never), undefined, "17 levels");
    assert.ok(encodeFlatMessage(built.level(4), create(built.level(4)) as never) !== undefined, "16 levels");
    let init: Record<string, unknown> = { label: "bottom" };
    for (let i = 18; i >= 4; i--) init = { label: `l${i}`, next: init };
    assert.deepEqual(new Uint8Array(encodeFlatMessage(built.level(4), init)!), toBinary(built.level(4), create(built.level(4), init as never)));
  });

  test("declines 64-bit values that are not in-range bigints, out-of-range floats, and foreign or null nested messages", () => {
    const chunk = (init: Record<string, unknown>) => encodeFlatMessage(transfer.ChunkSchema, init);
    assert.equal(chunk({ offset: 5 }), undefined, "a number in a uint64 field");
    assert.equal(chunk({ offset: "5" }), undefined, "a string in a uint64 field");
    assert.equal(chunk({ offset: 2n ** 64n }), undefined);
    assert.equal(chunk({ offset: -1n }), undefined);
    assert.equal(chunk({ totalSize: 2n ** 64n }), undefined);
    const s = (init: Record<string, unknown>) => encodeFlatMessage(built.scalars, init);
    assert.equal(s({ s2: 2n ** 63n }), undefined, "int64 above 2^63-1");
    assert.equal(s({ s2: -(2n ** 63n) - 1n }), undefined, "int64 below -2^63");
    assert.equal(s({ s1: 1e39 }), undefined, "float beyond float32");
    assert.equal(s({ s13: 1.5 }), undefined, "sint32 fraction");
    assert.ok(s({ s2: 2n ** 63n - 1n, s3: 2n ** 64n - 1n, s14: -(2n ** 63n), s1: Number.POSITIVE_INFINITY }) !== undefined);
    assert.equal(encodeFlatMessage(transfer.DownloadResponseSchema, { chunk: null }), undefined);
    assert.equal(encodeFlatMessage(transfer.DownloadResponseSchema, { chunk: create(transfer.TransferStatusSchema) }), undefined, "a foreign message");
    assert.equal(encodeFlatMessage(transfer.DownloadResponseSchema, create(transfer.TransferStatusSchema) as never), undefined, "a foreign message at the top");
    const withUnknown = create(transfer.ChunkSchema, { data: new Uint8Array([1]) });
    withUnknown.$unknown = [{ no: 9, wireType: 0, data: new Uint8Array([1]) }];
    assert.equal(encodeFlatMessage(transfer.DownloadResponseSchema, { chunk: withUnknown }), undefined, "unknown fields in a nested message");
    // protoCodec falls back to toBinary for what the fast path declines, with toBinary's bytes.
    const numberOffset = { chunk: { offset: 7, data: new Uint8Array([1, 2]) } };
    assert.deepEqual(
      new Uint8Array(protoCodec.encode(transfer.DownloadResponseSchema, numberOffset as never)),
      toBinary(transfer.DownloadResponseSchema, create(transfer.DownloadResponseSchema, numberOffset as never)),
    );
    const withUnknownBytes = protoCodec.encode(transfer.DownloadResponseSchema, create(transfer.DownloadResponseSchema, { chunk: withUnknown }));
    assert.deepEqual(new Uint8Array(withUnknownBytes), toBinary(transfer.DownloadResponseSchema, create(transfer.DownloadResponseSchema, { chunk: withUnknown })));
  });

  test("protoCodec still reports toBinary's error for a value it cannot encode", () => {
    assert.throws(() => protoCodec.encode(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), code: 1.5 } as never), /int32/);
  });

  test("protoCodec round-trips flat and nested messages", () => {
    const payload = create(bench.PayloadSchema, { data: new Uint8Array([1, 2, 3]) });
    const back = protoCodec.decode(bench.PayloadSchema, protoCodec.encode(bench.PayloadSchema, payload));
    assert.ok(isMessage(back, bench.PayloadSchema));
    assert.deepEqual([...back.data], [1, 2, 3]);
    const req = create(messages.SimpleRequestSchema, { responseSize: 5, payload: { body: new Uint8Array([9]) } });
    assert.deepEqual(new Uint8Array(protoCodec.encode(messages.SimpleRequestSchema, req)), toBinary(messages.SimpleRequestSchema, req));
  });

  test("in a process that forbids code generation from strings, there is no plan and protoCodec encodes with toBinary", () => {
    // The encoder's size and write functions are generated source (new Function); node's
    // --disallow-code-generation-from-strings makes that throw EvalError.
    const encoder = new URL("../../src/codec/flat-message-encoder.js", import.meta.url).href;
    const codec = new URL("../../src/codec/codec.js", import.meta.url).href;
    const schemas = new URL("../../gen/grpc/testing/messages_pb.js", import.meta.url).href;
    const script = `
      const { encodeFlatMessage } = await import(${JSON.stringify(encoder)});
      const { protoCodec } = await import(${JSON.stringify(codec)});
      const { SimpleRequestSchema } = await import(${JSON.stringify(schemas)});
      const { create, toBinary } = await import("@bufbuild/protobuf");
      const req = create(SimpleRequestSchema, { responseSize: 5, payload: { body: new Uint8Array([9, 8]) }, fillUsername: true });
      const same = Buffer.from(protoCodec.encode(SimpleRequestSchema, req)).equals(Buffer.from(toBinary(SimpleRequestSchema, req)));
      console.log(JSON.stringify({ flat: encodeFlatMessage(SimpleRequestSchema, req, true) === undefined ? "declined" : "encoded", same }));`;
    const run = spawnSync(process.execPath, ["--disallow-code-generation-from-strings", "--input-type=module", "-e", script], { encoding: "utf8", cwd: fileURLToPath(new URL(".", import.meta.url)) });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { flat: "declined", same: true });
  });
});
