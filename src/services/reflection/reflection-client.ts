/**
 * A client of gRPC server reflection that turns what a server says about itself into a
 * protobuf-es `FileRegistry`: the dynamic descriptors the CLI calls and prints with.
 *
 * It asks v1 first and falls back to v1alpha when the server answers UNIMPLEMENTED (older
 * servers, grpcio). All questions of one client go over one bidi stream, one at a time.
 * Invariants: `close()` ends the stream; a server error response becomes an RpcError with its
 * code; a missing import is fetched by file name, so the registry is always complete.
 */
import { create, createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { ServerReflection as V1 } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as V1Alpha } from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { Channel } from "../../channel/channel.js";
import type { CallOptions } from "../../client/call-options.js";
import { createClient } from "../../client/client.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import { createPushable, type Pushable } from "../../stream/pushable.js";

type Question =
  | { case: "listServices"; value: string }
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string };

interface AnswerShape {
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "allExtensionNumbersResponse"; value: { extensionNumber: number[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
    | { case: undefined; value?: undefined };
}

/** Asks a server about its services through reflection. */
export interface ReflectionClient {
  /** Fully qualified names of the services the server exposes. */
  listServices(): Promise<string[]>;
  /** The file declaring `symbol` and every file it imports. NOT_FOUND if the server does not know it. */
  fileContainingSymbol(symbol: string): Promise<FileDescriptorProto[]>;
  /** The file called `name` and every file it imports. */
  fileByFilename(name: string): Promise<FileDescriptorProto[]>;
  /** Extension numbers the server knows for message `typeName`. */
  extensionNumbers(typeName: string): Promise<number[]>;
  /**
   * A registry of every file needed to describe and call the given services (default: every
   * service the server lists).
   */
  registry(services?: readonly string[]): Promise<FileRegistry>;
  /** Which protocol version answered: "v1" or "v1alpha" (undefined before the first answer). */
  readonly version: "v1" | "v1alpha" | undefined;
  /** Ends the reflection stream. */
  close(): void;
}

/** One open reflection stream, of either version. */
class Session {
  readonly requests: Pushable<unknown> = createPushable({ highWaterMark: 4 });
  readonly responses: AsyncIterator<AnswerShape>;
  private readonly abort = new AbortController();

  constructor(channel: Channel, v1alpha: boolean, options: CallOptions) {
    const call = { ...options, signal: options.signal === undefined ? this.abort.signal : AbortSignal.any([options.signal, this.abort.signal]) };
    const it = v1alpha
      ? createClient(V1Alpha, channel).serverReflectionInfo(this.requests as AsyncIterable<never>, call)
      : createClient(V1, channel).serverReflectionInfo(this.requests as AsyncIterable<never>, call);
    this.responses = (it as AsyncIterable<AnswerShape>)[Symbol.asyncIterator]();
  }

  async ask(q: Question): Promise<AnswerShape> {
    await this.requests.push({ host: "", messageRequest: q });
    const r = await this.responses.next();
    if (r.done) throw new RpcError(Code.Internal, "the reflection stream ended without an answer");
    return r.value;
  }

  /** Half-closes, so the server ends the stream with OK; cancels if it has not within a second. */
  close(): void {
    this.requests.end();
    const timer = setTimeout(() => this.abort.abort(), 1000);
    timer.unref();
    void this.responses
      .next()
      .catch(() => {})
      .finally(() => clearTimeout(timer));
  }
}

/** Creates a reflection client on `channel`. `options` (metadata, timeout) apply to its stream. */
export function createReflectionClient(channel: Channel, options: CallOptions = {}): ReflectionClient {
  let session: Session | undefined;
  let version: "v1" | "v1alpha" | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const askOnce = async (q: Question): Promise<AnswerShape> => {
    if (session === undefined) {
      session = new Session(channel, false, options);
      try {
        const a = await session.ask(q);
        version = "v1";
        return a;
      } catch (e) {
        session.close();
        session = undefined;
        if (!(e instanceof RpcError) || e.code !== Code.Unimplemented) throw e;
        session = new Session(channel, true, options);
        try {
          const a = await session.ask(q);
          version = "v1alpha";
          return a;
        } catch (e2) {
          session.close();
          session = undefined;
          if (e2 instanceof RpcError && e2.code === Code.Unimplemented) {
            throw new RpcError(Code.Unimplemented, "the server does not support reflection (grpc.reflection.v1 and v1alpha are both UNIMPLEMENTED)");
          }
          throw e2;
        }
      }
    }
    return session.ask(q);
  };
  // Questions go one at a time: answers on a reflection stream come back in request order.
  const ask = (q: Question): Promise<AnswerShape> => {
    const next = queue.then(() => askOnce(q));
    queue = next.catch(() => {});
    return next;
  };
  const answer = async <C extends NonNullable<AnswerShape["messageResponse"]["case"]>>(q: Question, want: C) => {
    const r = (await ask(q)).messageResponse;
    if (r.case === "errorResponse") throw new RpcError(r.value.errorCode as Code, r.value.errorMessage);
    if (r.case !== want) throw new RpcError(Code.Internal, `reflection answered ${String(r.case)} to ${q.case}`);
    return r.value as Extract<AnswerShape["messageResponse"], { case: C }>["value"];
  };
  const files = async (q: Question) =>
    (await answer(q, "fileDescriptorResponse")).fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));

  const client: ReflectionClient = {
    get version() {
      return version;
    },
    async listServices() {
      return (await answer({ case: "listServices", value: "*" }, "listServicesResponse")).service.map((s) => s.name);
    },
    fileContainingSymbol: (symbol) => files({ case: "fileContainingSymbol", value: symbol }),
    fileByFilename: (name) => files({ case: "fileByFilename", value: name }),
    async extensionNumbers(typeName) {
      return (await answer({ case: "allExtensionNumbersOfType", value: typeName }, "allExtensionNumbersResponse")).extensionNumber;
    },
    async registry(services) {
      const names = services ?? (await client.listServices());
      const byName = new Map<string, FileDescriptorProto>();
      for (const s of names) {
        if ([...byName.values()].some((f) => declaresService(f, s))) continue;
        for (const f of await client.fileContainingSymbol(s)) if (!byName.has(f.name)) byName.set(f.name, f);
      }
      // Servers that send only the file asked for (grpc-go after the first answer) leave imports to fetch.
      for (let missing = missingImports(byName); missing.length > 0; missing = missingImports(byName)) {
        for (const name of missing) for (const f of await client.fileByFilename(name)) if (!byName.has(f.name)) byName.set(f.name, f);
      }
      return createFileRegistry(create(FileDescriptorSetSchema, { file: sortByImports([...byName.values()]) }));
    },
    close() {
      session?.close();
      session = undefined;
    },
  };
  return client;
}

/**
 * Orders files so that each comes after the files it imports, as `createFileRegistry` needs
 * (reflection sends the asked file first). Imports missing from `files` are left for the
 * registry to report by name; an import cycle (invalid protobuf) keeps the input order.
 */
export function sortByImports(files: readonly FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (f: FileDescriptorProto) => {
    if (state.has(f.name)) return;
    state.set(f.name, "visiting");
    for (const d of f.dependency) {
      const dep = byName.get(d);
      if (dep !== undefined) visit(dep);
    }
    state.set(f.name, "done");
    out.push(f);
  };
  for (const f of files) visit(f);
  return out;
}

function declaresService(file: FileDescriptorProto, service: string): boolean {
  const prefix = file.package === "" ? "" : `${file.package}.`;
  return file.service.some((s) => prefix + s.name === service);
}

function missingImports(files: Map<string, FileDescriptorProto>): string[] {
  const out = new Set<string>();
  for (const f of files.values()) for (const d of f.dependency) if (!files.has(d)) out.add(d);
  return [...out];
}
