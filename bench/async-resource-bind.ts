/**
 * What node's `AsyncResource.prototype.bind` costs, which `ClientHttp2Session.request()` calls on
 * every request (nodejs/node#58218): it defines a deprecated `asyncResource` getter and setter,
 * new closures each time, on the bound function, so every bound function gets a hidden class of
 * its own (allocated in old space) that keeps what the function holds alive through scavenges.
 * Compared with a plain closure and with `runInAsyncScope`, which carry the same async context.
 *
 *   node scripts/prepare.mjs && node dist/bench/async-resource-bind.js [--calls 200000]
 */
import { AsyncResource } from "node:async_hooks";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { calls: { type: "string", default: "200000" } } });
const calls = Number(values.calls);

let sink: unknown;
const modes: Record<string, (fn: () => unknown) => unknown> = {
  "plain closure": (fn) => fn,
  "new AsyncResource + runInAsyncScope": (fn) => {
    const r = new AsyncResource("PendingRequest");
    return () => r.runInAsyncScope(fn);
  },
  "new AsyncResource + bind (what http2 request() does)": (fn) => new AsyncResource("PendingRequest").bind(fn),
};

console.log(`Node ${process.versions.node}, ${calls} calls each (a 100-element array held by each function, as a request's objects would be)`);
for (const [name, make] of Object.entries(modes)) {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const payload = new Array<number>(100).fill(i);
    sink = make(() => payload);
  }
  const ms = performance.now() - t0;
  console.log(`  ${name.padEnd(54)} ${ms.toFixed(0).padStart(6)} ms  ${((ms * 1000) / calls).toFixed(2)} µs per call`);
}
void sink;
