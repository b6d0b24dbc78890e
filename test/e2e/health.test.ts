import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { echoService } from "../../examples/echo/server.js";
import { Code, RpcError } from "../../src/index.js";
import { createHealthStatus, Health, serveHealth, ServingStatus } from "../../src/services/health/index.js";
import { eventually, transports, useHarness } from "../support/harness.js";

for (const transport of transports) describe(`grpc.health.v1.Health (${transport})`, () => {
  const h = useHarness({ transport });

  test("Check reports the server under \"\" and every service added before it as SERVING", async () => {
    const { target } = await h.server((s) => {
      s.add(Echo, echoService());
      serveHealth(s);
    });
    const health = h.client(Health, target);
    assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
    assert.equal((await health.check({ service: "grpc.examples.echo.Echo" })).status, ServingStatus.SERVING);
    const list = await health.list({});
    assert.deepEqual(Object.keys(list.statuses).sort(), ["", "grpc.examples.echo.Echo", "grpc.health.v1.Health"]);
  });

  test("Check of a service the server does not report on fails with NOT_FOUND", async () => {
    const { target } = await h.server((s) => serveHealth(s));
    const health = h.client(Health, target);
    await assert.rejects(health.check({ service: "no.such.Service" }), (e: unknown) => {
      assert.ok(e instanceof RpcError);
      assert.equal(e.code, Code.NotFound);
      assert.match(e.rawMessage, /no\.such\.Service/);
      return true;
    });
  });

  test("Watch sends the current status, then each change, and nothing for a repeated status", async () => {
    const status = createHealthStatus({ "video_service.VideoService": "SERVING" });
    const { target } = await h.server((s) => s.add(Health, status.impl));
    const health = h.client(Health, target);
    const seen: ServingStatus[] = [];
    const it = health.watch({ service: "video_service.VideoService" })[Symbol.asyncIterator]();
    seen.push((await it.next()).value!.status);
    status.set("video_service.VideoService", "SERVING");
    status.set("video_service.VideoService", "NOT_SERVING");
    seen.push((await it.next()).value!.status);
    status.set("video_service.VideoService", ServingStatus.SERVING);
    seen.push((await it.next()).value!.status);
    await it.return!();
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
    await eventually(() => status.watchers === 0, 2000, "the watcher to be forgotten");
  });

  test("Watch of an unknown service sends SERVICE_UNKNOWN and stays open until the service appears", async () => {
    const status = createHealthStatus();
    const { target } = await h.server((s) => s.add(Health, status.impl));
    const health = h.client(Health, target);
    const it = health.watch({ service: "late.Service" })[Symbol.asyncIterator]();
    assert.equal((await it.next()).value!.status, ServingStatus.SERVICE_UNKNOWN);
    status.set("late.Service", "SERVING");
    assert.equal((await it.next()).value!.status, ServingStatus.SERVING);
    status.clear("late.Service");
    assert.equal((await it.next()).value!.status, ServingStatus.SERVICE_UNKNOWN);
    await it.return!();
  });

  test("Watch sees SERVING then NOT_SERVING when graceful shutdown begins, and does not hold up the shutdown", async () => {
    let statusOf: ReturnType<typeof serveHealth> | undefined;
    const { target, server } = await h.server((s) => {
      s.add(Echo, echoService());
      statusOf = serveHealth(s);
    });
    const health = h.client(Health, target);
    const overall: ServingStatus[] = [];
    const echo: ServingStatus[] = [];
    const watch = async (service: string, into: ServingStatus[]) => {
      try {
        for await (const r of health.watch({ service })) into.push(r.status);
        return undefined;
      } catch (e) {
        return e;
      }
    };
    const a = watch("", overall);
    const b = watch("grpc.examples.echo.Echo", echo);
    await eventually(() => overall.length === 1 && echo.length === 1, 2000, "both watches to start");
    const started = Date.now();
    await server.shutdown({ graceMs: 10_000 });
    assert.ok(Date.now() - started < 5000, "watch streams held up the graceful shutdown");
    const [ea, eb] = await Promise.all([a, b]);
    assert.deepEqual(overall, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    assert.deepEqual(echo, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    for (const e of [ea, eb]) assert.ok(e instanceof RpcError && e.code === Code.Unavailable, `the watch ended with ${String(e)}`);
    // After shutdown began, application code cannot flip a service back to SERVING.
    statusOf!.set("grpc.examples.echo.Echo", "SERVING");
    assert.equal(statusOf!.get("grpc.examples.echo.Echo"), ServingStatus.NOT_SERVING);
  });
});
