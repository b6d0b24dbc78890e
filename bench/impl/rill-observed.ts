/**
 * Rill as a production service runs it, observed (issue 17's overhead rows): on both sides the
 * Prometheus metrics interceptor and the OpenTelemetry tracing interceptor, with an SDK that
 * records every span (BatchSpanProcessor, W3C propagation, AsyncLocalStorage context) and an
 * exporter that drops them (the cost of exporting is the exporter's, not Rill's).
 */
import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createRpcMetrics } from "../../src/metrics/index.js";
import { createTracingInterceptor } from "../../src/otel/index.js";
import type { ConnectClient, StartServer } from "../common.js";
import { connectRill, startRillServer } from "./rill.js";

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const dropAll: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });
const interceptors = () => [createRpcMetrics().interceptor, createTracingInterceptor({ tracerProvider, propagator: new W3CTraceContextPropagator() })];

export const startServer: StartServer = (hooks) => startRillServer(hooks, { interceptors: interceptors() });
export const connectClient: ConnectClient = (port) => connectRill(port, { interceptors: interceptors() });
