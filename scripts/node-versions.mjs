#!/usr/bin/env node
// The Node.js versions the suite runs on, and where their binaries come from: the running node
// when its major matches, else the npm registry's `node` package (which ships the official
// binaries) installed once into .node-versions/<version>/ (gitignored). Pinned, so a run is
// reproducible; bump them here.
//
//   node scripts/node-versions.mjs 22     prints the path of a Node 22 binary, installing it if needed
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** The pinned release of each supported major (the current LTS lines). */
export const pinned = { 20: "20.20.2", 22: "22.23.3", 24: "24.21.0" };

/** The majors `npm test` runs on unless RILL_NODE_VERSIONS says otherwise. */
export const defaultMajors = [20, 22, 24];

/** Path of a node binary of `major`: this process's own when it matches, else the pinned release from npm. */
export function nodeBinary(major) {
  if (Number(process.versions.node.split(".")[0]) === major) return process.execPath;
  const version = pinned[major];
  if (version === undefined) throw new Error(`no pinned Node.js release for major ${major} (known: ${Object.keys(pinned).join(", ")})`);
  const prefix = join(root, ".node-versions", version);
  const bin = join(prefix, "node_modules", "node", "bin", process.platform === "win32" ? "node.exe" : "node");
  if (!existsSync(bin)) {
    console.error(`[node-versions] installing Node.js ${version} from the npm registry into ${prefix} ...`);
    const t0 = Date.now();
    execFileSync(npm, ["install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", `node@${version}`], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
    if (!existsSync(bin)) throw new Error(`npm installed node@${version} but ${bin} is missing`);
    console.error(`[node-versions] Node.js ${version}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const got = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  if (got !== `v${version}`) throw new Error(`${bin} reports ${got}, expected v${version}`);
  return bin;
}

/** The majors asked for by RILL_NODE_VERSIONS ("20,22,24"; "current" for the running node only). */
export function requestedMajors(env = process.env.RILL_NODE_VERSIONS) {
  if (env === undefined || env.trim() === "") return defaultMajors;
  if (env.trim() === "current") return [Number(process.versions.node.split(".")[0])];
  return env.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n)) throw new Error(`RILL_NODE_VERSIONS: "${s}" is not a Node.js major version`);
    return n;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const major = Number(process.argv[2]);
  console.log(nodeBinary(major));
}
