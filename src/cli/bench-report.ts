/**
 * The report of a `rill bench` run in ghz's formats: `summary` (text), `json`, `csv` (one row
 * per call) and `html` (a self-contained page: summary, latency histogram as inline SVG,
 * percentiles, status and error distributions; no script, no outside resource). Pure.
 */
import type { LatencyStats } from "./latency-stats.js";
import { styles } from "./output.js";

export const benchFormats = ["summary", "json", "csv", "html"] as const;
export type BenchFormat = (typeof benchFormats)[number];

/** One call, for the csv format. */
export interface CallRecord {
  /** Start, ms since the run began. */
  startMs: number;
  latencyMs: number;
  status: string;
  error: string;
}

/** The result of a run, as `--format json` prints it. */
export interface BenchReport {
  method: string;
  concurrency: number;
  connections: number;
  /** Target rate of call starts (calls/s), when `--rps` was given. */
  targetRps?: number;
  /** Calls run before measuring, not counted. */
  warmup: number;
  /** Why the run ended early ("interrupted (Ctrl+C)"), when it did. */
  stopped?: string;
  count: number;
  totalMs: number;
  /** Measured: counted calls per second. */
  rps: number;
  averageMs: number;
  fastestMs: number;
  slowestMs: number;
  histogram: LatencyStats["histogram"];
  latencyDistribution: LatencyStats["percentiles"];
  statusCodeDistribution: Record<string, number>;
  /** "STATUS: message" → count; numbers of milliseconds in messages are folded together. */
  errorDistribution: Record<string, number>;
}

/** The grouping key of a failed call: its status and message, with elapsed times folded ("after N ms"). */
export function errorKey(status: string, message: string): string {
  return `${status}: ${message.replace(/\b\d+(?:\.\d+)?\s?(ms|s)\b/g, "N $1")}`;
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(2)} ms`);

function summary(r: BenchReport, colour: boolean): string {
  const s = styles(colour);
  const maxCount = Math.max(1, ...r.histogram.map((b) => b.count));
  const lines = [
    s.bold("Summary:"),
    ...(r.stopped !== undefined ? [`  Stopped:      ${r.stopped}`] : []),
    `  Count:        ${r.count}`,
    `  Total:        ${ms(r.totalMs)}`,
    `  Slowest:      ${ms(r.slowestMs)}`,
    `  Fastest:      ${ms(r.fastestMs)}`,
    `  Average:      ${ms(r.averageMs)}`,
    `  Requests/sec: ${r.rps.toFixed(2)}${r.targetRps !== undefined ? ` (target ${r.targetRps})` : ""}`,
    ...(r.warmup > 0 ? [`  Warm-up:      ${r.warmup} calls, not counted`] : []),
    "",
    s.bold("Response time histogram:"),
    ...r.histogram.map((b) => `  ${b.markMs.toFixed(3).padStart(10)} ms [${String(b.count).padStart(String(r.count).length)}] |${"∎".repeat(Math.round((b.count / maxCount) * 40))}`),
    "",
    s.bold("Latency distribution:"),
    ...r.latencyDistribution.map((p) => `  ${String(p.percentage).padStart(4)} % in ${ms(p.latencyMs)}`),
    "",
    s.bold("Status code distribution:"),
    ...Object.entries(r.statusCodeDistribution).map(([k, v]) => `  [${k === "OK" ? s.green(k) : s.red(k)}] ${v} responses`),
  ];
  const errors = Object.entries(r.errorDistribution);
  if (errors.length > 0) lines.push("", s.bold("Error distribution:"), ...errors.map(([k, v]) => `  [${v}] ${k}`));
  return lines.join("\n") + "\n";
}

const csvCell = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

function csv(calls: readonly CallRecord[]): string {
  const rows = ["start_ms,latency_ms,status,error", ...calls.map((c) => [c.startMs.toFixed(3), c.latencyMs.toFixed(3), c.status, csvCell(c.error)].join(","))];
  return rows.join("\n") + "\n";
}

const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function html(r: BenchReport): string {
  const barW = 44;
  const gap = 8;
  const h = 220;
  const maxCount = Math.max(1, ...r.histogram.map((b) => b.count));
  const width = Math.max(1, r.histogram.length) * (barW + gap) + 60;
  const bars = r.histogram
    .map((b, i) => {
      const bh = Math.round((b.count / maxCount) * (h - 40));
      const x = 50 + i * (barW + gap);
      return `<g><title>≤ ${b.markMs.toFixed(3)} ms: ${b.count} calls</title><rect class="bar" x="${x}" y="${h - 20 - bh}" width="${barW}" height="${bh}"/><text x="${x + barW / 2}" y="${h - 24 - bh}" text-anchor="middle">${b.count}</text><text x="${x + barW / 2}" y="${h - 4}" text-anchor="middle">${b.markMs.toFixed(2)}</text></g>`;
    })
    .join("\n");
  const row = (k: string, v: string) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rill bench: ${escapeHtml(r.method)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: 2px 12px 2px 0; }
th { font-weight: 600; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.bar { fill: #3b7dd8; }
.bar:hover { fill: #1d4f99; }
</style>
</head>
<body>
<h1>rill bench: ${escapeHtml(r.method)}</h1>
<h2>Summary</h2>
<table>
${[
  ...(r.stopped !== undefined ? [row("Stopped", r.stopped)] : []),
  row("Count", String(r.count)),
  row("Total", ms(r.totalMs)),
  row("Slowest", ms(r.slowestMs)),
  row("Fastest", ms(r.fastestMs)),
  row("Average", ms(r.averageMs)),
  row("Requests/sec", r.rps.toFixed(2) + (r.targetRps !== undefined ? ` (target ${r.targetRps})` : "")),
  row("Concurrency", String(r.concurrency)),
  row("Connections", String(r.connections)),
  row("Warm-up calls (not counted)", String(r.warmup)),
].join("\n")}
</table>
<h2>Response time histogram (ms)</h2>
<svg id="histogram" width="${width}" height="${h}" role="img" aria-label="latency histogram">
<line x1="45" y1="${h - 20}" x2="${width}" y2="${h - 20}" stroke="#999"/>
${bars}
</svg>
<h2>Latency distribution</h2>
<table>
${r.latencyDistribution.map((p) => row(`${p.percentage} %`, ms(p.latencyMs))).join("\n")}
</table>
<h2>Status code distribution</h2>
<table>
${Object.entries(r.statusCodeDistribution)
  .map(([k, v]) => row(k, `${v} responses`))
  .join("\n")}
</table>
${
  Object.keys(r.errorDistribution).length === 0
    ? ""
    : `<h2>Error distribution</h2>\n<table>\n${Object.entries(r.errorDistribution)
        .map(([k, v]) => row(String(v), k))
        .join("\n")}\n</table>`
}
</body>
</html>
`;
}

/** The report in `format`. `calls` is only read by csv. */
export function formatReport(format: BenchFormat, r: BenchReport, calls: readonly CallRecord[], colour: boolean): string {
  switch (format) {
    case "summary":
      return summary(r, colour);
    case "json":
      return JSON.stringify(r, null, 2) + "\n";
    case "csv":
      return csv(calls);
    case "html":
      return html(r);
  }
}
