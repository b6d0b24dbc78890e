/**
 * `rill serve [--port N] [--host H]`: the demo server of `npm start` (every example service,
 * with health and reflection), in the foreground until Ctrl+C.
 */
import { parseArgs } from "node:util";
import { parseOrUsage } from "./options.js";
import { CliError, type Io } from "./output.js";

export const serveUsage = `usage: rill serve [--port N] [--host HOST]

Runs the demo server (Echo, RouteGuide, VideoService, health, reflection) on HOST:PORT,
127.0.0.1:50051 by default (or the PORT and HOST environment variables).
`;

export async function serve(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() =>
    parseArgs({ args: argv, options: { port: { type: "string", short: "p" }, host: { type: "string" }, help: { type: "boolean", short: "h" } }, allowPositionals: true }),
  );
  if (values.help === true) return io.stdout.write(serveUsage), 0;
  if (positionals.length > 0) throw new CliError(`rill serve takes no arguments (got ${positionals.join(" ")})`, 2, serveUsage);
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) throw new CliError(`--port takes a port number, not "${values.port}"`, 2);
    process.env.PORT = values.port;
  }
  if (values.host !== undefined) process.env.HOST = values.host;
  // The demo server runs at import and keeps the process alive until it is stopped.
  await import("../../examples/demo-server.js");
  return new Promise<number>(() => {});
}
