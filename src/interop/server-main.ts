#!/usr/bin/env node
/**
 * `rill-interop-server`: grpc.testing.TestService on Rill, driven by the standard interop
 * server flags, so that any implementation's interop client can be pointed at it.
 *
 *   rill-interop-server --port=N [--use_tls=false --cert_file=PATH --key_file=PATH] [--host=0.0.0.0] [--max_concurrent_streams=N]
 *
 * `--host`, `--max_concurrent_streams`, `--cert_file` and `--key_file` are Rill's additions (the
 * HTTP/2 interop case max_streams wants a server limited to one stream; grpc's interop servers
 * bundle grpc's server1 certificate and key, Rill ships no private test keys). Once listening,
 * prints "listening on HOST:PORT" to stdout (the port is the real one when `--port=0`);
 * SIGINT/SIGTERM shut down gracefully.
 */
import { readFileSync } from "node:fs";
import { createServer, consoleLogger } from "../index.js";
import { TestService } from "../../gen/grpc/testing/test_pb.js";
import { UsageError, parseBool, parseFlags, parsePort } from "./flags.js";
import { createTestService } from "./test-service.js";

const usage = "usage: rill-interop-server --port=N [--use_tls=false --cert_file=PATH --key_file=PATH] [--host=0.0.0.0] [--max_concurrent_streams=N]";

async function main(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, ["port", "use_tls", "host", "max_concurrent_streams", "use_alts", "cert_file", "key_file"]);
  const port = parsePort("port", flags.port);
  let tls: { cert: string; key: string } | undefined;
  if (parseBool("use_tls", flags.use_tls, false)) {
    if (flags.cert_file === undefined || flags.key_file === undefined) {
      throw new UsageError("--use_tls=true needs --cert_file=PATH and --key_file=PATH (the server's certificate chain and key, PEM)");
    }
    tls = { cert: readFileSync(flags.cert_file, "utf8"), key: readFileSync(flags.key_file, "utf8") };
  }
  if (parseBool("use_alts", flags.use_alts, false)) throw new UsageError("--use_alts=true: ALTS is not supported");
  const maxStreams = flags.max_concurrent_streams === undefined ? undefined : Number(flags.max_concurrent_streams);
  if (maxStreams !== undefined && !(Number.isInteger(maxStreams) && maxStreams > 0)) {
    throw new UsageError(`--max_concurrent_streams must be a positive integer, got "${flags.max_concurrent_streams}"`);
  }
  const server = createServer({ logger: consoleLogger, ...(maxStreams === undefined ? {} : { maxConcurrentStreams: maxStreams }) });
  server.add(TestService, createTestService());
  const bound = await server.listen({ host: flags.host ?? "0.0.0.0", port, ...(tls === undefined ? {} : { tls }) });
  process.stdout.write(`listening on ${bound.host}:${bound.port}\n`);
  const stop = () => {
    void server.shutdown({ graceMs: 2000 }).then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`rill-interop-server: ${e.message}\n${usage}\n`);
    process.exit(2);
  }
  process.stderr.write(`rill-interop-server: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
