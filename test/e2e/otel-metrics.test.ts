/**
 * rill/otel metrics through the OpenTelemetry SDK's own reader: the call duration histograms
 * with semconv attributes on both sides, messages per RPC, and the server's observed gauges and
 * counters.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type Histogram, type MetricData } from "@opentelemetry/sdk-metrics";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError } from "../../src/index.js";
import { createOtelMetrics } from "../../src/otel/index.js";
import { echoStreams } from "../support/echo.js";
import { collect, eventually, useHarness } from "../support/harness.js";
import { statusOf } from "../support/assertions.js";

/** A reader that collects when asked (the SDK's pull model). */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
  async metrics(): Promise<MetricData[]> {
    const { resourceMetrics } = await this.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  }
}

function find(metrics: MetricData[], name: string): MetricData {
  const m = metrics.find((x) => x.descriptor.name === name);
  assert.ok(m !== undefined, `no ${name} among ${metrics.map((x) => x.descriptor.name).join(", ")}`);
  return m;
}

describe("rill/otel metrics", () => {
  const h = useHarness({ transport: "http2" });

  for (const form of ["interceptor", "observer"] as const)
  test(`call durations and messages per RPC with semconv attributes, both sides (${form}); the server's gauges and counters`, async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = createOtelMetrics({ meterProvider: provider });
    const using = form === "interceptor" ? { interceptors: [metrics.interceptor] } : { observers: [metrics.observer] };
    const { server, target } = await h.server(
      (s) =>
        s.add(Echo, {
          ...echoStreams,
          unaryEcho(req) {
            if (req.message === "fail") throw new RpcError(Code.NotFound, "none");
            return { message: req.message };
          },
        }),
      using,
    );
    metrics.observeServer(server);
    const echo = h.client(Echo, target, using);
    for (let i = 0; i < 3; i++) await echo.unaryEcho({ message: "x" });
    assert.equal((await statusOf(echo.unaryEcho({ message: "fail" }))).code, Code.NotFound);
    assert.equal((await collect(echo.serverStreamingEcho({ message: "s" }))).length, 3);
    await eventually(() => server.activeCalls === 0, 2000, "the calls to end");

    const all = await reader.metrics();
    for (const side of ["server", "client"]) {
      const duration = find(all, `rpc.${side}.call.duration`);
      assert.equal(duration.descriptor.unit, "s");
      assert.equal(duration.dataPointType, DataPointType.HISTOGRAM);
      const points = duration.dataPoints as Array<{ attributes: Record<string, unknown>; value: Histogram }>;
      const ok = points.find((p) => p.attributes["rpc.method"] === "grpc.examples.echo.Echo/UnaryEcho" && p.attributes["rpc.status_code"] === "OK");
      assert.equal(ok?.value.count, 3, side);
      assert.equal(ok?.attributes["rpc.system.name"], "grpc");
      assert.equal(ok?.attributes["error.type"], undefined);
      const failed = points.find((p) => p.attributes["rpc.status_code"] === "NOT_FOUND");
      assert.equal(failed?.value.count, 1);
      assert.equal(failed?.attributes["error.type"], "NOT_FOUND");
    }
    const sent = find(all, "rill.rpc.server.messages_sent").dataPoints as Array<{ attributes: Record<string, unknown>; value: Histogram }>;
    assert.equal(sent.find((p) => p.attributes["rpc.method"] === "grpc.examples.echo.Echo/ServerStreamingEcho")?.value.sum, 3);
    const received = find(all, "rill.rpc.client.messages_received").dataPoints as Array<{ attributes: Record<string, unknown>; value: Histogram }>;
    assert.equal(received.find((p) => p.attributes["rpc.method"] === "grpc.examples.echo.Echo/ServerStreamingEcho")?.value.sum, 3);
    const gauge = (name: string) => (find(all, name).dataPoints[0]?.value as number | undefined);
    assert.equal(gauge("rill.server.active_calls"), 0);
    assert.ok((gauge("rill.server.connections") ?? 0) >= 1);
    assert.equal(gauge("rill.server.buffered_bytes"), 0);
    assert.equal(gauge("rill.server.try_send.refusals"), 0);
    await provider.shutdown();
  });
});
