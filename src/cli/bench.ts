/**
 * `rill bench HOST:PORT pkg.Service/Method -d JSON -c 100 (-n 100000 | -z 10s)`: a load
 * generator in the manner of ghz. `-c` workers share `--connections` channels and call back to
 * back until `-n` calls were started or `-z` has passed; every call's latency (start to final
 * status, all responses read) is kept. Prints a progress bar on a terminal, then a summary,
 * latency histogram, percentiles and status counts; `--format json` prints the same as JSON.
 *
 * When every call failed, the first failure is reported like any CLI error (a wrong port says
 * so) and the exit code is 64 + its status code; otherwise the exit code is 0, as with ghz.
 */
import { parseArgs } from "node:util";
import type { Message } from "@bufbuild/protobuf";
import type { Channel } from "../channel/channel.js";
import { createClient } from "../client/client.js";
import { RpcError } from "../errors.js";
import { codeName } from "../protocol/code.js";
import { callOptions, channelExtras, withChannel } from "./command.js";
import { openChannel } from "./connection.js";
import { findMethod, loadDescriptors, splitMethodName } from "./descriptors.js";
import { splitJsonObjects } from "./json-stream.js";
import { latencyStats, type LatencyStats } from "./latency-stats.js";
import { parseRequest } from "./messages.js";
import { commonFlags, commonHelp, parseAddress, parseDuration, parseOrUsage } from "./options.js";
import { CliError, styles, useColour, type Io } from "./output.js";

export const benchUsage = `usage: rill bench HOST:PORT package.Service/Method [-d JSON] [-c N] [-n N | -z DUR] [flags]

Calls the method as fast as N concurrent workers can, then reports latency and throughput.
  -d, --data JSON          request(s) of every call (several objects for a client stream)
  -c, --concurrency N      concurrent calls (default 50)
  -n, --total N            number of calls (default 200; ignored with -z)
  -z, --duration DUR       run for DUR instead, e.g. 10s
  --connections N          HTTP/2 connections the workers share (default 1)
  --format FORMAT          summary (default) or json

${commonHelp}`;

const benchFlags = {
  ...commonFlags,
  data: { type: "string", short: "d" },
  concurrency: { type: "string", short: "c" },
  total: { type: "string", short: "n" },
  duration: { type: "string", short: "z" },
  connections: { type: "string" },
  format: { type: "string" },
} as const;

/** The result of a run, as `--format json` prints it. */
export interface BenchReport {
  method: string;
  concurrency: number;
  connections: number;
  count: number;
  totalMs: number;
  rps: number;
  averageMs: number;
  fastestMs: number;
  slowestMs: number;
  histogram: LatencyStats["histogram"];
  latencyDistribution: LatencyStats["percentiles"];
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new CliError(`${flag} takes a whole number of at least 1, not "${text}"`, 2);
  return Number(text);
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(2)} ms`);

function summaryText(r: BenchReport, colour: boolean): string {
  const s = styles(colour);
  const maxCount = Math.max(1, ...r.histogram.map((b) => b.count));
  const lines = [
    s.bold("Summary:"),
    `  Count:        ${r.count}`,
    `  Total:        ${ms(r.totalMs)}`,
    `  Slowest:      ${ms(r.slowestMs)}`,
    `  Fastest:      ${ms(r.fastestMs)}`,
    `  Average:      ${ms(r.averageMs)}`,
    `  Requests/sec: ${r.rps.toFixed(2)}`,
    "",
    s.bold("Response time histogram:"),
    ...r.histogram.map((b) => `  ${b.markMs.toFixed(3).padStart(10)} ms [${String(b.count).padStart(String(r.count).length)}] |${"∎".repeat(Math.round((b.count / maxCount) * 40))}`),
    "",
    s.bold("Latency distribution:"),
    ...r.latencyDistribution.map((p) => `  ${String(p.percentage).padStart(4)} % in ${ms(p.latencyMs)}`),
    "",
    s.bold("Status code distribution:"),
    ...Object.entries(r.statusCodeDistribution).map(([k, v]) => `  [${k === "OK" ? s.green(k) : s.red(k)}] ${v} responses`),
  ];
  const errors = Object.entries(r.errorDistribution);
  if (errors.length > 0) lines.push("", s.bold("Error distribution:"), ...errors.map(([k, v]) => `  [${v}] ${k}`));
  return lines.join("\n") + "\n";
}

export async function bench(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() => parseArgs({ args: argv, options: benchFlags, allowPositionals: true }));
  if (values.help === true) return io.stdout.write(benchUsage), 0;
  const address = parseAddress(positionals[0], benchUsage);
  if (positionals[1] === undefined) throw new CliError("missing the method to call, e.g. grpc.examples.echo.Echo/UnaryEcho", 2);
  const format = values.format ?? "summary";
  if (format !== "summary" && format !== "json") throw new CliError(`--format is summary or json, not "${format}"`, 2);
  const concurrency = positiveInt(values.concurrency, "-c", 50);
  const connections = positiveInt(values.connections, "--connections", 1);
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, "-z");
  const total = durationMs === undefined ? positiveInt(values.total, "-n", 200) : Number.POSITIVE_INFINITY;
  const options = callOptions(values);
  const { service } = splitMethodName(positionals[1]);

  return withChannel(io, address, values, async (channel) => {
    const reflectOptions = callOptions(values, "reflect");
    const d = await loadDescriptors(values, channel, { ...reflectOptions, timeoutMs: reflectOptions.timeoutMs ?? 10_000 }, [service]);
    const method = findMethod(d, positionals[1]!);
    const texts = values.data === undefined ? (method.methodKind === "unary" || method.methodKind === "server_streaming" ? ["{}"] : []) : splitJsonObjects(values.data);
    const requests = texts.map((t, i) => parseRequest(method.input, t, i + 1, d.registry));
    if ((method.methodKind === "unary" || method.methodKind === "server_streaming") && requests.length !== 1) {
      throw new CliError(`${method.name} takes exactly one request; -d has ${requests.length}`);
    }
    const channels: Channel[] = [channel];
    for (let i = 1; i < connections; i++) channels.push(openChannel(address, values, channelExtras(values)));
    const fns = channels.map((ch) => (createClient(method.parent, ch) as unknown as Record<string, (i: unknown, o: unknown) => unknown>)[method.localName]!);
    const once = async (fn: (i: unknown, o: unknown) => unknown): Promise<void> => {
      switch (method.methodKind) {
        case "unary":
          await (fn(requests[0], options) as Promise<Message>);
          return;
        case "server_streaming":
          for await (const _ of fn(requests[0], options) as AsyncIterable<Message>);
          return;
        case "client_streaming":
          await (fn(requests, options) as Promise<Message>);
          return;
        case "bidi_streaming":
          for await (const _ of fn(requests, options) as AsyncIterable<Message>);
          return;
      }
    };

    const latencies: number[] = [];
    const statuses = new Map<string, number>();
    const errors = new Map<string, number>();
    let firstError: unknown;
    let started = 0;
    const t0 = performance.now();
    const deadline = durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + durationMs;
    const more = () => started < total && performance.now() < deadline;

    const tty = io.stderr.isTTY === true;
    const progress = () => {
      const done = latencies.length;
      const frac = durationMs === undefined ? done / total : Math.min(1, (performance.now() - t0) / durationMs);
      const width = 30;
      const filled = Math.round(frac * width);
      const rate = done / Math.max(0.001, (performance.now() - t0) / 1000);
      io.stderr.write(`\r[${"=".repeat(filled)}${" ".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${done} calls  ${rate.toFixed(0)} calls/s `);
    };
    const ticker = tty ? setInterval(progress, 100) : undefined;

    const worker = async (fn: (i: unknown, o: unknown) => unknown) => {
      while (more()) {
        started++;
        const t = performance.now();
        let status = "OK";
        try {
          await once(fn);
        } catch (e) {
          firstError ??= e;
          status = e instanceof RpcError ? codeName(e.code) : "UNKNOWN";
          const msg = e instanceof RpcError ? e.rawMessage : String(e);
          errors.set(msg, (errors.get(msg) ?? 0) + 1);
        }
        latencies.push(performance.now() - t);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(fns[i % fns.length]!)));
    } finally {
      if (ticker !== undefined) {
        clearInterval(ticker);
        progress();
        io.stderr.write("\n");
      }
      for (const ch of channels.slice(1)) ch.close();
    }
    const totalMs = performance.now() - t0;
    if ((statuses.get("OK") ?? 0) === 0 && firstError !== undefined) throw firstError;

    const stats = latencyStats(latencies);
    const report: BenchReport = {
      method: `${method.parent.typeName}/${method.name}`,
      concurrency,
      connections,
      count: stats.count,
      totalMs,
      rps: stats.count / (totalMs / 1000),
      averageMs: stats.averageMs,
      fastestMs: stats.fastestMs,
      slowestMs: stats.slowestMs,
      histogram: stats.histogram,
      latencyDistribution: stats.percentiles,
      statusCodeDistribution: Object.fromEntries(statuses),
      errorDistribution: Object.fromEntries(errors),
    };
    io.stdout.write(format === "json" ? JSON.stringify(report, null, 2) + "\n" : summaryText(report, useColour(io.stdout)));
    return 0;
  });
}

