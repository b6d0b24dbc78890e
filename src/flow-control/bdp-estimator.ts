/**
 * Bandwidth-delay-product estimation for HTTP/2 receive windows. Pure: no I/O, no timers; time
 * comes from an injectable clock, so it is tested with a fake one.
 *
 * The idea is grpc-go's and gRPC Core's (`bdp_estimator`): the receiver of DATA sends a PING
 * with the first DATA after the previous probe ended, and counts the bytes received until the
 * PING's ack comes back. That count (the sample) is what the sender could put in flight during
 * one round trip. What counts as received, and how long a sample lasts, is the caller's choice
 * (`WindowTuner`: started by a reader taking DATA, at least 5 ms, socket bytes or bytes taken). When a sample fills most of the current window (≥ `beta` of
 * it) and the bandwidth it shows (sample ÷ its round trip) is at least the best of the last few
 * samples, the window was the limit: it grows to `gamma` × sample, never past the cap.
 *
 * "Best of the last few" rather than grpc-go's best ever: on a loopback or a busy host the ack
 * of a PING can come back unusually fast once, and a best-ever bandwidth from that outlier would
 * hold the window where it is for the rest of the connection (seen: stuck at 384 KiB). A
 * windowed maximum lets such an outlier age out after `bandwidthWindow` samples.
 *
 * Beyond `freeWindow` (1 MiB) the window must also be justified by the path, not by a queue
 * (BBR's insight: bandwidth × the smallest round trip is the pipe; anything past it only waits in
 * buffers). A receiver that cannot keep up with the sender (a busy event loop, a loopback
 * connection) sees every sample "fill" the window, however large, because the PING's ack waits
 * behind the queued DATA: the round trip grows with the window and the bandwidth stays flat. Each
 * raise then only lengthens the queue, and a small message on the same connection waits behind
 * it (measured on loopback at ~450 MB/s: ping-pong p99 beside a bulk stream 19–24 ms with 4 MiB
 * windows, 7–9 ms at 1 MiB). So past `freeWindow` the window grows to at most `pathGain` ×
 * bandwidth × the smallest ack round trip seen, BBR's bound on data in flight: a window-limited
 * path (bandwidth = window ÷ round trip, no queue, so round trip ≈ the smallest) still doubles,
 * and one whose round trips have grown, a queue, grows by less or stops. The bandwidth here is the
 * upper median of the recent samples, not their best: a sample that read a backlog at once shows
 * a burst the path does not sustain (seen: 1.1 GB/s samples on a 500 MB/s stream, which with the
 * best let windows reach 3.5 MB in three runs of five); the price is that a ramp past 2 MiB raises
 * on every second sample. The smallest round trip is the ack's own
 * (`ackArrived`), not the sample's, which a caller may stretch (`WindowTuner` samples for at
 * least 5 ms).
 *
 * Probes start only when a reader takes data, so a reader that stops taking data produces no
 * samples and a stalled reader never grows the window it is not using. The window never shrinks; it is only ever
 * raised, so the receiver's promise to a sender is never taken back (RFC 7540 §6.9.2 allows a
 * smaller SETTINGS_INITIAL_WINDOW_SIZE, but a sender would then sit on negative windows).
 *
 * Probes back off while the window is not what limits the stream, as Core's do: after two
 * samples in a row that neither grew the window nor filled it, the next probe waits 100 ms, then
 * twice as long after each further one, up to 10 s; a sample that fills or grows the window
 * makes the next probe immediate again. So a long-lived stream of small messages costs a
 * PING every 10 s at most, not one per message.
 *
 * Invariants: `window` starts at `initialWindow`, only increases, and is ≤ `maxWindow`; at most
 * one probe is outstanding; with `maxWindow <= initialWindow` no probe is ever requested.
 */

/** A sample must fill at least this share of the window to count as window-limited (grpc-go's beta). */
const beta = 2 / 3;
/** The window grows to this multiple of a window-limited sample (grpc-go's gamma). */
const gamma = 2;
/** Weight of a new RTT measurement in the smoothed RTT, once `rttWarmupSamples` have been averaged. */
const rttWeight = 0.25;
/** The first RTT measurements are averaged plainly, so one early outlier does not dominate. */
const rttWarmupSamples = 4;
/** How many recent samples the best bandwidth is taken over. */
const bandwidthWindow = 4;
/** The first wait between probes once a sample did not grow the window (ms); doubles up to `maxProbeDelayMs`. */
const firstProbeDelayMs = 100;
const maxProbeDelayMs = 10_000;
/** Below this an RTT reads as this (ms): a loopback ack can come back within the clock's resolution. */
const minRttMs = 0.01;
/** Windows up to this grow on a full sample alone; past it the path must justify them (see above). */
const freeWindow = 1024 * 1024;
/** Past `freeWindow`, a window holds at most this many smallest round trips of data at the recent bandwidth (BBR's cwnd gain). */
const pathGain = 2;

/** Options of a `BdpEstimator`. */
export interface BdpEstimatorOptions {
  /** The window the connection starts with, in bytes (the stream window advertised at connect). */
  readonly initialWindow: number;
  /** The window is never raised past this, in bytes. */
  readonly maxWindow: number;
  /** Milliseconds, monotonic. Default `performance.now`. */
  readonly now?: () => number;
}

/** One connection's estimate of its bandwidth-delay product, and so of the receive window it needs. */
export class BdpEstimator {
  private current: number;
  private readonly cap: number;
  private readonly now: () => number;
  /** Whether a probe was requested and its ack has not come back yet. */
  private probing = false;
  private sentAt: number | undefined;
  private sample = 0;
  /** Bandwidths of the last `bandwidthWindow` samples, bytes per ms. */
  private readonly bandwidths: number[] = [];
  private rtt = 0;
  private rttSamples = 0;
  /** The smallest ack round trip seen (ms): the path's own, without a queue in front of the ack. */
  private smallestRtt = Number.POSITIVE_INFINITY;
  private ackedAt: number | undefined;
  private probeDelay = 0;
  private stableSamples = 0;
  private nextProbeAt = Number.NEGATIVE_INFINITY;

  constructor(options: BdpEstimatorOptions) {
    if (!(options.initialWindow > 0)) throw new RangeError(`initialWindow must be positive, got ${options.initialWindow}`);
    this.current = options.initialWindow;
    this.cap = Math.max(options.maxWindow, options.initialWindow);
    this.now = options.now ?? (() => performance.now());
  }

  /** The window the connection should have now, in bytes. */
  get window(): number {
    return this.current;
  }

  /** The smoothed ping round-trip time in ms; 0 before the first ack. */
  get rttMs(): number {
    return this.rtt;
  }

  /** The best bandwidth of the recent probes, in bytes per ms; 0 before the first ack. */
  get bandwidth(): number {
    return Math.max(0, ...this.bandwidths);
  }

  /** Whether a probe is outstanding. */
  get probeOutstanding(): boolean {
    return this.probing;
  }

  /**
   * The reader took `bytes` of DATA. Returns true when the caller should send a probe PING now
   * (and then call `probeSent`); false while one is outstanding, while probes back off, or once
   * the window is at its cap.
   */
  onData(bytes: number): boolean {
    if (this.probing) {
      this.sample += bytes;
      return false;
    }
    if (this.current >= this.cap) return false;
    if (this.probeDelay > 0 && this.now() < this.nextProbeAt) return false;
    this.probing = true;
    this.sentAt = undefined;
    this.sample = bytes;
    return true;
  }

  /** The probe PING went out now; the RTT is measured from here. */
  probeSent(): void {
    if (this.probing) this.sentAt = this.now();
  }

  /**
   * The probe's PING ack arrived now, for a caller that ends the sample later (`probeAcked`):
   * its round trip is the path's, the sample's may be longer. Optional: without it the sample's
   * round trip is taken as the ack's.
   */
  ackArrived(): void {
    if (this.probing && this.sentAt !== undefined) this.ackedAt ??= this.now();
  }

  /**
   * The probe's sample ended (at its ack, or later: see `ackArrived`). Returns the new window
   * when this sample raised it, else undefined.
   */
  probeAcked(): number | undefined {
    if (!this.probing) return undefined;
    this.probing = false;
    const sentAt = this.sentAt;
    const ackedAt = this.ackedAt;
    this.sentAt = undefined;
    this.ackedAt = undefined;
    if (sentAt === undefined) return undefined;
    const now = this.now();
    this.smallestRtt = Math.min(this.smallestRtt, Math.max((ackedAt ?? now) - sentAt, minRttMs));
    const grown = this.update(Math.max(now - sentAt, minRttMs));
    // A full sample the path does not justify is a queue, not a limit: as stable as an empty one.
    const filled = this.sample >= beta * this.current && this.current < this.pathLimit();
    // One sample that neither fills nor grows the window may be noise (a busy reader); two in a row mean stable.
    this.stableSamples = grown === undefined && !filled ? this.stableSamples + 1 : 0;
    this.probeDelay = this.stableSamples < 2 ? 0 : Math.min(Math.max(this.probeDelay * 2, firstProbeDelayMs), maxProbeDelayMs);
    this.nextProbeAt = now + this.probeDelay;
    return grown;
  }

  /** Folds one sample with round trip `rtt` into the estimate; returns the new window if it grew. */
  private update(rtt: number): number | undefined {
    this.rttSamples++;
    this.rtt = this.rttSamples <= rttWarmupSamples ? this.rtt + (rtt - this.rtt) / this.rttSamples : this.rtt + (rtt - this.rtt) * rttWeight;
    // This sample's own round trip, not the smoothed one (as Core): while the RTT climbs, a
    // smoothed RTT lags and every sample would look slower than the last.
    const bandwidth = this.sample / rtt;
    const best = bandwidth >= this.bandwidth;
    this.bandwidths.push(bandwidth);
    if (this.bandwidths.length > bandwidthWindow) this.bandwidths.shift();
    if (!best || this.sample < beta * this.current) return undefined;
    const next = Math.min(Math.ceil(gamma * this.sample), this.cap, this.pathLimit());
    if (next <= this.current) return undefined;
    this.current = next;
    return next;
  }

  /** The largest window the path justifies now: `freeWindow`, or more for a path that holds more (see the class). */
  private pathLimit(): number {
    const sorted = this.bandwidths.toSorted((a, b) => a - b);
    const bandwidth = sorted[sorted.length >> 1] ?? 0;
    return Math.max(freeWindow, Math.floor(pathGain * bandwidth * this.smallestRtt));
  }

  /**
   * The window was set to `bytes` from outside (a memory budget lowered it): estimates start
   * from there, so the next growth is judged against the window the peer really has.
   */
  clampWindow(bytes: number): void {
    if (bytes < this.current) this.current = bytes;
  }

  /** The probe could not be sent or will never be acked (session closing): forget it. */
  probeFailed(): void {
    this.probing = false;
    this.sentAt = undefined;
    this.ackedAt = undefined;
    this.sample = 0;
  }
}
