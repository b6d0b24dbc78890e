/**
 * The thin layer between Alexandria's generated messages and its domain types: uint64 fields
 * become numbers, absent sub-messages become clear INVALID_ARGUMENT errors.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, RpcError } from "../../src/index.js";
import type {
  BindingSchema,
  LendOffer as LendOfferMessage,
  LendOfferSchema,
  LibraryEntry as LibraryEntryMessage,
  LibraryEntryAckSchema,
} from "../../gen/alexandria/alexandria_pb.js";
import type { Binding, EntryAck, LendOffer, LibraryEntry } from "./domain.js";

function toSize(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RpcError(Code.InvalidArgument, `${field} ${v} is too large`);
  return Number(v);
}

export function bindingToMessage(b: Binding): MessageInitShape<typeof BindingSchema> {
  return { ...b, size: BigInt(b.size) };
}

export function bindingFromMessage(m: { id: string; hash: string; path: string; size: bigint; lender: string; borrower: string }): Binding {
  return { id: m.id, hash: m.hash, path: m.path, size: toSize(m.size, "size"), lender: m.lender, borrower: m.borrower };
}

export function entryFromMessage(m: LibraryEntryMessage): LibraryEntry {
  return { hash: m.hash, path: m.path, size: toSize(m.size, "size") };
}

export function entryToMessage(e: LibraryEntry): { hash: string; path: string; size: bigint } {
  return { hash: e.hash, path: e.path, size: BigInt(e.size) };
}

export function ackToMessage(a: EntryAck): MessageInitShape<typeof LibraryEntryAckSchema> {
  return { hash: a.hash, saved: a.saved, error: a.error ?? "" };
}

export function offerFromMessage(m: LendOfferMessage | undefined): LendOffer {
  if (m === undefined) throw new RpcError(Code.InvalidArgument, "the first LendFile message must be the offer");
  return { hash: m.hash, path: m.path, size: toSize(m.size, "size"), lender: m.lender, borrower: m.borrower };
}

export function offerToMessage(o: LendOffer): MessageInitShape<typeof LendOfferSchema> {
  return { ...o, size: BigInt(o.size) };
}
