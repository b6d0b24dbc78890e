import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, createFileRegistry, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { PayloadSchema } from "../../gen/bench/v1/bench_pb.js";
import { protoCodec } from "../../src/codec/codec.js";
import { decodeFlatMessage } from "../../src/codec/flat-message-decoder.js";
import { descriptorField } from "../support/descriptors.js";

const T = FieldDescriptorProto_Type;
const field = descriptorField;

/**
 * `Small` (every kind the decoder takes, implicit presence), `Opt` (the same with proto3
 * `optional`), proto2 `Small2` (explicit presence with defaults on a prototype, a closed enum)
 * and `Plain2` (the same without the enum),
 * and `Texty` (a string field: not taken).
 */
function schemas() {
  const kinds = [field("data", 1, T.BYTES), field("flag", 2, T.BOOL), field("n", 3, T.INT32), field("u", 4, T.UINT32)];
  const proto3 = create(FileDescriptorProtoSchema, {
    name: "test/flat-decode.proto",
    package: "test.flatdecode",
    syntax: "proto3",
    enumType: [{ name: "Color", value: [{ name: "COLOR_UNSPECIFIED", number: 0 }, { name: "COLOR_RED", number: 1 }] }],
    messageType: [
      { name: "Small", field: [...kinds, field("color", 15, T.ENUM, { typeName: ".test.flatdecode.Color" })] },
      {
        name: "Opt",
        field: kinds.map((f, i) => ({ ...f, oneofIndex: i, proto3Optional: true })),
        oneofDecl: kinds.map((f) => ({ name: `_${f.name}` })),
      },
      { name: "Texty", field: [field("data", 1, T.BYTES), field("note", 2, T.STRING)] },
    ],
  });
  const proto2 = create(FileDescriptorProtoSchema, {
    name: "test/flat-decode2.proto",
    package: "test.flatdecode2",
    syntax: "proto2",
    enumType: [{ name: "Shade", value: [{ name: "LIGHT", number: 1 }, { name: "DARK", number: 2 }] }],
    messageType: [
      {
        name: "Small2",
        field: [field("data", 1, T.BYTES, { defaultValue: "x" }), field("n", 3, T.INT32, { defaultValue: "7" }), field("shade", 5, T.ENUM, { typeName: ".test.flatdecode2.Shade" })],
      },
      { name: "Plain2", field: [field("data", 1, T.BYTES, { defaultValue: "x" }), field("n", 3, T.INT32, { defaultValue: "7" })] },
    ],
  });
  const r3 = createFileRegistry(proto3, () => undefined);
  const r2 = createFileRegistry(proto2, () => undefined);
  return {
    small: r3.getMessage("test.flatdecode.Small")!,
    opt: r3.getMessage("test.flatdecode.Opt")!,
    texty: r3.getMessage("test.flatdecode.Texty")!,
    small2: r2.getMessage("test.flatdecode2.Small2")!,
    plain2: r2.getMessage("test.flatdecode2.Plain2")!,
  };
}

const s = schemas();

/** A deterministic PRNG, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

function randomInit(rand: () => number): Record<string, unknown> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const init: Record<string, unknown> = {};
  if (rand() < 0.8) init.data = Uint8Array.from({ length: pick([0, 1, 64, 127, 128, 300, 20_000]) }, () => Math.floor(rand() * 256));
  if (rand() < 0.5) init.flag = rand() < 0.5;
  if (rand() < 0.5) init.n = pick([0, 1, 127, 128, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, -1, -(2 ** 31)]);
  if (rand() < 0.5) init.u = pick([0, 1, 300, 2 ** 28 - 1, 2 ** 28, 2 ** 32 - 1]);
  if (rand() < 0.5) init.color = pick([0, 1, 99]);
  return init;
}

/** Whatever the fast path returns equals fromBinary's message; when it declines, protoCodec still decodes like fromBinary. */
function assertSameAsFromBinary(schema: DescMessage, bytes: Uint8Array): boolean {
  const fast = decodeFlatMessage(schema, bytes);
  let expected: unknown;
  try {
    expected = fromBinary(schema, bytes);
  } catch (e) {
    assert.equal(fast, undefined, `the fast path accepted input fromBinary rejects (${(e as Error).message})`);
    assert.throws(() => protoCodec.decode(schema, bytes));
    return false;
  }
  if (fast !== undefined) assert.deepStrictEqual(fast, expected);
  assert.deepStrictEqual(protoCodec.decode(schema, bytes), expected);
  return fast !== undefined;
}

describe("decodeFlatMessage", () => {
  test("decodes bench.v1.Payload as fromBinary does, its bytes a view of the input", () => {
    const data = new Uint8Array(64).fill(0x61);
    const bytes = toBinary(PayloadSchema, create(PayloadSchema, { data }));
    const m = decodeFlatMessage(PayloadSchema, bytes)!;
    assert.deepStrictEqual(m, fromBinary(PayloadSchema, bytes));
    assert.equal((m.data as Uint8Array).buffer, bytes.buffer);
    assert.deepStrictEqual(decodeFlatMessage(PayloadSchema, new Uint8Array(0)), create(PayloadSchema));
  });

  test("equals fromBinary on random messages of every schema, taking the common ones", () => {
    const rand = rng(42);
    let taken = 0;
    let taken2 = 0;
    for (let i = 0; i < 2000; i++) {
      const init = randomInit(rand);
      for (const schema of [s.small, s.opt]) if (assertSameAsFromBinary(schema, toBinary(schema, create(schema, init as never)))) taken++;
      const init2 = { data: init.data, n: init.n, shade: rand() < 0.5 ? 2 : undefined };
      if (assertSameAsFromBinary(s.small2, toBinary(s.small2, create(s.small2, init2 as never)))) taken++;
      // proto2 defaults live on a prototype: decoded from create(), not a copy of a plain object.
      if (assertSameAsFromBinary(s.plain2, toBinary(s.plain2, create(s.plain2, { data: init.data, n: init.n } as never)))) taken2++;
    }
    assert.ok(taken > 1000, `the fast path took only ${taken} of 6000`);
    assert.ok(taken2 > 1000, `the fast path took only ${taken2} proto2 messages of 2000`);
  });

  test("equals fromBinary (or declines) on mutated and truncated encodings", () => {
    const rand = rng(7);
    let taken = 0;
    for (let i = 0; i < 5000; i++) {
      const schema = [s.small, s.opt, s.small2, PayloadSchema][i % 4]!;
      const init = schema === s.small2 ? { n: 3, data: new Uint8Array(5) } : randomInit(rand);
      const bytes = toBinary(schema, create(schema, init as never)).slice();
      if (bytes.byteLength === 0) continue;
      const mutated = rand() < 0.5 ? bytes.subarray(0, Math.floor(rand() * bytes.byteLength)) : bytes;
      if (mutated === bytes) bytes[Math.floor(rand() * bytes.byteLength)] = Math.floor(rand() * 256);
      if (assertSameAsFromBinary(schema, mutated)) taken++;
    }
    assert.ok(taken > 500, `the fast path took only ${taken}`);
  });

  test("declines what only fromBinary handles, and protoCodec keeps unknown fields", () => {
    const declined = [
      Uint8Array.of(0x08 | (9 << 3), 1), // unknown field 9
      Uint8Array.of(0x18, 0xff, 0xff, 0xff, 0xff, 0x0f), // int32 as a 5-byte varint (-1 needs 10)
      Uint8Array.of(0x10, 2), // bool 2
      Uint8Array.of(0x0a, 5, 1, 2), // bytes past the end
      Uint8Array.of(0x18), // varint missing
      Uint8Array.of(0x0d, 0, 0, 0, 0), // data with the fixed32 wire type
    ];
    for (const bytes of declined) {
      assert.equal(decodeFlatMessage(s.small, bytes), undefined, `took ${Buffer.from(bytes).toString("hex")}`);
      assertSameAsFromBinary(s.small, bytes);
    }
    const unknown = protoCodec.decode(s.small, Uint8Array.of(0x48, 1, 0x18, 5)) as unknown as { $unknown?: unknown[]; n: number };
    assert.equal(unknown.n, 5);
    assert.equal(unknown.$unknown?.length, 1);
  });

  test("leaves message types with other field kinds to fromBinary", () => {
    assert.equal(decodeFlatMessage(s.texty, toBinary(s.texty, create(s.texty, { data: new Uint8Array(3), note: "hi" }))), undefined);
    // A closed enum keeps unknown values as unknown fields: not taken.
    assert.equal(decodeFlatMessage(s.small2, Uint8Array.of(0x28, 2)), undefined);
  });
});
