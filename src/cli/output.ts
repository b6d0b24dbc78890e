/**
 * How the CLI talks to people and to scripts: colour only on a terminal (and never with
 * NO_COLOR), errors on stderr in grpcurl's shape, and exit codes scripts can test.
 *
 * Exit codes: 0 success; 1 a local problem (bad flags, bad JSON, no descriptors); 2 usage;
 * 64 + the gRPC status code when the server (or the connection) failed the call, as grpcurl does.
 */
import { createRegistry, toJson } from "@bufbuild/protobuf";
import { AnySchema, type Any } from "@bufbuild/protobuf/wkt";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { RpcError } from "../protocol/errors.js";
import { codeName } from "../protocol/code.js";

/** Streams and terminal facts the commands write through; tests may pass their own. */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The process's own streams. */
export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** An error the CLI reports as is (no stack), with an exit code and an optional hint. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Whether to colour what goes to `stream`. */
export function useColour(stream: { isTTY?: boolean }): boolean {
  return stream.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
}

/** ANSI styles that turn into nothing when colour is off. */
export function styles(on: boolean) {
  const wrap = (open: number, close: number) => (s: string) => (on ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

/** Writes an error the way grpcurl does (code name and message) and returns the exit code. */
export function reportError(io: Io, e: unknown, hint?: string): number {
  const s = styles(useColour(io.stderr));
  if (e instanceof RpcError) {
    io.stderr.write(`${s.red("ERROR:")}\n  Code: ${codeName(e.code)}\n  Message: ${e.rawMessage}\n`);
    if (e.details.length > 0) {
      io.stderr.write("  Details:\n");
      e.details.forEach((d, i) => io.stderr.write(`  ${i + 1}) ${detailJson(d).replaceAll("\n", "\n     ")}\n`));
    }
    if (hint !== undefined) io.stderr.write(`  Hint: ${hint}\n`);
    return 64 + e.code;
  }
  if (e instanceof CliError) {
    io.stderr.write(`${s.red("error:")} ${e.message}\n`);
    const h = e.hint ?? hint;
    if (h !== undefined) io.stderr.write(`${s.dim("hint:")} ${h}\n`);
    return e.exitCode;
  }
  io.stderr.write(`${s.red("error:")} ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}

/** The standard detail types, for printing details as JSON (grpcurl's layout). */
const detailTypes = createRegistry(file_google_rpc_error_details);

/** A detail as JSON: its fields when the type is a standard one, else its type and bytes. */
function detailJson(detail: Any): string {
  try {
    return JSON.stringify(toJson(AnySchema, detail, { registry: detailTypes }), null, 2);
  } catch {
    return JSON.stringify({ "@type": detail.typeUrl, value: Buffer.from(detail.value).toString("base64") }, null, 2);
  }
}
