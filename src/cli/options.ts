/**
 * Flags shared by the commands that talk to a server, parsed with node:util parseArgs, and the
 * call options they turn into. Every bad flag is a usage error (exit 2) that says what is wrong.
 */
import type { ParseArgsConfig } from "node:util";
import { Metadata } from "../protocol/metadata.js";
import { CliError } from "./output.js";

/** Connection, metadata and descriptor flags every server-facing command takes. */
export const commonFlags = {
  plaintext: { type: "boolean" },
  tls: { type: "boolean" },
  insecure: { type: "boolean" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  servername: { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  timeout: { type: "string" },
  "connect-timeout": { type: "string" },
  proto: { type: "string", multiple: true },
  "import-path": { type: "string", short: "I", multiple: true },
  protoset: { type: "string", multiple: true },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** What the shared flags mean, for every command's --help. */
export const commonHelp = `Connection:
  --plaintext              plaintext HTTP/2 (h2c); the default unless a TLS flag is given
  --tls                    TLS, verifying the server against the system roots
  --cacert FILE            TLS, verifying the server against this CA (PEM)
  --cert FILE --key FILE   TLS client certificate and key (mTLS)
  --insecure               TLS without verifying the server's certificate
  --servername NAME        name to verify the certificate against (and :authority)
  --connect-timeout DUR    give up connecting after DUR (default 10s)
Calls:
  -H 'key: value'          request metadata (repeatable)
  --timeout DUR            deadline of each call, e.g. 500ms, 10s, 2m
Descriptors (default: server reflection):
  --protoset FILE          a FileDescriptorSet (buf build -o F.binpb, protoc --include_imports -o F)
  --proto FILE [-I DIR]    a .proto file, compiled with buf or protoc if installed
  -v, --verbose            show response headers and trailers (on stderr)
`;

/** Runs a `parseArgs` call; unknown flags and missing values become usage errors (exit 2). */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new CliError((e as Error).message.replace(/^TypeError \[\w+\]: /, ""), 2, "run with --help for the flags this command takes");
  }
}

/** Parses "500ms", "10s", "2m", "1h" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new CliError(`${flag} takes a duration like 500ms, 10s or 2m, not "${text}"`, 2);
  const unit = m[2] ?? "s";
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
}

/** Turns `-H 'key: value'` flags into metadata; keys are lower-cased, `-bin` values are base64. */
export function parseHeaders(headers: readonly string[] | undefined): Metadata {
  const md = new Metadata();
  for (const h of headers ?? []) {
    const i = h.indexOf(":");
    if (i <= 0) throw new CliError(`-H takes 'key: value', not "${h}"`, 2);
    const key = h.slice(0, i).trim().toLowerCase();
    const value = h.slice(i + 1).trim();
    try {
      if (key.endsWith("-bin")) md.append(key, Buffer.from(value, "base64"));
      else md.append(key, value);
    } catch (e) {
      throw new CliError(`-H "${h}": ${(e as Error).message}`, 2);
    }
  }
  return md;
}

/** Checks the HOST:PORT positional. */
export function parseAddress(address: string | undefined, usage: string): string {
  if (address === undefined) throw new CliError(`missing HOST:PORT`, 2, usage);
  if (!/^(unix:|dns:|ipv4:|ipv6:)/.test(address) && !/:\d+$/.test(address)) {
    throw new CliError(`"${address}" has no port; write HOST:PORT, e.g. 127.0.0.1:50051`, 2);
  }
  return address;
}
