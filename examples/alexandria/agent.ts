/**
 * An Alexandria agent: what the CLI (client.ts) does, as a library the tests drive directly.
 * It reports its files, lends files to other agents and fetches the files lent to it; both
 * transfers resume after an interruption and are verified by SHA-256.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { Code, RpcError, type Client } from "../../src/index.js";
import { chunkFromProto, chunkToProto, fileSink, receiveChunks, sendChunks, sha256File, withResume, type TransferProgress } from "../../src/transfer/index.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Alexandria, LendFileRequestSchema } from "../../gen/alexandria/alexandria_pb.js";
import type { Binding, EntryAck, LendOffer, LibraryEntry } from "./domain.js";
import { bindingFromMessage, entryToMessage, offerToMessage } from "./mapping.js";
import { AGENT_ID_KEY } from "./server.js";

/** Options of a lend or a fetch. */
export interface TransferOptions {
  onProgress?: (progress: TransferProgress) => void;
  /** Told when an attempt failed and the transfer resumes. */
  onRetry?: (error: unknown) => void;
  signal?: AbortSignal;
}

/** SHA-256 (hex) and size of a file. */
export async function hashFile(path: string): Promise<{ hash: string; size: number }> {
  const { digest, size } = await sha256File(path);
  return { hash: digest.toString("hex"), size };
}

/** The files under `dir` as library entries, hashed one at a time as they are pulled. */
export async function* scanLibrary(dir: string): AsyncGenerator<LibraryEntry> {
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, name);
    if (!(await stat(path)).isFile() || path.endsWith(".part")) continue;
    const { hash, size } = await hashFile(path);
    yield { hash, path: relative(dir, path), size };
  }
}

export class Agent {
  constructor(
    readonly client: Client<typeof Alexandria>,
    readonly id: string,
  ) {}

  /**
   * Reports `entries` to the library. Acks stream back while entries are still being sent;
   * `onAck` sees each one as it arrives.
   */
  async report(entries: AsyncIterable<LibraryEntry>, onAck?: (ack: EntryAck) => void): Promise<EntryAck[]> {
    async function* messages() {
      for await (const e of entries) yield entryToMessage(e);
    }
    const acks: EntryAck[] = [];
    for await (const m of this.client.updateLibraryEntries(messages(), { metadata: { [AGENT_ID_KEY]: this.id } })) {
      const ack: EntryAck = m.saved ? { hash: m.hash, saved: true } : { hash: m.hash, saved: false, error: m.error };
      acks.push(ack);
      onAck?.(ack);
    }
    return acks;
  }

  /** This agent's lending agreements; with `watch`, new ones as they are made (until `signal`). */
  async *bindings(watch = false, signal?: AbortSignal): AsyncGenerator<Binding> {
    for await (const m of this.client.getBindings({ agentId: this.id, watch }, signal ? { signal } : {})) yield bindingFromMessage(m);
  }

  /**
   * Lends the file at `path` to `borrower`: streams it to the library in chunks, resuming at the
   * offset the library holds after an interruption. Resolves with the binding once verified.
   */
  async lend(path: string, borrower: string, options: TransferOptions = {}): Promise<Binding> {
    const { hash, size } = await hashFile(path);
    const offer: LendOffer = { hash, path: basename(path), size, lender: this.id, borrower };
    const response = await withResume(
      async () => {
        const status = await this.client.getLendStatus({ hash }, options.signal ? { signal: options.signal } : {});
        async function* requests(): AsyncGenerator<MessageInitShape<typeof LendFileRequestSchema>> {
          yield { kind: { case: "offer", value: offerToMessage(offer) } };
          yield* sendChunks(path, {
            offset: Number(status.offset),
            toMessage: (c) => ({ kind: { case: "chunk" as const, value: chunkToProto(c) } }),
            ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          });
        }
        return this.client.lendFile(requests(), options.signal ? { signal: options.signal } : {});
      },
      { ...(options.onRetry ? { onRetry: options.onRetry } : {}), ...(options.signal ? { signal: options.signal } : {}) },
    );
    if (response.binding === undefined) throw new RpcError(Code.Internal, `the library took the file but made no binding`);
    return bindingFromMessage(response.binding);
  }

  /**
   * Fetches a file lent to this agent into `dir` (named after the lender's file name), resuming a
   * partial file left by an interrupted fetch. Resolves with the file's path.
   */
  async fetch(binding: Binding, dir: string, options: TransferOptions = {}): Promise<string> {
    const dest = join(dir, basename(binding.path));
    const sink = fileSink(dest);
    await withResume(
      async () => {
        const offset = await sink.size();
        const responses = this.client.fetchFile({ hash: binding.hash, offset: BigInt(offset) }, options.signal ? { signal: options.signal } : {});
        const result = await receiveChunks(responses, sink, {
          fromMessage: chunkFromProto,
          totalSize: binding.size,
          expectedSha256: Buffer.from(binding.hash, "hex"),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        if (!result.complete) throw new RpcError(Code.Unavailable, `the library ended the file at byte ${result.offset} of ${binding.size}`);
      },
      { ...(options.onRetry ? { onRetry: options.onRetry } : {}), ...(options.signal ? { signal: options.signal } : {}) },
    );
    return dest;
  }
}
