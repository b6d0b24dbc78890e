import type { ImplName } from "./common.js";

/**
 * The scenarios of issue 5 (and issue 8's large-message rows), their metrics and how each metric is printed. The client side of
 * each lives in client.ts; the two memory scenarios are also driven step by step by run.ts.
 */

/** Durations and sizes of one run, the same for every implementation. */
export interface RunConfig {
  /** Time each throughput/latency run warms up before it measures. */
  warmupMs: number;
  /** Time each throughput/latency run measures. */
  durationMs: number;
  /** Streams opened by the idle-streams scenario. */
  idleStreams: number;
  /** How long the stalled reader stays stalled before server memory is read. */
  stallMs: number;
  /** Size of the stalled stream: count × messageBytes. */
  stallMessages: number;
  stallMessageBytes: number;
}

/** How report.ts prints a value; "latency" is µs printed as µs below 1 ms and as ms above. */
export type Unit = "rate" | "us" | "latency" | "mbps" | "kb" | "ms" | "mb" | "count";

export interface MetricSpec {
  key: string;
  label: string;
  unit: Unit;
  /** Whether a bigger value is better (ratios are value / raw either way). */
  higherIsBetter: boolean;
  /** Whether the table shows the ratio to raw (not when raw's value is ~0 by design). */
  ratio: boolean;
  /** Shown in the table (others are only in the JSON). */
  shown: boolean;
}

export interface Scenario {
  id: string;
  title: string;
  metrics: MetricSpec[];
  /** Optional implementations (common.ts `optionalImpls`) this scenario also runs. */
  extraImpls?: readonly ImplName[];
}

/** A metric; shown in the table with its ratio to raw unless told otherwise (no ratio for "mb" growths). */
export const metric = (key: string, label: string, unit: Unit, higherIsBetter: boolean, shown = true, ratio = unit !== "mb"): MetricSpec => ({
  key,
  label,
  unit,
  higherIsBetter,
  shown,
  ratio,
});
const m = metric;

export const scenarios: Scenario[] = [
  {
    id: "unary-100",
    title: "unary 64 B, 100 in flight",
    metrics: [m("rate", "calls/s", "rate", true), m("p50", "p50", "us", false), m("p99", "p99", "us", false)],
  },
  {
    id: "unary-1",
    title: "unary 64 B, 1 in flight",
    metrics: [m("p50", "p50", "us", false), m("p99", "p99", "us", false), m("rate", "calls/s", "rate", true, false)],
  },
  { id: "server-stream-64", title: "server-streaming 64 B", metrics: [m("rate", "msgs/s", "rate", true)] },
  { id: "client-stream-64", title: "client-streaming 64 B", metrics: [m("rate", "msgs/s", "rate", true)] },
  {
    id: "bidi-pingpong",
    title: "bidi ping-pong, 1 in flight",
    metrics: [m("rate", "round trips/s", "rate", true), m("p50", "p50", "us", false), m("p99", "p99", "us", false)],
  },
  { id: "server-stream-1mib", title: "server-streaming 1 MiB", metrics: [m("mbps", "MB/s", "mbps", true)], extraImpls: ["raw-tuned"] },
  // Issue 8 (windows and BDP): large messages both ways, against raw node:http2 with node's
  // default 64 KiB windows and with 4 MiB stream / 16 MiB connection windows.
  { id: "server-stream-64kib", title: "server-streaming 64 KiB", metrics: [m("mbps", "MB/s", "mbps", true)], extraImpls: ["raw-tuned"] },
  { id: "client-stream-1mib", title: "client-streaming 1 MiB", metrics: [m("mbps", "MB/s", "mbps", true)], extraImpls: ["raw-tuned"] },
  { id: "client-stream-64kib", title: "client-streaming 64 KiB", metrics: [m("mbps", "MB/s", "mbps", true)], extraImpls: ["raw-tuned"] },
  {
    id: "idle-streams",
    title: "10k idle streams",
    metrics: [
      m("heapPerStream", "server heap per stream", "kb", false),
      m("fanoutMs", "fan-out of 64 B to all", "ms", false),
      m("openMs", "time to open all", "ms", false, false),
      m("rssPerStream", "server RSS per stream", "kb", false, false),
    ],
  },
  {
    id: "stalled-reader",
    title: "stalled reader of a 500 MiB server stream",
    metrics: [
      m("rssGrowth", "server RSS growth", "mb", false),
      m("heapGrowth", "server heap growth", "mb", false, false),
      m("externalGrowth", "server external growth", "mb", false, false),
      m("producedMB", "MB the handler got past", "mb", false, false),
    ],
  },
];

export const quickConfig: RunConfig = {
  warmupMs: 200,
  durationMs: 1000,
  idleStreams: 10_000,
  stallMs: 2000,
  stallMessages: 8000,
  stallMessageBytes: 64 * 1024,
};

export const fullConfig: RunConfig = {
  ...quickConfig,
  warmupMs: 1000,
  durationMs: 3000,
  stallMs: 3000,
};
