/**
 * The chunk of a chunked transfer as the helpers see it, independent of any message type.
 * Offsets are plain numbers: exact up to 2^53 bytes (8 PiB), far past any payload we stream.
 */

/** Default chunk size: 64 KiB, one HTTP/2 DATA frame's worth of window at the default settings. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** One piece of a payload, as `sendChunks` produces it and `receiveChunks` expects it. */
export interface TransferChunk {
  /** Position of `data[0]` in the payload. */
  readonly offset: number;
  /** The bytes; empty only in a final chunk closing a payload of unknown length. */
  readonly data: Uint8Array;
  /** Set on the payload's final chunk. */
  readonly last: boolean;
  /** SHA-256 of the whole payload (32 bytes), on the final chunk only. */
  readonly sha256?: Uint8Array | undefined;
  /** Size of the whole payload, when the sender knows it. */
  readonly totalSize?: number | undefined;
  /** CRC32C of `data` (unsigned), checked by the receiver when present. */
  readonly crc32c?: number | undefined;
}

/** What a sender or receiver reports while a payload moves. */
export interface TransferProgress {
  /** Bytes of the payload covered so far, counting a resumed prefix (for a progress bar). */
  readonly bytes: number;
  /** Bytes moved by this call alone (excludes the resumed prefix). */
  readonly transferred: number;
  /** Size of the whole payload, when known. */
  readonly total: number | undefined;
  /** Recent rate of this call, over roughly the last second. */
  readonly bytesPerSecond: number;
  /** True in the one report made after the final chunk. */
  readonly done: boolean;
}
