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
  "skip-verify": { type: "boolean" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  servername: { type: "string" },
  protocol: { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  "rpc-header": { type: "string", multiple: true },
  "reflect-header": { type: "string", multiple: true },
  timeout: { type: "string" },
  "max-receive-size": { type: "string" },
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
  --insecure               TLS without verifying the server's certificate (grpcurl's meaning;
                           in rill bench it is ghz's: plaintext)
  --skip-verify            TLS without verifying the server's certificate (any command)
  --servername NAME        name to verify the certificate against (and :authority)
  --connect-timeout DUR    give up connecting after DUR (default 10s)
  --protocol P             grpc (default), grpc-web or connect: for servers that serve only
                           gRPC-Web or the Connect protocol (over HTTP/2)
Calls:
  -H 'key: value'          request metadata for calls and reflection (repeatable; -bin keys take base64)
  --rpc-header 'k: v'      metadata for the call only (grpcurl -rpc-header)
  --reflect-header 'k: v'  metadata for reflection only (grpcurl -reflect-header)
  --timeout DUR            deadline of each call, e.g. 500ms, 10s, 2m (grpcurl -max-time: seconds)
  --max-receive-size SIZE  largest response message accepted, e.g. 16MiB (default 4MiB;
                           grpcurl -max-msg-sz BYTES)
Descriptors (default: server reflection):
  --protoset FILE          a FileDescriptorSet (buf build -o F.binpb, protoc --include_imports -o F)
  --proto FILE [-I DIR]    a .proto file, compiled with buf or protoc if installed
  -v, --verbose            show request metadata, response headers, trailers and message counts (stderr)
Single-dash spellings work as in grpcurl: -plaintext, -max-time 5, -import-path DIR, -format=json.
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
      if (key.endsWith("-bin")) {
        // Buffer.from(…, "base64") skips what it cannot read; a typo must not send other bytes.
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) && !/^[A-Za-z0-9_-]*$/.test(value)) {
          throw new Error(`a -bin key takes base64, and "${value}" is not base64 (encode the bytes with: printf '…' | base64)`);
        }
        if (value.replace(/=+$/, "").length % 4 === 1) throw new Error(`"${value}" is not base64: its length cannot be (a character is missing or extra)`);
        md.append(key, Buffer.from(value, value.includes("-") || value.includes("_") ? "base64url" : "base64"));
      }
      else md.append(key, value);
    } catch (e) {
      throw new CliError(`-H "${h}": ${(e as Error).message}`, 2);
    }
  }
  return md;
}

/** Parses a byte size: "5000000", "512KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of 1000). */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/i.exec(text.trim());
  if (m === null) throw new CliError(`${flag} takes a size like 5000000, 512KiB or 16MiB, not "${text}"`, 2);
  const unit = (m[2] ?? "B").toLowerCase();
  const factor = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 }[unit]!;
  const bytes = Math.floor(Number(m[1]) * factor);
  if (bytes < 1) throw new CliError(`${flag} must be at least 1 byte`, 2);
  return bytes;
}

/** Checks the HOST:PORT positional. */
export function parseAddress(address: string | undefined, usage: string): string {
  if (address === undefined) throw new CliError(`missing HOST:PORT`, 2, usage);
  if (!/^(unix:|dns:|ipv4:|ipv6:)/.test(address) && !/:\d+$/.test(address)) {
    throw new CliError(`"${address}" has no port; write HOST:PORT, e.g. 127.0.0.1:50051`, 2);
  }
  return address;
}
