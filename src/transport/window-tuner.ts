/**
 * Hooks a `BdpEstimator` to one node:http2 session: applies the connection window at connect,
 * counts the DATA its streams' readers take, sends the probe PINGs, and raises the windows when
 * the estimate grows. Used by server connections and client subchannels alike.
 *
 * What node:http2 allows (Node 20, verified by experiment; see the README's window section):
 * - `session.setLocalWindowSize(n)` sets the connection window (WINDOW_UPDATE on stream 0).
 *   node returns connection-window credit as soon as DATA arrives, even to a stream nobody reads,
 *   so the connection window never bounds memory; only stream windows do.
 * - There is no per-stream `setLocalWindowSize`. A stream's window is raised only through
 *   `session.settings({ initialWindowSize })`: per RFC 7540 §6.9.2 the peer adjusts every open
 *   stream's window by the difference, and nghttp2 does the same on our side once the SETTINGS
 *   is acknowledged. So one SETTINGS grows running streams and sets new streams' windows: the
 *   window is per connection, as in grpc-go.
 * - A stream whose reader pauses stops returning stream-window credit, so a sender can have at
 *   most one stream window in flight to a stalled reader.
 *
 * Probes ride on data: a PING goes out only when a reader took DATA and no probe is
 * outstanding, so an idle or stalled connection sends none, and a server's keepalive
 * enforcement sees pings only right after it sent data (which forgives them).
 */
import type { Http2Session, Http2Stream } from "node:http2";
import { BdpEstimator } from "./bdp-estimator.js";
import type { ResolvedWindowOptions } from "./window-options.js";

/**
 * Bytes the socket must read after a probe's ack before the next probe: more than the control
 * frames that may follow an ack (SETTINGS ack 9, PING 17, WINDOW_UPDATE 13), so only DATA counts.
 */
const freshDataBytes = 64;

/** A read-only view of a tuner's state; for tests and metrics. */
export interface WindowStats {
  /** The stream window this side advertises now (SETTINGS_INITIAL_WINDOW_SIZE once acknowledged). */
  readonly streamWindowBytes: number;
  /** The connection window this side set. */
  readonly connectionWindowBytes: number;
  /** Probe PINGs sent so far. */
  readonly probes: number;
  /** Times the windows grew. */
  readonly raises: number;
  /** The smoothed probe round-trip time in ms; 0 before the first ack. */
  readonly rttMs: number;
}

/** The receive-window manager of one HTTP/2 session. */
export class WindowTuner implements WindowStats {
  private readonly estimator: BdpEstimator | undefined;
  private stream: number;
  private connection: number;
  private probeCount = 0;
  private raiseCount = 0;
  private closed = false;
  /** The socket's read count when the last probe ended; a new probe waits for DATA read after it. */
  private readAtLastAck = -1;
  private readonly onData = (chunk: Buffer): void => this.taken(chunk.byteLength);

  /**
   * `session` must already advertise `options.initialStreamWindowBytes` in its initial SETTINGS
   * (see `windowSettings`). Call `start()` once the session is connected.
   */
  constructor(
    private readonly session: Http2Session,
    private readonly options: ResolvedWindowOptions,
    now?: () => number,
  ) {
    this.stream = options.initialStreamWindowBytes;
    this.connection = 0;
    if (options.bdpProbe && options.maxWindowBytes > options.initialStreamWindowBytes) {
      this.estimator = new BdpEstimator({
        initialWindow: options.initialStreamWindowBytes,
        maxWindow: options.maxWindowBytes,
        ...(now === undefined ? {} : { now }),
      });
    }
    session.once("close", () => (this.closed = true));
  }

  get streamWindowBytes(): number {
    return this.stream;
  }

  get connectionWindowBytes(): number {
    return this.connection;
  }

  get probes(): number {
    return this.probeCount;
  }

  get raises(): number {
    return this.raiseCount;
  }

  get rttMs(): number {
    return this.estimator?.rttMs ?? 0;
  }

  /** Sets the connection window; call when the session is connected (a server session is at once). */
  start(): void {
    this.setConnectionWindow(Math.max(this.options.connectionWindowBytes, this.stream));
  }

  /**
   * Counts the DATA `stream`'s reader takes. The listener only observes: a stream that already
   * has a 'data' listener is in flowing mode, so adding one changes nothing about its pacing.
   * Call it after the reader attached its own listener.
   */
  watch(stream: Http2Stream): void {
    if (this.estimator === undefined) return;
    stream.on("data", this.onData);
  }

  private taken(bytes: number): void {
    const estimator = this.estimator;
    if (estimator === undefined || this.closed) return;
    // Consumed bytes may have arrived long ago (a reader catching up on its buffer). Probe only
    // when the peer sent something since the last probe ended, so that every PING follows fresh
    // DATA: servers forgive pings that follow data they sent (gRPC keepalive enforcement) and
    // count the others as strikes.
    if (!estimator.probeOutstanding && this.bytesRead() <= this.readAtLastAck + freshDataBytes) return;
    if (!estimator.onData(bytes)) return;
    let sent = false;
    try {
      sent = this.session.ping((err) => {
        if (err !== null) return estimator.probeFailed();
        this.readAtLastAck = this.bytesRead();
        const raised = estimator.probeAcked();
        if (raised !== undefined) this.raise(raised);
      });
    } catch {
      // The session is closing.
    }
    if (sent) {
      estimator.probeSent();
      this.probeCount++;
    } else {
      estimator.probeFailed();
    }
  }

  private bytesRead(): number {
    return this.session.socket?.bytesRead ?? 0;
  }

  private raise(window: number): void {
    if (this.closed || this.session.destroyed || this.session.closed) return;
    try {
      // Raise the connection window first, so the streams' new credit is never held back by it.
      this.setConnectionWindow(Math.max(this.connection, window));
      this.session.settings({ initialWindowSize: window });
      this.stream = window;
      this.raiseCount++;
    } catch {
      // Too many SETTINGS unacknowledged, or the session is going away: keep the old window.
    }
  }

  private setConnectionWindow(bytes: number): void {
    if (bytes <= this.connection || this.session.destroyed) return;
    try {
      this.session.setLocalWindowSize(bytes);
      this.connection = bytes;
    } catch {
      // Not connected yet or already closing: the window stays where it is.
    }
  }
}
