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
  /** The encoded size of a message (tags included, its own length prefix not), or -1 to decline; see `generate`. */
  readonly size: (message: Record<string, unknown>) => number;
  /** Writes what `size` measured (and validated) at `pos`; returns the position after it. */
  readonly write: (message: Record<string, unknown>, out: Buffer, pos: number) => number;
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
  const size = plan.size(message);
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
  const end = pendingPlan!.write(message, out, pos);
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

/**
 * The size and write functions of a plan, generated as JavaScript source with one block per
 * field: each reads its field by a constant name and calls the helper of its kind, so V8 sees one
 * property shape per read, where a loop over the plan's fields (`message[f.localName]`, then a
 * switch on the kind) made every read megamorphic: 131 → 95 ns to size and write a message of one
 * 64-byte bytes field, and 0.52 → 0.43–0.49 µs of server CPU per message on the bench's 64 B
 * server stream. Field names and the type name enter the source only as JSON string literals. Where code cannot be generated from strings (node's
 * --disallow-code-generation-from-strings), there is no plan: the caller uses `toBinary`.
 *
 * Size helpers return -1 to decline, 0 for a value that writes nothing (an implicit-presence
 * zero), else the bytes after the tag.
 */
function generate(typeName: string, fields: readonly FieldPlan[]): Pick<MessagePlan, "size" | "write"> {
  const nested: MessagePlan[] = [];
  const sizeBody: string[] = [];
  const writeBody: string[] = [];
  for (const f of fields) {
    const key = JSON.stringify(f.localName);
    const present = f.explicit ? `v !== undefined && hasOwn(m, ${key})` : "v !== undefined";
    if (f.kind === Kind.Unset) {
      sizeBody.push(`v = m[${key}]; if (v !== undefined && !isUnset(${f.zero}, v)) return -1;`);
      continue;
    }
    let j = -1;
    if (f.kind === Kind.Message) {
      j = nested.length;
      nested.push(f.message!);
    }
    const e = f.explicit;
    const sizeOf: Record<Kind, string> = {
      [Kind.String]: `sizeString(v, ${e})`,
      [Kind.Bytes]: `sizeBytes(v, ${e})`,
      [Kind.Bool]: `sizeBool(v, ${e})`,
      [Kind.Int32]: `sizeInt32(v, ${e}, ${f.zero})`,
      [Kind.Sint32]: `sizeSint32(v, ${e})`,
      [Kind.Sfixed32]: `sizeSfixed32(v, ${e})`,
      [Kind.Uint32]: `sizeUint32(v, ${e})`,
      [Kind.Fixed32]: `sizeFixed32(v, ${e})`,
      [Kind.Float]: `sizeFloat(v, ${e})`,
      [Kind.Double]: `sizeDouble(v, ${e})`,
      [Kind.Int64]: `sizeInt64(v, ${e})`,
      [Kind.Sint64]: `sizeSint64(v, ${e})`,
      [Kind.Sfixed64]: `sizeSfixed64(v, ${e})`,
      [Kind.Uint64]: `sizeUint64(v, ${e})`,
      [Kind.Fixed64]: `sizeFixed64(v, ${e})`,
      [Kind.Message]: `sizeNested(nested[${j}], v)`,
      [Kind.Unset]: "",
    };
    sizeBody.push(`v = m[${key}]; if (${present}) { n = ${sizeOf[f.kind]}; if (n < 0) return -1; if (n > 0) size += ${f.tag.byteLength} + n; }`);
    // With implicit presence, a value the size pass found to be its zero writes nothing.
    const nonZero: Record<Kind, string> = {
      [Kind.String]: `v !== ""`,
      [Kind.Bytes]: "v.byteLength !== 0",
      [Kind.Bool]: "v !== false",
      [Kind.Float]: "!Object.is(v, 0)",
      [Kind.Double]: "!Object.is(v, 0)",
      [Kind.Int64]: "v !== 0n",
      [Kind.Uint64]: "v !== 0n",
      [Kind.Sint64]: "v !== 0n",
      [Kind.Fixed64]: "v !== 0n",
      [Kind.Sfixed64]: "v !== 0n",
      [Kind.Message]: "true",
      [Kind.Int32]: `v !== ${f.zero}`,
      [Kind.Sint32]: "v !== 0",
      [Kind.Sfixed32]: "v !== 0",
      [Kind.Uint32]: "v !== 0",
      [Kind.Fixed32]: "v !== 0",
      [Kind.Unset]: "false",
    };
    const writeOf: Record<Kind, string> = {
      [Kind.String]: "pos = writeString(out, pos, v)",
      [Kind.Bytes]: "pos = writeBytes(out, pos, v)",
      [Kind.Bool]: "out[pos++] = v ? 1 : 0",
      [Kind.Int32]: "pos = v < 0 ? writeNegativeVarint(out, pos, v) : writeVarint(out, pos, v)",
      [Kind.Uint32]: "pos = writeVarint(out, pos, v)",
      [Kind.Sint32]: "pos = writeVarint(out, pos, zigzag32(v))",
      [Kind.Fixed32]: "pos = out.writeUInt32LE(v, pos)",
      [Kind.Sfixed32]: "pos = out.writeInt32LE(v, pos)",
      [Kind.Float]: "pos = out.writeFloatLE(v, pos)",
      [Kind.Double]: "pos = out.writeDoubleLE(v, pos)",
      [Kind.Int64]: "pos = writeInt64(out, pos, v)",
      [Kind.Uint64]: "pos = writeInt64(out, pos, v)",
      [Kind.Sint64]: "pos = writeSint64(out, pos, v)",
      [Kind.Fixed64]: "pos = out.writeBigUInt64LE(v, pos)",
      [Kind.Sfixed64]: "pos = out.writeBigInt64LE(v, pos)",
      [Kind.Message]: `pos = writeNested(nested[${j}], out, pos, v)`,
      [Kind.Unset]: "",
    };
    const tagBytes = [...f.tag].map((b) => `out[pos++] = ${b};`).join(" ");
    writeBody.push(`v = m[${key}]; if (${present}${e ? "" : ` && ${nonZero[f.kind]}`}) { ${tagBytes} ${writeOf[f.kind]}; }`);
  }
  const source = `"use strict";
return {
  size(m) {
    if (m.$typeName !== undefined && m.$typeName !== ${JSON.stringify(typeName)}) return -1;
    const u = m.$unknown;
    if (u !== undefined && u.length > 0) return -1;
    let size = 0, v, n;
    ${sizeBody.join("\n    ")}
    return size;
  },
  write(m, out, pos) {
    let v;
    ${writeBody.join("\n    ")}
    return pos;
  },
};`;
  const names = Object.keys(runtime);
  const made = new Function("nested", ...names, source)(nested, ...names.map((k) => runtime[k as keyof typeof runtime])) as Pick<MessagePlan, "size" | "write">;
  return { size: made.size, write: made.write };
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function sizeString(v: unknown, explicit: boolean): number {
  if (typeof v !== "string") return -1;
  if (v === "" && !explicit) return 0;
  const n = Buffer.byteLength(v, "utf8");
  lengths.push(n);
  return n + varintSize(n);
}

function sizeBytes(v: unknown, explicit: boolean): number {
  if (!(v instanceof Uint8Array)) return -1;
  if (v.byteLength === 0 && !explicit) return 0;
  return v.byteLength + varintSize(v.byteLength);
}

function sizeBool(v: unknown, explicit: boolean): number {
  if (typeof v !== "boolean") return -1;
  return !v && !explicit ? 0 : 1;
}

function isInt32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v <= 0x7fff_ffff && v >= -0x8000_0000;
}

function isUint32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v <= 0xffff_ffff && v >= 0;
}

/** int32 and enums (`zero`: the enum's first value): negative values take 10 bytes. */
function sizeInt32(v: unknown, explicit: boolean, zero: number): number {
  if (!isInt32(v)) return -1;
  if (v === zero && !explicit) return 0;
  return v < 0 ? 10 : varintSize(v);
}

function sizeSint32(v: unknown, explicit: boolean): number {
  if (!isInt32(v)) return -1;
  return v === 0 && !explicit ? 0 : varintSize(zigzag32(v));
}

function sizeSfixed32(v: unknown, explicit: boolean): number {
  if (!isInt32(v)) return -1;
  return v === 0 && !explicit ? 0 : 4;
}

function sizeUint32(v: unknown, explicit: boolean): number {
  if (!isUint32(v)) return -1;
  return v === 0 && !explicit ? 0 : varintSize(v);
}

function sizeFixed32(v: unknown, explicit: boolean): number {
  if (!isUint32(v)) return -1;
  return v === 0 && !explicit ? 0 : 4;
}

function sizeFloat(v: unknown, explicit: boolean): number {
  // toBinary rejects a finite value beyond float32's range (it would round to infinity).
  if (typeof v !== "number" || (Number.isFinite(v) && !Number.isFinite(Math.fround(v)))) return -1;
  return Object.is(v, 0) && !explicit ? 0 : 4;
}

function sizeDouble(v: unknown, explicit: boolean): number {
  if (typeof v !== "number") return -1;
  return Object.is(v, 0) && !explicit ? 0 : 8;
}

function isInt64(v: unknown): v is bigint {
  return typeof v === "bigint" && v >= INT64_MIN && v <= INT64_MAX;
}

function isUint64(v: unknown): v is bigint {
  return typeof v === "bigint" && v >= 0n && v <= UINT64_MAX;
}

function sizeInt64(v: unknown, explicit: boolean): number {
  if (!isInt64(v)) return -1;
  if (v === 0n && !explicit) return 0;
  split64(v);
  return varint64Size();
}

function sizeSint64(v: unknown, explicit: boolean): number {
  if (!isInt64(v)) return -1;
  if (v === 0n && !explicit) return 0;
  split64(zigzag64(v));
  return varint64Size();
}

function sizeSfixed64(v: unknown, explicit: boolean): number {
  if (!isInt64(v)) return -1;
  return v === 0n && !explicit ? 0 : 8;
}

function sizeUint64(v: unknown, explicit: boolean): number {
  if (!isUint64(v)) return -1;
  if (v === 0n && !explicit) return 0;
  split64(v);
  return varint64Size();
}

function sizeFixed64(v: unknown, explicit: boolean): number {
  if (!isUint64(v)) return -1;
  return v === 0n && !explicit ? 0 : 8;
}

/** A nested message, written whenever set (even empty); its length is recorded for the write pass. */
function sizeNested(plan: MessagePlan, v: unknown): number {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array || Array.isArray(v)) return -1;
  const slot = lengths.length;
  lengths.push(0);
  const inner = plan.size(v as Record<string, unknown>);
  if (inner < 0) return -1;
  lengths[slot] = inner;
  return inner + varintSize(inner);
}

function writeString(out: Buffer, pos: number, v: string): number {
  const n = lengths[cursor++]!;
  pos = writeVarint(out, pos, n);
  return pos + out.write(v, pos, n, "utf8");
}

function writeBytes(out: Buffer, pos: number, v: Uint8Array): number {
  pos = writeVarint(out, pos, v.byteLength);
  out.set(v, pos);
  return pos + v.byteLength;
}

function writeInt64(out: Buffer, pos: number, v: bigint): number {
  split64(v);
  return writeVarint64(out, pos);
}

function writeSint64(out: Buffer, pos: number, v: bigint): number {
  split64(zigzag64(v));
  return writeVarint64(out, pos);
}

function writeNested(plan: MessagePlan, out: Buffer, pos: number, v: Record<string, unknown>): number {
  pos = writeVarint(out, pos, lengths[cursor++]!);
  return plan.write(v, out, pos);
}

/** What generated code calls, by these names. */
const runtime = {
  hasOwn,
  isUnset,
  sizeString,
  sizeBytes,
  sizeBool,
  sizeInt32,
  sizeSint32,
  sizeSfixed32,
  sizeUint32,
  sizeFixed32,
  sizeFloat,
  sizeDouble,
  sizeInt64,
  sizeSint64,
  sizeSfixed64,
  sizeUint64,
  sizeFixed64,
  sizeNested,
  writeString,
  writeBytes,
  writeVarint,
  writeNegativeVarint,
  zigzag32,
  writeInt64,
  writeSint64,
  writeNested,
};

/** Whether a Kind.Unset field's value writes nothing (`as`, the plan's `zero`, says what the field is). */
function isUnset(as: UnsetAs, v: unknown): boolean {
  switch (as) {
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
  let made: Pick<MessagePlan, "size" | "write">;
  try {
    made = generate(schema.typeName, plan);
  } catch (e) {
    // Code generation from strings is disallowed: no plan, toBinary encodes this type.
    if (e instanceof EvalError) return null;
    throw e;
  }
  return { typeName: schema.typeName, fields: plan, height, partial, ...made };
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
