#!/usr/bin/env node
// Makes the interop peers that are not ours available: Python grpcio (gRPC C-core) from
// Debian, plus protoc and grpc_python_plugin to generate the Python stubs of grpc.testing.
//
// Invariants:
// - A machine that already has everything installs nothing (checked first, cheaply).
// - Missing packages are installed with apt-get (`apt-get update` once, then one install);
//   when that is impossible, it prints what to do and fails. It never skips.
// - The stubs go to .tmp/python-stubs (gitignored) and are regenerated when a .proto is newer.
//
// `node scripts/setup-peers.mjs` runs it; the interop matrix test imports `setupPeers()`.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { aptInstall, which } from "./apt.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The system Python. A pyenv (or venv) python may come first on PATH and lack Debian's packages. */
export const python = "/usr/bin/python3";

/** Where the generated Python stubs live (importable as `rill_testing.grpc.testing.*_pb2`). */
export const pythonStubsDir = join(root, ".tmp", "python-stubs");

const debianPackages = ["python3-grpcio", "python3-protobuf", "protobuf-compiler", "protobuf-compiler-grpc"];
const protoDir = join(root, "proto", "grpc", "testing");
const protoNames = ["empty.proto", "messages.proto", "test.proto"];

function log(msg) {
  console.error(`[setup-peers] ${msg}`);
}


function missingPieces() {
  const missing = [];
  const py = existsSync(python) ? spawnSync(python, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" }) : undefined;
  if (py === undefined || py.status !== 0) missing.push("python3 grpc/protobuf modules");
  if (which("protoc") === undefined) missing.push("protoc");
  if (which("grpc_python_plugin") === undefined) missing.push("grpc_python_plugin");
  return missing;
}

function fail(msg) {
  const text =
    `${msg}\n` +
    `The interop matrix needs Python grpcio (C-core) and the stub generators. Install them with:\n` +
    `  sudo apt-get update && sudo apt-get install -y ${debianPackages.join(" ")}\n` +
    `(Debian/Ubuntu; ${python} must be able to \`import grpc, google.protobuf\`).`;
  throw new Error(text);
}

function installDebianPackages(missing) {
  log(`missing: ${missing.join(", ")}; installing ${debianPackages.join(" ")} with apt-get`);
  aptInstall(debianPackages, { log, fail });
  const still = missingPieces();
  if (still.length > 0) fail(`still missing after apt-get install: ${still.join(", ")}.`);
}

/**
 * Generates the Python stubs. The protos are copied under a `rill_testing/` prefix first:
 * generated as `grpc/testing/*_pb2.py` they would be the Python package `grpc.testing`, which
 * the grpcio package `grpc` shadows. The proto package (and so every wire name) is unchanged.
 */
function generatePythonStubs() {
  const stamp = join(pythonStubsDir, ".stamp");
  const newest = Math.max(...protoNames.map((n) => statSync(join(protoDir, n)).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newest) return;
  rmSync(pythonStubsDir, { recursive: true, force: true });
  const src = join(pythonStubsDir, "proto-src");
  const pkgDir = join(src, "rill_testing", "grpc", "testing");
  mkdirSync(pkgDir, { recursive: true });
  for (const name of protoNames) {
    const text = readFileSync(join(protoDir, name), "utf8").replace(/import "grpc\/testing\//g, 'import "rill_testing/grpc/testing/');
    writeFileSync(join(pkgDir, name), text);
  }
  const plugin = which("grpc_python_plugin");
  execFileSync(
    "protoc",
    [
      `-I${src}`,
      `--python_out=${pythonStubsDir}`,
      `--grpc_python_out=${pythonStubsDir}`,
      `--plugin=protoc-gen-grpc_python=${plugin}`,
      ...protoNames.map((n) => join(pkgDir, n)),
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  for (const dir of ["rill_testing", "rill_testing/grpc", "rill_testing/grpc/testing"]) {
    writeFileSync(join(pythonStubsDir, dir, "__init__.py"), "");
  }
  rmSync(src, { recursive: true, force: true });
  const made = readdirSync(join(pythonStubsDir, "rill_testing", "grpc", "testing"));
  if (!made.includes("test_pb2_grpc.py")) fail(`protoc did not produce test_pb2_grpc.py in ${pythonStubsDir}`);
  writeFileSync(stamp, new Date().toISOString());
  log(`generated Python stubs in ${pythonStubsDir}`);
}

/** Installs what is missing and generates the stubs. Throws with instructions on failure. */
export function setupPeers() {
  const missing = missingPieces();
  if (missing.length > 0) installDebianPackages(missing);
  generatePythonStubs();
  const v = spawnSync(python, ["-c", "import grpc; print(grpc.__version__)"], { encoding: "utf8" });
  return { python, pythonStubsDir, grpcioVersion: v.stdout.trim() };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const r = setupPeers();
    log(`ready: ${r.python} with grpcio ${r.grpcioVersion}; stubs in ${r.pythonStubsDir}`);
  } catch (e) {
    console.error(`[setup-peers] ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
