/**
 * The example clients as a user runs them: the same flags (`--target`, `--help`), and errors as
 * one line that says what to do, for a wrong flag (exit 2) and for a server that is not running
 * (exit 1). Each runs as a child process; one also runs against a real server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { echoService } from "../../examples/echo/server.js";
import { createServer, silentLogger, type Server } from "../../src/index.js";
import { repoRoot, runRill } from "../support/cli-run.js";

const clients = {
  echo: ["examples/echo/client.js"],
  routeguide: ["examples/routeguide/client.js"],
  alexandria: ["examples/alexandria/client.js", "--agent", "alice", "bindings"],
  longlived: ["examples/longlived/clients.js"],
};
const run = (script: string, args: string[]) => runRill(args, { timeoutMs: 30_000 }, [process.execPath, join(repoRoot, "dist", script)]);
const oneLine = (text: string) => text.trim().split("\n").length === 1 && !/\n\s+at /.test(text);

describe("the example clients", () => {
  let server: Server;
  let target = "";
  before(async () => {
    server = createServer({ logger: silentLogger });
    server.add(Echo, echoService());
    const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
    target = `127.0.0.1:${port}`;
  });
  after(async () => {
    await server.shutdown({ graceMs: 1000 });
  });

  for (const [name, [script, ...rest]] of Object.entries(clients)) {
    test(`${name}: --help shows --target and exits 0; a wrong flag is one line and exit 2`, async () => {
      const help = await run(script!, ["--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /--target HOST:PORT/);
      const bad = await run(script!, ["--bogus"]);
      assert.equal(bad.code, 2);
      assert.ok(oneLine(bad.stderr), bad.stderr);
      assert.match(bad.stderr, /^error: .*--bogus.*--help/);
    });
    if (name !== "longlived") {
      // (longlived's subscribers wait for a server that is down: that is its demo.)
      test(`${name}: a server that is not running is one line saying to start it, exit 1`, async () => {
        const down = await run(script!, [...rest, "--target", "127.0.0.1:1"]);
        assert.equal(down.code, 1, down.stdout + down.stderr);
        assert.ok(oneLine(down.stderr), down.stderr);
        assert.match(down.stderr, /cannot reach 127\.0\.0\.1:1.*npm start.*--target/);
      });
    }
  }

  test("echo --target calls a running server four ways", async () => {
    const r = await run("examples/echo/client.js", ["--target", target]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^unary: hello$/m);
    assert.match(r.stdout, /^bidi: three$/m);
  });
});
