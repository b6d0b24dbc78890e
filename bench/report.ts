/**
 * The orchestrators' report (run.ts, transfer.ts): every run's metrics or error, each metric's
 * median over the rounds and its ratio to the raw node:http2 baseline of the same invocation,
 * a progress line per run on stderr, and the markdown table (a row per scenario and shown
 * metric, a column per implementation, "value (ratio×)" in each cell).
 */
import type { Metrics } from "./ipc.js";
import type { MetricSpec, Scenario } from "./scenarios.js";
import { median } from "./stats.js";

/** One run: its metrics, or why it failed. */
export type RunResult = Metrics | { error: string };

/** One implementation in one scenario: every run, the medians, the range, and the medians ÷ the baseline's (raw's unless the scenario says). */
export interface ImplResult {
  runs: RunResult[];
  median: Metrics;
  /** The smallest and largest value over the successful runs: the spread the median hides. */
  min: Metrics;
  max: Metrics;
  ratio: Metrics;
}

/** By scenario id, then implementation name. */
export type Results = Record<string, Record<string, ImplResult>>;

/** Medians and ranges over the successful runs of each implementation, and ratios to `baseline`'s (none without it). */
export function summarize(runsOf: Record<string, RunResult[]>, baseline = "raw"): Record<string, ImplResult> {
  const medians: Record<string, Metrics> = {};
  const mins: Record<string, Metrics> = {};
  const maxes: Record<string, Metrics> = {};
  for (const [impl, runs] of Object.entries(runsOf)) {
    const ok = runs.filter((r): r is Metrics => !("error" in r));
    const keys = [...new Set(ok.flatMap((r) => Object.keys(r)))];
    const finite = (k: string): number[] => ok.map((r) => r[k] ?? NaN).filter((x) => Number.isFinite(x));
    medians[impl] = Object.fromEntries(keys.map((k) => [k, median(ok.map((r) => r[k] ?? NaN))]));
    mins[impl] = Object.fromEntries(keys.map((k) => [k, finite(k).length === 0 ? NaN : Math.min(...finite(k))]));
    maxes[impl] = Object.fromEntries(keys.map((k) => [k, finite(k).length === 0 ? NaN : Math.max(...finite(k))]));
  }
  const out: Record<string, ImplResult> = {};
  const base = medians[baseline];
  for (const [impl, runs] of Object.entries(runsOf)) {
    const ratio: Metrics = {};
    if (base !== undefined) for (const [k, v] of Object.entries(medians[impl]!)) if (base[k] !== undefined && base[k] !== 0) ratio[k] = v / base[k]!;
    out[impl] = { runs, median: medians[impl]!, min: mins[impl]!, max: maxes[impl]!, ratio };
  }
  return out;
}

/** A metric's value as the table prints it. */
export function format(value: number, spec: MetricSpec): string {
  if (!Number.isFinite(value)) return "—";
  const group = (x: number, digits = 0): string => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  switch (spec.unit) {
    case "rate":
      return value >= 1e6 ? `${group(value / 1e6, 2)} M` : value >= 1e4 ? `${group(value / 1e3, 0)} k` : group(value);
    case "us":
      return `${group(value)} µs`;
    case "cpu":
      return `${group(value, value < 10 ? 2 : value < 100 ? 1 : 0)} µs`;
    case "latency":
      return value >= 10_000 ? `${group(value / 1000, 1)} ms` : value >= 1000 ? `${group(value / 1000, 2)} ms` : `${group(value)} µs`;
    case "mbps":
      return group(value);
    case "kb":
      return `${group(value / 1000, 1)} KB`;
    case "ms":
      return `${group(value, value < 10 ? 1 : 0)} ms`;
    case "mb":
      return `${value >= 0 ? "+" : ""}${group(value)} MB`;
    case "count":
      return group(value);
    case "percent":
      return `${group(value * 100)} %`;
  }
}

/** An implementation's column heading. */
export function implLabel(impl: string): string {
  switch (impl) {
    case "raw":
      return "raw node:http2";
    case "rill":
      return "Rill";
    case "grpc-js":
      return "@grpc/grpc-js";
    case "connect":
      return "connect-node";
    case "raw-tuned":
      return "raw, 4/16 MiB windows";
    case "raw-iter":
      return "raw + async iteration";
    case "raw-ctx":
      return "raw + a context per call";
    case "rill-observed":
      return "Rill + metrics + tracing";
    case "grpc-js-observed":
      return "@grpc/grpc-js + instrumentation-grpc";
    case "grpcio":
      return "grpcio (Python, C-core)";
    default:
      return impl;
  }
}

/**
 * The markdown table of `scenarios` (their shown metrics) with a column per implementation:
 * "median (ratio×)", the ratio to the scenario's baseline (raw unless it names another; a
 * scenario with another baseline says so in its row), and for scenarios with `spread` the
 * range over the rounds in brackets.
 */
export function table(results: Results, scenarios: readonly Scenario[], impls: readonly string[]): string {
  const lines = [`| scenario | metric | ${impls.map(implLabel).join(" | ")} |`, `|---|---|${impls.map(() => "---:").join("|")}|`];
  for (const s of scenarios) {
    const baseline = s.baseline ?? "raw";
    for (const spec of s.metrics.filter((x) => x.shown)) {
      const cells = impls.map((impl) => {
        const r = results[s.id]?.[impl];
        if (r === undefined) return "—";
        const v = r.median[spec.key] ?? NaN;
        const ratio = r.ratio[spec.key];
        const failed = r.runs.filter((x) => "error" in x).length;
        const note = failed > 0 ? ` (${failed} failed)` : "";
        const lo = r.min[spec.key] ?? NaN;
        const hi = r.max[spec.key] ?? NaN;
        const spread = s.spread === true && Number.isFinite(lo) && lo !== hi ? ` [${format(lo, spec)}–${format(hi, spec)}]` : "";
        return impl === baseline || !spec.ratio || ratio === undefined || !Number.isFinite(ratio)
          ? `${format(v, spec)}${spread}${note}`
          : `${format(v, spec)}${spread} (${ratio.toFixed(2)}×)${note}`;
      });
      const label = baseline !== "raw" && spec.ratio ? `${spec.label} (× ${implLabel(baseline)})` : spec.label;
      lines.push(`| ${s.title} | ${label} | ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

/**
 * Runs one measurement (a failure becomes `{ error }`) and prints its progress line on stderr:
 * `[prefix] scenario round N impl: shown metrics (seconds)`.
 */
export async function measure(prefix: string, s: Scenario, round: number, impl: string, run: () => Promise<Metrics>): Promise<RunResult> {
  const t0 = Date.now();
  let r: RunResult;
  try {
    r = await run();
  } catch (e) {
    r = { error: e instanceof Error ? e.message : String(e) };
  }
  const summary =
    "error" in r
      ? `FAILED: ${r.error}`
      : s.metrics
          .filter((m) => m.shown)
          .map((m) => `${m.label} ${format(r[m.key] ?? NaN, m)}`)
          .join(", ");
  console.error(`[${prefix}] ${s.id} round ${round} ${impl}: ${summary} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return r;
}
