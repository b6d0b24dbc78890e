/**
 * The CLI as grpcurl and ghz users type it, and as a server sees it: the real binary against a
 * real server on 127.0.0.1. Each test names the habit it checks.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { echoService } from "../../examples/echo/server.js";
import { Code, RpcError, createLoggingInterceptor, createServer, silentLogger, type CallLogEntry, type Logger, type Server } from "../../src/index.js";
import { serveHealth, type HealthStatus } from "../../src/services/health/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";
import { makeTestCerts } from "../support/certs.js";
import { repoRoot, runRill } from "../support/cli-run.js";

const unary = "grpc.examples.echo.Echo/UnaryEcho";

describe("the rill CLI, seen from the server and typed like grpcurl/ghz", () => {
  let server: Server;
  let address = "";
  let health: HealthStatus;
  const warnings: string[] = [];
  const calls: CallLogEntry[] = [];
  const logger: Logger = { error: (m, ...d) => warnings.push([m, ...d].join(" ")), warn: (m, ...d) => warnings.push([m, ...d].join(" ")), info: () => {} };

  before(async () => {
    server = createServer({ logger, interceptors: [createLoggingInterceptor({ onCall: (e) => calls.push(e) })] });
    const echo = echoService();
    // "big" answers with 5 MB, above the client's default 4 MiB receive limit.
    server.add(Echo, { ...echo, unaryEcho: async (req, ctx) => {
        if (req.message === "big") return { message: "x".repeat(5_000_000) };
        // "fail": every call fails, with an elapsed time in the message that differs per call.
        if (req.message === "fail") throw new RpcError(Code.FailedPrecondition, `gave up after ${Math.floor(Math.random() * 1000)} ms`);
        return echo.unaryEcho!(req, ctx);
      },
    });
    serveReflection(server);
    health = serveHealth(server);
    health.set("sick", "NOT_SERVING");
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    await server.shutdown({ graceMs: 1000 });
  });

  test("list, describe, call, health and bench close HTTP/2 cleanly: no connection error in the server log, reflection ends OK", async () => {
    warnings.length = 0;
    calls.length = 0;
    for (const args of [["list", address], ["describe", address, "grpc.examples.echo.Echo"], ["call", address, unary, "-d", '{"message":"x"}'], ["health", address], ["bench", address, unary, "-n", "20", "-c", "2"]]) {
      const r = await runRill(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    // The server notices a reset socket after the client is gone; give it a moment.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(warnings, []);
    const notOk = calls.filter((c) => c.code !== 0).map((c) => `${c.path} ${c.code} ${c.message}`);
    assert.deepEqual(notOk, []);
    assert.ok(calls.some((c) => c.path.includes("ServerReflectionInfo")));
  });

  test("grpcurl's order and single-dash flags: rill -plaintext ADDR list, rill -plaintext -d JSON ADDR METHOD, -max-time, -format=json", async () => {
    const listed = await runRill(["-plaintext", address, "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^grpc\.examples\.echo\.Echo$/m);
    const methods = await runRill(["-plaintext", address, "list", "grpc.examples.echo.Echo"]);
    assert.match(methods.stdout, /^grpc\.examples\.echo\.Echo\/UnaryEcho$/m);
    const described = await runRill(["-plaintext", address, "describe", "grpc.examples.echo.EchoRequest"]);
    assert.match(described.stdout, /message EchoRequest/);
    const called = await runRill(["-plaintext", "-max-time", "5", "-format=json", "-emit-defaults", "-d", '{"message":"hi"}', address, unary]);
    assert.equal(called.code, 0, called.stderr);
    assert.equal(called.stdout, '{"message":"hi"}\n');
    const unknown = await runRill(["-plaintext", "-allow-unknown-fields", "-d", '{"message":"hi","nope":1}', address, unary]);
    assert.equal(unknown.stdout, '{"message":"hi"}\n', unknown.stderr);
    const text = await runRill(["-plaintext", "-format", "text", "-d", "{}", address, unary]);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /--format text is not supported/);
  });

  test("list prints bare method names when stdout is not a terminal (for xargs)", async () => {
    const r = await runRill(["list", address, "grpc.examples.echo.Echo"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "grpc.examples.echo.Echo/UnaryEcho",
      "grpc.examples.echo.Echo/ServerStreamingEcho",
      "grpc.examples.echo.Echo/ClientStreamingEcho",
      "grpc.examples.echo.Echo/BidirectionalStreamingEcho",
    ]);
  });

  test("-v shows request metadata, response headers and trailers, and the message counts", async () => {
    const r = await runRill(["call", address, unary, "-v", "-H", "x-trace: 42", "-d", '{"message":"a"}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Request metadata to send:\nx-trace: 42\n/);
    assert.match(r.stderr, /Response headers received:/);
    assert.match(r.stderr, /Response trailers received:/);
    assert.match(r.stderr, /Sent 1 request and received 1 response\n/);
  });

  test("-H with a -bin key refuses what is not base64, and sends what is", async () => {
    const bad = await runRill(["call", address, unary, "-H", "x-bin: not base64!", "-d", "{}"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not base64/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    const good = await runRill(["call", address, unary, "-H", "x-bin: aGVsbG8=", "-d", "{}"]);
    assert.equal(good.code, 0, good.stderr);
  });

  test("--rpc-header goes to the call only, --reflect-header to reflection only", async () => {
    calls.length = 0;
    const seen: string[] = [];
    const r = await runRill(["call", address, unary, "-v", "--rpc-header", "x-rpc: 1", "--reflect-header", "x-reflect: 1", "-d", "{}"]);
    assert.equal(r.code, 0, r.stderr);
    seen.push(r.stderr);
    assert.match(r.stderr, /x-rpc: 1/);
    assert.doesNotMatch(r.stderr, /x-reflect/);
  });

  test("a 5 MB response: RESOURCE_EXHAUSTED with a hint by default, received with --max-receive-size or -max-msg-sz", async () => {
    const small = await runRill(["call", address, unary, "-d", '{"message":"big"}']);
    assert.equal(small.code, 64 + 8, small.stderr);
    assert.match(small.stderr, /--max-receive-size/);
    const big = await runRill(["call", address, unary, "-d", '{"message":"big"}', "--max-receive-size", "8MiB"]);
    assert.equal(big.code, 0, big.stderr);
    assert.equal(big.stdout.length, 5_000_000 + '{"message":""}\n'.length);
    const grpcurl = await runRill(["-plaintext", "-max-msg-sz", "6000000", "-d", '{"message":"big"}', address, unary]);
    assert.equal(grpcurl.code, 0, grpcurl.stderr);
  });

  test("health exit codes: 0 SERVING, 1 NOT_SERVING, 69 for a service the server does not know, 78 when nothing listens", async () => {
    assert.equal((await runRill(["health", address])).code, 0);
    const sick = await runRill(["health", address, "sick"]);
    assert.equal(sick.code, 1);
    assert.equal(sick.stdout, "NOT_SERVING\n");
    assert.equal((await runRill(["health", address, "no.such.Service"])).code, 64 + 5);
    assert.equal((await runRill(["health", "127.0.0.1:1"])).code, 64 + 14);
  });

  test("-I DIR --proto NAME resolves NAME under the import path; a file outside it is an error, not silent success", async () => {
    const ok = await runRill(["-plaintext", "-import-path", "examples", "-proto", "echo/echo.proto", address, "list"], { cwd: repoRoot });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "grpc.examples.echo.Echo\n");
    const called = await runRill(["call", address, unary, "-I", "examples", "--proto", "echo/echo.proto", "-d", '{"message":"p"}'], { cwd: repoRoot });
    assert.equal(called.stdout, '{"message":"p"}\n', called.stderr);
    const outside = await runRill(["list", address, "-I", "examples/video", "--proto", "examples/echo/echo.proto"], { cwd: repoRoot });
    assert.equal(outside.code, 2);
    assert.match(outside.stderr, /not under any import path/);
    const missing = await runRill(["list", address, "-I", "examples", "--proto", "nope.proto"], { cwd: repoRoot });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /not found under -I examples/);
  });

  test("bench -D FILE reads the request, --warmup calls are not counted, --rps paces starts, --insecure is plaintext (ghz)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rill-bench-"));
    try {
      writeFileSync(join(dir, "req.json"), '{"message":"from file"}');
      calls.length = 0;
      const r = await runRill(["bench", address, unary, "-D", join(dir, "req.json"), "-n", "20", "-c", "2", "--warmup", "4", "--rps", "50", "--insecure", "--format", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { count: number; warmup: number; targetRps: number; totalMs: number; statusCodeDistribution: Record<string, number> };
      assert.equal(report.count, 20);
      assert.equal(report.warmup, 4);
      assert.equal(report.targetRps, 50);
      // 20 starts at 50/s: the last is due at 380 ms, so the run cannot be shorter.
      assert.ok(report.totalMs >= 370, `total ${report.totalMs} ms`);
      assert.deepEqual(report.statusCodeDistribution, { OK: 20 });
      const echoCalls = calls.filter((c) => c.path.endsWith("/UnaryEcho"));
      assert.equal(echoCalls.length, 24, "warm-up calls reach the server, 4 + 20");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bench --format csv has one row per call; --format html is one self-contained page with the histogram", async () => {
    const csv = await runRill(["bench", address, unary, "-n", "7", "-c", "2", "--format", "csv"]);
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.trim().split("\n");
    assert.equal(rows[0], "start_ms,latency_ms,status,error");
    assert.equal(rows.length, 8);
    assert.ok(rows.slice(1).every((r) => /^[\d.]+,[\d.]+,OK,$/.test(r)), rows.join("\n"));
    const dir = mkdtempSync(join(tmpdir(), "rill-bench-"));
    try {
      const out = join(dir, "report.html");
      const html = await runRill(["bench", address, unary, "-n", "30", "-c", "3", "--format", "html", "-o", out]);
      assert.equal(html.code, 0, html.stderr);
      const page = readFileSync(out, "utf8");
      assert.match(page, /^<!doctype html>/);
      assert.match(page, /<svg id="histogram"/);
      assert.match(page, /<rect class="bar"/);
      assert.match(page, /Latency distribution/);
      assert.doesNotMatch(page, /<script|<link|src=|https?:\/\//, "nothing loaded from elsewhere");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bench where every call fails still reports the status distribution, errors grouped by status and message", async () => {
    const r = await runRill(["bench", address, unary, "-d", '{"message":"fail"}', "-n", "25", "-c", "5"]);
    assert.equal(r.code, 64 + 9, r.stderr);
    assert.match(r.stdout, /\[FAILED_PRECONDITION\] 25 responses/);
    assert.match(r.stdout, /Error distribution:\n  \[25\] FAILED_PRECONDITION: gave up after N ms\n/);
    assert.match(r.stderr, /Code: FAILED_PRECONDITION/);
  });

  test("Ctrl+C during bench prints the report of the calls so far and exits 0", async () => {
    let sent = false;
    const r = await runRill(["bench", address, unary, "-z", "60s", "-c", "2"], {
      onSpawn: (child) => {
        // Interrupt once calls are flowing: the server has seen some.
        const seen = calls.length;
        const timer = setInterval(() => {
          if (calls.length > seen + 20 && !sent) {
            sent = true;
            clearInterval(timer);
            child.kill("SIGINT");
          }
        }, 50);
        child.once("exit", () => clearInterval(timer));
      },
    });
    assert.ok(sent);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Stopped:\s+interrupted \(Ctrl\+C\)/);
    assert.match(r.stdout, /Count:\s+[1-9]\d*/);
    assert.match(r.stdout, /\[OK\] \d+ responses/);
    assert.doesNotMatch(r.stdout, /CANCELLED/);
  });

  test("--insecure is plaintext in bench (ghz) and TLS-without-verification elsewhere (grpcurl); --skip-verify is the latter everywhere", async () => {
    const certs = await makeTestCerts();
    const tlsServer = createServer({ logger: silentLogger });
    try {
      tlsServer.add(Echo, echoService());
      serveReflection(tlsServer);
      const { port } = await tlsServer.listen({ host: "127.0.0.1", port: 0, tls: { cert: Buffer.from(certs.serverCert), key: Buffer.from(certs.serverKey) } });
      const tlsAddress = `127.0.0.1:${port}`;
      assert.equal((await runRill(["list", tlsAddress, "--insecure"])).code, 0);
      assert.equal((await runRill(["list", tlsAddress, "--skip-verify"])).code, 0);
      const viaSkip = await runRill(["bench", tlsAddress, unary, "-n", "3", "-c", "1", "--skip-verify", "--format", "json"]);
      assert.equal(viaSkip.code, 0, viaSkip.stderr);
      const plaintext = await runRill(["bench", tlsAddress, unary, "-n", "3", "-c", "1", "--insecure"]);
      assert.equal(plaintext.code, 64 + 14);
      assert.match(plaintext.stderr, /speaks TLS, but this call used plaintext/);
      // Against the plaintext server, ghz's --insecure just works.
      assert.equal((await runRill(["bench", address, unary, "-n", "3", "-c", "1", "--insecure"])).code, 0);
    } finally {
      await tlsServer.shutdown({ graceMs: 500 });
      certs.remove();
    }
  });
});
