/**
 * A fast binary encoder for flat messages: every field singular and outside a oneof, of a scalar
 * type (any of the 15), an enum, or a message type that is itself flat (so `DownloadResponse {
 * Chunk chunk }` qualifies); implicit presence (plain proto3) or explicit presence (`optional`).
 * 64-bit integers must be bigints, as protobuf-es represents them by default.
 *
 * Why: protobuf-es `toBinary` starts every message in a fresh 128-byte zeroed buffer, grows it by
 * copying, forks a second buffer per nested message, and finally copies the result out: for a
 * small message that costs more than everything else Rill does per message, and a 64 KiB `bytes`
 * chunk inside a nested message is copied twice. Knowing the exact size first, we allocate once
 * (from node's buffer pool when small) and copy every byte once.
 *
 * Invariant: the output is byte-for-byte what `toBinary` writes (fields in number order, implicit
 * presence zero values skipped, explicit presence fields and nested messages, even empty ones,
 * written when set). Anything outside the flat shape (lists, maps, oneofs, groups, well-known
 * types nested as fields, recursive or deeper than MAX_HEIGHT message types), a message carrying
 * unknown fields, or a value `toBinary` would have to coerce or reject (a number or string where a
 * bigint belongs, an out-of-range integer) returns undefined, and the caller uses `toBinary`,
 * which then also produces its own error messages.
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { allocatePayload } from "../protocol/frame.js";

/** Messages from this size on are allocated with room for their frame header (small ones come from node's pool). */
const HEADER_ROOM_FROM = 64 * 1024;

const enum Kind {
  String,
  Bytes,
  Bool,
  /** int32 and enums: a varint, negative values sign-extended to 10 bytes. */
  Int32,
  Uint32,
  Sint32,
  Fixed32,
  Sfixed32,
  Float,
  Double,
  Int64,
  Uint64,
  Sint64,
  Fixed64,
  Sfixed64,
  Message,
  /**
   * A field outside the flat shape (a list, map, oneof, well-known type or non-flat message):
   * only in a partial plan, and only while the value leaves it unset, which writes nothing.
   */
  Unset,
}

interface FieldPlan {
  readonly localName: string;
  readonly kind: Kind;
  /** The field's tag as varint bytes. */
  readonly tag: Uint8Array;
  /** With implicit presence, the number that is not written: 0, or an enum's first value. */
  readonly zero: number;
  /** Explicit presence: written whenever set, zero or not (and `toBinary` wants an own property). */
  readonly explicit: boolean;
  /** For Kind.Message: the nested type's plan. */
  readonly message: MessagePlan | undefined;
}

interface MessagePlan {
  readonly typeName: string;
  readonly fields: readonly FieldPlan[];
  /** 1 for a message without message fields, else 1 + the largest height among them. */
  readonly height: number;
  /** Some field, here or in a nested type, is Kind.Unset: encodable only by `encodeFlatMessage(…, true)`. */
  readonly partial: boolean;
}

const EXPLICIT = 1;
const IMPLICIT = 2;
/**
 * The deepest nesting of message types compiled. Recursive types are declined outright, so with
 * this bound every encoding recurses at most MAX_HEIGHT times, whatever the value holds.
 */
const MAX_HEIGHT = 16;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const plans = new WeakMap<DescMessage, MessagePlan | null>();

/**
 * The encoding of `message`, or undefined when it is not a flat message. `message` is a message
 * of `schema`, or a plain init object for it (no `$typeName`): a field it leaves undefined is
 * written as `create()` would default it, i.e. not at all, so the init object needs no `create()`;
 * the same holds for the init objects of nested messages.
 *
 * With `partial`, a message type with fields outside the flat shape is encoded too, as long as
 * this value leaves every such field unset (undefined, an empty list or map, a oneof without a
 * case): `SimpleRequest { Payload payload; BoolValue response_compressed; … }` carrying a large
 * payload, say. A value that sets one is declined. protoCodec uses this; without it, only types
 * that are flat throughout are encoded (the shape the random tests check exhaustively).
 */
export function encodeFlatMessage(schema: DescMessage, message: Record<string, unknown>, partial = false): Uint8Array | undefined {
  const size = sizeFlatMessage(schema, message, partial);
  if (size < 0) return undefined;
  // allocUnsafe is safe: every byte is written below. A large message gets room for its frame
  // header in front, so framing it copies nothing (see allocatePayload).
  const out = size >= HEADER_ROOM_FROM ? allocatePayload(size) : Buffer.allocUnsafe(size);
  writeSizedFlatMessage(out, 0);
  return out;
}

/**
 * Pass 1 of `encodeFlatMessage` alone: the size of `message`'s encoding, or -1 when it declines
 * (then nothing is pending). Otherwise `writeSizedFlatMessage` writes it, and must be called
 * before anything else is sized: the two split the encoding so that a caller can write the
 * message straight into a buffer of its own (a batch of frames), with no buffer of its own.
 */
export function sizeFlatMessage(schema: DescMessage, message: Record<string, unknown>, partial = false): number {
  pending = undefined;
  const plan = planFor(schema);
  if (plan === null || (plan.partial && !partial)) return -1;
  // Pass 1 validates and sizes, recording string and nested message lengths in preorder;
  // pass 2 writes, reading them back in the same order.
  // Only when used: setting an array's length is a runtime call, and most messages push nothing.
  if (lengths.length !== 0) lengths.length = 0;
  const size = sizeMessage(plan, message);
  if (size < 0) return -1;
  pending = message;
  pendingPlan = plan;
  pendingSize = size;
  return size;
}

/** Writes the message `sizeFlatMessage` sized last into `out` at `pos` (room for its size there); returns the end. */
export function writeSizedFlatMessage(out: Buffer, pos: number): number {
  const message = pending;
  if (message === undefined) throw new Error("writeSizedFlatMessage without a sized message"); // a bug in the caller
  pending = undefined;
  cursor = 0;
  const end = writeMessage(pendingPlan!, message, out, pos);
  if (end !== pos + pendingSize) throw new Error(`flat message encoder wrote ${end - pos} of ${pendingSize} bytes`); // a bug, not bad input
  return end;
}

/** Forgets the message `sizeFlatMessage` sized last, when the caller will not write it. */
export function dropSizedFlatMessage(): void {
  pending = undefined;
}

/** The message sized last and not yet written (see sizeFlatMessage), its plan and size. */
let pending: Record<string, unknown> | undefined;
let pendingPlan: MessagePlan | undefined;
let pendingSize = 0;

/**
 * Scratch space between the two passes (encoding is synchronous and never re-entered): the byte
 * lengths of strings and nested messages in the order the passes visit them.
 */
const lengths: number[] = [];
let cursor = 0;

/** Scratch: a 64-bit value split into unsigned 32-bit halves by split64. */
let lo64 = 0;
let hi64 = 0;

function planFor(schema: DescMessage): MessagePlan | null {
  let plan = plans.get(schema);
  if (plan === undefined) {
    plan = compile(schema, new Set());
    plans.set(schema, plan);
  }
  return plan;
}

/** The encoded size of `message` (tags included, its own length prefix not), or -1 to decline. */
function sizeMessage(plan: MessagePlan, message: Record<string, unknown>): number {
  if (message.$typeName !== undefined && message.$typeName !== plan.typeName) return -1;
  const unknown = message.$unknown as unknown[] | undefined;
  if (unknown !== undefined && unknown.length > 0) return -1;
  const fields = plan.fields;
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = message[f.localName];
    if (v === undefined) continue;
    if (f.explicit && !Object.prototype.hasOwnProperty.call(message, f.localName)) continue;
    let n: number;
    switch (f.kind) {
      case Kind.Unset:
        if (!isUnset(f, v)) return -1;
        continue;
      case Kind.String:
        if (typeof v !== "string") return -1;
        if (v === "" && !f.explicit) continue;
        n = Buffer.byteLength(v, "utf8");
        lengths.push(n);
        n += varintSize(n);
        break;
      case Kind.Bytes:
        if (!(v instanceof Uint8Array)) return -1;
        if (v.byteLength === 0 && !f.explicit) continue;
        n = v.byteLength + varintSize(v.byteLength);
        break;
      case Kind.Bool:
        if (typeof v !== "boolean") return -1;
        if (!v && !f.explicit) continue;
        n = 1;
        break;
      case Kind.Int32:
      case Kind.Sint32:
      case Kind.Sfixed32:
        if (typeof v !== "number" || !Number.isInteger(v) || v > 0x7fff_ffff || v < -0x8000_0000) return -1;
        if (v === f.zero && !f.explicit) continue;
        n = f.kind === Kind.Sfixed32 ? 4 : f.kind === Kind.Sint32 ? varintSize(zigzag32(v)) : v < 0 ? 10 : varintSize(v);
        break;
      case Kind.Uint32:
      case Kind.Fixed32:
        if (typeof v !== "number" || !Number.isInteger(v) || v > 0xffff_ffff || v < 0) return -1;
        if (v === 0 && !f.explicit) continue;
        n = f.kind === Kind.Fixed32 ? 4 : varintSize(v);
        break;
      case Kind.Float:
        // toBinary rejects a finite value beyond float32's range (it would round to infinity).
        if (typeof v !== "number" || (Number.isFinite(v) && !Number.isFinite(Math.fround(v)))) return -1;
        if (Object.is(v, 0) && !f.explicit) continue;
        n = 4;
        break;
      case Kind.Double:
        if (typeof v !== "number") return -1;
        if (Object.is(v, 0) && !f.explicit) continue;
        n = 8;
        break;
      case Kind.Int64:
      case Kind.Sint64:
      case Kind.Sfixed64:
        if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) return -1;
        if (v === 0n && !f.explicit) continue;
        if (f.kind === Kind.Sfixed64) n = 8;
        else {
          split64(f.kind === Kind.Sint64 ? zigzag64(v) : v);
          n = varint64Size();
        }
        break;
      case Kind.Uint64:
      case Kind.Fixed64:
        if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) return -1;
        if (v === 0n && !f.explicit) continue;
        if (f.kind === Kind.Fixed64) n = 8;
        else {
          split64(v);
          n = varint64Size();
        }
        break;
      case Kind.Message: {
        if (typeof v !== "object" || v === null || v instanceof Uint8Array || Array.isArray(v)) return -1;
        const slot = lengths.length;
        lengths.push(0);
        const inner = sizeMessage(f.message!, v as Record<string, unknown>);
        if (inner < 0) return -1;
        lengths[slot] = inner;
        n = inner + varintSize(inner);
        break;
      }
    }
    size += f.tag.byteLength + n;
  }
  return size;
}

/** Writes what sizeMessage measured (and validated); returns the position after it. */
function writeMessage(plan: MessagePlan, message: Record<string, unknown>, out: Buffer, pos: number): number {
  const fields = plan.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = message[f.localName];
    if (v === undefined) continue;
    if (f.explicit) {
      if (!Object.prototype.hasOwnProperty.call(message, f.localName)) continue;
    } else if (isImplicitZero(f, v)) continue;
    const tag = f.tag;
    // A one- or two-byte tag (field numbers below 2048) by hand: out.set is a runtime call.
    if (tag.byteLength === 1) out[pos++] = tag[0]!;
    else if (tag.byteLength === 2) {
      out[pos++] = tag[0]!;
      out[pos++] = tag[1]!;
    } else {
      out.set(tag, pos);
      pos += tag.byteLength;
    }
    switch (f.kind) {
      case Kind.String: {
        const n = lengths[cursor++]!;
        pos = writeVarint(out, pos, n);
        pos += out.write(v as string, pos, n, "utf8");
        break;
      }
      case Kind.Bytes: {
        const b = v as Uint8Array;
        pos = writeVarint(out, pos, b.byteLength);
        out.set(b, pos);
        pos += b.byteLength;
        break;
      }
      case Kind.Bool:
        out[pos++] = v ? 1 : 0;
        break;
      case Kind.Int32: {
        const x = v as number;
        pos = x < 0 ? writeNegativeVarint(out, pos, x) : writeVarint(out, pos, x);
        break;
      }
      case Kind.Uint32:
        pos = writeVarint(out, pos, v as number);
        break;
      case Kind.Sint32:
        pos = writeVarint(out, pos, zigzag32(v as number));
        break;
      case Kind.Fixed32:
        pos = out.writeUInt32LE(v as number, pos);
        break;
      case Kind.Sfixed32:
        pos = out.writeInt32LE(v as number, pos);
        break;
      case Kind.Float:
        pos = out.writeFloatLE(v as number, pos);
        break;
      case Kind.Double:
        pos = out.writeDoubleLE(v as number, pos);
        break;
      case Kind.Int64:
      case Kind.Uint64:
        split64(v as bigint);
        pos = writeVarint64(out, pos);
        break;
      case Kind.Sint64:
        split64(zigzag64(v as bigint));
        pos = writeVarint64(out, pos);
        break;
      case Kind.Fixed64:
        pos = out.writeBigUInt64LE(v as bigint, pos);
        break;
      case Kind.Sfixed64:
        pos = out.writeBigInt64LE(v as bigint, pos);
        break;
      case Kind.Message: {
        const n = lengths[cursor++]!;
        pos = writeVarint(out, pos, n);
        pos = writeMessage(f.message!, v as Record<string, unknown>, out, pos);
        break;
      }
    }
  }
  return pos;
}

/** The implicit presence zero test, for a value sizeMessage has validated. */
function isImplicitZero(f: FieldPlan, v: unknown): boolean {
  switch (f.kind) {
    case Kind.String:
      return v === "";
    case Kind.Bytes:
      return (v as Uint8Array).byteLength === 0;
    case Kind.Bool:
      return v === false;
    case Kind.Float:
    case Kind.Double:
      return Object.is(v, 0);
    case Kind.Int64:
    case Kind.Uint64:
    case Kind.Sint64:
    case Kind.Fixed64:
    case Kind.Sfixed64:
      return v === 0n;
    case Kind.Message:
      return false;
    case Kind.Unset:
      return true;
    default:
      return v === f.zero;
  }
}

/** Whether a Kind.Unset field's value writes nothing (f.zero says what the field is: see UnsetAs). */
function isUnset(f: FieldPlan, v: unknown): boolean {
  switch (f.zero) {
    case UnsetAs.List:
      return Array.isArray(v) && v.length === 0;
    case UnsetAs.Map:
      if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
      for (const _ in v) return false;
      return true;
    case UnsetAs.Oneof:
      return typeof v === "object" && v !== null && (v as { case?: unknown }).case === undefined;
    default:
      // A message field (undefined was skipped before asking).
      return false;
  }
}

/** For Kind.Unset fields, in `zero`: what an unset value looks like besides undefined. */
const enum UnsetAs {
  Message,
  List,
  Map,
  Oneof,
}

/**
 * The plan for `schema`, or null when it is not flat. `open` holds the types being compiled
 * above this one: meeting one again means a recursive type, declined (with every type on the
 * cycle, which all reach it).
 */
function compile(schema: DescMessage, open: Set<DescMessage>): MessagePlan | null {
  const fields = [...schema.fields].sort((a, b) => a.number - b.number);
  const plan: FieldPlan[] = [];
  let height = 1;
  let partial = false;
  const oneofs = new Set<string>();
  open.add(schema);
  try {
    for (const field of fields) {
      if (field.presence !== IMPLICIT && field.presence !== EXPLICIT) return null; // proto2 required
      let nested: MessagePlan | undefined;
      if (field.fieldKind === "message") {
        const child = field.message;
        if (open.has(child)) return null;
        let childPlan = plans.get(child);
        if (childPlan === undefined) {
          childPlan = compile(child, open);
          plans.set(child, childPlan);
        }
        if (childPlan === null) return null;
        nested = childPlan;
        partial ||= childPlan.partial;
        height = Math.max(height, childPlan.height + 1);
        if (height > MAX_HEIGHT) return null;
      }
      let p = planField(field, nested);
      if (p === undefined) {
        if (field.fieldKind === "message" && field.delimitedEncoding) return null; // a group
        p = unsetField(field);
        if (field.oneof !== undefined) {
          if (oneofs.has(p.localName)) continue;
          oneofs.add(p.localName);
        }
        partial = true;
      }
      plan.push(p);
    }
  } finally {
    open.delete(schema);
  }
  return { typeName: schema.typeName, fields: plan, height, partial };
}

/** A field outside the flat shape, which a partial plan encodes only while the value leaves it unset. */
function unsetField(field: DescField): FieldPlan {
  const oneof = field.oneof;
  const localName = oneof !== undefined ? oneof.localName : field.localName;
  const as = oneof !== undefined ? UnsetAs.Oneof : field.fieldKind === "list" ? UnsetAs.List : field.fieldKind === "map" ? UnsetAs.Map : UnsetAs.Message;
  return { localName, kind: Kind.Unset, tag: new Uint8Array(0), zero: as, explicit: false, message: undefined };
}

function planField(field: DescField, nested: MessagePlan | undefined): FieldPlan | undefined {
  if (field.oneof !== undefined || (field.presence !== IMPLICIT && field.presence !== EXPLICIT)) return undefined;
  let kind: Kind;
  let zero = 0;
  let wireType = 0;
  if (field.fieldKind === "enum") {
    kind = Kind.Int32;
    zero = field.enum.values[0]?.number ?? 0;
  } else if (field.fieldKind === "message") {
    // Fields of well-known types may have a local representation other than the message
    // (wrappers are unboxed, Struct is a JSON object): toBinary handles those.
    if (nested === undefined || field.delimitedEncoding || field.message.typeName.startsWith("google.protobuf.")) return undefined;
    kind = Kind.Message;
    wireType = 2;
  } else if (field.fieldKind === "scalar") {
    [kind, wireType] = scalarKind(field.scalar);
    if (kind < 0) return undefined;
  } else {
    return undefined;
  }
  const tagValue = ((field.number << 3) | wireType) >>> 0;
  const tag = new Uint8Array(varintSize(tagValue));
  writeVarint(tag, 0, tagValue);
  return { localName: field.localName, kind, tag, zero, explicit: field.presence === EXPLICIT, message: nested };
}

/** The kind and wire type of a scalar. */
function scalarKind(scalar: ScalarType): [Kind, number] {
  switch (scalar) {
    case ScalarType.STRING:
      return [Kind.String, 2];
    case ScalarType.BYTES:
      return [Kind.Bytes, 2];
    case ScalarType.BOOL:
      return [Kind.Bool, 0];
    case ScalarType.INT32:
      return [Kind.Int32, 0];
    case ScalarType.UINT32:
      return [Kind.Uint32, 0];
    case ScalarType.SINT32:
      return [Kind.Sint32, 0];
    case ScalarType.FIXED32:
      return [Kind.Fixed32, 5];
    case ScalarType.SFIXED32:
      return [Kind.Sfixed32, 5];
    case ScalarType.FLOAT:
      return [Kind.Float, 5];
    case ScalarType.DOUBLE:
      return [Kind.Double, 1];
    case ScalarType.INT64:
      return [Kind.Int64, 0];
    case ScalarType.UINT64:
      return [Kind.Uint64, 0];
    case ScalarType.SINT64:
      return [Kind.Sint64, 0];
    case ScalarType.FIXED64:
      return [Kind.Fixed64, 1];
    case ScalarType.SFIXED64:
      return [Kind.Sfixed64, 1];
  }
  return [-1 as Kind, 0];
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x20_0000 ? 3 : v < 0x1000_0000 ? 4 : 5;
}

/** Writes a non-negative integer below 2^32 as a varint; returns the position after it. */
function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** A negative int32 is sign-extended to 64 bits: always 10 bytes. */
function writeNegativeVarint(out: Uint8Array, pos: number, v: number): number {
  for (let i = 0; i < 9; i++) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>= 7;
  }
  out[pos++] = 1;
  return pos;
}

function zigzag32(v: number): number {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

/** Zigzag of a signed 64-bit bigint, as an unsigned 64-bit bigint. */
function zigzag64(v: bigint): bigint {
  return v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
}

/** Splits a 64-bit bigint (two's complement when negative) into lo64 / hi64. */
function split64(v: bigint): void {
  if (v >= 0n && v <= 0xffff_ffffn) {
    lo64 = Number(v);
    hi64 = 0;
    return;
  }
  const u = BigInt.asUintN(64, v);
  lo64 = Number(u & 0xffff_ffffn);
  hi64 = Number(u >> 32n);
}

/** The varint size of lo64 / hi64. */
function varint64Size(): number {
  if (hi64 === 0) return varintSize(lo64);
  return Math.ceil((64 - Math.clz32(hi64)) / 7);
}

/** Writes lo64 / hi64 as a varint; returns the position after it. */
function writeVarint64(out: Uint8Array, pos: number): number {
  let lo = lo64;
  let hi = hi64;
  while (hi !== 0 || lo > 0x7f) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[pos++] = lo;
  return pos;
}
