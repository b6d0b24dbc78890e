#!/usr/bin/env node
/**
 * `rill-interop-client`: runs the standard gRPC interop cases with Rill's client against any
 * implementation's interop server.
 *
 *   rill-interop-client --server_host=H --server_port=N --test_case=NAME [--use_tls=false]
 *                       [--use_test_ca=false --ca_file=PATH] [--server_host_override=NAME]
 *                       [--skip_compression_probe=false]
 *
 * `--skip_compression_probe=true` leaves out the client_compressed_* feature probe, for servers
 * that cannot observe per-message compression (grpcio's: C-core inflates before the handler).
 * `--test_case=all` runs every case in order. Exit status: 0 when every case passed, 1 when
 * one failed (each failure is printed with what differed), 2 for a bad command line.
 * TLS: `--use_tls=true` verifies the server against the system roots, or with
 * `--use_test_ca=true` against the test CA in `--ca_file` (a Rill addition: grpc's interop
 * clients bundle grpc's test CA; Rill ships no private test keys and its tests make their own);
 * `--server_host_override` is the name the certificate is checked against (and the :authority).
 * Other standard flags (credentials, service config) are accepted and must be left at their
 * defaults: the cases that need them are cloud-only.
 */
import { readFileSync } from "node:fs";
import { consoleLogger, createChannel, insecure, tls, type ChannelCredentials } from "../index.js";
import { createCaseContext, interopCaseNames, interopCases } from "./cases.js";
import { UsageError, parseBool, parseFlags, parsePort } from "./flags.js";

const usage =
  "usage: rill-interop-client --server_host=H --server_port=N --test_case=NAME|all [--use_tls=false] [--use_test_ca=false --ca_file=PATH] [--server_host_override=NAME] [--skip_compression_probe=false]\n" +
  `cases: ${interopCaseNames.join(", ")}`;

/** Longest a single case may take before it counts as failed (a hung server must not hang us). */
const caseTimeoutMs = 30_000;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, [
    "server_host",
    "server_port",
    "server_host_override",
    "test_case",
    "use_tls",
    "use_test_ca",
    "ca_file",
    "default_service_account",
    "oauth_scope",
    "service_account_key_file",
    "service_config_json",
    "skip_compression_probe",
  ]);
  const skipCompressionProbe = parseBool("skip_compression_probe", flags.skip_compression_probe, false);
  let credentials: ChannelCredentials = insecure();
  if (parseBool("use_tls", flags.use_tls, false)) {
    let ca: string | undefined;
    if (parseBool("use_test_ca", flags.use_test_ca, false)) {
      if (flags.ca_file === undefined) throw new UsageError("--use_test_ca=true needs --ca_file=PATH (the test CA that signed the server's certificate)");
      ca = readFileSync(flags.ca_file, "utf8");
    }
    credentials = tls({ ...(ca === undefined ? {} : { ca }), ...(flags.server_host_override === undefined ? {} : { serverNameOverride: flags.server_host_override }) });
  } else if (parseBool("use_test_ca", flags.use_test_ca, false)) {
    throw new UsageError("--use_test_ca=true needs --use_tls=true");
  }
  for (const f of ["default_service_account", "oauth_scope", "service_account_key_file", "service_config_json"] as const) {
    if (flags[f] !== undefined && flags[f] !== "") throw new UsageError(`--${f}: not supported (the cases that need it are cloud-only)`);
  }
  const host = flags.server_host ?? "localhost";
  const port = parsePort("server_port", flags.server_port);
  const testCase = flags.test_case;
  if (testCase === undefined) throw new UsageError("--test_case is required");
  const names = testCase === "all" ? interopCaseNames : [testCase];
  for (const n of names) if (!(n in interopCases)) throw new UsageError(`unknown --test_case "${n}"`);

  const target = host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
  let failed = 0;
  for (const name of names) {
    // A fresh channel per case: one case's broken connection cannot fail the next.
    const channel = createChannel(target, { logger: consoleLogger, credentials });
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        interopCases[name]!(createCaseContext(channel, { skipCompressionProbe })),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name}: no result after ${caseTimeoutMs} ms`)), caseTimeoutMs);
        }),
      ]);
      process.stdout.write(`PASS ${name} (${Date.now() - started} ms)\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    } finally {
      clearTimeout(timer);
      channel.close();
    }
  }
  return failed === 0 ? 0 : 1;
}

// Exits explicitly: a case that timed out may leave a call behind that would keep us alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`rill-interop-client: ${e.message}\n${usage}\n`);
      process.exit(2);
    }
    process.stderr.write(`rill-interop-client: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
