import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test("gen/ matches what the protos generate (run `npm run generate` when this fails)", () => {
  const out = mkdtempSync(join(tmpdir(), "rill-gen-check-"));
  try {
    execFileSync(process.execPath, [join(root, "scripts", "generate.mjs"), "--out", out], { stdio: "pipe" });
    const fresh = files(out).map((f) => relative(out, f)).sort();
    const committed = files(join(root, "gen")).map((f) => relative(join(root, "gen"), f)).sort();
    assert.deepEqual(committed, fresh, "gen/ has different files than the protos produce");
    for (const f of fresh) {
      assert.equal(readFileSync(join(root, "gen", f), "utf8"), readFileSync(join(out, f), "utf8"), `gen/${f} is stale`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
