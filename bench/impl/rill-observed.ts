/**
 * Rill as a production service runs it, observed (issue 17's overhead rows): on both sides the
 * Prometheus metrics and OpenTelemetry tracing observers, with an SDK that records every span
 * (BatchSpanProcessor, W3C propagation, AsyncLocalStorage context) and an exporter that drops
 * them (the cost of exporting is the exporter's, not Rill's).
 *
 * RILL_OBSERVED (inherited by the bench's processes) picks another setup to compare with:
 *   observers (default)   metrics + tracing observers
 *   metrics               the metrics observer only (issue 17's memory target)
 *   tracing               the tracing observer only
 *   interceptors          metrics + tracing as interceptors (the setup before observers)
 *   sampled               metrics + tracing observers, the SDK sampling 1 trace in 10 (a parent-based
 *                         ratio sampler: the client's decision travels in `traceparent`), as
 *                         production tracing usually runs
 */
import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createRpcMetrics } from "../../src/metrics/index.js";
import { createTracingInterceptor, createTracingObserver } from "../../src/otel/index.js";
import type { CallObserver, Interceptor } from "../../src/index.js";
import type { ConnectClient, StartServer } from "../common.js";
import { connectRill, startRillServer } from "./rill.js";

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const dropAll: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const mode = process.env.RILL_OBSERVED ?? "observers";
/** The share of traces `sampled` records. */
const sampledRatio = 0.1;
const sampler = mode === "sampled" ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampledRatio) }) : undefined;
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)], ...(sampler === undefined ? {} : { sampler }) });
const tracing = { tracerProvider, propagator: new W3CTraceContextPropagator() };

function options(): { observers?: CallObserver[]; interceptors?: Interceptor[] } {
  const metrics = createRpcMetrics();
  switch (mode) {
    case "observers":
    case "sampled":
      // Tracing first: its `run` is the outermost, so everything else of the call sees the span.
      return { observers: [createTracingObserver(tracing), metrics.observer] };
    case "metrics":
      return { observers: [metrics.observer] };
    case "tracing":
      return { observers: [createTracingObserver(tracing)] };
    case "interceptors":
      return { interceptors: [metrics.interceptor, createTracingInterceptor(tracing)] };
    default:
      throw new Error(`RILL_OBSERVED=${mode}: expected observers, sampled, metrics, tracing or interceptors`);
  }
}

export const startServer: StartServer = (hooks) => startRillServer(hooks, options());
export const connectClient: ConnectClient = (port) => connectRill(port, options());
