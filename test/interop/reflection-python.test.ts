/**
 * Rill's server reflection answered to Python grpcio (gRPC C-core): a grpcurl-style client
 * written in Python (test/interop/reflection/reflection_client.py) lists the services, fetches
 * descriptors, builds its own descriptor pool and calls VideoService with messages made from
 * it. It has only the reflection protos (compiled here with protoc, as grpcio-reflection is not
 * packaged in Debian); Python grpcio and protoc come from scripts/setup-peers.mjs, which fails
 * the test loudly when they cannot be installed.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TestService } from "../../gen/grpc/testing/test_pb.js";
import { addVideoService } from "../../examples/video/server.js";
import { createTestService } from "../../src/interop/test-service.js";
import { serveHealth } from "../../src/services/health/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";
import { useHarness } from "../support/harness.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const stubsDir = join(repoRoot, ".tmp", "python-reflection-stubs");
let python = "/usr/bin/python3";

/** Compiles the v1alpha reflection proto for Python under a `rill_reflection/` prefix (grpcio owns the `grpc` package name). */
function generateReflectionStubs(): void {
  rmSync(stubsDir, { recursive: true, force: true });
  const pkg = join(stubsDir, "src", "rill_reflection", "grpc", "reflection", "v1alpha");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "reflection.proto"), readFileSync(join(repoRoot, "proto", "grpc", "reflection", "v1alpha", "reflection.proto")));
  const plugin = execFileSync("sh", ["-c", "command -v grpc_python_plugin"], { encoding: "utf8" }).trim();
  execFileSync("protoc", [
    `-I${join(stubsDir, "src")}`,
    `--python_out=${stubsDir}`,
    `--grpc_python_out=${stubsDir}`,
    `--plugin=protoc-gen-grpc_python=${plugin}`,
    join(pkg, "reflection.proto"),
  ]);
  for (const d of ["rill_reflection", "rill_reflection/grpc", "rill_reflection/grpc/reflection", "rill_reflection/grpc/reflection/v1alpha"]) {
    writeFileSync(join(stubsDir, d, "__init__.py"), "");
  }
}

describe("server reflection with a Python grpcio client", () => {
  const h = useHarness();

  before(async () => {
    const setup = (await import(new URL("scripts/setup-peers.mjs", `file://${repoRoot}`).href)) as { setupPeers(): { python: string } };
    python = setup.setupPeers().python;
    generateReflectionStubs();
  });

  test("a Python client lists, fetches descriptors with their imports, and calls VideoService from them", async () => {
    const { target } = await h.server((s) => {
      addVideoService(s);
      s.add(TestService, createTestService());
      serveReflection(s);
      serveHealth(s);
    });
    const { stdout } = await promisify(execFile)(python, [join(repoRoot, "test", "interop", "reflection", "reflection_client.py"), stubsDir, target], {
      timeout: 60_000,
    });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(out.answers, 5);
    assert.deepEqual(out.services, [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "grpc.testing.TestService",
      "video_service.VideoService",
    ]);
    assert.equal(out.not_found_code, 5);
    assert.deepEqual(out.files, [
      "grpc/health/v1/health.proto",
      "grpc/testing/empty.proto",
      "grpc/testing/messages.proto",
      "grpc/testing/test.proto",
      "video/video.proto",
    ]);
    assert.deepEqual(out.methods, ["AddVideo", "ListVideos", "GetVideos", "GetVideo"]);
    assert.equal(out.added_id, "v4");
    assert.deepEqual(out.listed, [{ id: "v4", title: "From Python", author: "py", duration: 42 }]);
    assert.deepEqual(out.simple_request_fields, ["response_type", "response_size", "payload"]);
  });
});
