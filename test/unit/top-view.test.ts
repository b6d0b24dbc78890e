/**
 * `rill top`'s arithmetic: rates from two scrapes, percentiles from histogram buckets
 * (interpolated within a bucket, as Prometheus' histogram_quantile), the text format's samples.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseScrape, quantileMs, topView } from "../../src/cli/top.js";
import { Registry } from "../../src/metrics/registry.js";

const labels = { rpc_system: "grpc", rpc_service: "pkg.S", rpc_method: "M", rpc_grpc_status_code: "0" };
const names = Object.keys(labels);

describe("rill top", () => {
  test("percentiles interpolate within the bucket that holds the rank; past the last bound they say its bound", () => {
    const b = new Map([
      [0.001, 50],
      [0.01, 90],
      [0.1, 100],
      [Number.POSITIVE_INFINITY, 100],
    ]);
    assert.equal(quantileMs(b, 0.5), 1);
    assert.ok(Math.abs(quantileMs(b, 0.7)! - 5.5) < 1e-9);
    assert.ok(Math.abs(quantileMs(b, 0.99)! - 91) < 1e-9);
    assert.equal(quantileMs(new Map([[0.1, 0], [Number.POSITIVE_INFINITY, 4]]), 0.5), 100);
    assert.equal(quantileMs(new Map([[Number.POSITIVE_INFINITY, 0]]), 0.5), undefined);
  });

  test("rates and percentiles come from the difference of two scrapes of a registry's text", () => {
    const r = new Registry();
    const h = r.histogram("rpc_server_duration_seconds", "d", names, [0.001, 0.01, 0.1]);
    const requests = r.histogram("rpc_server_requests_per_rpc", "q", names, [1, 10]);
    const responses = r.histogram("rpc_server_responses_per_rpc", "p", names, [1, 10]);
    r.gauge("rill_server_active_calls", "a", () => [[{}, 3]]);
    for (let i = 0; i < 10; i++) h.observe(labels, 0.0005);
    const before = parseScrape(r.render());
    for (let i = 0; i < 18; i++) h.observe(labels, 0.0005);
    for (let i = 0; i < 2; i++) h.observe({ ...labels, rpc_grpc_status_code: "14" }, 0.05);
    for (let i = 0; i < 20; i++) {
      requests.observe(labels, 1);
      responses.observe(labels, 2);
    }
    const view = topView(before, parseScrape(r.render()), 2);
    assert.equal(view.activeCalls, 3);
    assert.equal(view.rows.length, 1);
    const row = view.rows[0]!;
    assert.equal(row.method, "pkg.S/M");
    assert.equal(row.callsPerSecond, 10);
    assert.equal(row.errorsPerSecond, 1);
    assert.equal(row.messagesPerSecond, 30);
    assert.ok(row.p50Ms! <= 1, `p50 ${row.p50Ms}`);
    assert.ok(row.p99Ms! > 10 && row.p99Ms! <= 100, `p99 ${row.p99Ms}`);
  });
});
