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
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { commonExampleHelp, exampleArgs, ExampleError, explain } from "../example-cli.js";
import { Alexandria } from "../../gen/alexandria/alexandria_pb.js";
import { Agent, scanLibrary } from "./agent.js";
import type { Binding } from "./domain.js";
import { progressBar } from "./progress-bar.js";

const usage = `usage: node dist/examples/alexandria/client.js --agent NAME [--target HOST:PORT] <command>
  report DIR             report the files under DIR to the library (acks print as they arrive)
  lend FILE BORROWER     lend FILE to agent BORROWER
  bindings [--watch]     list this agent's lending agreements
  fetch DIR [--watch]    fetch every file lent to this agent into DIR
  --agent NAME           who this agent is (required)
  --watch                keep following changes (bindings, fetch)
${commonExampleHelp}`;

const { values, positionals, target } = exampleArgs(usage, { agent: { type: "string" }, watch: { type: "boolean", default: false } }, true);
const [command, ...args] = positionals;
if (values.agent === undefined) {
  process.stderr.write("error: --agent NAME is required (who this agent is, e.g. --agent alice); run with --help for the commands\n");
  process.exit(2);
}
if (command === undefined) {
  process.stderr.write("error: missing the command: report DIR, lend FILE BORROWER, bindings or fetch DIR; run with --help\n");
  process.exit(2);
}

const channel = createChannel(target, { logger: silentLogger });
const agent = new Agent(createClient(Alexandria, channel), values.agent as string);
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
      if (file === undefined || borrower === undefined) throw new ExampleError("lend takes FILE BORROWER, e.g. lend song.flac bob", 2);
      const b = await agent.lend(file, borrower, { onProgress: progressBar(`lend ${file}`), onRetry: retrying, signal: stop.signal });
      console.log(`lent: ${describe(b)}`);
      break;
    }
    case "bindings":
      for await (const b of agent.bindings(values.watch === true, stop.signal)) console.log(describe(b));
      break;
    case "fetch": {
      const dir = args[0] ?? ".";
      for await (const b of agent.bindings(values.watch === true, stop.signal)) {
        if (b.borrower !== agent.id) continue;
        const path = await agent.fetch(b, dir, { onProgress: progressBar(`fetch ${b.path}`), onRetry: retrying, signal: stop.signal });
        console.log(`fetched ${path}`);
      }
      break;
    }
    default:
      throw new ExampleError(`unknown command "${command}"; the commands are report, lend, bindings, fetch (run with --help)`, 2);
  }
} catch (e) {
  if (!stop.signal.aborted) {
    const { message, code } = explain(e, target);
    process.stderr.write(`\nerror: ${message}\n`);
    process.exitCode = code;
  }
} finally {
  channel.close();
}
