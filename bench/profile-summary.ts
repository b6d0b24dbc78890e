/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, or `npm run bench -- --cpu-prof DIR`):
 * `node dist/bench/profile-summary.js FILE.cpuprofile [--top N] [--from S --to S] [--per N]`
 * prints the functions with the most self time, self time per source file and per area (a
 * package, a node subsystem, a folder of Rill's, the garbage collector), as markdown. `--from`
 * and `--to` keep the samples between those seconds of the profile (a process's steady state,
 * `warmup-curve.js --cpu-prof` prints the window); `--per N` adds each row's time divided by N
 * (the calls or messages of that window), in µs.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { codeArea } from "./code-area.js";

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

export interface SummaryOptions {
  top?: number;
  /** Seconds since the profile started: only samples in [from, to). */
  from?: number;
  to?: number;
  /** Operations in the window: adds µs per operation. */
  per?: number;
}

export function summarise(file: string, o: SummaryOptions = {}): string {
  const top = o.top ?? 25;
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = (o.from ?? 0) * 1e6;
  const to = (o.to ?? Infinity) * 1e6;
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < from || t >= to) continue;
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const w = where(f.url);
    const name = `${f.functionName || "(anonymous)"} — ${w}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    byFile.set(w, (byFile.get(w) ?? 0) + us);
    const a = codeArea(f.url, f.functionName);
    if (a !== "(idle)") byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const idle = byFn.get("(idle) — (native)") ?? 0;
  const busy = total - idle;
  const per = o.per;
  const pct = (us: number): string =>
    `${((us / total) * 100).toFixed(1)}% | ${((us / busy) * 100).toFixed(1)}%${per === undefined ? "" : ` | ${(us / per).toFixed(2)}`}`;
  const perHead = per === undefined ? ["", ""] : [" µs per op |", "---:|"];
  const window = o.from === undefined && o.to === undefined ? "" : `, seconds ${o.from ?? 0}–${o.to ?? "end"}`;
  const rows = (m: Map<string, number>, n: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `| ${pct(us)} | ${k.replace(/\|/g, "\\|")} |`)
      .join("\n");
  return [
    `### ${basename(file)} (${(total / 1e6).toFixed(1)} s sampled${window}, ${((idle / total) * 100).toFixed(0)}% idle${per === undefined ? "" : `, ${per} ops, ${(busy / per).toFixed(2)} µs busy per op`})`,
    "",
    `| self | of busy |${perHead[0]} function — file:line |`,
    `|---:|---:|${perHead[1]}---|`,
    rows(byFn, top),
    "",
    `| self | of busy |${perHead[0]} file |`,
    `|---:|---:|${perHead[1]}---|`,
    rows(byFile, 12),
    "",
    `| self | of busy |${perHead[0]} area |`,
    `|---:|---:|${perHead[1]}---|`,
    rows(byArea, 20),
    "",
  ].join("\n");
}

const args = process.argv.slice(2);
const numberAfter = (name: string): number | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const options: SummaryOptions = {};
for (const [key, name] of [["top", "--top"], ["from", "--from"], ["to", "--to"], ["per", "--per"]] as const) {
  const v = numberAfter(name);
  if (v !== undefined) options[key] = v;
}
for (const f of args.filter((a) => a.endsWith(".cpuprofile"))) console.log(summarise(f, options));
