import type { ImplName } from "./common.js";

/**
 * The scenarios of issue 5 (and issue 8's large-message rows, and the Connect protocol's unary JSON
 * rows), their metrics and how each metric is printed. The client side of each lives in client.ts;
 * the two memory scenarios and the Connect rows (for the server's CPU time) are also driven by run.ts.
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
export type Unit = "rate" | "us" | "cpu" | "latency" | "mbps" | "kb" | "ms" | "mb" | "count" | "percent";

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
  /** The only implementations this scenario runs (default: all but the optional ones). */
  impls?: readonly ImplName[];
  /** The implementation the ratios are to (default "raw"; "grpcio" is large-unary.ts's Python client). */
  baseline?: ImplName | "grpcio";
  /** Shows each shown metric's range over the rounds next to its median. */
  spread?: boolean;
  /**
   * What the run's operations are ("call", "message"): each process's CPU time over the measured
   * stretch is divided by them (`serverCpuUs`, `clientCpuUs`; run.ts reads the server's). CPU per
   * operation moves far less than a rate on a shared machine.
   */
  cpuPer?: string;
  /**
   * The client is connect-node's Connect transport with JSON (`createConnectTransport({ httpVersion,
   * useBinaryFormat: false })`) whichever implementation runs: the implementation names the server
   * only. "1.1" also tells a server that serves HTTP/1.1 on its own listener (connect-node's
   * `http.createServer`) to start that one.
   */
  connectJson?: {
    httpVersion: "1.1" | "2";
    /**
     * Calls the warm-up makes at least (besides lasting the config's warm-up time): connect-node's
     * client and both servers need several thousand calls before V8 has optimised their code.
     * Measured on the shared 2-core machine, CPU per call kept falling for ~7,000 calls (4–5 s:
     * client 1.1 ms → 0.21 ms, Rill's server 0.5 → 0.1 ms, connect-node's 1.5 → 0.25 ms), so a
     * warm-up by time alone (0.2 s quick, 1 s full) measured mostly the JIT.
     */
    warmupCalls: number;
  };
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

/** Each process's CPU time per operation over the measured stretch (run.ts `cpuTimed`). */
const cpuMetrics = (per: string): MetricSpec[] => [
  m("serverCpuUs", `server CPU per ${per}`, "cpu", false),
  m("clientCpuUs", `client CPU per ${per}`, "cpu", false),
  m("serverBusy", "server busy", "percent", false, false, false),
  m("clientBusy", "client busy", "percent", false, false, false),
];

/** A load scenario, CPU-timed per `per`. */
const load = (id: string, title: string, per: string, metrics: MetricSpec[], more: Partial<Scenario> = {}): Scenario => ({
  id,
  title,
  metrics: [...metrics, ...cpuMetrics(per)],
  cpuPer: per,
  ...more,
});

export const scenarios: Scenario[] = [
  load("unary-100", "unary 64 B, 100 in flight", "call", [m("rate", "calls/s", "rate", true), m("p50", "p50", "us", false), m("p99", "p99", "us", false)]),
  load("unary-1", "unary 64 B, 1 in flight", "call", [m("p50", "p50", "us", false), m("p99", "p99", "us", false), m("rate", "calls/s", "rate", true, false)]),
  // raw-iter: raw's wire code behind async iterators and generators, the floor any stack with
  // that API stands on (impl/iterated.ts).
  load("server-stream-64", "server-streaming 64 B", "message", [m("rate", "msgs/s", "rate", true)], { extraImpls: ["raw-iter"] }),
  load("client-stream-64", "client-streaming 64 B", "message", [m("rate", "msgs/s", "rate", true)], { extraImpls: ["raw-iter"] }),
  load("bidi-pingpong", "bidi ping-pong, 1 in flight", "round trip", [m("rate", "round trips/s", "rate", true), m("p50", "p50", "us", false), m("p99", "p99", "us", false)]),
  // Issue 8 (windows and BDP): large messages both ways, against raw node:http2 with node's
  // default 64 KiB windows and with 4 MiB stream / 16 MiB connection windows.
  load("server-stream-1mib", "server-streaming 1 MiB", "MiB message", [m("mbps", "MB/s", "mbps", true)], { extraImpls: ["raw-tuned"] }),
  load("server-stream-64kib", "server-streaming 64 KiB", "64 KiB message", [m("mbps", "MB/s", "mbps", true)], { extraImpls: ["raw-tuned"] }),
  load("client-stream-1mib", "client-streaming 1 MiB", "MiB message", [m("mbps", "MB/s", "mbps", true)], { extraImpls: ["raw-tuned"] }),
  load("client-stream-64kib", "client-streaming 64 KiB", "64 KiB message", [m("mbps", "MB/s", "mbps", true)], { extraImpls: ["raw-tuned"] }),
  // Issue 19: a small call on a connection that is also lending a file (64 KiB messages as fast
  // as the reader takes them): how long its round trip waits behind the bulk bytes.
  {
    id: "pingpong-beside-bulk",
    title: "ping-pong beside a 64 KiB-message bulk stream, one connection",
    metrics: [m("p50", "ping-pong p50", "latency", false), m("p99", "ping-pong p99", "latency", false), m("mbps", "bulk MB/s", "mbps", true), m("rate", "round trips/s", "rate", true, false)],
    extraImpls: ["raw-tuned"],
  },
  // The Connect protocol's unary JSON form (what a browser's fetch or connect-web sends), one
  // client for both servers: Rill's, which serves Connect beside gRPC on one port, against
  // connect-node's own. 100 in flight as in unary-100; over HTTP/1.1 node's global agent
  // (keep-alive, no socket limit) opens one connection per call in flight. Server CPU per call
  // is the steadier figure on a shared machine; "server busy" and "client busy" (CPU time ÷
  // wall time over the measurement) say which process set the rate: connect-node's client costs
  // more per call than either server, so calls/s can be the client's limit, not the server's.
  connectJsonScenario("connect-unary-json", "Connect unary JSON 64 B, HTTP/2, 100 in flight", "2"),
  connectJsonScenario("connect-unary-json-h1", "Connect unary JSON 64 B, HTTP/1.1, 100 in flight", "1.1"),
  {
    id: "idle-streams",
    title: "10k idle streams",
    metrics: [
      m("heapPerStream", "server heap per stream", "kb", false),
      m("heapPerSentStream", "server heap per stream that has sent a message", "kb", false),
      m("fanoutMs", "fan-out of 64 B to all", "ms", false),
      // The same fan-out once more: both processes have now run that path (compiled, caches
      // warm, the streams' setup collected), as in a service that has been fanning out for a while.
      m("fanoutAgainMs", "the same fan-out again", "ms", false),
      m("openMs", "time to open all", "ms", false, false),
      m("rssPerStream", "server RSS per stream", "kb", false, false),
    ],
    // The fan-out's client reads each stream with `for await`; raw-iter's server is raw's.
    extraImpls: ["raw-iter"],
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

/** A Connect unary JSON scenario: Rill's server against connect-node's, ratios to connect-node. */
function connectJsonScenario(id: string, title: string, httpVersion: "1.1" | "2"): Scenario {
  return {
    id,
    title,
    metrics: [
      m("rate", "calls/s", "rate", true),
      m("serverCpuUs", "server CPU per call", "us", false),
      m("serverBusy", "server busy", "percent", false, true, false),
      m("clientBusy", "client busy", "percent", false, true, false),
      m("clientCpuUs", "client CPU per call", "us", false, false),
      m("p50", "p50", "us", false, false),
      m("p99", "p99", "us", false, false),
    ],
    impls: ["rill", "connect"],
    baseline: "connect",
    spread: true,
    cpuPer: "call",
    connectJson: { httpVersion, warmupCalls: 10_000 },
  };
}

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
