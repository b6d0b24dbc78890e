/**
 * The descriptors a server can describe: every file defining one of its services, plus the
 * files those import, transitively, indexed by file name and by fully qualified symbol.
 *
 * Invariants: a file name maps to exactly one file (the first one seen wins, as a second
 * descriptor with the same name would be the same generated file loaded twice); a symbol maps
 * to the file that declares it; `closure(file)` lists the file first, then its imports in
 * depth-first order, each once, so a client can build its pool in the order given.
 */
import { toBinary, type DescEnum, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** A lookup table over the files of a set of services. */
export interface DescriptorIndex {
  /** File by its name with the `.proto` suffix, e.g. "grpc/health/v1/health.proto". */
  file(name: string): DescFile | undefined;
  /**
   * The file declaring a fully qualified symbol: a service, method, message, field, enum, enum
   * value, oneof or extension name.
   */
  fileContainingSymbol(symbol: string): DescFile | undefined;
  /** The file declaring the extension `number` of message `extendee`. */
  fileContainingExtension(extendee: string, number: number): DescFile | undefined;
  /** The extension numbers declared for message `extendee`, or undefined if the message is unknown. */
  extensionNumbers(extendee: string): number[] | undefined;
  /** `file`, then every file it imports transitively, each once. */
  closure(file: DescFile): DescFile[];
}

/** The FileDescriptorProto of `file` in binary form, as reflection sends it. */
export function fileDescriptorBytes(file: DescFile): Uint8Array {
  return toBinary(FileDescriptorProtoSchema, file.proto);
}

/** The `.proto` file name of a DescFile (protobuf-es keeps it without the suffix). */
export function protoFileName(file: DescFile): string {
  return file.proto.name;
}

/** Builds the index for the files of `services` and everything they import. */
export function createDescriptorIndex(services: Iterable<DescService>): DescriptorIndex {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const messages = new Map<string, DescMessage>();
  const extensions: DescExtension[] = [];

  const addEnum = (e: DescEnum, file: DescFile) => {
    symbols.set(e.typeName, file);
    // Enum values are scoped like siblings of their enum, in the enclosing scope.
    const scope = e.typeName.includes(".") ? e.typeName.slice(0, e.typeName.lastIndexOf(".") + 1) : "";
    for (const v of e.values) if (!symbols.has(scope + v.name)) symbols.set(scope + v.name, file);
  };
  const addMessage = (m: DescMessage, file: DescFile) => {
    symbols.set(m.typeName, file);
    messages.set(m.typeName, m);
    for (const f of m.fields) symbols.set(`${m.typeName}.${f.name}`, file);
    for (const o of m.oneofs) symbols.set(`${m.typeName}.${o.name}`, file);
    for (const n of m.nestedMessages) addMessage(n, file);
    for (const e of m.nestedEnums) addEnum(e, file);
    for (const x of m.nestedExtensions) addExtension(x, file);
  };
  const addExtension = (x: DescExtension, file: DescFile) => {
    symbols.set(x.typeName, file);
    extensions.push(x);
  };
  const addFile = (file: DescFile) => {
    const name = protoFileName(file);
    if (files.has(name)) return;
    files.set(name, file);
    for (const dep of file.dependencies) addFile(dep);
    for (const m of file.messages) addMessage(m, file);
    for (const e of file.enums) addEnum(e, file);
    for (const x of file.extensions) addExtension(x, file);
    for (const s of file.services) {
      symbols.set(s.typeName, file);
      for (const m of s.methods) symbols.set(`${s.typeName}.${m.name}`, file);
    }
  };
  for (const s of services) addFile(s.file);

  return {
    file: (name) => files.get(name),
    fileContainingSymbol: (symbol) => symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol),
    fileContainingExtension(extendee, number) {
      const x = extensions.find((e) => e.extendee.typeName === extendee && e.number === number);
      return x === undefined ? undefined : symbols.get(x.typeName);
    },
    extensionNumbers(extendee) {
      if (!messages.has(extendee)) return undefined;
      return extensions.filter((e) => e.extendee.typeName === extendee).map((e) => e.number);
    },
    closure(file) {
      const out: DescFile[] = [];
      const seen = new Set<string>();
      const visit = (f: DescFile) => {
        if (seen.has(protoFileName(f))) return;
        seen.add(protoFileName(f));
        out.push(f);
        for (const d of f.dependencies) visit(d);
      };
      visit(file);
      return out;
    },
  };
}
