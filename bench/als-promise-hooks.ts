/**
 * What node's AsyncLocalStorage costs every promise of a process once it has been used (issue 17):
 * `node dist/bench/als-promise-hooks.js [--messages N]`. Times a `for await` over an async
 * generator of N messages (CPU ns per message) before any `AsyncLocalStorage.run`, inside one,
 * and outside one after it. On Node 20 and 22 the first `run` turns on promise hooks for the
 * whole process; on Node 24 (and 22 with `--experimental-async-context-frame`) AsyncLocalStorage
 * is built on AsyncContextFrame and costs nothing per promise. OpenTelemetry's context manager
 * is an AsyncLocalStorage, and tracing makes each call's span current with `run`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { messages: { type: "string", default: "1000000" } } });
const messages = Number(values.messages);

async function* generate(): AsyncGenerator<number> {
  for (let i = 0; i < messages; i++) yield i;
}

async function nsPerMessage(): Promise<number> {
  const c0 = process.cpuUsage();
  let n = 0;
  for await (const _ of generate()) n++;
  const c = process.cpuUsage(c0);
  if (n !== messages) throw new Error(`counted ${n} of ${messages}`);
  return ((c.user + c.system) * 1000) / messages;
}

const report = (label: string, ns: number[]): void => console.log(`${label.padEnd(40)} ${ns.map((x) => x.toFixed(0)).join(" / ")} ns CPU per message`);
console.log(`Node ${process.version}${process.execArgv.length > 0 ? ` ${process.execArgv.join(" ")}` : ""}, ${messages.toLocaleString("en-US")} messages per run`);
report("before any AsyncLocalStorage.run", [await nsPerMessage(), await nsPerMessage()]);
const storage = new AsyncLocalStorage<{ call: number }>();
report("inside AsyncLocalStorage.run", [await storage.run({ call: 1 }, nsPerMessage), await storage.run({ call: 2 }, nsPerMessage)]);
report("outside, after a run", [await nsPerMessage(), await nsPerMessage()]);
