/**
 * Rill's google.bytestream server answered to Python grpcio (gRPC C-core) through stubs that
 * protoc and grpc_python_plugin generate from the same proto/google/bytestream/bytestream.proto:
 * a chunked write cut off and resumed from QueryWriteStatus, reads whole and ranged, NOT_FOUND,
 * early completion of a blob already present, and a digest mismatch. Python grpcio, protoc and
 * the plugin come from scripts/setup-peers.mjs, which fails this test loudly when it cannot
 * install them.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { serveByteStream, type ByteStreamService } from "../../src/services/bytestream/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";
import { useHarness } from "../support/harness.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const stubsDir = join(repoRoot, ".tmp", "python-bytestream-stubs");
let python = "/usr/bin/python3";

/** Compiles bytestream.proto for Python under a `rill_bytestream/` prefix (protobuf owns the `google` package name). */
function generateByteStreamStubs(): void {
  rmSync(stubsDir, { recursive: true, force: true });
  const pkg = join(stubsDir, "src", "rill_bytestream", "google", "bytestream");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "bytestream.proto"), readFileSync(join(repoRoot, "proto", "google", "bytestream", "bytestream.proto")));
  const plugin = execFileSync("sh", ["-c", "command -v grpc_python_plugin"], { encoding: "utf8" }).trim();
  execFileSync("protoc", [
    `-I${join(stubsDir, "src")}`,
    `--python_out=${stubsDir}`,
    `--grpc_python_out=${stubsDir}`,
    `--plugin=protoc-gen-grpc_python=${plugin}`,
    join(pkg, "bytestream.proto"),
  ]);
  for (const d of ["rill_bytestream", "rill_bytestream/google", "rill_bytestream/google/bytestream"]) writeFileSync(join(stubsDir, d, "__init__.py"), "");
}

describe("google.bytestream with a Python grpcio client", () => {
  const h = useHarness();
  let dir: string;

  before(async () => {
    const setup = (await import(new URL("scripts/setup-peers.mjs", `file://${repoRoot}`).href)) as { setupPeers(): { python: string } };
    python = setup.setupPeers().python;
    generateByteStreamStubs();
    dir = mkdtempSync(join(tmpdir(), "rill-bytestream-py-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("grpcio writes a blob in chunks, is cut off, resumes from QueryWriteStatus, and reads it back", async () => {
    let bs!: ByteStreamService;
    const { target } = await h.server((s) => {
      bs = serveByteStream(s, { dir });
      serveReflection(s);
    });
    const { stdout } = await promisify(execFile)(python, [join(repoRoot, "test", "interop", "bytestream", "bytestream_client.py"), stubsDir, target], { timeout: 90_000 });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    const MiB = 1024 * 1024;
    const size = 3 * MiB + 5;
    assert.equal(out.size, size);
    assert.equal(out.status_before, "NOT_FOUND");
    assert.equal(out.first_committed, MiB);
    assert.deepEqual(out.mid_status, [MiB, false]);
    assert.equal(out.cut, "CANCELLED");
    const [committed, complete] = out.after_cut as [number, boolean];
    assert.equal(complete, false);
    assert.equal(committed, MiB + 8 * 64 * 1024, "the 8 chunks sent before the cut are committed");
    assert.equal(out.final_committed, size);
    assert.deepEqual(out.final_status, [size, true]);
    assert.equal(out.read_whole_ok, true);
    assert.equal(out.read_range_ok, true);
    assert.equal(out.read_range_len, 5000);
    assert.equal(out.missing, "NOT_FOUND");
    assert.equal(out.again_committed, size, "an upload of a blob already present completes with its size");
    assert.equal(out.mismatch, "INVALID_ARGUMENT");
    assert.deepEqual(await (await bs.partials()).list(), [], "no partial upload left behind");
  });
});
