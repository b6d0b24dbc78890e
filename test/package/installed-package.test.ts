/**
 * The package as a user gets it: `npm pack`, installed into a fresh project (from the
 * tarball and the npm cache the repo's own install filled), then `npx rill serve`, `npx rill
 * list`, and a TypeScript client compiled with `strict` and `exactOptionalPropertyTypes`
 * against the installed types. Also what the tarball must not carry.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { repoRoot, runRill } from "../support/cli-run.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const quiet = ["--no-audit", "--no-fund", "--loglevel=error"];

describe("the packed package, installed into a fresh project", () => {
  const dir = mkdtempSync(join(tmpdir(), "rill-package-"));
  const project = join(dir, "app");
  let files: string[] = [];
  let server: ChildProcess | undefined;
  let address = "";

  before(() => {
    const out = execFileSync(npm, ["pack", "--json", "--pack-destination", dir, ...quiet], { cwd: repoRoot, encoding: "utf8" });
    const packed = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    files = packed[0]!.files.map((f) => f.path);
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }));
    // The tarball, and @bufbuild/protobuf from the npm cache the repo's install filled (the registry
    // only for its metadata when that is not cached).
    execFileSync(npm, ["install", "--prefer-offline", "--ignore-scripts", ...quiet, tarball], { cwd: project, stdio: ["ignore", "ignore", "pipe"] });
  });

  after(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      process.kill(-server.pid!, "SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("the tarball has no source maps, no interop programs, no grpc.testing or bench protos, and has the demo server", () => {
    assert.deepEqual(files.filter((f) => f.endsWith(".map")), []);
    assert.deepEqual(files.filter((f) => f.includes("dist/src/interop/") || f.includes("grpc/testing") || f.includes("proto/bench") || f.includes("gen/bench")), []);
    assert.ok(files.includes("dist/examples/demo-server.js"));
    assert.ok(files.includes("proto/rill/transfer/v1/transfer.proto"));
    assert.ok(files.includes("examples/web/index.html") && files.includes("examples/web/app.js") && files.includes("dist/src/web/index.js"));
  });

  test("the installed README says the package is ESM and has the grpcurl / ghz table", () => {
    const readme = readFileSync(join(project, "node_modules", "rill", "README.md"), "utf8");
    assert.match(readme, /ESM only/);
    assert.match(readme, /### Coming from grpcurl \/ ghz/);
    assert.match(readme, /\| `grpcurl -plaintext localhost:50051 list` \|/);
  });

  test("ioredis is not installed with it (an optional peer), and the Redis log says to install it", () => {
    const r = execFileSync(process.execPath, ["--input-type=module", "-e", 'import { createRedisLog } from "rill/pubsub"; try { createRedisLog({ url: "redis://127.0.0.1:1" }); } catch (e) { console.log(e.message); }'], { cwd: project, encoding: "utf8" });
    assert.match(r, /npm install ioredis/);
  });

  test("@opentelemetry/api is not installed with it (an optional peer): rill imports without it, rill/otel says to install it, and works once it is", () => {
    const run = (code: string) => execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: project, encoding: "utf8" });
    assert.throws(() => readFileSync(join(project, "node_modules", "@opentelemetry", "api", "package.json")), /ENOENT/);
    assert.equal(run('const rill = await import("rill"); console.log(typeof rill.createChannel);').trim(), "function");
    const missing = run('try { await import("rill/otel"); console.log("loaded"); } catch (e) { console.log(e.message); }');
    assert.match(missing, /rill\/otel needs the optional peer dependency @opentelemetry\/api.*npm install @opentelemetry\/api/);
    // From the npm cache the repo's install filled (the version pinned in its devDependencies).
    const pinned = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@opentelemetry/api"]!;
    execFileSync(npm, ["install", "--prefer-offline", "--ignore-scripts", ...quiet, `@opentelemetry/api@${pinned}`], { cwd: project, stdio: ["ignore", "ignore", "pipe"] });
    assert.equal(run('const { createTracingInterceptor } = await import("rill/otel"); console.log(typeof createTracingInterceptor());').trim(), "function");
  });

  test("npx rill serve runs the demo server and npx rill list lists its services", async () => {
    // Its own process group: npx runs node as a child, and both are stopped together.
    server = spawn("npx", ["--no", "rill", "serve", "--port", "0"], { cwd: project, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let text = "";
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening on" line within 30 s: ${text}`)), 30_000);
      const onData = (d: Buffer) => {
        text += d.toString();
        const m = /listening on (\S+)/.exec(text);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      server!.stdout!.on("data", onData);
      server!.stderr!.on("data", onData);
      server!.once("exit", (code) => reject(new Error(`rill serve exited ${code}: ${text}`)));
    });
    const r = await runRill(["list", address], { cwd: project }, ["npx", "--no", "rill"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^grpc\.examples\.echo\.Echo$/m);
    assert.match(r.stdout, /^grpc\.health\.v1\.Health$/m);
    // The page's browser packages are optional peers, not installed here: the page says what to add.
    const page = await fetch(`http://${address}/`);
    assert.equal(page.status, 503);
    assert.match(await page.text(), /npm install @connectrpc\/connect @connectrpc\/connect-web/);
  });

  test("a TypeScript client compiles with strict and exactOptionalPropertyTypes against the installed types, and runs", async () => {
    assert.notEqual(address, "", "needs the server of an earlier test (and @opentelemetry/api, installed by another)");
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          types: ["node"],
          typeRoots: [join(repoRoot, "node_modules", "@types")],
          outDir: "out",
        },
        include: ["client.ts"],
      }),
    );
    writeFileSync(
      join(project, "client.ts"),
      `import { createChannel, createClient, type ServiceImpl } from "rill";
import { receiveChunks, memorySink, chunkFromProto, transferStatusToProto, TransferService } from "rill/transfer";
import { Health, ServingStatus } from "rill/health";
// Without ioredis installed, rill/pubsub's declarations must still compile (skipLibCheck is off).
import type { RedisLogOptions } from "rill/pubsub";
// rill/otel's declarations, against the @opentelemetry/api an earlier test installed.
import { createTracingInterceptor, type TracingInterceptorOptions } from "rill/otel";

export const tracingOptions: TracingInterceptorOptions = { maxMessageEvents: 16 };
export const tracing = createTracingInterceptor(tracingOptions);

export const redisOptions: RedisLogOptions = { url: "redis://127.0.0.1:6379", redis: { connectTimeout: 1000 } };

// Chunked transfer with the exported service: the status mapping must compile as it is.
export const transfer: Pick<ServiceImpl<typeof TransferService>, "upload"> = {
  async upload(requests) {
    const r = await receiveChunks(requests, memorySink(), { fromMessage: (m) => chunkFromProto(m.chunk) });
    return { status: transferStatusToProto(r) };
  },
};

const channel = createChannel(process.argv[2]!);
const health = createClient(Health, channel);
const r = await health.check({ service: "" }, { timeoutMs: 5000 });
console.log(ServingStatus[r.status]);
channel.close();
`,
    );
    const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: project, encoding: "utf8" });
    } catch (e) {
      assert.fail(`tsc failed:\n${String((e as { stdout?: string }).stdout)}`);
    }
    const out = execFileSync(process.execPath, [join(project, "out", "client.js"), address], { cwd: project, encoding: "utf8" });
    assert.equal(out.trim(), "SERVING");
  });
});
