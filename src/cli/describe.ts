/**
 * `rill describe HOST:PORT [SYMBOL]`: a service, method, message or enum, printed as .proto
 * source, followed for messages by a JSON template to start a request from.
 */
import { parseArgs } from "node:util";
import type { DescEnum, DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { callOptions, withChannel } from "./command.js";
import { loadDescriptors, type Descriptors } from "./descriptors.js";
import { fieldType } from "./messages.js";
import { commonFlags, commonHelp, parseAddress, parseOrUsage } from "./options.js";
import { CliError, styles, useColour, type Io } from "./output.js";

export const describeUsage = `usage: rill describe HOST:PORT [SYMBOL] [flags]

Describes SYMBOL (a service, package.Service/Method, message or enum) as .proto source; with no
SYMBOL, every service. Messages also get a JSON template for -d.

${commonHelp}`;

type Style = ReturnType<typeof styles>;

function rpc(m: DescMethod, s: Style): string {
  const stream = (on: boolean) => (on ? "stream " : "");
  const clientStream = m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming";
  const serverStream = m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming";
  return `${s.bold("rpc")} ${m.name}(${stream(clientStream)}.${m.input.typeName}) returns (${stream(serverStream)}.${m.output.typeName});`;
}

function serviceText(svc: DescService, s: Style): string {
  return `${s.bold("service")} ${svc.name} {\n${svc.methods.map((m) => `  ${rpc(m, s)}\n`).join("")}}\n`;
}

function fieldLine(f: DescField): string {
  const label = f.fieldKind === "list" || f.fieldKind === "map" ? "" : f.proto.proto3Optional ? "optional " : "";
  return `${label}${fieldType(f)} ${f.name} = ${f.number};`;
}

function enumText(e: DescEnum, indent: string, s: Style): string {
  return `${indent}${s.bold("enum")} ${e.name} {\n${e.values.map((v) => `${indent}  ${v.name} = ${v.number};\n`).join("")}${indent}}\n`;
}

function messageText(m: DescMessage, indent: string, s: Style): string {
  let out = `${indent}${s.bold("message")} ${m.name} {\n`;
  const inOneof = new Set<DescField>();
  for (const o of m.oneofs) {
    out += `${indent}  ${s.bold("oneof")} ${o.name} {\n`;
    for (const f of o.fields) {
      inOneof.add(f);
      out += `${indent}    ${fieldLine(f)}\n`;
    }
    out += `${indent}  }\n`;
  }
  for (const f of m.fields) if (!inOneof.has(f)) out += `${indent}  ${fieldLine(f)}\n`;
  for (const n of m.nestedMessages) if (!n.proto.options?.mapEntry) out += messageText(n, indent + "  ", s);
  for (const e of m.nestedEnums) out += enumText(e, indent + "  ", s);
  return out + `${indent}}\n`;
}

/** A JSON object with every field at an example value, for `-d`. */
export function template(m: DescMessage, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of m.fields) out[f.jsonName] = exampleOf(f, depth);
  return out;
}

function exampleOf(f: DescField, depth: number): unknown {
  const scalar = (t: string): unknown => (t === "string" ? "" : t === "bool" ? false : t === "bytes" ? "" : t.endsWith("64") ? "0" : 0);
  switch (f.fieldKind) {
    case "scalar":
      return scalar(fieldType(f));
    case "enum":
      return f.enum.values[0]?.name ?? 0;
    case "message":
      return depth > 2 ? {} : template(f.message, depth + 1);
    case "list":
      return [f.listKind === "message" ? (depth > 2 ? {} : template(f.message, depth + 1)) : f.listKind === "enum" ? (f.enum.values[0]?.name ?? 0) : scalar(fieldType(f).slice("repeated ".length))];
    case "map":
      return {};
  }
}

/** Describes `symbol` from `d`, or throws listing what exists. */
export function describeSymbol(d: Descriptors, symbol: string, s: Style): string {
  const name = symbol.replace(/^\./, "").replace("/", ".");
  const t = d.registry.get(name);
  if (t?.kind === "service") return `${s.cyan(t.typeName)} is a service:\n${serviceText(t, s)}`;
  if (t?.kind === "message") return `${s.cyan(t.typeName)} is a message:\n${messageText(t, "", s)}\nJSON template:\n${JSON.stringify(template(t))}\n`;
  if (t?.kind === "enum") return `${s.cyan(t.typeName)} is an enum:\n${enumText(t, "", s)}`;
  if (t?.kind === "extension") return `${s.cyan(t.typeName)} is an extension of ${t.extendee.typeName}: ${fieldType(t)} = ${t.number}\n`;
  const dot = name.lastIndexOf(".");
  const svc = dot > 0 ? d.registry.getService(name.slice(0, dot)) : undefined;
  const m = svc?.methods.find((x) => x.name === name.slice(dot + 1));
  if (svc !== undefined && m !== undefined) return `${s.cyan(`${svc.typeName}.${m.name}`)} is a method:\n${rpc(m, s)}\n`;
  if (svc !== undefined) throw new CliError(`unknown method "${name.slice(dot + 1)}" in ${svc.typeName}; it has: ${svc.methods.map((x) => x.name).join(", ")}`);
  throw new CliError(`unknown symbol "${symbol}"; the services are: ${d.services.join(", ") || "none"}`, 1, "describe one of them to see its methods and message types");
}

export async function describe(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() => parseArgs({ args: argv, options: commonFlags, allowPositionals: true }));
  if (values.help === true) return io.stdout.write(describeUsage), 0;
  const address = parseAddress(positionals[0], describeUsage);
  const symbol = positionals[1];
  const s = styles(useColour(io.stdout));
  return withChannel(io, address, values, async (channel) => {
    const d = await loadDescriptors(values, channel, callOptions(values, "reflect"));
    if (symbol === undefined) {
      for (const name of d.services) io.stdout.write(describeSymbol(d, name, s) + "\n");
      return 0;
    }
    io.stdout.write(describeSymbol(d, symbol, s));
    return 0;
  });
}
