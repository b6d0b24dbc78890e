#!/usr/bin/env node
/**
 * The `rill` command: drive any gRPC service from the terminal.
 *
 *   rill list HOST:PORT [SERVICE]          services, or the methods of one
 *   rill describe HOST:PORT [SYMBOL]       a service, method, message or enum as .proto
 *   rill call HOST:PORT pkg.Svc/Method     call with JSON (-d '{...}', or -d @ for stdin)
 *   rill health HOST:PORT [SERVICE]        grpc.health.v1 status (--watch for changes)
 *   rill bench HOST:PORT pkg.Svc/Method    load generator (-c, -n | -z, --format json)
 *   rill serve                             the demo server of `npm start`
 *
 * Each command lives in its own file and returns its exit code; this file only dispatches.
 */
import { pathToFileURL } from "node:url";
import { bench } from "./bench.js";
import { call } from "./call.js";
import { describe } from "./describe.js";
import { health } from "./health.js";
import { normalizeArgs } from "./grpcurl-args.js";
import { list } from "./list.js";
import { processIo, reportError, type Io } from "./output.js";
import { serve } from "./serve.js";
import { top } from "./top.js";

const commands: Record<string, (argv: string[], io: Io) => Promise<number>> = { list, describe, call, health, bench, serve, top };

const usage = `rill: drive gRPC services from the terminal

usage:
  rill list HOST:PORT [SERVICE]               list services, or the methods of SERVICE
  rill describe HOST:PORT [SYMBOL]            show a service, method, message or enum
  rill call HOST:PORT pkg.Service/Method      call with JSON: -d '{"id":"v1"}', or -d @ for stdin
  rill health HOST:PORT [SERVICE] [--watch]   grpc.health.v1 serving status
  rill bench HOST:PORT pkg.Service/Method     load test: -c 50 -n 1000 | -z 10s, --rps, --format json|csv|html
  rill serve [--port N]                       run the demo server (what npm start runs)
  rill top HOST:PORT                          live calls/s, p50/p99, open streams (from GET /metrics)

grpcurl's way works too: rill -plaintext -d '{...}' HOST:PORT pkg.Service/Method, and
rill -plaintext HOST:PORT list (single-dash flags, flags first, -max-time, -max-msg-sz, ...).

Descriptors come from server reflection; pass --protoset FILE or --proto FILE otherwise.
Plaintext is the default; --tls, --cacert, --cert/--key, --insecure/--skip-verify switch to TLS
(in rill bench, --insecure is plaintext, as in ghz).
Run \`rill COMMAND --help\` for a command's flags.
`;

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = normalizeArgs(argv);
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    io.stderr.write(`rill: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  try {
    return await command(rest, io);
  } catch (e) {
    return reportError(io, e);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href || process.argv[1]?.endsWith("/rill")) {
  const code = await main(process.argv.slice(2));
  // Exit by running out of work rather than process.exit(): the channel's HTTP/2 sessions are
  // closing (GOAWAY, then FIN), and cutting that short leaves the server a reset connection
  // (ECONNRESET in its log). stdin is let go so an unread pipe or terminal does not hold us; a
  // straggler (a handle that never closes) is cut off after a grace period.
  process.exitCode = code;
  process.stdin.pause();
  (process.stdin as { unref?: () => void }).unref?.();
  setTimeout(() => process.stdout.write("", () => process.exit(code)), 1500).unref();
}
