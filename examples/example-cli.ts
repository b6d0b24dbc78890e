/**
 * What every example client shares on the command line: `--target HOST:PORT` (default
 * 127.0.0.1:50051, or the TARGET environment variable), `--help`, and errors as one line that
 * says what to do (a wrong flag, a server that is not running), never a stack trace.
 * Exit codes: 0 done, 1 the call failed, 2 wrong arguments.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Code, codeName, RpcError } from "../src/index.js";

export const defaultTarget = "127.0.0.1:50051";

// Output piped into `head` that closes early is not an error of the example.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

/** The flags every example takes, for its usage text. */
export const commonExampleHelp = `  --target HOST:PORT   the server (default ${defaultTarget}, or $TARGET)
  -h, --help           this help`;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** An error the example reports as one line, with an exit code. */
export class ExampleError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * Parses the example's arguments: `--target`, `--help` (prints `usage`, exits 0) and `extra`.
 * A wrong flag prints one line and exits 2.
 */
export function exampleArgs(usage: string, extra: Options, allowPositionals = false): ExampleArgs {
  const options: Options = { ...extra, target: { type: "string" }, help: { type: "boolean", short: "h" } };
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ options, allowPositionals, strict: true });
  } catch (e) {
    fail(`${(e as Error).message.replace(/^TypeError \[\w+\]: /, "")}; run with --help for the flags`, 2);
  }
  if (parsed.values.help === true) {
    process.stdout.write(usage.endsWith("\n") ? usage : usage + "\n");
    process.exit(0);
  }
  const target = (parsed.values.target as string | undefined) ?? process.env.TARGET ?? defaultTarget;
  if (!/:\d+$/.test(target) && !target.startsWith("unix:")) fail(`--target takes HOST:PORT, e.g. ${defaultTarget}, not "${target}"`, 2);
  return { values: parsed.values, positionals: parsed.positionals, target };
}

/** What `exampleArgs` parsed. */
export interface ExampleArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  target: string;
}

/** Prints `message` as one line on stderr and exits with `code`. */
export function fail(message: string, code = 1): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

/** Turns any error into the one line `fail` prints, with what to do for the common cases. */
export function explain(e: unknown, target: string): { message: string; code: number } {
  if (e instanceof ExampleError) return { message: e.message, code: e.exitCode };
  if (e instanceof RpcError) {
    if (e.code === Code.Unavailable) {
      const what = e.rawMessage.startsWith("cannot reach") ? e.rawMessage : `cannot reach ${target} (${e.rawMessage})`;
      return { message: `${what}; start the demo server with \`npm start\` (or \`npx rill serve\`), or pass --target HOST:PORT`, code: 1 };
    }
    if (e.code === Code.Unimplemented) return { message: `${target} does not serve this example's service (${e.rawMessage}); is --target the right server?`, code: 1 };
    return { message: `${codeName(e.code)}: ${e.rawMessage}`, code: 1 };
  }
  return { message: e instanceof Error ? e.message : String(e), code: 1 };
}

/** Runs an example's `main`, reporting any failure as one line (and its exit code). */
export async function runExample(target: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const { message, code } = explain(e, target);
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = code;
  }
}
