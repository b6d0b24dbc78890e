/**
 * `rill top HOST:PORT`: a server's live numbers from its `GET /metrics` (rill/metrics), without
 * any other tool: calls/s, errors/s, messages/s, p50/p99 latency per method over the last
 * interval, open streams and connections. Each interval is the difference of two scrapes; the
 * percentiles are read from the duration histogram's buckets (interpolated within a bucket, as
 * Prometheus' histogram_quantile does).
 */
import { parseArgs } from "node:util";
import { parseDuration, parseOrUsage } from "./options.js";
import { CliError, type Io } from "./output.js";

export const topUsage = `usage: rill top HOST:PORT [--interval 1s] [--count N] [--path /metrics]

Shows a Rill server's numbers from its Prometheus endpoint (createRpcMetrics, GET /metrics),
refreshed every interval: calls/s, errors/s, messages/s and p50/p99 latency per method, open
streams and connections. --count N stops after N refreshes (default: until Ctrl+C). Without a
terminal it prints one block per interval.
`;

/** Samples of one scrape: `name{labels}` → value. */
export type Scrape = Map<string, number>;

/** Parses the Prometheus text format's sample lines (comments and blank lines skipped). */
export function parseScrape(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const v = m[3] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[3]);
    if (!Number.isNaN(v)) out.set(`${m[1]}${m[2] ?? ""}`, v);
  }
  return out;
}

function labelsOf(key: string): Record<string, string> {
  const brace = key.indexOf("{");
  if (brace < 0) return {};
  return Object.fromEntries([...key.slice(brace).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
}

function nameOf(key: string): string {
  const brace = key.indexOf("{");
  return brace < 0 ? key : key.slice(0, brace);
}

/** One method's row of the view. */
export interface TopRow {
  method: string;
  callsPerSecond: number;
  errorsPerSecond: number;
  messagesPerSecond: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
}

export interface TopView {
  rows: TopRow[];
  activeCalls: number | undefined;
  connections: number | undefined;
}

/** The view of the interval between two scrapes `seconds` apart. */
export function topView(before: Scrape, after: Scrape, seconds: number): TopView {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const methods = new Map<string, { calls: number; errors: number; messages: number; buckets: Map<number, number> }>();
  const row = (labels: Record<string, string>) => {
    const name = `${labels.rpc_service ?? "?"}/${labels.rpc_method ?? "?"}`;
    let r = methods.get(name);
    if (r === undefined) methods.set(name, (r = { calls: 0, errors: 0, messages: 0, buckets: new Map() }));
    return r;
  };
  for (const key of after.keys()) {
    const name = nameOf(key);
    const labels = labelsOf(key);
    if (name === "rpc_server_duration_seconds_count") {
      const r = row(labels);
      const n = delta(key);
      r.calls += n;
      if (labels.rpc_grpc_status_code !== "0") r.errors += n;
    } else if (name === "rpc_server_requests_per_rpc_sum" || name === "rpc_server_responses_per_rpc_sum") {
      row(labels).messages += delta(key);
    } else if (name === "rpc_server_duration_seconds_bucket") {
      const le = labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels.le);
      const b = row(labels).buckets;
      b.set(le, (b.get(le) ?? 0) + delta(key));
    }
  }
  const rows: TopRow[] = [];
  for (const [method, r] of methods) {
    if (r.calls === 0 && r.messages === 0) continue;
    rows.push({
      method,
      callsPerSecond: r.calls / seconds,
      errorsPerSecond: r.errors / seconds,
      messagesPerSecond: r.messages / seconds,
      p50Ms: quantileMs(r.buckets, 0.5),
      p99Ms: quantileMs(r.buckets, 0.99),
    });
  }
  rows.sort((a, b) => b.callsPerSecond - a.callsPerSecond || a.method.localeCompare(b.method));
  return { rows, activeCalls: after.get("rill_server_active_calls"), connections: after.get("rill_server_open_connections") };
}

/** The q-quantile in milliseconds of cumulative bucket counts, interpolated within its bucket. */
export function quantileMs(cumulative: Map<number, number>, q: number): number | undefined {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  const total = cumulative.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const bound of bounds) {
    const count = cumulative.get(bound)!;
    if (count >= rank) {
      // Past the last finite bucket all one can say is "more than" it.
      if (bound === Number.POSITIVE_INFINITY) return prevBound * 1000;
      const inBucket = count - prevCount;
      const fraction = inBucket === 0 ? 1 : (rank - prevCount) / inBucket;
      return (prevBound + (bound - prevBound) * fraction) * 1000;
    }
    prevBound = bound;
    prevCount = count;
  }
  return undefined;
}

/** The view as text. */
export function formatTop(target: string, view: TopView, seconds: number): string {
  const n = (v: number | undefined, digits = 1) => (v === undefined ? "–" : v.toFixed(digits));
  const lines = [
    `rill top ${target}   open streams ${view.activeCalls ?? "–"}   connections ${view.connections ?? "–"}   (last ${seconds.toFixed(1)} s)`,
    "",
    `${"method".padEnd(58)} ${"calls/s".padStart(9)} ${"errors/s".padStart(9)} ${"msgs/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`,
  ];
  for (const r of view.rows) {
    lines.push(`${r.method.padEnd(58)} ${n(r.callsPerSecond).padStart(9)} ${n(r.errorsPerSecond).padStart(9)} ${n(r.messagesPerSecond).padStart(9)} ${n(r.p50Ms, 2).padStart(8)} ${n(r.p99Ms, 2).padStart(8)}`);
  }
  if (view.rows.length === 0) lines.push("(no calls in this interval)");
  return `${lines.join("\n")}\n`;
}

export async function top(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() =>
    parseArgs({ args: argv, options: { interval: { type: "string" }, count: { type: "string" }, path: { type: "string" }, help: { type: "boolean", short: "h" } }, allowPositionals: true }),
  );
  if (values.help === true) return io.stdout.write(topUsage), 0;
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) throw new CliError("rill top takes one HOST:PORT", 2, topUsage);
  const intervalMs = values.interval === undefined ? 1000 : parseDuration(values.interval, "--interval");
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  if (!(count >= 1)) throw new CliError(`--count takes a number of refreshes, not "${values.count}"`, 2);
  const url = `http://${target}${values.path ?? "/metrics"}`;
  const scrape = async (): Promise<Scrape> => {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    } catch (e) {
      throw new CliError(`cannot read ${url}: ${(e as Error).message}`, 69, "is the server running, and does it serve rill/metrics (createRpcMetrics) on GET /metrics?");
    }
    if (res.status !== 200) throw new CliError(`${url} answered HTTP ${res.status}`, 69, "the server must serve createRpcMetrics().httpHandler as createServer({ http })");
    return parseScrape(await res.text());
  };
  let before = await scrape();
  let t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const after = await scrape();
    const t1 = performance.now();
    const seconds = (t1 - t0) / 1000;
    const text = formatTop(target, topView(before, after, seconds), seconds);
    // On a terminal the view replaces itself; elsewhere each interval is a block of its own.
    io.stdout.write(io.stdout.isTTY === true ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    before = after;
    t0 = t1;
  }
  return 0;
}
