/**
 * `rill/metrics`: RPC metrics in the Prometheus text format, with no dependency (an
 * interceptor, a `GET /metrics` handler, a server's own gauges and counters).
 */
export { createRpcMetrics, type RpcMetrics, type RpcMetricsOptions } from "./rpc-metrics.js";
export { Counter, CounterSeries, Gauge, Histogram, HistogramSeries, Registry, prometheusContentType } from "./registry.js";
