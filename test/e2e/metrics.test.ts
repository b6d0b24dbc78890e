/**
 * `rill/metrics`: the interceptor's RPC histograms and counters on both sides, the server's own
 * gauges and flow-control counters, and `GET /metrics` on the server's port, read back with a
 * Prometheus text-format parser no one here wrote (parse-prometheus-text-format).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { Code, RpcError } from "../../src/index.js";
import { createRpcMetrics } from "../../src/metrics/index.js";
import { createHub, PubSubService } from "../../src/services/pubsub/index.js";
import { echoStreams } from "../support/echo.js";
import { collect, eventually, useHarness } from "../support/harness.js";
import { statusOf } from "../support/assertions.js";

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }>;
}
const parse = createRequire(import.meta.url)("parse-prometheus-text-format") as (text: string) => Family[];

/**
 * A sample's value read from the text itself. The parser above flattens labelled histograms into
 * one (its own limit), so their series are checked line by line; every family's name and type,
 * and every counter and gauge, come from the parser.
 */
function sample(text: string, name: string, labels: Record<string, string>): string | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return m[3];
  }
  return undefined;
}

function family(families: Family[], name: string): Family {
  const f = families.find((x) => x.name === name);
  assert.ok(f !== undefined, `no ${name} in ${families.map((x) => x.name).join(", ")}`);
  return f;
}

describe("rill/metrics", () => {
  const h = useHarness({ transport: "http2" });

  for (const form of ["interceptor", "observer"] as const)
  test(`server and client RPC metrics (${form}), the server's gauges, and GET /metrics that a Prometheus parser reads`, async () => {
    /** Server or channel options that record into `m` the `form` way. */
    const using = (m: ReturnType<typeof createRpcMetrics>) => (form === "interceptor" ? { interceptors: [m.interceptor] } : { observers: [m.observer] });
    const serverMetrics = createRpcMetrics();
    let refused = 0;
    const { server, port, target } = await h.server(
      (s) =>
        s.add(Echo, {
          ...echoStreams,
          unaryEcho(req) {
            if (req.message === "fail") throw new RpcError(Code.FailedPrecondition, "no");
            return { message: req.message };
          },
          async serverStreamingEcho(req, ctx) {
            // A producer that would rather drop than wait, to a reader that does not read yet.
            for (let i = 0; i < 2000; i++) if (!ctx.trySend({ message: "x".repeat(1024) })) refused++;
            await ctx.send({ message: "last" });
          },
        }),
      { ...using(serverMetrics), http: serverMetrics.httpHandler, sendHighWaterMark: 16 * 1024 },
    );
    serverMetrics.observeServer(server);
    const clientMetrics = createRpcMetrics();
    const echo = h.client(Echo, target, using(clientMetrics));
    for (let i = 0; i < 5; i++) await echo.unaryEcho({ message: `m${i}` });
    assert.equal((await statusOf(echo.unaryEcho({ message: "fail" }))).code, Code.FailedPrecondition);
    const streamed = await collect(echo.serverStreamingEcho({ message: "s" }));
    assert.equal(streamed.at(-1)?.message, "last");
    assert.ok(refused > 0, "the slow reader made trySend refuse");
    await eventually(() => server.activeCalls === 0, 2000, "the calls to end");

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const families = parse(text);
    assert.equal(family(families, "rpc_server_duration_seconds").type, "HISTOGRAM");
    const okCall = { rpc_system: "grpc", rpc_service: "grpc.examples.echo.Echo", rpc_method: "UnaryEcho", rpc_grpc_status_code: "0" };
    assert.equal(sample(text, "rpc_server_duration_seconds_count", okCall), "5");
    assert.equal(sample(text, "rpc_server_duration_seconds_bucket", { ...okCall, le: "+Inf" }), "5");
    const failed = family(families, "rpc_server_failed_total").metrics.find((m) => m.labels?.rpc_grpc_status_code === "FAILED_PRECONDITION");
    assert.equal(failed?.value, "1");
    assert.equal(sample(text, "rpc_server_responses_per_rpc_sum", { rpc_method: "ServerStreamingEcho" }), String(streamed.length));
    assert.equal(family(families, "rill_server_try_send_refusals_total").metrics[0]?.value, String(refused));
    assert.ok(Number(family(families, "rill_server_flow_control_waits_total").metrics[0]?.value) >= 1);
    assert.equal(family(families, "rill_server_active_calls").metrics[0]?.value, "0");
    assert.ok(Number(family(families, "rill_server_open_connections").metrics[0]?.value) >= 1);

    const clientText = clientMetrics.render();
    const client = parse(clientText);
    assert.equal(sample(clientText, "rpc_client_duration_seconds_count", { rpc_method: "UnaryEcho", rpc_grpc_status_code: "0" }), "5");
    assert.equal(family(client, "rpc_client_started_total").metrics.reduce((n, m) => n + Number(m.value), 0), 7);
  });

  test("a hub's subscribers, their lag and the one cut for falling behind", async () => {
    const metrics = createRpcMetrics();
    const hub = createHub({ maxQueuedEvents: 4 });
    metrics.observeHub(hub);
    const { target } = await h.server((s) => s.add(PubSubService, hub.service), { sendHighWaterMark: 16 * 1024 });
    const pubsub = h.client(PubSubService, target);
    const stream = pubsub.subscribe({ topic: "t" })[Symbol.asyncIterator]();
    const first = stream.next();
    await eventually(() => hub.stats.subscribers === 1, 2000, "the subscription");
    assert.equal(sample(metrics.render(), "rill_pubsub_subscribers", {}), "1");
    await hub.publish("t", new Uint8Array(8));
    await first;
    // Read no further: the stream's windows and buffers fill, then the hub's queue, then it is cut.
    for (let i = 0; i < 200 && hub.stats.cutSubscribers === 0; i++) await hub.publish("t", new Uint8Array(64 * 1024));
    await eventually(() => hub.stats.cutSubscribers === 1, 5000, "the slow subscriber to be cut");
    const text = metrics.render();
    assert.equal(sample(text, "rill_pubsub_cut_subscribers_total", {}), "1");
    assert.equal(family(parse(text), "rill_pubsub_cut_subscribers_total").type, "COUNTER");
    await stream.return?.();
  });

  for (const form of ["interceptor", "observer"] as const)
  test(`a caller that stops reading a stream is counted CANCELLED on the client (${form})`, async () => {
    const metrics = createRpcMetrics();
    const { target } = await h.server((s) =>
      s.add(Echo, {
        ...echoStreams,
        unaryEcho: (r) => ({ message: r.message }),
        async *serverStreamingEcho() {
          for (let i = 0; ; i++) yield { message: String(i) };
        },
      }),
    );
    const echo = h.client(Echo, target, form === "interceptor" ? { interceptors: [metrics.interceptor] } : { observers: [metrics.observer] });
    for await (const m of echo.serverStreamingEcho({ message: "x" })) if (m.message === "3") break;
    const f = family(parse(metrics.render()), "rpc_client_failed_total");
    assert.equal(f.metrics[0]?.labels?.rpc_grpc_status_code, "CANCELLED");
  });
});
