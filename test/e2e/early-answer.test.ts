/**
 * A server may answer a client-streaming call before reading every request (the protocol
 * allows it; ByteStream's early completion and Rill's TransferService rely on it). The client
 * must then stop sending and end the stream, with requests still queued behind flow control.
 * Run in a child process: the failure this guards against (Node 20 spinning at 100% CPU inside
 * node:http2) blocks the event loop, so only another process can time it out.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const fixture = fileURLToPath(new URL("../fault/fixtures/early-answer-calls.js", import.meta.url));

test("client-streaming calls answered early while requests wait on flow control all complete, on every Node", async () => {
  const child = spawn(process.execPath, [fixture], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(killer);
  assert.equal(code, 0, `the calls did not complete within 30 s (exit ${code}): ${out}`);
  assert.match(out, /30 calls answered early/);
});
