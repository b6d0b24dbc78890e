/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, or `npm run bench -- --cpu-prof DIR`):
 * `node dist/bench/profile-summary.js FILE.cpuprofile [--top N]` prints the functions with the
 * most self time, and self time per source file, as markdown.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A readable place for a frame: the path from the package or repo folder on. */
function where(url: string): string {
  if (url === "") return "(native)";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) return u.slice(nm + "node_modules/".length);
  const d = u.indexOf("/dist/");
  if (d >= 0) return u.slice(d + "/dist/".length);
  return u;
}

export function summarise(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const w = where(f.url);
    const name = `${f.functionName || "(anonymous)"} — ${w}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    byFile.set(w, (byFile.get(w) ?? 0) + us);
  }
  const idle = byFn.get("(idle) — (native)") ?? 0;
  const busy = total - idle;
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1)}% | ${((us / busy) * 100).toFixed(1)}%`;
  const rows = (m: Map<string, number>, n: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `| ${pct(us)} | ${k.replace(/\|/g, "\\|")} |`)
      .join("\n");
  return [
    `### ${basename(file)} (${(total / 1e6).toFixed(1)} s sampled, ${((idle / total) * 100).toFixed(0)}% idle)`,
    "",
    "| self | of busy | function — file:line |",
    "|---:|---:|---|",
    rows(byFn, top),
    "",
    "| self | of busy | file |",
    "|---:|---:|---|",
    rows(byFile, 12),
    "",
  ].join("\n");
}

const args = process.argv.slice(2);
const topIndex = args.indexOf("--top");
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
// Without --top, topIndex + 1 is 0: the first profile named must not be taken for its value.
for (const f of args.filter((a, i) => !a.startsWith("--") && (topIndex < 0 || i !== topIndex + 1) && a.endsWith(".cpuprofile"))) console.log(summarise(f, top));
