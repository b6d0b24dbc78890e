/**
 * The CLI as grpcurl and ghz users type it, and as a server sees it: the real binary against a
 * real server on 127.0.0.1. Each test names the habit it checks.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { echoService } from "../../examples/echo/server.js";
import { createLoggingInterceptor, createServer, type CallLogEntry, type Logger, type Server } from "../../src/index.js";
import { serveHealth } from "../../src/services/health/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";
import { runRill } from "../support/cli-run.js";

const unary = "grpc.examples.echo.Echo/UnaryEcho";

describe("the rill CLI, seen from the server and typed like grpcurl/ghz", () => {
  let server: Server;
  let address = "";
  const warnings: string[] = [];
  const calls: CallLogEntry[] = [];
  const logger: Logger = { error: (m, ...d) => warnings.push([m, ...d].join(" ")), warn: (m, ...d) => warnings.push([m, ...d].join(" ")), info: () => {} };

  before(async () => {
    server = createServer({ logger, interceptors: [createLoggingInterceptor({ onCall: (e) => calls.push(e) })] });
    server.add(Echo, echoService());
    serveReflection(server);
    serveHealth(server);
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    address = `127.0.0.1:${port}`;
  });
  after(async () => {
    await server.shutdown({ graceMs: 1000 });
  });

  test("list, describe, call, health and bench close HTTP/2 cleanly: no connection error in the server log, reflection ends OK", async () => {
    warnings.length = 0;
    calls.length = 0;
    for (const args of [["list", address], ["describe", address, "grpc.examples.echo.Echo"], ["call", address, unary, "-d", '{"message":"x"}'], ["health", address], ["bench", address, unary, "-n", "20", "-c", "2"]]) {
      const r = await runRill(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    // The server notices a reset socket after the client is gone; give it a moment.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(warnings, []);
    const notOk = calls.filter((c) => c.code !== 0).map((c) => `${c.path} ${c.code} ${c.message}`);
    assert.deepEqual(notOk, []);
    assert.ok(calls.some((c) => c.path.includes("ServerReflectionInfo")));
  });
});
