/**
 * @grpc/grpc-js traced the way its users trace it, for issue 17's overhead rows: OpenTelemetry's
 * own `@opentelemetry/instrumentation-grpc` (code no one here wrote) with the same SDK setup as
 * rill-observed (every span recorded by a BatchSpanProcessor into an exporter that drops them,
 * W3C propagation, AsyncLocalStorage context) — what another Node stack pays for the same
 * spans. `--observed` runs it beside grpc-js wherever grpc-js runs.
 *
 * The instrumentation patches grpc-js as it is required, so it is registered first and grpc-js
 * required before ./grpc-js.js imports it (the import then gets the patched module).
 */
import { createRequire } from "node:module";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { ConnectClient, StartServer } from "../common.js";

let spans = 0;
const dropAll: SpanExporter = {
  export: (batch, done) => {
    spans += batch.length;
    done({ code: 0 });
  },
  shutdown: async () => {},
};
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });
trace.setGlobalTracerProvider(provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
registerInstrumentations({ instrumentations: [new GrpcInstrumentation()] });
createRequire(import.meta.url)("@grpc/grpc-js");

const grpcJs = await import("./grpc-js.js");
export const startServer: StartServer = grpcJs.startServer;

/** grpc-js's client, after checking that one call made a span: a run that traced nothing would measure plain grpc-js. */
export const connectClient: ConnectClient = async (port) => {
  const client = await grpcJs.connectClient(port);
  await client.unary(new Uint8Array(8));
  await provider.forceFlush();
  if (spans === 0) throw new Error("grpc-js-observed: @opentelemetry/instrumentation-grpc traced no call (was grpc-js loaded before it was registered?)");
  return client;
};
