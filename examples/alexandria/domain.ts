/**
 * Alexandria's domain types: what the library and the agents reason about, free of generated
 * message classes (mapping.ts converts at the edge). Sizes are numbers, hashes lowercase hex.
 */

/** A file in an agent's library. */
export interface LibraryEntry {
  readonly hash: string;
  readonly path: string;
  readonly size: number;
}

/** A lending agreement: the file `hash` should exist on `borrower`. */
export interface Binding {
  readonly id: string;
  readonly hash: string;
  readonly path: string;
  readonly size: number;
  readonly lender: string;
  readonly borrower: string;
}

/** A lender's proposal to lend one file. */
export interface LendOffer {
  readonly hash: string;
  readonly path: string;
  readonly size: number;
  readonly lender: string;
  readonly borrower: string;
}

/** The outcome of saving one library entry. */
export interface EntryAck {
  readonly hash: string;
  readonly saved: boolean;
  readonly error?: string;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** Why `hash` is not a lowercase hex SHA-256, or undefined when it is. */
export function checkHash(hash: string): string | undefined {
  return HEX_SHA256.test(hash) ? undefined : `hash must be 64 lowercase hex digits (a SHA-256), got "${hash.slice(0, 80)}"`;
}
