import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, ScalarType, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import * as alexandria from "../../gen/alexandria/alexandria_pb.js";
import * as bench from "../../gen/bench/v1/bench_pb.js";
import * as echo from "../../gen/echo/echo_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as messages from "../../gen/grpc/testing/messages_pb.js";
import * as longlived from "../../gen/longlived/longlived_pb.js";
import * as pubsub from "../../gen/rill/pubsub/v1/pubsub_pb.js";
import * as routeguide from "../../gen/routeguide/route_guide_pb.js";
import * as video from "../../gen/video/video_pb.js";
import { protoCodec } from "../../src/codec/codec.js";
import { encodeFlatMessage } from "../../src/codec/flat-message-encoder.js";
import { FRAME_HEADER_LENGTH } from "../../src/protocol/frame.js";

/**
 * The partial mode of the flat encoder (what protoCodec uses): message types with lists, maps,
 * oneofs, well-known types or non-flat nested types are encoded by the fast path while a value
 * leaves those fields unset, byte for byte as toBinary, and declined as soon as it sets one.
 */
const schemas: DescMessage[] = [alexandria, bench, echo, reflectionV1, messages, longlived, pubsub, routeguide, video].flatMap((mod) =>
  Object.values(mod).filter((v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message"),
);

/** xorshift32, so a failure reproduces. */
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
type Rng = ReturnType<typeof rng>;

function scalar(t: ScalarType, g: Rng): unknown {
  switch (t) {
    case ScalarType.STRING:
      return ["", "a", "ü日本", "x".repeat(300)][g.int(4)];
    case ScalarType.BYTES:
      return new Uint8Array([0, 1, 200, 70_000][g.int(4)]!).fill(7);
    case ScalarType.BOOL:
      return g.next() < 0.5;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return [0, 1.5, -2.25][g.int(3)];
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return [0n, -1n, 2n ** 40n][g.int(3)];
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return [0n, 1n, 2n ** 63n][g.int(3)];
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return [0, 1, 0xffff_ffff][g.int(3)];
    default:
      return [0, -1, 300][g.int(3)];
  }
}

/** A random value for `field`; lists, maps and oneofs are mostly left empty, sometimes filled. */
function value(field: DescField, g: Rng, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar, g);
    case "enum":
      return field.enum.values[g.int(field.enum.values.length)]!.number;
    case "message":
      return depth > 3 || g.next() < 0.4 ? undefined : randomMessage(field.message, g, depth + 1);
    case "list":
      return g.next() < 0.8 || field.listKind !== "scalar" ? [] : [scalar(field.scalar, g)];
    case "map":
      return g.next() < 0.8 || field.mapKey !== ScalarType.STRING || field.mapKind !== "scalar" ? {} : { k: scalar(field.scalar, g) };
  }
}

function randomMessage(schema: DescMessage, g: Rng, depth = 0): Record<string, unknown> {
  const m = create(schema) as Record<string, unknown>;
  for (const f of schema.fields) {
    if (g.next() < 0.3) continue;
    if (f.oneof !== undefined) {
      if (g.next() < 0.7 || f.fieldKind !== "scalar") continue;
      m[f.oneof.localName] = { case: f.localName, value: scalar(f.scalar, g) };
      continue;
    }
    const v = value(f, g, depth);
    if (v !== undefined) m[f.localName] = v;
  }
  return m;
}

describe("flat message encoder, partial mode", () => {
  test("encodes every message type exactly as toBinary while the fields outside the flat shape are unset, and declines the rest", () => {
    const g = rng(20261204);
    let partialFast = 0;
    let declined = 0;
    const partialTypes = new Set<string>();
    for (const schema of schemas) {
      for (let round = 0; round < 100; round++) {
        const message = randomMessage(schema, g);
        const expected = toBinary(schema, message as never);
        const fast = encodeFlatMessage(schema, message, true);
        if (fast === undefined) declined++;
        else {
          assert.deepEqual(new Uint8Array(fast), expected, schema.typeName);
          if (encodeFlatMessage(schema, message) === undefined) {
            partialFast++;
            partialTypes.add(schema.typeName);
          }
        }
        assert.deepEqual(new Uint8Array(protoCodec.encode(schema, message as never)), expected, `protoCodec ${schema.typeName}`);
      }
    }
    assert.ok(partialFast >= 500, `only ${partialFast} messages took the partial path`);
    assert.ok(declined >= 100, `only ${declined} declined`);
    for (const name of ["grpc.testing.SimpleRequest", "grpc.reflection.v1.ServerReflectionRequest"]) assert.ok(partialTypes.has(name), `${name} takes the partial path`);
  });

  test("a large SimpleRequest is encoded in one buffer with room for its frame header; setting a field outside the flat shape declines it", () => {
    const body = new Uint8Array(1 << 20).fill(3);
    const req = create(messages.SimpleRequestSchema, { responseSize: 8, payload: { body } });
    assert.equal(encodeFlatMessage(messages.SimpleRequestSchema, req as never), undefined, "not flat throughout: declined without partial");
    const fast = encodeFlatMessage(messages.SimpleRequestSchema, req as never, true)!;
    assert.deepEqual(new Uint8Array(fast), toBinary(messages.SimpleRequestSchema, req));
    assert.equal(fast.buffer.byteLength, FRAME_HEADER_LENGTH + fast.byteLength);
    // grpc.testing.BoolValue is a flat message of its own (not the well-known wrapper): encoded.
    const wrapped = create(messages.SimpleRequestSchema, { responseSize: 8, responseCompressed: { value: true } });
    assert.deepEqual(new Uint8Array(encodeFlatMessage(messages.SimpleRequestSchema, wrapped as never, true)!), toBinary(messages.SimpleRequestSchema, wrapped));
    // A nested type with a non-empty map, a oneof with a case: toBinary's job.
    const orca = create(messages.SimpleRequestSchema, { orcaPerQueryReport: { requestCost: { a: 1 } } });
    assert.equal(encodeFlatMessage(messages.SimpleRequestSchema, orca as never, true), undefined);
    const emptyMap = create(messages.SimpleRequestSchema, { orcaPerQueryReport: { cpuUtilization: 0.5 } });
    assert.deepEqual(new Uint8Array(encodeFlatMessage(messages.SimpleRequestSchema, emptyMap as never, true)!), toBinary(messages.SimpleRequestSchema, emptyMap));
    const withCase = create(reflectionV1.ServerReflectionRequestSchema, { host: "h", messageRequest: { case: "listServices", value: "" } });
    assert.equal(encodeFlatMessage(reflectionV1.ServerReflectionRequestSchema, withCase as never, true), undefined);
    const noCase = create(reflectionV1.ServerReflectionRequestSchema, { host: "h" });
    assert.deepEqual(new Uint8Array(encodeFlatMessage(reflectionV1.ServerReflectionRequestSchema, noCase as never, true)!), toBinary(reflectionV1.ServerReflectionRequestSchema, noCase));
    // Plain init objects: a list or map left out is unset; one given with entries is declined.
    assert.deepEqual(new Uint8Array(encodeFlatMessage(messages.SimpleRequestSchema, { responseSize: 1 }, true)!), toBinary(messages.SimpleRequestSchema, create(messages.SimpleRequestSchema, { responseSize: 1 })));
    assert.equal(encodeFlatMessage(messages.SimpleRequestSchema, { orcaPerQueryReport: { requestCost: { a: 1 } } }, true), undefined);
  });
});
