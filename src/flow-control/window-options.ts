/**
 * HTTP/2 flow-control window options, shared by `createServer` and `createChannel`, with their
 * defaults and validation. Pure.
 *
 * Each receiving side sets its own windows: the server's windows bound what clients may send it
 * (requests), a channel's windows bound what servers may send it (responses).
 *
 * | Rill option                | gRPC Core channel arg                                   | grpc-go option          |
 * |----------------------------|---------------------------------------------------------|-------------------------|
 * | `initialStreamWindowBytes` | `GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES` (grpc.http2.lookahead_bytes) | `InitialWindowSize`     |
 * | `connectionWindowBytes`    | (none; Core sizes it itself)                            | `InitialConnWindowSize` |
 * | `maxFrameSize`             | `GRPC_ARG_HTTP2_MAX_FRAME_SIZE` (grpc.http2.max_frame_size) | (`MaxHeaderListSize` is unrelated; none) |
 * | `bdpProbe`                 | `GRPC_ARG_HTTP2_BDP_PROBE` (grpc.http2.bdp_probe)        | on unless a window is set |
 * | `maxWindowBytes`           | (none; Core bounds it by its memory quota)              | the 16 MiB `bdpLimit` constant |
 *
 * Unlike grpc-go, setting a window here does not turn BDP probing off: the window set is where
 * probing starts, and `maxWindowBytes` is where it stops.
 */

/** HTTP/2's own initial window (RFC 7540 §6.9.2): 2^16 − 1. */
export const http2DefaultWindow = 65_535;
/** The largest window HTTP/2 allows: 2^31 − 1. */
export const http2MaxWindow = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE bounds (RFC 7540 §6.5.2). */
export const http2MinFrameSize = 16_384;
export const http2MaxFrameSize = 16_777_215;

/** Flow-control window options of one receiving side (server or channel). Every field has a documented default. */
export interface WindowOptions {
  /**
   * The receive window each new stream starts with (SETTINGS_INITIAL_WINDOW_SIZE), in bytes:
   * what a peer may send on one stream before this side reads. Core's
   * `GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES`. Default 1 MiB.
   */
  initialStreamWindowBytes?: number;
  /**
   * The connection-level receive window, in bytes (sent as a WINDOW_UPDATE on stream 0 at
   * connect). node:http2 returns connection-window credit as soon as DATA arrives, whatever the
   * streams' readers do, so this limits throughput across streams but never memory. Raised to
   * at least the stream window whenever that grows. grpc-go's `InitialConnWindowSize`. Default 16 MiB.
   */
  connectionWindowBytes?: number;
  /**
   * SETTINGS_MAX_FRAME_SIZE, the largest DATA frame payload the peer may send, 16 KiB … 16 MiB − 1.
   * Core's `GRPC_ARG_HTTP2_MAX_FRAME_SIZE`. Default 16 KiB (HTTP/2's; node:http2 senders split
   * DATA at 16 KiB whatever the peer allows, so larger values gain nothing between node peers).
   */
  maxFrameSize?: number;
  /**
   * Bandwidth-delay-product probing: PINGs ride on received DATA and the stream and connection
   * windows grow while the reader keeps up with a window-limited sender, up to `maxWindowBytes`.
   * Core's `GRPC_ARG_HTTP2_BDP_PROBE`. Default true.
   */
  bdpProbe?: boolean;
  /**
   * The largest stream window BDP probing may grow to, in bytes: with `sendHighWaterMark`, the
   * bound of what one stalled stream can cost (see the README's flow-control section).
   * Default 4 MiB, or `initialStreamWindowBytes` when that is larger.
   */
  maxWindowBytes?: number;
}

/** Window options with every default filled in. */
export interface ResolvedWindowOptions {
  readonly initialStreamWindowBytes: number;
  readonly connectionWindowBytes: number;
  readonly maxFrameSize: number;
  readonly bdpProbe: boolean;
  readonly maxWindowBytes: number;
}

/** The defaults, chosen by measurement (see the README's window section). */
export const windowDefaults: ResolvedWindowOptions = Object.freeze({
  initialStreamWindowBytes: http2DefaultWindow,
  connectionWindowBytes: 16 * 1024 * 1024,
  maxFrameSize: http2MinFrameSize,
  bdpProbe: true,
  maxWindowBytes: 4 * 1024 * 1024,
});

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** Fills in defaults and validates; throws a RangeError naming the bad option. */
export function resolveWindowOptions(options: WindowOptions): ResolvedWindowOptions {
  const initial = checkInt("initialStreamWindowBytes", options.initialStreamWindowBytes ?? windowDefaults.initialStreamWindowBytes, 1, http2MaxWindow);
  const connection = checkInt("connectionWindowBytes", options.connectionWindowBytes ?? windowDefaults.connectionWindowBytes, http2DefaultWindow, http2MaxWindow);
  const frame = checkInt("maxFrameSize", options.maxFrameSize ?? windowDefaults.maxFrameSize, http2MinFrameSize, http2MaxFrameSize);
  const max =
    options.maxWindowBytes === undefined
      ? Math.max(windowDefaults.maxWindowBytes, initial)
      : checkInt("maxWindowBytes", options.maxWindowBytes, 1, http2MaxWindow);
  if (max < initial) throw new RangeError(`maxWindowBytes (${max}) must not be below initialStreamWindowBytes (${initial})`);
  return Object.freeze({
    initialStreamWindowBytes: initial,
    connectionWindowBytes: connection,
    maxFrameSize: frame,
    bdpProbe: options.bdpProbe ?? windowDefaults.bdpProbe,
    maxWindowBytes: max,
  });
}

/** The SETTINGS a side advertises at connect for these options (node:http2 `settings`). */
export function windowSettings(w: ResolvedWindowOptions): { initialWindowSize: number; maxFrameSize: number } {
  return { initialWindowSize: w.initialStreamWindowBytes, maxFrameSize: w.maxFrameSize };
}
