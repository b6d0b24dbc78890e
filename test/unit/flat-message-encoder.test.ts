import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, isMessage, ScalarType, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import * as bench from "../../gen/bench/v1/bench_pb.js";
import * as echo from "../../gen/echo/echo_pb.js";
import * as messages from "../../gen/grpc/testing/messages_pb.js";
import * as alexandria from "../../gen/alexandria/alexandria_pb.js";
import { DoubleValueSchema, UInt32ValueSchema } from "@bufbuild/protobuf/wkt";
import { protoCodec } from "../../src/codec.js";
import { encodeFlatMessage } from "../../src/flat-message-encoder.js";

/** Every message schema exported by the generated modules, and wrappers for the kinds they lack (double, uint32). */
const schemas: DescMessage[] = [
  ...[bench, echo, messages, alexandria].flatMap((mod) =>
    Object.values(mod).filter((v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message"),
  ),
  DoubleValueSchema,
  UInt32ValueSchema,
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

function randomValue(field: DescField, g: ReturnType<typeof rng>): unknown {
  const zeroSometimes = g.next() < 0.25;
  if (field.fieldKind === "enum") return zeroSometimes ? field.enum.values[0]!.number : field.enum.values[g.int(field.enum.values.length)]!.number;
  if (field.fieldKind !== "scalar") return undefined;
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
    case ScalarType.INT32: {
      const picks = [0, 1, -1, 127, 128, -128, 0x7fff_ffff, -0x8000_0000, 300, -300000];
      return zeroSometimes ? 0 : picks[g.int(picks.length)];
    }
    case ScalarType.UINT32: {
      const picks = [0, 1, 127, 128, 16_383, 16_384, 0x1fffff, 0x200000, 0xffff_ffff];
      return zeroSometimes ? 0 : picks[g.int(picks.length)];
    }
    case ScalarType.DOUBLE: {
      const picks = [0, -0, 1.5, -2.25, Number.NaN, Number.POSITIVE_INFINITY, 1e300, 5e-324];
      return zeroSometimes ? 0 : picks[g.int(picks.length)];
    }
    default:
      return undefined;
  }
}

describe("flat message encoder", () => {
  test("writes exactly what toBinary writes for every flat message schema, over many random messages", () => {
    const g = rng(20261123);
    let flat = 0;
    let compared = 0;
    for (const schema of schemas) {
      if (encodeFlatMessage(schema, create(schema) as never) === undefined) continue;
      flat++;
      for (let round = 0; round < 200; round++) {
        const init: Record<string, unknown> = {};
        for (const f of schema.fields) init[f.localName] = randomValue(f, g);
        const message = create(schema, init as never);
        const fast = encodeFlatMessage(schema, message as never);
        assert.ok(fast !== undefined, `${schema.typeName} is flat, so every valid message of it takes the fast path`);
        assert.deepEqual(new Uint8Array(fast), toBinary(schema, message), `${schema.typeName} ${JSON.stringify(init, (_, v) => (v instanceof Uint8Array ? v.length : v))}`);
        compared++;
      }
    }
    // Among them: bytes (bench Payload), string (Echo), bool, int32 and enum (grpc.testing), double and uint32 (wrappers).
    assert.ok(flat >= 10, `only ${flat} flat schemas found`);
    assert.ok(compared >= 2000);
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
    assert.equal(encodeFlatMessage(messages.SimpleRequestSchema, create(messages.SimpleRequestSchema) as never), undefined, "nested message field");
    const withUnknown = create(bench.PayloadSchema, { data: new Uint8Array([1]) });
    withUnknown.$unknown = [{ no: 9, wireType: 0, data: new Uint8Array([1]) }];
    assert.equal(encodeFlatMessage(bench.PayloadSchema, withUnknown as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), code: 1.5 } as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), code: 2 ** 31 } as never), undefined);
    assert.equal(encodeFlatMessage(messages.EchoStatusSchema, { ...create(messages.EchoStatusSchema), message: 7 } as never), undefined);
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
    assert.deepEqual(protoCodec.encode(messages.SimpleRequestSchema, req), toBinary(messages.SimpleRequestSchema, req));
  });
});
