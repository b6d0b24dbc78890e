#!/usr/bin/env node
// Regenerates gen/ from every proto module listed in buf.yaml with protoc-gen-es.
// `node scripts/generate.mjs --out DIR` writes elsewhere (the freshness test compares the two).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outIndex = process.argv.indexOf("--out");
const out = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : join(root, "gen");

// buf resolves `out` relative to the working directory; a template with an absolute path keeps
// this script runnable from anywhere.
const template = readFileSync(join(root, "buf.gen.yaml"), "utf8").replace(/out: gen\b/, `out: ${JSON.stringify(out)}`);
const dir = mkdtempSync(join(tmpdir(), "rill-gen-"));
const templatePath = join(dir, "buf.gen.yaml");
writeFileSync(templatePath, template);
try {
  execFileSync(join(root, "node_modules", ".bin", "buf"), ["generate", "--template", templatePath], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}` },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.error(`[generate] wrote ${out}`);
