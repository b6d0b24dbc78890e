/**
 * grpcurl's way of typing a command, turned into Rill's: single-dash long flags (`-plaintext`,
 * `-max-time 5`, `-format=json`), its names for Rill's flags (`-max-time` → `--timeout`,
 * `-max-msg-sz` → `--max-receive-size`), and its argument order, flags and address first:
 *
 *   rill -plaintext -d '{"id":1}' localhost:50051 pkg.Svc/Method   →  rill call localhost:50051 pkg.Svc/Method --plaintext -d ...
 *   rill -plaintext localhost:50051 list [SERVICE]                   →  rill list localhost:50051 [SERVICE] --plaintext
 *
 * Pure: argv in, argv out. Rill's own form (`rill call ADDR METHOD ...`) passes through, apart
 * from the flag spellings, so both habits work everywhere.
 */

/** Long flags that may be written with one dash; the value is Rill's name for it. */
const singleDash: Record<string, string> = {
  plaintext: "plaintext",
  insecure: "insecure",
  "skip-verify": "skip-verify",
  cacert: "cacert",
  cert: "cert",
  key: "key",
  servername: "servername",
  authority: "servername",
  "max-time": "timeout",
  timeout: "timeout",
  "connect-timeout": "connect-timeout",
  "import-path": "import-path",
  proto: "proto",
  protoset: "protoset",
  "rpc-header": "rpc-header",
  "reflect-header": "reflect-header",
  "max-msg-sz": "max-receive-size",
  "max-receive-size": "max-receive-size",
  format: "format",
  "allow-unknown-fields": "allow-unknown-fields",
  "emit-defaults": "emit-defaults",
  data: "data",
  header: "header",
  verbose: "verbose",
  help: "help",
};

/** Rill long flags that take a value (so the next argument is not a positional). */
const valued = new Set([
  "cacert", "cert", "key", "servername", "timeout", "connect-timeout", "import-path", "proto", "protoset", "rpc-header", "reflect-header",
  "max-receive-size", "format", "data", "header", "concurrency", "total", "duration", "connections", "rps", "data-file", "warmup", "output", "port", "host",
]);
/** Short flags that take a value. */
const valuedShort = new Set(["d", "H", "I", "c", "n", "z", "D", "o", "p"]);

export const commandNames = ["list", "describe", "call", "health", "bench", "serve", "top", "help"] as const;

/** Rewrites one flag's spelling; returns it unchanged when it is not a grpcurl spelling. */
function respell(arg: string): string {
  const m = /^--?([a-z][a-z-]+)(=.*)?$/s.exec(arg);
  if (m === null) return arg;
  const name = singleDash[m[1]!];
  if (name === undefined) return arg;
  return `--${name}${m[2] ?? ""}`;
}

/** Whether `arg` (already respelled) is a flag whose value is the next argument. */
function takesValue(arg: string): boolean {
  const long = /^--([a-z][a-z-]*)$/.exec(arg);
  const short = /^-([a-zA-Z])$/.exec(arg);
  return (long !== null && valued.has(long[1]!)) || (short !== null && valuedShort.has(short[1]!));
}

/** Rewrites grpcurl-style arguments into Rill's `COMMAND ADDRESS ...` form. */
export function normalizeArgs(argv: readonly string[]): string[] {
  // Respell flags (never their values), and split them from the positionals, keeping their order.
  const args: string[] = [];
  const flags: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      args.push(...argv.slice(i));
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("-") && a !== "-") {
      const flag = respell(a);
      args.push(flag);
      flags.push(flag);
      if (takesValue(flag) && i + 1 < argv.length) {
        args.push(argv[++i]!);
        flags.push(argv[i]!);
      }
    } else {
      args.push(a);
      positionals.push(a);
    }
  }
  if (args.length === 0 || (commandNames as readonly string[]).includes(args[0]!)) return args;
  if (positionals.length === 0 || (commandNames as readonly string[]).includes(positionals[0]!)) return [...positionals.slice(0, 1), ...flags, ...positionals.slice(1)];
  const [address, verb, ...rest] = positionals;
  if (verb === "list" || verb === "describe") return [verb, address!, ...rest, ...flags];
  // grpcurl: ADDRESS METHOD is a call.
  if (verb !== undefined && /[./]/.test(verb)) return ["call", address!, verb, ...rest, ...flags];
  return args;
}
