/**
 * The `rill` CLI run as a child process, as a user runs it: against the demo server of
 * `npm start` (started here as its own process), and against servers made for one case (TLS,
 * no reflection, shutdown). Output is read from the child's stdout/stderr and exit code.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { file_video_video } from "../../gen/video/video_pb.js";
import { addVideoService } from "../../examples/video/server.js";
import { Code, RpcError, createServer, errorDetail, silentLogger, type Server } from "../../src/index.js";
import { BadRequestSchema } from "../../src/error-details.js";
import { Echo } from "../../gen/echo/echo_pb.js";
import { serveHealth } from "../../src/services/health/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const cli = join(root, "dist", "src", "cli", "rill.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `rill args...`, feeding `input` on stdin (then closing it). */
function rill(args: string[], input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** Resolves with the next complete stdout line of `child` that `accept` takes. */
function nextLine(child: ChildProcess, state: { buffer: string }, accept: (line: string) => boolean = () => true, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      for (let i = state.buffer.indexOf("\n"); i >= 0; i = state.buffer.indexOf("\n")) {
        const line = state.buffer.slice(0, i);
        state.buffer = state.buffer.slice(i + 1);
        if (accept(line)) {
          done();
          resolve(line);
          return;
        }
      }
    };
    const onData = (d: string) => {
      state.buffer += d;
      check();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no matching line within ${timeoutMs} ms; buffered: ${JSON.stringify(state.buffer)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stdout!.off("data", onData);
    };
    child.stdout!.on("data", onData);
    check();
  });
}

let demo: ChildProcess | undefined;
let target = "";
const dir = mkdtempSync(join(tmpdir(), "rill-cli-test-"));
const video = "video_service.VideoService";

async function startServer(setup: (s: Server) => void, tls?: { cert: Buffer; key: Buffer }): Promise<{ server: Server; address: string }> {
  const server = createServer({ logger: silentLogger });
  setup(server);
  const { port } = await server.listen({ host: "127.0.0.1", port: 0, ...(tls === undefined ? {} : { tls }) });
  return { server, address: `127.0.0.1:${port}` };
}

describe("the rill CLI", () => {
  before(async () => {
    demo = spawn(process.execPath, [join(root, "dist", "examples", "demo-server.js")], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "ignore"] });
    demo.stdout!.setEncoding("utf8");
    const line = await nextLine(demo, { buffer: "" }, (l) => l.includes("listening on"));
    target = /listening on (\S+)/.exec(line)![1]!;
    demo.stdout!.resume();
  });

  after(async () => {
    if (demo !== undefined && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once("exit", r));
      demo.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("list shows the demo server's services, and the methods of one", async () => {
    const all = await rill(["list", target]);
    assert.equal(all.code, 0, all.stderr);
    for (const s of ["grpc.examples.echo.Echo", "routeguide.RouteGuide", video, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
      assert.ok(all.stdout.split("\n").includes(s), `${s} missing from:\n${all.stdout}`);
    }
    const methods = await rill(["list", target, video]);
    assert.equal(methods.code, 0, methods.stderr);
    assert.deepEqual(
      methods.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]),
      ["AddVideo", "ListVideos", "GetVideos", "GetVideo"].map((m) => `${video}/${m}`),
    );
  });

  test("describe prints services, methods and messages as .proto, with a JSON template", async () => {
    const svc = await rill(["describe", target, video]);
    assert.equal(svc.code, 0, svc.stderr);
    assert.match(svc.stdout, /rpc GetVideo\(stream \.video_service\.VideoId\) returns \(stream \.video_service\.Video\);/);
    const msg = await rill(["describe", target, "video_service.Video"]);
    assert.match(msg.stdout, /message Video \{[\s\S]*int32 duration = 5;/);
    assert.match(msg.stdout, /\{"id":"","title":"","author":"","url":"","duration":0\}/);
    const method = await rill(["describe", target, `${video}/ListVideos`]);
    assert.match(method.stdout, /rpc ListVideos\(\.video_service\.ListVideosRequest\) returns \(stream \.video_service\.Video\);/);
  });

  test("call: unary prints the response, server streaming prints one JSON object per line", async () => {
    const add = await rill(["call", target, `${video}/AddVideo`, "-d", '{"id":"cli1","title":"From the CLI","author":"cli","duration":5}']);
    assert.equal(add.code, 0, add.stderr);
    assert.deepEqual(JSON.parse(add.stdout), { id: "cli1" });
    const list = await rill(["call", target, `${video}/ListVideos`, "-d", '{"author":"ada"}']);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; author: string });
    assert.deepEqual(lines.map((v) => v.id), ["v1", "v3"]);
    const defaults = await rill(["call", target, `${video}/AddVideo`, "-d", '{"id":"cli2","title":"t"}', "--emit-defaults", "-v", "-H", "x-trace: 1"]);
    assert.equal(defaults.code, 0, defaults.stderr);
    assert.match(defaults.stderr, /Response headers received:/);
    assert.match(defaults.stderr, /Response trailers received:/);
  });

  test("--protocol grpc-web and connect call the same server in those protocols; another value is a usage error", async () => {
    for (const protocol of ["grpc-web", "connect"]) {
      const list = await rill(["call", target, `${video}/ListVideos`, "-d", '{"author":"ada"}', "--protocol", protocol]);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { id: string }).id), ["v1", "v3"]);
      const services = await rill(["list", target, "--protocol", protocol]);
      assert.ok(services.stdout.split("\n").includes(video), services.stderr);
    }
    const bad = await rill(["call", target, `${video}/ListVideos`, "-d", "{}", "--protocol", "soap"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--protocol takes grpc, grpc-web or connect/);
  });

  test("top shows the demo server's calls per method from its GET /metrics", async () => {
    const watching = rill(["top", target, "--interval", "1500ms", "--count", "1"]);
    for (let i = 0; i < 5; i++) await rill(["call", target, `${video}/ListVideos`, "-d", "{}"]);
    const r = await watching;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^rill top .* open streams \d+ +connections \d+/m);
    assert.match(r.stdout, /video_service\.VideoService\/ListVideos +\d+\.\d/);
    const none = await rill(["top", "127.0.0.1:1", "--count", "1"]);
    assert.equal(none.code, 69);
    assert.match(none.stderr, /cannot read http:\/\/127\.0\.0\.1:1\/metrics/);
  });

  test("call -d @ streams JSON requests from stdin to a client-streaming method", async () => {
    const r = await rill(["call", target, `${video}/GetVideos`, "-d", "@"], '{"id":"v2"}\n{"id":\n"v1"} {"id":"v3"}\n');
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { videos: { id: string }[] };
    assert.deepEqual(got.videos.map((v) => v.id), ["v2", "v1", "v3"]);
  });

  test("an interactive bidi session through pipes: each answer arrives before the next request is written", async () => {
    const child = spawn(process.execPath, [cli, "call", target, `${video}/GetVideo`, "-d", "@"], { stdio: ["pipe", "pipe", "pipe"] });
    child.stdout!.setEncoding("utf8");
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once("close", r));
    const state = { buffer: "" };
    try {
      child.stdin!.write('{"id":"v3"}\n');
      assert.equal((JSON.parse(await nextLine(child, state)) as { id: string }).id, "v3");
      child.stdin!.write('{"id":"v1"}\n');
      assert.equal((JSON.parse(await nextLine(child, state)) as { id: string }).id, "v1");
      child.stdin!.end('{"id":"v2"}\n');
      assert.equal((JSON.parse(await nextLine(child, state)) as { id: string }).id, "v2");
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  test("health prints SERVING (exit 0); an unknown service is NOT_FOUND (exit 69)", async () => {
    const ok = await rill(["health", target]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), "SERVING");
    const svc = await rill(["health", target, video]);
    assert.equal(svc.stdout.trim(), "SERVING");
    const missing = await rill(["health", target, "no.Such"]);
    assert.equal(missing.code, 64 + 5);
    assert.match(missing.stderr, /Code: NOT_FOUND/);
  });

  test("health --watch prints SERVING, then NOT_SERVING when the server shuts down", async () => {
    const { server, address } = await startServer((s) => {
      addVideoService(s);
      serveHealth(s);
    });
    const child = spawn(process.execPath, [cli, "health", address, video, "--watch"], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.setEncoding("utf8");
    const exited = new Promise<number | null>((r) => child.once("close", r));
    try {
      const state = { buffer: "" };
      assert.equal(await nextLine(child, state), "SERVING");
      const down = server.shutdown({ graceMs: 5000 });
      assert.equal(await nextLine(child, state), "NOT_SERVING");
      assert.equal(await exited, 1);
      await down;
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      server.forceShutdown();
    }
  });

  test("bench runs a fixed number of calls and reports them as JSON", async () => {
    const r = await rill(["bench", target, "grpc.examples.echo.Echo/UnaryEcho", "-d", '{"message":"hi"}', "-c", "4", "-n", "40", "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { count: number; statusCodeDistribution: Record<string, number>; latencyDistribution: { percentage: number }[]; histogram: { count: number }[]; rps: number };
    assert.equal(report.count, 40);
    assert.deepEqual(report.statusCodeDistribution, { OK: 40 });
    assert.deepEqual(report.latencyDistribution.map((p) => p.percentage), [10, 25, 50, 75, 90, 95, 99, 99.9]);
    assert.equal(report.histogram.reduce((a, b) => a + b.count, 0), 40);
    assert.ok(report.rps > 0);
    const text = await rill(["bench", target, `${video}/ListVideos`, "-c", "2", "-n", "6"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /Count:\s+6/);
    assert.match(text.stdout, /Latency distribution:/);
    assert.match(text.stdout, /\[OK\] 6 responses/);
  });

  test("a failed call prints the status like grpcurl and exits 64 + code", async () => {
    const r = await rill(["call", target, `${video}/GetVideo`, "-d", '{"id":"nope"}']);
    assert.equal(r.code, 64 + 5);
    assert.match(r.stderr, /Code: NOT_FOUND\n\s+Message: no video with id "nope"/);
  });

  test("a failed call's rich error details are printed as JSON under the status", async () => {
    const { server, address } = await startServer((s) => {
      s.add(Echo, {
        unaryEcho() {
          throw new RpcError(Code.InvalidArgument, "bad latitude", {
            details: [errorDetail(BadRequestSchema, { fieldViolations: [{ field: "latitude", description: "must be within ±90°" }] })],
          });
        },
      });
      serveReflection(s);
    });
    try {
      const r = await rill(["call", address, "grpc.examples.echo.Echo/UnaryEcho", "-d", '{"message":"x"}']);
      assert.equal(r.code, 64 + 3);
      assert.match(r.stderr, /Code: INVALID_ARGUMENT\n\s+Message: bad latitude\n\s+Details:\n\s+1\) \{/);
      const json = JSON.parse(r.stderr.slice(r.stderr.indexOf("1) ") + 3).replace(/\n {5}/g, "\n")) as Record<string, unknown>;
      assert.deepEqual(json, { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "latitude", description: "must be within ±90°" }] });
    } finally {
      await server.shutdown({ graceMs: 100 });
    }
  });

  test("wrong port: UNAVAILABLE naming the address and saying nothing listens there", async () => {
    const { server, address } = await startServer(() => {});
    await server.shutdown();
    const r = await rill(["list", address]);
    assert.equal(r.code, 64 + 14);
    assert.match(r.stderr, /Code: UNAVAILABLE/);
    assert.ok(r.stderr.includes(address), r.stderr);
    assert.match(r.stderr, /connection refused/);
  });

  test("TLS against plaintext and plaintext against TLS are detected and explained", async () => {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    const tls = { cert: readFileSync(join(dir, "cert.pem")), key: readFileSync(join(dir, "key.pem")) };
    const { server, address } = await startServer((s) => {
      addVideoService(s);
      serveReflection(s);
    }, tls);
    try {
      const plain = await rill(["list", address, "--plaintext"]);
      assert.equal(plain.code, 64 + 14);
      assert.match(plain.stderr, /speaks TLS/);
      assert.match(plain.stderr, /drop --plaintext and add --tls/);
      const unverified = await rill(["list", address, "--tls"]);
      assert.match(unverified.stderr, /--cacert FILE/);
      const good = await rill(["list", address, "--cacert", join(dir, "cert.pem")]);
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /video_service\.VideoService/);
      const insecure = await rill(["call", address, `${video}/GetVideo`, "--insecure", "-d", '{"id":"v1"}']);
      assert.equal(insecure.code, 0, insecure.stderr);
    } finally {
      server.forceShutdown();
    }
    const wrongWay = await rill(["list", target, "--tls"]);
    assert.equal(wrongWay.code, 64 + 14);
    assert.match(wrongWay.stderr, /speaks plaintext/);
    assert.match(wrongWay.stderr, /use --plaintext/);
  });

  test("an unknown method or service lists what exists", async () => {
    const method = await rill(["call", target, `${video}/DeleteVideo`]);
    assert.equal(method.code, 1);
    assert.match(method.stderr, /unknown method "DeleteVideo" in video_service\.VideoService; it has: AddVideo, ListVideos, GetVideos, GetVideo/);
    const service = await rill(["call", target, "video.Videos/List"]);
    assert.match(service.stderr, /unknown service "video\.Videos"; the server has: .*video_service\.VideoService/);
  });

  test("JSON that does not match the message names the field and what was expected", async () => {
    const typo = await rill(["call", target, `${video}/AddVideo`, "-d", '{"titel":"x"}']);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /request 1 does not match video_service\.Video: .*no field "titel" \(did you mean "title"\?\); its fields are: id \(string\), title \(string\)/);
    const type = await rill(["call", target, `${video}/AddVideo`, "-d", '{"title":"x","duration":"long"}']);
    assert.match(type.stderr, /field video_service\.Video\.duration: expected number \(int32\), got "long"/);
    const broken = await rill(["call", target, `${video}/GetVideos`, "-d", "@"], '{"id":"v1"}\n{"id": v2}\n');
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /request 2 is not valid JSON/);
  });

  test("--protoset describes and calls a server that has no reflection; without it the CLI says what to pass", async () => {
    const set = join(dir, "video.binpb");
    writeFileSync(set, toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file_video_video.proto] })));
    const { server, address } = await startServer((s) => addVideoService(s));
    try {
      const without = await rill(["list", address]);
      assert.equal(without.code, 64 + 12);
      assert.match(without.stderr, /does not support reflection/);
      assert.match(without.stderr, /--protoset FILE or --proto FILE/);
      const listed = await rill(["list", address, "--protoset", set]);
      assert.equal(listed.stdout.trim(), video);
      const called = await rill(["call", address, `${video}/GetVideo`, "--protoset", set, "-d", '{"id":"v2"} {"id":"v1"}']);
      assert.equal(called.code, 0, called.stderr);
      assert.deepEqual(called.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { id: string }).id), ["v2", "v1"]);
    } finally {
      server.forceShutdown();
    }
  });
});
