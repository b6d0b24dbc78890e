/**
 * The interop matrix: every standard interop case, in both directions, between Rill and two
 * implementations that are not ours (@grpc/grpc-js, and Python grpcio on gRPC C-core), plus
 * Rill against itself. Every cell is one test, named "<client> client → <server> server: <case>".
 *
 * The real programs run as child processes on 127.0.0.1: Rill's are the `bin` entries
 * (dist/src/interop/*-main.js), so this also proves those work. One server process per peer
 * serves every case; max_streams gets a second one limited to MAX_CONCURRENT_STREAMS=1.
 * The `before` hook installs the Python peer (scripts/setup-peers.mjs) and fails the suite
 * when it cannot.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { interopCaseNames } from "../../../src/interop/cases.js";
import { interopServerName, makeTestCerts, type TestCerts } from "../../support/certs.js";

const repoRoot = new URL("../../../../", import.meta.url);
const path = (p: string) => fileURLToPath(new URL(p, repoRoot));

type Impl = "rill" | "grpc-js" | "python";

let python = "/usr/bin/python3";
let stubsDir = "";

/** How to start each implementation's server and client programs. */
function command(impl: Impl, role: "server" | "client", args: string[]): [string, string[]] {
  switch (impl) {
    case "rill":
      return [process.execPath, [path(`dist/src/interop/${role}-main.js`), ...args]];
    case "grpc-js":
      return [process.execPath, [path("dist/test/interop/matrix/grpc-js-matrix-peer.js"), role, ...args]];
    case "python":
      return [python, [path(`test/interop/matrix/python/interop_${role}.py`), ...args]];
  }
}

const env = () => ({ ...process.env, RILL_PYTHON_STUBS: stubsDir, PYTHONDONTWRITEBYTECODE: "1" });

interface RunningServer {
  readonly port: number;
  readonly child: ChildProcess;
  output: string;
}

/** Starts a server on port 0 and resolves with the port it prints ("listening on HOST:PORT"). */
function startServer(impl: Impl, extra: string[] = ["--use_tls=false"]): Promise<RunningServer> {
  const [cmd, args] = command(impl, "server", ["--port=0", ...extra]);
  const child = spawn(cmd, impl === "rill" ? [...args, "--host=127.0.0.1"] : args, { env: env(), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server did not start in 20 s:\n${output}`)), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${impl} server exited (${code}) before listening:\n${output}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output += line + "\n";
      const m = /^listening on .*:(\d+)$/.exec(line);
      if (m !== null) {
        clearTimeout(timer);
        const server: RunningServer = { port: Number(m[1]), child, output };
        child.stderr!.on("data", (d: Buffer) => (server.output += d.toString()));
        resolve(server);
      }
    });
  });
}

/** Runs one client case to completion; rejects with the client's output when it fails. */
function runClient(impl: Impl, port: number, testCase: string, extra: string[] = ["--use_tls=false"]): Promise<void> {
  const [cmd, args] = command(impl, "client", ["--server_host=127.0.0.1", `--server_port=${port}`, `--test_case=${testCase}`, ...extra]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${impl} client exited with ${code ?? signal}:\n${output.trim()}`));
    });
  });
}

/**
 * grpcio servers cannot observe per-message compression (C-core inflates before the handler and
 * hides grpc-encoding), so the client_compressed_* feature probe cannot be refused by them. For
 * those cells the Rill client leaves out the probe and checks everything else; the official
 * interop harness likewise exempts Python servers from the probe.
 */
function clientFlags(client: Impl, server: Impl, testCase: string): string[] {
  return client === "rill" && server === "python" && testCase.startsWith("client_compressed_") ? ["--skip_compression_probe=true"] : [];
}

/** SIGTERM, then SIGKILL after 3 s; resolves once every server has exited. */
function stopServers(list: Iterable<RunningServer>): Promise<unknown> {
  return Promise.all(
    [...list].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.child.exitCode !== null) return resolve();
          const timer = setTimeout(() => s.child.kill("SIGKILL"), 3000);
          s.child.once("exit", () => (clearTimeout(timer), resolve()));
          s.child.kill("SIGTERM");
        }),
    ),
  );
}

const servers = new Map<string, RunningServer>();
const serverKey = (impl: Impl, limited: boolean) => `${impl}${limited ? "/max1" : ""}`;

describe("interop matrix", () => {
  before(async () => {
    // Fails the whole suite, loudly, when Python grpcio cannot be installed.
    const setup = (await import(new URL("scripts/setup-peers.mjs", repoRoot).href)) as {
      setupPeers(): { python: string; pythonStubsDir: string };
    };
    const r = setup.setupPeers();
    python = r.python;
    stubsDir = r.pythonStubsDir;
    const impls: Impl[] = ["rill", "grpc-js", "python"];
    const started = await Promise.all(
      impls.flatMap((impl) => [
        startServer(impl).then((s) => servers.set(serverKey(impl, false), s)),
        startServer(impl, ["--use_tls=false", "--max_concurrent_streams=1"]).then((s) => servers.set(serverKey(impl, true), s)),
      ]),
    );
    void started;
  });

  after(() => stopServers(servers.values()));

  const pairs: Array<[client: Impl, server: Impl]> = [
    ["rill", "rill"],
    ["rill", "grpc-js"],
    ["grpc-js", "rill"],
    ["rill", "python"],
    ["python", "rill"],
  ];
  for (const [client, server] of pairs) {
    for (const testCase of interopCaseNames) {
      const name = `${client} client → ${server} server: ${testCase}`;
      test(name, async () => {
        const s = servers.get(serverKey(server, testCase === "max_streams"));
        if (s === undefined) throw new Error(`the ${server} server is not running`);
        try {
          await runClient(client, s.port, testCase, ["--use_tls=false", ...clientFlags(client, server, testCase)]);
        } catch (e) {
          throw new Error(`${(e as Error).message}\n--- ${server} server output ---\n${s.output.trim()}`);
        }
      });
    }
  }
});

/**
 * The same cases over TLS, the standard way: servers with `--use_tls=true` and a certificate for
 * *.test.google.fr signed by a test CA, clients with `--use_tls=true --use_test_ca=true
 * --server_host_override=foo.test.google.fr`. Certificates are made at test time (grpc's
 * interop programs bundle grpc's test CA and server1 key; every program here takes the files by
 * flag instead). One client process runs every case per direction (`--test_case=all`).
 */
describe("interop matrix over TLS", () => {
  let certs: TestCerts;
  const tlsServers = new Map<Impl, RunningServer>();
  before(async () => {
    const setup = (await import(new URL("scripts/setup-peers.mjs", repoRoot).href)) as {
      setupPeers(): { python: string; pythonStubsDir: string };
    };
    const r = setup.setupPeers();
    python = r.python;
    stubsDir = r.pythonStubsDir;
    certs = await makeTestCerts();
    const serverTls = ["--use_tls=true", `--cert_file=${certs.dir}/server.pem`, `--key_file=${certs.dir}/server.key`];
    await Promise.all((["rill", "grpc-js", "python"] as const).map((impl) => startServer(impl, serverTls).then((s) => tlsServers.set(impl, s))));
  });
  after(async () => {
    await stopServers(tlsServers.values());
    certs?.remove();
  });

  const pairs: Array<[client: Impl, server: Impl]> = [
    ["rill", "rill"],
    ["rill", "grpc-js"],
    ["grpc-js", "rill"],
    ["rill", "python"],
    ["python", "rill"],
  ];
  for (const [client, server] of pairs) {
    test(`${client} client → ${server} server over TLS: every case`, async () => {
      const s = tlsServers.get(server);
      if (s === undefined) throw new Error(`the ${server} TLS server is not running`);
      const flags = ["--use_tls=true", "--use_test_ca=true", `--ca_file=${certs.dir}/ca.pem`, `--server_host_override=${interopServerName}`];
      if (client === "rill" && server === "python") flags.push("--skip_compression_probe=true");
      try {
        await runClient(client, s.port, "all", flags);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- ${server} server output ---\n${s.output.trim()}`);
      }
    });
  }
});
