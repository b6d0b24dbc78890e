/**
 * The Alexandria agent CLI. Run the demo server first (`npm start`), then for example:
 *
 *     node dist/examples/alexandria/client.js --agent alice report ~/Music
 *     node dist/examples/alexandria/client.js --agent alice lend ~/Music/song.flac bob
 *     node dist/examples/alexandria/client.js --agent bob bindings
 *     node dist/examples/alexandria/client.js --agent bob fetch ./borrowed [--watch]
 *
 * Options: --target host:port (default 127.0.0.1:50051), --agent NAME (required).
 * Transfers show a progress bar on a terminal (plain lines otherwise) and resume by themselves
 * after an interruption; re-running an interrupted command also resumes it.
 */
import { parseArgs } from "node:util";
import { createChannel, createClient, RpcError } from "../../src/index.js";
import { Alexandria } from "../../gen/alexandria/alexandria_pb.js";
import { Agent, scanLibrary } from "./agent.js";
import type { Binding } from "./domain.js";
import { progressBar } from "./progress-bar.js";

const usage = `usage: client.js --agent NAME [--target HOST:PORT] <command>
  report DIR             report the files under DIR to the library (acks print as they arrive)
  lend FILE BORROWER     lend FILE to agent BORROWER
  bindings [--watch]     list this agent's lending agreements
  fetch DIR [--watch]    fetch every file lent to this agent into DIR`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: "string", default: "127.0.0.1:50051" },
    agent: { type: "string" },
    watch: { type: "boolean", default: false },
  },
});
const [command, ...args] = positionals;
if (values.agent === undefined || command === undefined) {
  console.error(usage);
  process.exit(2);
}

const channel = createChannel(values.target);
const agent = new Agent(createClient(Alexandria, channel), values.agent);
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
const describe = (b: Binding) => `${b.path} (${b.size} bytes, ${b.hash.slice(0, 12)}…) ${b.lender} -> ${b.borrower}`;
const retrying = (e: unknown) => console.error(`\ninterrupted (${(e as Error).message}); resuming`);

try {
  switch (command) {
    case "report": {
      const dir = args[0] ?? ".";
      const acks = await agent.report(scanLibrary(dir), (a) =>
        console.log(a.saved ? `saved ${a.hash.slice(0, 12)}…` : `refused ${a.hash.slice(0, 12)}…: ${a.error}`),
      );
      console.log(`${acks.filter((a) => a.saved).length} of ${acks.length} entries saved`);
      break;
    }
    case "lend": {
      const [file, borrower] = args;
      if (file === undefined || borrower === undefined) throw new Error(usage);
      const b = await agent.lend(file, borrower, { onProgress: progressBar(`lend ${file}`), onRetry: retrying, signal: stop.signal });
      console.log(`lent: ${describe(b)}`);
      break;
    }
    case "bindings":
      for await (const b of agent.bindings(values.watch, stop.signal)) console.log(describe(b));
      break;
    case "fetch": {
      const dir = args[0] ?? ".";
      for await (const b of agent.bindings(values.watch, stop.signal)) {
        if (b.borrower !== agent.id) continue;
        const path = await agent.fetch(b, dir, { onProgress: progressBar(`fetch ${b.path}`), onRetry: retrying, signal: stop.signal });
        console.log(`fetched ${path}`);
      }
      break;
    }
    default:
      throw new Error(usage);
  }
} catch (e) {
  if (!stop.signal.aborted) {
    console.error(e instanceof RpcError ? `${e.message}` : (e as Error).message);
    process.exitCode = 1;
  }
} finally {
  channel.close();
}
