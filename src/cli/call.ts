/**
 * `rill call HOST:PORT pkg.Service/Method [-d JSON | -d @]`: calls any method with JSON.
 *
 * Responses are printed as they arrive, one canonical proto3 JSON object per line. With `-d @`
 * requests are read from stdin and each is sent the moment its JSON object is complete, so a
 * bidi call can be driven interactively (type an id, see the video, type the next) or through
 * pipes. A request that does not match the input type stops the call with a message naming the
 * field; the status of a failed call goes to stderr and into the exit code (64 + code).
 */
import { parseArgs } from "node:util";
import type { DescMethod, Message, Registry } from "@bufbuild/protobuf";
import { createClient } from "../client/client.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import type { Metadata } from "../protocol/metadata.js";
import { callOptions, withChannel } from "./command.js";
import { findMethod, loadDescriptors, splitMethodName } from "./descriptors.js";
import { readJsonObjects, splitJsonObjects } from "./json-stream.js";
import { formatResponse, parseRequest } from "./messages.js";
import { commonFlags, commonHelp, parseAddress, parseHeaders, parseOrUsage } from "./options.js";
import { CliError, styles, useColour, type Io } from "./output.js";

export const callUsage = `usage: rill call HOST:PORT package.Service/Method [-d JSON | -d @] [flags]

Calls a method with JSON requests and prints each response as one line of proto3 JSON.
  -d, --data JSON          the request(s): one JSON object, or several for a client stream
  -d @                     read JSON requests from stdin, sending each as soon as it is complete
                           (interactive for bidi methods: type one, see the answer, type the next)
  --emit-defaults          print fields that have their default value too
  --allow-unknown-fields   ignore request fields the message does not have (instead of an error)
  --format json            the only format: proto3 JSON (grpcurl's -format text is not supported)
Without -d, unary and server-streaming methods get an empty request {}.
Exit code: 0 on OK, 64 + the gRPC status code on failure (e.g. 69 for NOT_FOUND), 1 on bad input.

${commonHelp}`;

const callFlags = {
  ...commonFlags,
  data: { type: "string", short: "d" },
  "emit-defaults": { type: "boolean" },
  "allow-unknown-fields": { type: "boolean" },
  format: { type: "string" },
} as const;

function printMetadata(io: Io, title: string, md: Metadata): void {
  const s = styles(useColour(io.stderr));
  io.stderr.write(`${s.dim(title)}\n`);
  for (const [k, v] of md) io.stderr.write(`${k}: ${typeof v === "string" ? v : Buffer.from(v).toString("base64")}\n`);
}

/** The request texts: all of `-d`, or stdin read lazily, or the default for the method kind. */
function requestTexts(data: string | undefined, method: DescMethod, io: Io): AsyncIterable<string> | string[] {
  if (data === "@") return readJsonObjects(io.stdin);
  if (data !== undefined) return splitJsonObjects(data);
  const single = method.methodKind === "unary" || method.methodKind === "server_streaming";
  return single ? ["{}"] : [];
}

export async function call(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() => parseArgs({ args: argv, options: callFlags, allowPositionals: true }));
  if (values.help === true) return io.stdout.write(callUsage), 0;
  const address = parseAddress(positionals[0], callUsage);
  if (positionals[1] === undefined) throw new CliError("missing the method to call, e.g. video_service.VideoService/ListVideos", 2, "list them with: rill list HOST:PORT SERVICE");
  const { service } = splitMethodName(positionals[1]);
  const options = callOptions(values);
  const emitDefaults = values["emit-defaults"] === true;
  const allowUnknown = values["allow-unknown-fields"] === true;
  if (values.format !== undefined && values.format !== "json") {
    throw new CliError(`--format ${values.format} is not supported; rill prints proto3 JSON (--format json)`, 2);
  }
  return withChannel(io, address, values, async (channel) => {
    const reflectOptions = callOptions(values, "reflect");
    const d = await loadDescriptors(values, channel, { ...reflectOptions, timeoutMs: reflectOptions.timeoutMs ?? 10_000 }, [service]);
    const method = findMethod(d, positionals[1]!);
    const registry: Registry = d.registry;
    const texts = requestTexts(values.data, method, io);

    // A bad request (or stdin error) ends the call; the input's error is reported, not CANCELLED.
    const abort = new AbortController();
    let inputError: unknown;
    let sent = 0;
    let received = 0;
    async function* requests(): AsyncGenerator<Message> {
      let n = 0;
      try {
        for await (const text of texts) {
          const m = parseRequest(method.input, text, ++n, registry, allowUnknown);
          sent++;
          yield m;
        }
      } catch (e) {
        inputError = e;
        abort.abort(e);
      }
    }
    if (io.stdin.isTTY === true && values.data === "@") {
      io.stderr.write(styles(useColour(io.stderr)).dim(`reading ${method.input.typeName} messages as JSON from stdin; Ctrl+D ends the stream\n`));
    }
    const onSigint = () => abort.abort(new RpcError(Code.Canceled, "interrupted (Ctrl+C)"));
    process.once("SIGINT", onSigint);
    const verbose = values.verbose === true;
    if (verbose) {
      const s = styles(useColour(io.stderr));
      io.stderr.write(`${s.dim("Resolved method descriptor:")}\n${method.parent.typeName}/${method.name} (${method.methodKind.replace("_", " ")}; ${method.input.typeName} → ${method.output.typeName})\n\n`);
      printMetadata(io, "Request metadata to send:", parseHeaders([...(values.header ?? []), ...(values["rpc-header"] ?? [])]));
      io.stderr.write("\n");
    }
    const o = {
      ...options,
      signal: abort.signal,
      ...(verbose ? { onHeader: (md: Metadata) => printMetadata(io, "Response headers received:", md), onTrailer: (md: Metadata) => printMetadata(io, "Response trailers received:", md) } : {}),
    };
    const client = createClient(method.parent, channel) as unknown as Record<string, (input: unknown, o: unknown) => AsyncIterable<Message> | Promise<Message>>;
    const fn = client[method.localName]!;
    const print = (m: Message) => {
      received++;
      io.stdout.write(formatResponse(method.output, m, registry, emitDefaults) + "\n");
    };
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
    const counts = () => {
      if (verbose) io.stderr.write(`\n${styles(useColour(io.stderr)).dim(`Sent ${plural(sent, "request")} and received ${plural(received, "response")}`)}\n`);
    };
    try {
      if (method.methodKind === "unary" || method.methodKind === "server_streaming") {
        const all: Message[] = [];
        for await (const m of requests()) all.push(m);
        if (inputError !== undefined) throw inputError;
        if (all.length !== 1) throw new CliError(`${method.parent.typeName}/${method.name} takes exactly one request; got ${all.length}`, 1);
        if (method.methodKind === "unary") print(await (fn(all[0], o) as Promise<Message>));
        else for await (const m of fn(all[0], o) as AsyncIterable<Message>) print(m);
      } else if (method.methodKind === "client_streaming") {
        print(await (fn(requests(), o) as Promise<Message>));
      } else {
        for await (const m of fn(requests(), o) as AsyncIterable<Message>) print(m);
      }
      if (inputError !== undefined) throw inputError;
      counts();
      return 0;
    } catch (e) {
      counts();
      throw inputError ?? e;
    } finally {
      process.off("SIGINT", onSigint);
    }
  });
}
