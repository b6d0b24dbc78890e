/**
 * The performance targets the README judges a results file against (issue 19's table, and the
 * hardening issue's stalled-reader bound). Pure data: readme.ts reads them.
 */

export interface Target {
  /** The row, as the README names it. */
  label: string;
  scenario: string;
  /** The metric key in the results (scenarios.ts). */
  metric: string;
  /**
   * What Rill's median is compared with: another implementation's median in the same run (a
   * ratio), or nothing (the value itself, in the metric's unit).
   */
  against?: "raw" | "raw-tuned";
  /** Met when Rill's value (or ratio) is at least / at most `limit`. */
  goal: "at least" | "at most";
  limit: number;
  /** How the limit reads in the table (e.g. "≥ 0.8× raw"). */
  shown: string;
  /**
   * An implementation that bounds what any stack with Rill's API can reach on this row (raw-iter:
   * raw's wire code behind async iterators), shown beside the verdict: its ratio to `against`,
   * and Rill's to it. Informational; the verdict is still against `against`.
   */
  floor?: "raw-iter";
}

export const targets: readonly Target[] = [
  { label: "unary 64 B, 100 in flight: calls/s", scenario: "unary-100", metric: "rate", against: "raw", goal: "at least", limit: 0.8, shown: "≥ 0.8× raw" },
  { label: "unary 64 B, 1 in flight: p50", scenario: "unary-1", metric: "p50", against: "raw", goal: "at most", limit: 1.2, shown: "≤ 1.2× raw" },
  { label: "server-streaming 64 B: msgs/s", scenario: "server-stream-64", metric: "rate", against: "raw", goal: "at least", limit: 0.75, shown: "≥ 0.75× raw", floor: "raw-iter" },
  { label: "client-streaming 64 B: msgs/s", scenario: "client-stream-64", metric: "rate", against: "raw", goal: "at least", limit: 0.75, shown: "≥ 0.75× raw", floor: "raw-iter" },
  {
    label: "server-streaming 1 MiB, default options: MB/s",
    scenario: "server-stream-1mib",
    metric: "mbps",
    against: "raw-tuned",
    goal: "at least",
    limit: 0.8,
    shown: "≥ 0.8× raw with 4/16 MiB windows",
  },
  {
    label: "10k idle streams that have each sent a message: server heap per stream",
    scenario: "idle-streams",
    metric: "heapPerSentStream",
    goal: "at most",
    limit: 3000,
    shown: "≤ 3,000 B",
  },
  { label: "fan-out of 64 B to 10k streams", scenario: "idle-streams", metric: "fanoutMs", against: "raw", goal: "at most", limit: 1.2, shown: "≤ 1.2× raw", floor: "raw-iter" },
  {
    label: "ping-pong p99 beside a bulk stream on the same connection",
    scenario: "pingpong-beside-bulk",
    metric: "p99",
    goal: "at most",
    limit: 5000,
    shown: "≤ 5 ms",
  },
  { label: "stalled reader of a 500 MiB stream: server RSS growth", scenario: "stalled-reader", metric: "rssGrowth", goal: "at most", limit: 64, shown: "≤ +64 MB" },
];
