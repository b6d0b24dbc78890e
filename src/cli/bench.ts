/**
 * `rill bench HOST:PORT pkg.Service/Method -d JSON -c 100 (-n 100000 | -z 10s)`: a load
 * generator in the manner of ghz. `-c` workers share `--connections` channels and call back to
 * back until `-n` calls were started or `-z` has passed; with `--rps R` call starts are paced at
 * R per second instead (open loop: a call's latency counts from its scheduled start, so a
 * server that falls behind shows as latency rather than as a slower schedule). `--warmup N`
 * calls run first and are not counted. Every counted call's latency (start to final status, all
 * responses read) is kept. Prints a progress bar on a terminal, then the report as
 * summary|json|csv|html (`-o FILE` writes it to a file).
 *
 * Ctrl+C stops starting calls, cancels those in flight (not counted) and prints the report so
 * far. Failures are grouped by status and message. When every call failed the report is still
 * printed, then the first failure is explained like any CLI error (a wrong port says so) and the
 * exit code is 64 + its status code; otherwise the exit code is 0, as with ghz.
 *
 * ghz's `--insecure` means plaintext, and so it does here (`--skip-verify` is TLS without
 * verification).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Message } from "@bufbuild/protobuf";
import type { Channel } from "../channel/channel.js";
import { createClient } from "../client/client.js";
import { RpcError } from "../protocol/errors.js";
import { Code, codeName } from "../protocol/code.js";
import { benchFormats, errorKey, formatReport, type BenchFormat, type BenchReport, type CallRecord } from "./bench-report.js";
import { callOptions, channelExtras, withChannel } from "./command.js";
import { openChannel } from "./connection.js";
import { findMethod, loadDescriptors, splitMethodName } from "./descriptors.js";
import { splitJsonObjects } from "./json-stream.js";
import { latencyStats } from "./latency-stats.js";
import { parseRequest } from "./messages.js";
import { commonFlags, commonHelp, parseAddress, parseDuration, parseOrUsage } from "./options.js";
import { CliError, useColour, type Io } from "./output.js";

export type { BenchReport } from "./bench-report.js";

export const benchUsage = `usage: rill bench HOST:PORT package.Service/Method [-d JSON] [-c N] [-n N | -z DUR] [flags]

Calls the method as fast as N concurrent workers can, then reports latency and throughput.
  -d, --data JSON          request(s) of every call (several objects for a client stream)
  -D, --data-file FILE     the same, read from FILE
  -c, --concurrency N      concurrent calls (default 50)
  -n, --total N            number of calls (default 200; ignored with -z)
  -z, --duration DUR       run for DUR instead, e.g. 10s
  --rps N                  start N calls per second (open loop; at most -c in flight)
  --warmup N               run N calls first and leave them out of the report
  --connections N          HTTP/2 connections the workers share (default 1)
  --format FORMAT          summary (default), json, csv (one row per call) or html (a page
                           with the latency histogram)
  -o, --output FILE        write the report to FILE instead of stdout
  --insecure               plaintext, as in ghz (TLS without verification: --skip-verify)
Ctrl+C stops the run and prints the report so far.

${commonHelp}`;

const benchFlags = {
  ...commonFlags,
  data: { type: "string", short: "d" },
  concurrency: { type: "string", short: "c" },
  total: { type: "string", short: "n" },
  duration: { type: "string", short: "z" },
  connections: { type: "string" },
  format: { type: "string" },
  "data-file": { type: "string", short: "D" },
  rps: { type: "string" },
  warmup: { type: "string" },
  output: { type: "string", short: "o" },
} as const;

function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new CliError(`${flag} takes a whole number of at least 1, not "${text}"`, 2);
  return Number(text);
}

export async function bench(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() => parseArgs({ args: argv, options: benchFlags, allowPositionals: true }));
  if (values.help === true) return io.stdout.write(benchUsage), 0;
  const address = parseAddress(positionals[0], benchUsage);
  if (positionals[1] === undefined) throw new CliError("missing the method to call, e.g. grpc.examples.echo.Echo/UnaryEcho", 2);
  const format = (values.format ?? "summary") as BenchFormat;
  if (!(benchFormats as readonly string[]).includes(format)) throw new CliError(`--format is ${benchFormats.join(", ")}; not "${format}"`, 2);
  const concurrency = positiveInt(values.concurrency, "-c", 50);
  const connections = positiveInt(values.connections, "--connections", 1);
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, "-z");
  const total = durationMs === undefined ? positiveInt(values.total, "-n", 200) : Number.POSITIVE_INFINITY;
  const rps = values.rps === undefined ? undefined : positiveInt(values.rps, "--rps", 1);
  const warmup = values.warmup === undefined ? 0 : positiveInt(values.warmup, "--warmup", 1);
  if (values.data !== undefined && values["data-file"] !== undefined) throw new CliError("-d and -D both give the request; pass one", 2);
  let data = values.data;
  if (values["data-file"] !== undefined) {
    try {
      data = readFileSync(values["data-file"], "utf8");
    } catch (e) {
      throw new CliError(`-D ${values["data-file"]}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`, 2);
    }
  }
  // ghz: --insecure is plaintext.
  const flags = values.insecure === true ? { ...values, insecure: false } : values;
  const options = callOptions(values);
  const { service } = splitMethodName(positionals[1]);

  return withChannel(io, address, flags, async (channel) => {
    const reflectOptions = callOptions(values, "reflect");
    const d = await loadDescriptors(values, channel, { ...reflectOptions, timeoutMs: reflectOptions.timeoutMs ?? 10_000 }, [service]);
    const method = findMethod(d, positionals[1]!);
    const texts = data === undefined ? (method.methodKind === "unary" || method.methodKind === "server_streaming" ? ["{}"] : []) : splitJsonObjects(data);
    const requests = texts.map((t, i) => parseRequest(method.input, t, i + 1, d.registry));
    if ((method.methodKind === "unary" || method.methodKind === "server_streaming") && requests.length !== 1) {
      throw new CliError(`${method.name} takes exactly one request; ${values["data-file"] !== undefined ? "-D" : "-d"} has ${requests.length}`);
    }
    const channels: Channel[] = [channel];
    for (let i = 1; i < connections; i++) channels.push(openChannel(address, flags, channelExtras(values)));
    const fns = channels.map((ch) => (createClient(method.parent, ch) as unknown as Record<string, (i: unknown, o: unknown) => unknown>)[method.localName]!);
    // Ctrl+C: stop starting calls and cancel those in flight; the report covers what finished.
    const stop = new AbortController();
    const callOpts = { ...options, signal: stop.signal };
    const once = async (fn: (i: unknown, o: unknown) => unknown): Promise<void> => {
      switch (method.methodKind) {
        case "unary":
          await (fn(requests[0], callOpts) as Promise<Message>);
          return;
        case "server_streaming":
          for await (const _ of fn(requests[0], callOpts) as AsyncIterable<Message>);
          return;
        case "client_streaming":
          await (fn(requests, callOpts) as Promise<Message>);
          return;
        case "bidi_streaming":
          for await (const _ of fn(requests, callOpts) as AsyncIterable<Message>);
          return;
      }
    };
    let stopped: string | undefined;
    const onSigint = () => {
      stopped = "interrupted (Ctrl+C)";
      stop.abort(new RpcError(Code.Canceled, "interrupted (Ctrl+C)"));
    };
    process.once("SIGINT", onSigint);

    const calls: CallRecord[] = [];
    const statuses = new Map<string, number>();
    const errors = new Map<string, number>();
    let firstError: unknown;
    try {
      // Warm-up: the same calls, bounded by count, left out of everything below.
      let warmStarted = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, warmup) }, async (_, i) => {
          while (warmStarted < warmup && !stop.signal.aborted) {
            warmStarted++;
            await once(fns[i % fns.length]!).catch(() => {});
          }
        }),
      );

      let started = 0;
      const t0 = performance.now();
      const deadline = durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + durationMs;
      const more = () => started < total && performance.now() < deadline && !stop.signal.aborted;
      const tty = io.stderr.isTTY === true;
      const progress = () => {
        const done = calls.length;
        const frac = durationMs === undefined ? done / total : Math.min(1, (performance.now() - t0) / durationMs);
        const width = 30;
        const filled = Math.round(frac * width);
        const rate = done / Math.max(0.001, (performance.now() - t0) / 1000);
        io.stderr.write(`\r[${"=".repeat(filled)}${" ".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${done} calls  ${rate.toFixed(0)} calls/s `);
      };
      const ticker = tty ? setInterval(progress, 100) : undefined;

      const worker = async (fn: (i: unknown, o: unknown) => unknown) => {
        while (more()) {
          const n = started++;
          // Open loop: call n is due at t0 + n/rps; its latency counts from then.
          let t = performance.now();
          if (rps !== undefined) {
            const due = t0 + (n * 1000) / rps;
            if (due > deadline) return;
            if (due > t) await sleep(due - t, stop.signal);
            if (stop.signal.aborted) return;
            t = due;
          }
          let status = "OK";
          let error = "";
          try {
            await once(fn);
          } catch (e) {
            if (stop.signal.aborted) return; // cancelled by Ctrl+C: not a result
            firstError ??= e;
            status = e instanceof RpcError ? codeName(e.code) : "UNKNOWN";
            error = e instanceof RpcError ? e.rawMessage : e instanceof Error ? e.message : String(e);
            const key = errorKey(status, error);
            errors.set(key, (errors.get(key) ?? 0) + 1);
          }
          calls.push({ startMs: t - t0, latencyMs: performance.now() - t, status, error });
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
      }
      const totalMs = performance.now() - t0;
      const stats = latencyStats(calls.map((c) => c.latencyMs));
      const report: BenchReport = {
        method: `${method.parent.typeName}/${method.name}`,
        concurrency,
        connections,
        ...(rps !== undefined ? { targetRps: rps } : {}),
        warmup,
        ...(stopped !== undefined ? { stopped } : {}),
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
      const text = formatReport(format, report, calls, values.output === undefined && useColour(io.stdout));
      if (values.output !== undefined) {
        writeFileSync(values.output, text);
        io.stderr.write(`report written to ${values.output}\n`);
      } else io.stdout.write(text);
      // Every call failed: the report shows the distribution; the first failure says why.
      if ((statuses.get("OK") ?? 0) === 0 && firstError !== undefined) throw firstError;
      return 0;
    } finally {
      process.off("SIGINT", onSigint);
      for (const ch of channels.slice(1)) ch.close();
    }
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
