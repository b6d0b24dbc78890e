/**
 * Writes the README's benchmark tables from a results file of `npm run bench`:
 *
 *   npm run bench:readme            # rewrites README.md's generated sections
 *   npm run bench:readme -- --check # exits 1 if they differ from what the file gives
 *
 * Each generated section sits between `<!-- bench:NAME FILE -->` and `<!-- /bench:NAME -->`,
 * and FILE (relative to the repository) is the results file it is made from, so a reader can
 * see where every figure came from and make it again. Sections: `table` (every shown metric of
 * every scenario, each cell its median with the spread of its rounds) and `targets` (issue 19's
 * targets from targets.ts, judged on the same medians).
 *
 * A figure is quoted only when its rounds agree: a cell whose rounds spread more than
 * ±`steadySpread` around the median (memory growths: ±`steadyMb` MB) shows its range and
 * "unsteady" instead, and a target judged on it says so rather than "met" or "not met". With
 * five rounds or more the highest and lowest are left out of the spread, so one round disturbed
 * by other work does not decide it. One round has no spread to show and is marked.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { format, implLabel, type ImplResult, type Results } from "./report.js";
import { scenarios, type MetricSpec } from "./scenarios.js";
import { targets, type Target } from "./targets.js";

/**
 * The widest spread of rounds a quoted figure may have: ±20 % of its median (half the range).
 * Chosen from this machine: CPU-per-operation cells and most rates stay inside it across five
 * rounds; a rate that does not was measured while something else ran.
 */
export const steadySpread = 0.2;
/** A memory growth in MB is steady when its rounds agree within ± this many MB. */
export const steadyMb = 8;

/** What `npm run bench` writes (run.ts), as far as the README needs it. */
export interface ResultsFile {
  command: string;
  startedAt: string;
  node: string;
  cpu?: string;
  cores: number;
  loadAverage?: { start: number[]; end: number[] };
  rounds: number;
  memoryRounds: number;
  implementations: string[];
  results: Results;
}

/** One cell's figures: median, its spread (half the range ÷ median), and how many rounds made it. */
export interface Figure {
  value: number;
  /** Half the range of the rounds counted (see `figure`) ÷ the median; for MB growths, ÷ `steadyMb`. */
  spread: number;
  rounds: number;
  steady: boolean;
  /** The range the spread was taken over. */
  lo: number;
  hi: number;
}

export function figure(r: ImplResult | undefined, key: string, unit?: MetricSpec["unit"]): Figure | undefined {
  if (r === undefined) return undefined;
  if (r.min === undefined || r.max === undefined) throw new Error("the results file has no per-metric ranges (made before they were recorded): run `npm run bench` again");
  const value = r.median[key];
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const values = r.runs
    .filter((x): x is Record<string, number> => !("error" in x))
    .map((x) => x[key] ?? NaN)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const rounds = values.length;
  // Five rounds or more: the highest and the lowest are left out of the spread (one round
  // disturbed by other work on the machine would otherwise decide it); fewer: the whole range.
  const kept = rounds >= 5 ? values.slice(1, -1) : values;
  const lo = kept[0] ?? value;
  const hi = kept[kept.length - 1] ?? value;
  // A growth in MB (memory rows) sits near zero, where a share of the median means nothing: its
  // spread is judged in MB against `steadyMb`.
  const spread = unit === "mb" ? (hi - lo) / 2 / steadyMb : value === 0 ? (hi === lo ? 0 : Number.POSITIVE_INFINITY) : (hi - lo) / 2 / Math.abs(value);
  return { value, spread, rounds, steady: rounds >= 2 && spread <= (unit === "mb" ? 1 : steadySpread), lo, hi };
}

function quote(f: Figure, spec: MetricSpec): string {
  if (f.rounds < 2) return `${format(f.value, spec)} (1 round)`;
  if (!f.steady) return `${format(f.lo, spec)}–${format(f.hi, spec)}, unsteady`;
  if (spec.unit === "mb") return `${format(f.value, spec)} ±${Math.round(f.spread * steadyMb)} MB`;
  return `${format(f.value, spec)} ±${Math.round(f.spread * 100)} %`;
}

/** The table of every shown metric: "median ±spread (ratio×)" per implementation. */
export function resultsTable(file: ResultsFile): string {
  const impls = file.implementations.filter((i) => Object.values(file.results).some((s) => s[i] !== undefined));
  const lines = [`| scenario | metric | ${impls.map(implLabel).join(" | ")} |`, `|---|---|${impls.map(() => "---:").join("|")}|`];
  for (const s of scenarios) {
    const results = file.results[s.id];
    if (results === undefined) continue;
    const baseline = s.baseline ?? "raw";
    for (const spec of s.metrics.filter((x) => x.shown)) {
      const cells = impls.map((impl) => {
        const r = results[impl];
        const f = figure(r, spec.key, spec.unit);
        if (r === undefined || f === undefined) return "—";
        const ratio = r.ratio[spec.key];
        const base = figure(results[baseline], spec.key, spec.unit);
        const showRatio = impl !== baseline && spec.ratio && ratio !== undefined && Number.isFinite(ratio) && f.steady && base?.steady === true;
        return `${quote(f, spec)}${showRatio ? ` (${ratio.toFixed(2)}×)` : ""}`;
      });
      const label = baseline !== "raw" && spec.ratio ? `${spec.label} (× ${implLabel(baseline)})` : spec.label;
      lines.push(`| ${s.title} | ${label} | ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

/** The metric a target is judged on, as its scenario defines it. */
function specOf(t: Target): MetricSpec | undefined {
  return scenarios.find((s) => s.id === t.scenario)?.metrics.find((m) => m.key === t.metric);
}

/** A target's verdict on the file's medians: the value compared, and met / not met / unsteady / not measured. */
export function judge(t: Target, results: Results): { value: string; verdict: string } {
  const spec = specOf(t);
  const rill = figure(results[t.scenario]?.rill, t.metric, spec?.unit);
  if (spec === undefined || rill === undefined) return { value: "—", verdict: "not measured" };
  // Bytes are judged against a limit in bytes: shown exactly, not rounded to tenths of a KB.
  const show = (v: number): string => (spec.unit === "kb" ? `${Math.round(v).toLocaleString("en-US")} B` : format(v, spec));
  let value = rill.value;
  let text = show(rill.value);
  let rounds = rill.rounds;
  let steady = rill.steady;
  if (t.against !== undefined) {
    const base = figure(results[t.scenario]?.[t.against], t.metric, spec.unit);
    if (base === undefined) return { value: text, verdict: `not measured (no ${t.against})` };
    value = rill.value / base.value;
    text = `${value.toFixed(2)}× (${show(rill.value)} vs ${show(base.value)})`;
    rounds = Math.min(rounds, base.rounds);
    steady &&= base.steady;
  }
  const met = t.goal === "at least" ? value >= t.limit : value <= t.limit;
  const onMedians = `(${met ? "met" : "not met"} on the medians)`;
  if (rounds < 2) return { value: text, verdict: `one round: not judged ${onMedians}` };
  if (!steady) return { value: text, verdict: `unsteady rounds: not judged ${onMedians}` };
  return { value: text, verdict: met ? "met" : "**not met**" };
}

export function targetsTable(file: ResultsFile): string {
  const lines = ["| target | goal | Rill | result | the API's floor: raw + async iteration |", "|---|---|---|---|---|"];
  for (const t of targets) {
    const j = judge(t, file.results);
    lines.push(`| ${t.label} | ${t.shown} | ${j.value} | ${j.verdict} | ${floorOf(t, file.results)} |`);
  }
  return lines.join("\n");
}

/** A target's floor cell: the floor implementation's ratio to the target's baseline, and Rill's to the floor. */
export function floorOf(t: Target, results: Results): string {
  if (t.floor === undefined || t.against === undefined) return "—";
  const unit = specOf(t)?.unit;
  const floor = figure(results[t.scenario]?.[t.floor], t.metric, unit);
  const base = figure(results[t.scenario]?.[t.against], t.metric, unit);
  const rill = figure(results[t.scenario]?.rill, t.metric, unit);
  if (floor === undefined || base === undefined || rill === undefined) return "not measured";
  const steady = floor.steady && base.steady && rill.steady ? "" : " (unsteady rounds)";
  return `${(floor.value / base.value).toFixed(2)}× raw; Rill ${(rill.value / floor.value).toFixed(2)}× the floor${steady}`;
}

/** The line under each table: where its figures come from. */
export function provenance(file: ResultsFile, path: string): string {
  const load = file.loadAverage === undefined ? "" : `; load average ${file.loadAverage.start[0]!.toFixed(1)} at the start, ${file.loadAverage.end[0]!.toFixed(1)} at the end`;
  return (
    `From \`${path}\`: \`${file.command}\`, ${file.startedAt.slice(0, 10)}, Node ${file.node}, ${file.cores} × ${file.cpu ?? "unknown CPU"}${load}; ` +
    `medians of ${file.rounds} rounds (${file.memoryRounds} for the memory rows); ±spread = half the range of the rounds, the highest and lowest left out when there are five or more; ` +
    `a figure whose rounds spread more than ±${steadySpread * 100} % (memory growths: ±${steadyMb} MB) is shown as that range, "unsteady", and neither quoted as a ratio nor judged.`
  );
}

const sections: Record<string, (file: ResultsFile, path: string) => string> = {
  table: (f, p) => `${resultsTable(f)}\n\n${provenance(f, p)}`,
  targets: (f, p) => `${targetsTable(f)}\n\n${provenance(f, p)}`,
};

/** README text with every generated section made again from the file its marker names (read by `read`). */
export function regenerate(readme: string, read: (path: string) => ResultsFile): string {
  return readme.replace(/<!-- bench:(\w+) (\S+) -->\n[\s\S]*?<!-- \/bench:\1 -->/g, (whole, name: string, path: string) => {
    const make = sections[name];
    if (make === undefined) throw new Error(`README: unknown generated section "${name}" (known: ${Object.keys(sections).join(", ")})`);
    return `<!-- bench:${name} ${path} -->\n${make(read(path), path)}\n<!-- /bench:${name} -->`;
  });
}

export function readResults(root: string, path: string): ResultsFile {
  return JSON.parse(readFileSync(join(root, path), "utf8")) as ResultsFile;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const readmePath = join(root, "README.md");
  const before = readFileSync(readmePath, "utf8");
  const after = regenerate(before, (p) => readResults(root, p));
  if (process.argv.includes("--check")) {
    if (after !== before) {
      console.error("README.md's benchmark sections differ from their results files: run `npm run bench:readme`.");
      process.exit(1);
    }
    console.error("README.md's benchmark sections match their results files.");
  } else if (after === before) {
    console.error("README.md's benchmark sections are already up to date.");
  } else {
    writeFileSync(readmePath, after);
    console.error("README.md's benchmark sections rewritten from their results files.");
  }
}
