/**
 * The library's behaviour on domain types: what each Alexandria method does, without any
 * generated message (mapping.ts adapts these to the service). Files move as chunked transfers:
 * lent files are verified against the SHA-256 the lender named, and resume where they stopped.
 */
import { basename } from "node:path";
import { Code, RpcError } from "../../src/index.js";
import { receiveChunks, sendChunks, type TransferChunk, type TransferResult } from "../../src/transfer/index.js";
import { checkHash, type Binding, type EntryAck, type LendOffer, type LibraryEntry } from "./domain.js";
import type { LibraryStore } from "./store.js";

export class Library {
  constructor(readonly store: LibraryStore) {}

  /** The bindings of `agent`; with `watch`, then every new one until `signal` aborts. */
  async *bindings(agent: string, watch: boolean, signal: AbortSignal): AsyncGenerator<Binding> {
    if (agent === "") throw new RpcError(Code.InvalidArgument, "agent_id is required");
    // Subscribe before listing, so a binding made in between is not lost (duplicates are skipped).
    const live = watch ? this.store.watchBindings(agent, signal) : undefined;
    const seen = new Set<string>();
    for (const b of await this.store.bindings(agent)) {
      seen.add(b.id);
      yield b;
    }
    if (live === undefined) return;
    for await (const b of live) if (!seen.has(b.id)) yield b;
  }

  /** Saves one entry of `agent`'s library; a bad entry is refused in its ack, not by failing the stream. */
  async saveEntry(agent: string, entry: LibraryEntry): Promise<EntryAck> {
    const problem = checkHash(entry.hash) ?? (entry.path === "" ? "path is required" : undefined);
    if (problem !== undefined) return { hash: entry.hash, saved: false, error: problem };
    await this.store.saveEntry(agent, entry);
    return { hash: entry.hash, saved: true };
  }

  /** Bytes of file `hash` the library holds: where a lend resumes. */
  async lendStatus(hash: string): Promise<{ offset: number; complete: boolean }> {
    const problem = checkHash(hash);
    if (problem !== undefined) throw new RpcError(Code.InvalidArgument, problem);
    return { offset: await this.store.fileSink(hash).size(), complete: (await this.store.file(hash)) !== undefined };
  }

  /**
   * Receives a lent file and, once it is whole and matches `offer.hash`, records the binding.
   * An interrupted lend keeps what arrived; the lender resumes at `lendStatus().offset`.
   */
  async lend(offer: LendOffer, chunks: AsyncIterable<TransferChunk>): Promise<{ result: TransferResult; binding?: Binding }> {
    const problem =
      checkHash(offer.hash) ??
      (offer.lender === "" || offer.borrower === "" ? "the offer must name the lender and the borrower" : undefined) ??
      (offer.lender === offer.borrower ? "an agent cannot lend a file to itself" : undefined);
    if (problem !== undefined) throw new RpcError(Code.InvalidArgument, problem);
    const result = await receiveChunks(chunks, this.store.fileSink(offer.hash), {
      fromMessage: (c) => c,
      totalSize: offer.size,
      expectedSha256: Buffer.from(offer.hash, "hex"),
    });
    if (!result.complete) return { result };
    const binding = await this.store.addBinding({
      hash: offer.hash,
      // Only the name travels: a borrower never writes outside its own library folder.
      path: basename(offer.path),
      size: offer.size,
      lender: offer.lender,
      borrower: offer.borrower,
    });
    return { result, binding };
  }

  /** The chunks of file `hash` from `offset` on; NOT_FOUND until the library holds it whole. */
  async *fetch(hash: string, offset: number): AsyncGenerator<TransferChunk> {
    const problem = checkHash(hash);
    if (problem !== undefined) throw new RpcError(Code.InvalidArgument, problem);
    const file = await this.store.file(hash);
    if (file === undefined) throw new RpcError(Code.NotFound, `the library does not hold file ${hash}`);
    yield* sendChunks(file, { offset, toMessage: (c) => c });
  }
}
