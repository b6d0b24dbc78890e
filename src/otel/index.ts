/**
 * `rill/otel`: OpenTelemetry for Rill. Needs `@opentelemetry/api` (an optional peer dependency:
 * `rill` itself never loads it; importing this entry without it fails with a message saying to
 * install it).
 */
export { activeTraceId, createTracingInterceptor, createTracingObserver, metadataGetter, metadataSetter } from "./tracing.js";
export type { TracingInterceptorOptions, TracingInterceptorOptions as TracingOptions } from "./tracing.js";
export { createOtelMetrics } from "./metrics.js";
export type { OtelMetrics, OtelMetricsOptions } from "./metrics.js";
