/**
 * `rill health HOST:PORT [SERVICE] [--watch]`: asks grpc.health.v1.Health for the status of the
 * server ("" by default) or of SERVICE, and with --watch prints every change until the stream
 * ends or Ctrl+C. Exit code 0 when the (last) status is SERVING, 1 when it is anything else,
 * 64 + code when the call fails (69 = NOT_FOUND for a service the server does not report).
 */
import { parseArgs } from "node:util";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { createClient } from "../client/client.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { callOptions, withChannel } from "./command.js";
import { commonFlags, commonHelp, parseAddress, parseOrUsage } from "./options.js";
import { styles, useColour, type Io } from "./output.js";

export const healthUsage = `usage: rill health HOST:PORT [SERVICE] [--watch] [flags]

Prints the serving status of the server (or of SERVICE): SERVING, NOT_SERVING, ...
  --watch                  keep printing each change until the stream ends or Ctrl+C
Exit code: 0 if SERVING, 1 otherwise, 64 + code if the call fails.

${commonHelp}`;

export async function health(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() =>
    parseArgs({ args: argv, options: { ...commonFlags, watch: { type: "boolean", short: "w" } }, allowPositionals: true }),
  );
  if (values.help === true) return io.stdout.write(healthUsage), 0;
  const address = parseAddress(positionals[0], healthUsage);
  const service = positionals[1] ?? "";
  const s = styles(useColour(io.stdout));
  const show = (status: ServingStatus) => {
    const name = ServingStatus[status] ?? String(status);
    const coloured = status === ServingStatus.SERVING ? s.green(name) : s.red(name);
    const when = io.stdout.isTTY === true && values.watch === true ? s.dim(`${new Date().toISOString()} `) : "";
    io.stdout.write(`${when}${coloured}\n`);
  };
  return withChannel(io, address, values, async (channel) => {
    const client = createClient(Health, channel);
    if (values.watch !== true) {
      const r = await client.check({ service }, callOptions(values));
      show(r.status);
      return r.status === ServingStatus.SERVING ? 0 : 1;
    }
    const abort = new AbortController();
    const onSigint = () => abort.abort(new RpcError(Code.Canceled, "interrupted"));
    process.once("SIGINT", onSigint);
    let last: ServingStatus = ServingStatus.UNKNOWN;
    try {
      for await (const r of client.watch({ service }, { ...callOptions(values), signal: abort.signal })) show((last = r.status));
    } catch (e) {
      if (abort.signal.aborted) return last === ServingStatus.SERVING ? 0 : 1;
      // Ended after statuses arrived (e.g. the server shut down): say why, exit by the last status.
      if (e instanceof RpcError && last !== ServingStatus.UNKNOWN) {
        io.stderr.write(`${styles(useColour(io.stderr)).dim(`watch ended: ${e.message}`)}\n`);
        return last === ServingStatus.SERVING ? 0 : 1;
      }
      throw e;
    } finally {
      process.off("SIGINT", onSigint);
    }
    return last === ServingStatus.SERVING ? 0 : 1;
  });
}
