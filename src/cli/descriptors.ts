/**
 * Where the CLI's descriptors come from: server reflection by default, or a FileDescriptorSet
 * (`--protoset`), or .proto files compiled on the spot (`--proto`, with buf or protoc when one
 * is installed). Lookups of services and methods fail with the list of what does exist.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { create, createFileRegistry, fromBinary, type DescMethod, type DescService, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Channel } from "../channel/channel.js";
import type { CallOptions } from "../client/call-options.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { createReflectionClient, sortByImports } from "../services/reflection/reflection-client.js";
import { CliError } from "./output.js";

/** Descriptor flags. */
export interface DescriptorFlags {
  proto?: string[] | undefined;
  "import-path"?: string[] | undefined;
  protoset?: string[] | undefined;
}

/** The descriptors a command works with, and the services they define. */
export interface Descriptors {
  readonly registry: FileRegistry;
  /** Service names: what the server lists (reflection) or what the files define. */
  readonly services: readonly string[];
  readonly source: "reflection" | "protoset" | "proto";
}

function fromFiles(files: FileDescriptorProto[], source: "protoset" | "proto"): Descriptors {
  const byName = new Map<string, FileDescriptorProto>();
  for (const f of files) if (!byName.has(f.name)) byName.set(f.name, f);
  let registry: FileRegistry;
  try {
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: sortByImports([...byName.values()]) }));
  } catch (e) {
    throw new CliError(`the descriptors are incomplete: ${(e as Error).message}`, 1, "build the set with its imports: buf build -o F.binpb, or protoc --include_imports -o F");
  }
  const services: string[] = [];
  for (const t of registry) if (t.kind === "service") services.push(t.typeName);
  return { registry, services, source };
}

function readProtoset(file: string): FileDescriptorProto[] {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new CliError(`--protoset ${file}: ${(e as Error).message}`);
  }
  try {
    return fromBinary(FileDescriptorSetSchema, bytes).file;
  } catch (e) {
    throw new CliError(`--protoset ${file} is not a FileDescriptorSet (${(e as Error).message})`, 1, "make one with: buf build -o F.binpb, or protoc --include_imports -o F FILE.proto");
  }
}

/** The buf binary: this package's devDependency, else one on PATH. */
function findBuf(): string | undefined {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  const local = join(root, "node_modules", ".bin", "buf");
  if (existsSync(local)) return local;
  return spawnSync("sh", ["-c", "command -v buf"], { encoding: "utf8" }).stdout.trim() || undefined;
}

/**
 * Where each `--proto` file is, as grpcurl resolves it: with import paths, a name is looked up
 * under each `-I` directory in turn (or, if it names an existing file, that file must lie under
 * one of them); without, its own directory is the root. The result names each file relative
 * to its root, which is the name imports and reflection use.
 */
export function resolveProtos(protos: readonly string[], importPaths: readonly string[]): { root: string; name: string }[] {
  return protos.map((p) => {
    if (importPaths.length === 0) {
      if (!existsSync(p)) throw new CliError(`--proto ${p}: no such file`);
      return { root: dirname(resolve(p)), name: basename(p) };
    }
    for (const dir of importPaths) {
      if (!isAbsolute(p) && existsSync(join(dir, p))) return { root: resolve(dir), name: p.split(sep).join("/") };
    }
    if (existsSync(p)) {
      const abs = resolve(p);
      for (const dir of importPaths) {
        const rel = relative(resolve(dir), abs);
        if (rel !== "" && !rel.startsWith("..") && !isAbsolute(rel)) return { root: resolve(dir), name: rel.split(sep).join("/") };
      }
      throw new CliError(
        `--proto ${p} is not under any import path (${importPaths.map((d) => `-I ${d}`).join(", ")})`,
        2,
        `add -I for the directory its imports are relative to, e.g. -I ${dirname(p)}, or name it relative to an import path`,
      );
    }
    throw new CliError(`--proto ${p}: not found under ${importPaths.map((d) => `-I ${d}`).join(", ")} (nor as a path from here)`, 2);
  });
}

/** Compiles .proto files into a FileDescriptorSet with buf, or protoc when buf is missing. */
function compileProtos(protos: string[], importPaths: string[]): FileDescriptorProto[] {
  const resolved = resolveProtos(protos, importPaths);
  const dir = mkdtempSync(join(tmpdir(), "rill-proto-"));
  const out = join(dir, "set.binpb");
  try {
    const buf = findBuf();
    if (buf !== undefined) {
      // One buf build per root, run in the root with a config of its own: a buf.yaml further
      // up (a workspace) would otherwise refuse a directory inside one of its modules.
      const files: FileDescriptorProto[] = [];
      for (const root of new Set(resolved.map((r) => r.root))) {
        const names = resolved.filter((r) => r.root === root).map((r) => r.name);
        const args = ["build", ".", "--config", '{"version":"v2"}', "-o", out, ...names.flatMap((n) => ["--path", n])];
        const r = spawnSync(buf, args, { encoding: "utf8", cwd: root });
        if (r.status !== 0) throw new CliError(`buf could not compile ${names.join(", ")} (import path ${root}):\n${explainBuf(r.stderr.trim())}`);
        files.push(...readProtoset(out));
      }
      return files;
    }
    const protoc = spawnSync("sh", ["-c", "command -v protoc"], { encoding: "utf8" }).stdout.trim();
    if (protoc === "") {
      throw new CliError(
        "--proto needs a protobuf compiler, and neither buf nor protoc is installed",
        1,
        "install buf (npm i -D @bufbuild/buf) or protoc, or pass --protoset FILE made elsewhere with `buf build -o FILE`",
      );
    }
    const roots = [...new Set(resolved.map((r) => r.root))];
    try {
      execFileSync(protoc, ["--include_imports", `--descriptor_set_out=${out}`, ...roots.map((r) => `-I${r}`), ...resolved.map((r) => r.name)], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      throw new CliError(`protoc could not compile ${protos.join(", ")}:\n${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
    }
    return readProtoset(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** buf's messages about imports and workspaces, with what to do added. */
function explainBuf(stderr: string): string {
  if (/does not exist|not found/i.test(stderr) && /import/i.test(stderr)) {
    return `${stderr}\n(an import is resolved against the import path: pass -I DIR for the directory the import is relative to)`;
  }
  if (/workspace|module at path|contained by module/i.test(stderr)) {
    return `${stderr}\n(pass -I with the directory that holds your buf.yaml module, and --proto relative to it)`;
  }
  return stderr;
}

/**
 * Loads descriptors as the flags say. With reflection, `only` restricts what is fetched to the
 * files of those services (the list of services is always fetched, for error messages).
 */
export async function loadDescriptors(flags: DescriptorFlags, channel: Channel, options: CallOptions, only?: readonly string[]): Promise<Descriptors> {
  if ((flags.protoset?.length ?? 0) > 0 || (flags.proto?.length ?? 0) > 0) {
    const files = [...(flags.protoset ?? []).flatMap(readProtoset)];
    if ((flags.proto?.length ?? 0) > 0) files.push(...compileProtos(flags.proto!, flags["import-path"] ?? []));
    return fromFiles(files, (flags.proto?.length ?? 0) > 0 ? "proto" : "protoset");
  }
  const client = createReflectionClient(channel, options);
  try {
    const services = await client.listServices();
    const wanted = only?.filter((s) => services.includes(s));
    const registry = await client.registry(wanted ?? services);
    return { registry, services, source: "reflection" };
  } catch (e) {
    if (e instanceof RpcError && e.code === Code.Unimplemented) {
      throw new CliError(`${e.rawMessage}`, 64 + Code.Unimplemented, "pass the service's descriptors with --protoset FILE or --proto FILE");
    }
    throw e;
  } finally {
    client.close();
  }
}

/** The service called `name`, or an error listing the services there are. */
export function findService(d: Descriptors, name: string): DescService {
  const s = d.registry.getService(name);
  if (s !== undefined) return s;
  const where = d.source === "reflection" ? "the server" : "the descriptors";
  throw new CliError(`unknown service "${name}"; ${where} ${d.services.length === 0 ? "has none" : `has: ${d.services.join(", ")}`}`);
}

/** Parses "pkg.Service/Method" (or "pkg.Service.Method") into its two parts. */
export function splitMethodName(text: string): { service: string; method: string } {
  const slash = text.replace(/^\//, "").lastIndexOf("/");
  const clean = text.replace(/^\//, "");
  const i = slash >= 0 ? slash : clean.lastIndexOf(".");
  if (i <= 0 || i === clean.length - 1) throw new CliError(`"${text}" is not a method name; write package.Service/Method`, 2);
  return { service: clean.slice(0, i), method: clean.slice(i + 1) };
}

/** The method `text` names, or an error listing what exists. */
export function findMethod(d: Descriptors, text: string): DescMethod {
  const { service, method } = splitMethodName(text);
  const s = findService(d, service);
  const m = s.methods.find((x) => x.name === method) ?? s.methods.find((x) => x.name.toLowerCase() === method.toLowerCase());
  if (m === undefined) throw new CliError(`unknown method "${method}" in ${s.typeName}; it has: ${s.methods.map((x) => x.name).join(", ")}`);
  return m;
}
