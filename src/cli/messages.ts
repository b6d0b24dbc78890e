/**
 * JSON in, JSON out, for messages known only at run time: requests are parsed against the
 * method's input type with errors that say which field and what it expects; responses are
 * printed as canonical proto3 JSON, one per line.
 */
import { fromJson, toJsonString, type DescExtension, type DescField, type DescMessage, type JsonValue, type Message, type Registry } from "@bufbuild/protobuf";
import { CliError } from "./output.js";

/** A field's type as a person would write it in a .proto file. */
export function fieldType(f: DescField | DescExtension): string {
  const scalarNames = ["", "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "", "", "bytes", "uint32", "", "sfixed32", "sfixed64", "sint32", "sint64"];
  switch (f.fieldKind) {
    case "scalar":
      return scalarNames[f.scalar] ?? "scalar";
    case "enum":
      return f.enum.typeName;
    case "message":
      return f.message.typeName;
    case "list":
      return `repeated ${f.listKind === "scalar" ? (scalarNames[f.scalar] ?? "scalar") : f.listKind === "enum" ? f.enum.typeName : f.message.typeName}`;
    case "map":
      return `map<${scalarNames[f.mapKey] ?? "key"}, ${f.mapKind === "scalar" ? (scalarNames[f.scalar] ?? "scalar") : f.mapKind === "enum" ? f.enum.typeName : f.message.typeName}>`;
  }
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

/** Parses request number `n` (1-based) from JSON text against `schema`. */
export function parseRequest(schema: DescMessage, text: string, n: number, registry: Registry, ignoreUnknownFields = false): Message {
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new CliError(`request ${n} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return fromJson(schema, json, { registry, ignoreUnknownFields });
  } catch (e) {
    throw new CliError(`request ${n} does not match ${schema.typeName}: ${explain(schema, (e as Error).message)}`);
  }
}

/** Rewrites protobuf-es's decode error into one that says what to change. */
function explain(schema: DescMessage, raw: string): string {
  const unknown = /cannot decode message ([\w.]+) from JSON: key "([^"]*)" is unknown/.exec(raw);
  if (unknown !== null) {
    const [, typeName, key] = unknown;
    const message = typeName === schema.typeName ? schema : findNested(schema, typeName!);
    const fields = message?.fields ?? [];
    const near = fields.map((f) => ({ f, d: Math.min(distance(key!, f.jsonName), distance(key!, f.name)) })).sort((a, b) => a.d - b.d)[0];
    const suggestion = near !== undefined && near.d <= Math.max(2, key!.length / 3) ? ` (did you mean "${near.f.jsonName}"?)` : "";
    const list = fields.map((f) => `${f.jsonName} (${fieldType(f)})`).join(", ");
    return `${typeName} has no field "${key}"${suggestion}; its fields are: ${list || "none"} (--allow-unknown-fields ignores such fields)`;
  }
  const field = /cannot decode field ([\w.]+) from JSON: (.*)$/.exec(raw);
  if (field !== null) return `field ${field[1]}: ${field[2]}`;
  return raw.replace(/^cannot decode message [\w.]+ from JSON: /, "");
}

function findNested(root: DescMessage, typeName: string, seen = new Set<string>()): DescMessage | undefined {
  if (seen.has(root.typeName)) return undefined;
  seen.add(root.typeName);
  for (const f of root.fields) {
    const m = f.fieldKind === "message" ? f.message : f.fieldKind === "list" && f.listKind === "message" ? f.message : f.fieldKind === "map" && f.mapKind === "message" ? f.message : undefined;
    if (m === undefined) continue;
    if (m.typeName === typeName) return m;
    const deeper = findNested(m, typeName, seen);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

/** A response as one line of canonical proto3 JSON. */
export function formatResponse(schema: DescMessage, message: Message, registry: Registry, emitDefaults: boolean): string {
  return toJsonString(schema, message, { registry, alwaysEmitImplicit: emitDefaults });
}
