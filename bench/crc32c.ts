/**
 * CRC-32C throughput (issue 20): which implementation `src/transfer/crc32c.ts` should run for
 * the per-chunk checksums, in MB/s (10⁶ bytes) over 64 KiB and 1 MiB buffers, against node's
 * built-in `zlib.crc32` (CRC-32/IEEE: another polynomial, the built-in reference for speed) and
 * `crypto.createHash("sha256")` for scale (every transfer also hashes the whole file).
 *
 *   npm run bench:crc32c                                  # this node, 7 rounds
 *   npm run bench:crc32c -- --nodes 20,22,24              # each major in its own process
 *   npm run bench:crc32c -- --candidates /tmp/crc-cands   # also the packages installed there
 *
 * Rill's own: its slicing-by-16 (`crc32c-slicing.ts`), the one-table loop it replaced, and
 * `@node-rs/crc32` (its optional dependency). The other candidates are not dependencies of the
 * repo; install them beside it to include them, e.g.
 *   npm install --prefix /tmp/crc-cands @chainsafe/fast-crc32c hash-wasm @aws-crypto/crc32c sse4_crc32
 * (npm 11 does not run sse4_crc32's node-gyp build unless asked: without it that row is
 * missing). A candidate that is not found is listed as such; one whose CRC-32C of "123456789"
 * is not 0xE3069283 is not measured.
 *
 * Method: the data is a 32 MiB pool of random bytes walked buffer by buffer (as a transfer's
 * chunks come fresh from the socket, not from a hot L1), every implementation runs for --ms
 * (200) per size per round, the order rotates each round so drift on this shared 2-core machine
 * spreads over all of them, and one unrecorded warm-up round goes first. Each cell is the
 * median over the rounds with the range in brackets. Results in bench/results/crc32c.json.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import { crc32cSlicing } from "../src/transfer/crc32c-slicing.js";
import { median } from "./stats.js";

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), "..", "..");
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [64 * KiB, MiB];
const POOL = 32 * MiB;

type Fn = (data: Uint8Array) => number;
interface Impl {
  name: string;
  note: string;
  fn?: Fn;
  /** Why it was not measured (not installed, wrong answer). */
  missing?: string;
}
interface RunResult {
  node: string;
  rounds: number;
  ms: number;
  /** impl → size → MB/s per round. */
  mbps: Record<string, Record<string, number[]>>;
  missing: Record<string, string>;
  notes: Record<string, string>;
}

const { values: v } = parseArgs({
  options: {
    rounds: { type: "string" },
    ms: { type: "string" },
    candidates: { type: "string" },
    nodes: { type: "string" },
    json: { type: "boolean" },
    out: { type: "string" },
  },
});
const rounds = Number(v.rounds ?? 7);
const ms = Number(v.ms ?? 200);

if (v.nodes !== undefined) {
  const results = v.nodes.split(",").map((major) => runOn(major.trim()));
  report(results);
} else {
  const result = await measure();
  if (v.json) process.stdout.write(JSON.stringify(result));
  else report([result]);
}

/** Runs this file with the pinned Node of `major` (scripts/node-versions.mjs) and reads its JSON. */
function runOn(major: string): RunResult {
  // Its last line: a first run also prints what npm installed.
  const bin = execFileSync(process.execPath, [join(root, "scripts", "node-versions.mjs"), major], { encoding: "utf8" }).trim().split("\n").at(-1)!;
  const args = [here, "--json", "--rounds", String(rounds), "--ms", String(ms)];
  if (v.candidates !== undefined) args.push("--candidates", resolve(v.candidates));
  console.error(`[bench:crc32c] Node ${major}: ${bin}`);
  return JSON.parse(execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * MiB })) as RunResult;
}

async function measure(): Promise<RunResult> {
  const impls = await implementations();
  const live = impls.filter((i) => i.fn !== undefined);
  const pool = randomFillSync(new Uint8Array(POOL));
  const mbps: RunResult["mbps"] = {};
  for (const i of live) mbps[i.name] = Object.fromEntries(SIZES.map((s) => [String(s), [] as number[]]));
  for (let r = -1; r < rounds; r++) {
    for (const size of SIZES) {
      // Rotate the order each round; round -1 is the warm-up and is not recorded.
      const order = live.map((_, k) => live[(k + Math.max(r, 0)) % live.length]!);
      for (const impl of order) {
        const rate = throughput(impl.fn!, pool, size, r < 0 ? ms / 2 : ms);
        if (r >= 0) mbps[impl.name]![String(size)]!.push(rate);
      }
    }
    if (r >= 0) console.error(`[bench:crc32c] ${process.version}: round ${r + 1}/${rounds}`);
  }
  return {
    node: process.version,
    rounds,
    ms,
    mbps,
    missing: Object.fromEntries(impls.filter((i) => i.missing !== undefined).map((i) => [i.name, i.missing!])),
    notes: Object.fromEntries(impls.map((i) => [i.name, i.note])),
  };
}

/** MB/s of `fn` over consecutive `size` buffers of the pool for about `forMs` milliseconds. */
function throughput(fn: Fn, pool: Uint8Array, size: number, forMs: number): number {
  const buffers = POOL / size;
  const budget = BigInt(Math.round(forMs * 1e6));
  let sink = 0;
  let bytes = 0;
  let k = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < budget) {
    sink ^= fn(pool.subarray(k * size, (k + 1) * size));
    bytes += size;
    k = (k + 1) % buffers;
    elapsed = process.hrtime.bigint() - t0;
  }
  if (sink === 0.5) console.error("unreachable"); // keeps the results alive
  return bytes / (Number(elapsed) / 1e9) / 1e6;
}

/** Every implementation, loaded and checked; the ones that cannot be had say why. */
async function implementations(): Promise<Impl[]> {
  const fromRepo = createRequire(here);
  const fromCandidates = v.candidates !== undefined ? createRequire(join(resolve(v.candidates), "noop.js")) : undefined;
  const load = (name: string): unknown => {
    try {
      return fromRepo(name);
    } catch (repoError) {
      if (fromCandidates === undefined) throw repoError;
      return fromCandidates(name);
    }
  };
  const byteTable = oneTableCrc32c();
  const list: Impl[] = [
    { name: "rill js slicing-by-16", note: "src/transfer/crc32c-slicing.ts", fn: (d) => crc32cSlicing(d) },
    { name: "js one table (byte at a time)", note: "the stand-in it replaced", fn: byteTable },
  ];
  const candidates: [string, string, () => Promise<Fn>][] = [
    ["@node-rs/crc32", "napi-rs, prebuilt per platform; Rill's optional dependency", async () => {
      const m = load("@node-rs/crc32") as { crc32c(d: Uint8Array, s?: number): number };
      return (d) => m.crc32c(d);
    }],
    ["@chainsafe/fast-crc32c", "@node-rs/crc32 with a one-table JS fallback", async () => {
      const m = load("@chainsafe/fast-crc32c") as { calculate(d: Uint8Array, s?: number): number };
      return (d) => m.calculate(d);
    }],
    ["sse4_crc32", "node-gyp addon, SSE 4.2 (built at install)", async () => {
      const m = load("sse4_crc32") as { calculate(d: Uint8Array, s?: number): number };
      return (d) => m.calculate(d);
    }],
    ["hash-wasm", "WebAssembly, createCRC32(0x82F63B78)", async () => {
      const m = load("hash-wasm") as { createCRC32(poly: number): Promise<{ init(): unknown; update(d: Uint8Array): unknown; digest(f: "hex"): string }> };
      const h = await m.createCRC32(0x82f63b78);
      return (d) => {
        h.init();
        h.update(d);
        return parseInt(h.digest("hex"), 16);
      };
    }],
    ["@aws-crypto/crc32c", "JS, one table (in the AWS SDK)", async () => {
      const m = load("@aws-crypto/crc32c") as { crc32c(d: Uint8Array): number };
      return (d) => m.crc32c(d);
    }],
  ];
  for (const [name, note, get] of candidates) {
    try {
      list.push({ name, note, fn: await get() });
    } catch (e) {
      list.push({ name, note, missing: `not installed (${(e as Error).message.split("\n")[0]})` });
    }
  }
  const check = new TextEncoder().encode("123456789");
  for (const impl of list) {
    if (impl.fn !== undefined && impl.fn(check) >>> 0 !== 0xe3069283) {
      impl.missing = `wrong: CRC-32C("123456789") = 0x${(impl.fn(check) >>> 0).toString(16)}`;
      delete impl.fn;
    }
  }
  const zcrc = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  list.push(
    zcrc !== undefined
      ? { name: "zlib.crc32 (IEEE, built-in)", note: "CRC-32/IEEE, not CRC-32C: the built-in reference", fn: (d) => zcrc(d) }
      : { name: "zlib.crc32 (IEEE, built-in)", note: "CRC-32/IEEE", missing: `not in ${process.version}` },
    { name: "sha256 (crypto)", note: "createHash('sha256'), for scale", fn: (d) => createHash("sha256").update(d).digest().readUInt32LE(0) },
  );
  return list;
}

/** The classic byte-at-a-time table loop (what main ran before this branch). */
function oneTableCrc32c(): Fn {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  return (d) => {
    let c = -1;
    for (let i = 0; i < d.length; i++) c = t[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
    return ~c >>> 0;
  };
}

/** The markdown table (one column per Node version) to stdout, everything to the JSON file. */
function report(results: RunResult[]): void {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.notes)))];
  const fmt = (xs: number[] | undefined): string => {
    if (xs === undefined || xs.length === 0) return "—";
    return `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  };
  const lines = [
    `CRC-32C throughput, MB/s (10⁶ B/s): median (min–max) of ${rounds} rounds × ${ms} ms, 32 MiB random pool`,
    "",
    `| implementation | buffer | ${results.map((r) => `Node ${r.node}`).join(" | ")} |`,
    `|---|---|${results.map(() => "---:").join("|")}|`,
  ];
  for (const name of names) {
    for (const size of SIZES) {
      const cells = results.map((r) => (r.missing[name] !== undefined ? "n/a" : fmt(r.mbps[name]?.[String(size)])));
      lines.push(`| ${name} | ${size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`} | ${cells.join(" | ")} |`);
    }
  }
  const missing = results.flatMap((r) => Object.entries(r.missing).map(([n, why]) => `- ${r.node}: ${n}: ${why}`));
  if (missing.length > 0) lines.push("", "Not measured:", ...missing);
  console.log(lines.join("\n"));
  const out = v.out ?? join(root, "bench", "results", "crc32c.json");
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n");
  console.error(`[bench:crc32c] results: ${out}`);
}
