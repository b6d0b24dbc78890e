/**
 * A fast binary decoder for the simplest messages: every field singular, outside a oneof, and
 * of type bytes, bool, int32, uint32 or an open enum (`bench.v1.Payload { bytes data = 1; }`,
 * a chunk of bytes with a few numbers beside it).
 *
 * Why: protobuf-es `fromBinary` builds a BinaryReader (with a DataView), a read context (two
 * Object.assign) and a [fieldNo, wireType] array per tag for every message. For a 64 B message
 * that was most of what receiving it cost (a fifth of the client's CPU in a 64 B server stream).
 *
 * Invariant: the result is what `fromBinary` returns: the message from `create(schema)`, each
 * field assigned as its field reader assigns it (bytes as a view of the input, as its reader
 * does), last value wins. This decoder only walks the common well-formed case: anything else (an
 * unknown field, a wire type the field does not use, a varint longer than 4 bytes, a bool other
 * than 0/1, a length past the end) returns undefined, and the caller decodes the input again
 * with `fromBinary`, which then keeps unknown fields and produces its own errors.
 */
import { ScalarType, create, type DescMessage } from "@bufbuild/protobuf";

const enum Kind {
  Bytes,
  Bool,
  Int32,
  Uint32,
}

interface FieldPlan {
  readonly localName: string;
  readonly kind: Kind;
  /** The tag byte this field is written with (field numbers 1 to 15, so one byte). */
  readonly tag: number;
}

interface Plan {
  /** Per field number 1..15: the field's plan, or undefined for a number the message does not have. */
  readonly fields: ReadonlyArray<FieldPlan | undefined>;
  /**
   * `create(schema)` once, when it is a plain object: a copy of it is what create() returns
   * (own properties in the same order, the same shared default values; scalar fields only), for
   * less than half the time. undefined for a message with a prototype (proto2 defaults).
   */
  readonly zero: Record<string, unknown> | undefined;
}

const plans = new WeakMap<DescMessage, Plan | null>();

/** The message `bytes` encode, or undefined when the fast path does not apply (see the file comment). */
export function decodeFlatMessage(schema: DescMessage, bytes: Uint8Array): Record<string, unknown> | undefined {
  let plan = plans.get(schema);
  if (plan === undefined) {
    plan = compile(schema);
    plans.set(schema, plan);
  }
  if (plan === null) return undefined;
  const zero = plan.zero;
  const message = zero !== undefined ? { ...zero } : (create(schema) as Record<string, unknown>);
  const fields = plan.fields;
  const end = bytes.byteLength;
  let pos = 0;
  while (pos < end) {
    const tag = bytes[pos++]!;
    // A tag of field 1..15 is one byte; a larger field number is not in any plan.
    if (tag >= 0x80) return undefined;
    const field = fields[tag >>> 3];
    if (field === undefined || field.tag !== tag) return undefined;
    // Varints of up to 4 bytes (values below 2^28) only: longer ones are left to fromBinary.
    let b = bytes[pos++];
    if (b === undefined) return undefined;
    let v = b & 0x7f;
    if (b >= 0x80) {
      b = bytes[pos++];
      if (b === undefined) return undefined;
      v |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = bytes[pos++];
        if (b === undefined) return undefined;
        v |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = bytes[pos++];
          if (b === undefined || b >= 0x80) return undefined;
          v |= b << 21;
        }
      }
    }
    switch (field.kind) {
      case Kind.Bytes:
        if (v > end - pos) return undefined;
        message[field.localName] = bytes.subarray(pos, pos + v);
        pos += v;
        break;
      case Kind.Bool:
        if (v > 1) return undefined;
        message[field.localName] = v === 1;
        break;
      default:
        // int32, uint32 and open enums below 2^28: the same number either way.
        message[field.localName] = v;
    }
  }
  return message;
}

function compile(schema: DescMessage): Plan | null {
  const fields: Array<FieldPlan | undefined> = [];
  for (const field of schema.fields) {
    if (field.number > 15 || field.oneof !== undefined) return null;
    let kind: Kind;
    let wireType = 0;
    if (field.fieldKind === "enum") {
      if (!field.enum.open) return null;
      kind = Kind.Int32;
    } else if (field.fieldKind === "scalar") {
      switch (field.scalar) {
        case ScalarType.BYTES:
          kind = Kind.Bytes;
          wireType = 2;
          break;
        case ScalarType.BOOL:
          kind = Kind.Bool;
          break;
        case ScalarType.INT32:
          kind = Kind.Int32;
          break;
        case ScalarType.UINT32:
          kind = Kind.Uint32;
          break;
        default:
          return null;
      }
    } else {
      return null;
    }
    fields[field.number] = { localName: field.localName, kind, tag: (field.number << 3) | wireType };
  }
  for (let i = 0; i <= 15; i++) fields[i] ??= undefined;
  const zero = create(schema) as Record<string, unknown>;
  return { fields, zero: Object.getPrototypeOf(zero) === Object.prototype ? zero : undefined };
}
