import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Http2Session } from "node:http2";
import { describe, mock, test } from "node:test";
import { BdpEstimator } from "../../src/flow-control/bdp-estimator.js";
import { resolveWindowOptions, windowDefaults, windowSettings } from "../../src/flow-control/window-options.js";
import { WindowTuner } from "../../src/flow-control/window-tuner.js";
import { fakeClock, type FakeClock } from "../support/fake-clock.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * One probe cycle of a reader that takes `bytes` during a round trip of `rttMs`: the first chunk
 * asks for a probe, the rest arrive before the ack. Returns the new window, if any.
 */
function cycle(e: BdpEstimator, clock: FakeClock, bytes: number, rttMs: number, chunk = 16 * KiB): number | undefined {
  return sampled(e, clock, bytes, rttMs, rttMs, chunk);
}

/**
 * Like `cycle`, but the way `WindowTuner` samples: the PING's ack arrives after `ackMs` and the
 * sample ends at `sampleMs` (≥ ackMs), with `bytes` taken in all.
 */
function sampled(e: BdpEstimator, clock: FakeClock, bytes: number, ackMs: number, sampleMs: number, chunk = 16 * KiB): number | undefined {
  assert.equal(e.onData(Math.min(chunk, bytes)), true, "the first data after an ack asks for a probe");
  e.probeSent();
  for (let left = bytes - Math.min(chunk, bytes); left > 0; left -= chunk) assert.equal(e.onData(Math.min(chunk, left)), false);
  clock.advance(ackMs);
  e.ackArrived();
  clock.advance(sampleMs - ackMs);
  return e.probeAcked();
}

describe("BDP estimator", () => {
  test("grows the window to twice a window-limited sample while the reader keeps up", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    // A reader that takes a whole window per round trip: the window is the limit.
    assert.equal(cycle(e, clock, 64 * KiB, 1), 128 * KiB);
    assert.equal(cycle(e, clock, 128 * KiB, 1), 256 * KiB);
    assert.equal(cycle(e, clock, 256 * KiB, 1), 512 * KiB);
    assert.equal(e.window, 512 * KiB);
    assert.ok(e.rttMs > 0.99 && e.rttMs < 1.01, `rtt ${e.rttMs}`);
  });

  test("stops at the cap and then asks for no more probes", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 300 * KiB, now: clock.now });
    assert.equal(cycle(e, clock, 64 * KiB, 1), 128 * KiB);
    assert.equal(cycle(e, clock, 128 * KiB, 1), 256 * KiB);
    assert.equal(cycle(e, clock, 256 * KiB, 1), 300 * KiB, "capped, not 512 KiB");
    assert.equal(e.onData(16 * KiB), false, "no probe once at the cap");
    assert.equal(e.window, 300 * KiB);
  });

  test("asks for no probe while no data arrives, and an unexpected ack changes nothing", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    clock.advance(10_000);
    assert.equal(e.probeOutstanding, false);
    assert.equal(e.probeAcked(), undefined);
    assert.equal(e.window, 64 * KiB);
  });

  test("stays put on a stalled reader: a sample far below the window does not grow it", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    // The reader takes one frame and stops: the probe comes back with 16 KiB in 1 ms.
    assert.equal(cycle(e, clock, 16 * KiB, 1), undefined);
    // Then nothing for a long time: no data, so no probe and no change.
    clock.advance(60_000);
    assert.equal(e.probeOutstanding, false);
    assert.equal(e.window, 64 * KiB);
  });

  test("a slow reader that takes less than two thirds of the window per round trip keeps it", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    for (let i = 0; i < 50; i++) {
      assert.equal(cycle(e, clock, 40 * KiB, 2), undefined);
      clock.advance(10_000);
    }
    assert.equal(e.window, 64 * KiB);
  });

  test("does not grow when a full sample shows less bandwidth than the recent best", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    assert.equal(cycle(e, clock, 64 * KiB, 1), 128 * KiB);
    // The same full window but over a much longer round trip: the link got slower, not the window.
    for (let i = 0; i < 3; i++) assert.equal(cycle(e, clock, 128 * KiB, 50), undefined);
    assert.equal(e.window, 128 * KiB);
  });

  test("an outlier of bandwidth ages out after four samples instead of holding the window for good", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    // One ack came back at once: an absurd bandwidth, and a raise.
    assert.equal(cycle(e, clock, 64 * KiB, 0.01), 128 * KiB);
    // Then steady full windows at a real round trip: held back while the outlier is recent...
    const results = Array.from({ length: 6 }, () => cycle(e, clock, 128 * KiB, 2));
    assert.deepEqual(results.slice(0, 4), [undefined, undefined, undefined, undefined]);
    // ...and growing once it has aged out.
    assert.equal(e.window, 256 * KiB);
  });

  test("past 1 MiB a full sample grows the window only as far as the path needs: a queue in front of a slow reader does not grow it", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    // A loopback reader that takes 600 KB per ms, whatever the window: acks come back in 0.3 ms
    // while little is queued, and each 5 ms sample takes 3 MB, which "fills" any window below 4.5 MB.
    const grown = Array.from({ length: 3 }, () => sampled(e, clock, 3_000_000, 0.3, 5));
    assert.deepEqual(grown, [1 * MiB, undefined, undefined], "1 MiB, and no further");
    // The queue's samples count as stable: probes back off as for a window that is not the limit.
    assert.equal(e.onData(100), false, "no probe at once after two such samples");
    clock.advance(100);
    assert.equal(sampled(e, clock, 3_000_000, 0.3, 5), undefined);
    assert.equal(e.window, 1 * MiB);
  });

  test("past 1 MiB a window-limited path keeps doubling, and one whose round trips grew beyond the smallest grows less", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 1 * MiB, maxWindow: 16 * MiB, now: clock.now });
    // 50 ms away and no queue: each round trip carries one window, so the bandwidth follows the
    // window. Past 2 MiB a raise waits for a second sample at the new bandwidth (the median's lag).
    const grown = Array.from({ length: 6 }, () => sampled(e, clock, e.window, 50, 50));
    assert.deepEqual(grown, [2 * MiB, 4 * MiB, undefined, 8 * MiB, undefined, 16 * MiB]);
    // A path whose smallest round trip was 40 ms and whose samples take 50: 2 × 40 / 50 = 1.6 times the window.
    const f = new BdpEstimator({ initialWindow: 1 * MiB, maxWindow: 16 * MiB, now: clock.now });
    assert.equal(sampled(f, clock, f.window, 40, 50), Math.floor(1.6 * MiB));
  });

  test("past 1 MiB one burst does not set the path's bandwidth: the median of the recent samples does", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 512 * KiB, maxWindow: 16 * MiB, now: clock.now });
    // 500 KB per ms with 1 ms round trips: a 1 MB pipe, so 1 MiB (the free window) is where it stops...
    assert.equal(sampled(e, clock, 2_500_000, 1, 5), 1 * MiB);
    assert.equal(sampled(e, clock, 2_500_000, 1, 5), undefined);
    // ...also after one sample that read a backlog at 1.2 GB/s (it would justify a 2.4 MB window).
    clock.advance(100);
    assert.equal(sampled(e, clock, 6_000_000, 1, 5), undefined);
    assert.equal(e.window, 1 * MiB);
  });

  test("keeps probing without pause while samples fill the window", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    assert.equal(cycle(e, clock, 64 * KiB, 0.01), 128 * KiB);
    for (let i = 0; i < 4; i++) cycle(e, clock, 128 * KiB, 2); // full, but not growing: no back-off
    assert.equal(e.onData(100), true);
  });

  test("backs off while the estimate is stable: 100 ms after two samples that did not grow it, doubling to 10 s, and at once after growth", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      assert.equal(cycle(e, clock, 1 * KiB, 1), undefined);
      let waited = 0;
      while (!e.onData(100)) {
        clock.advance(1);
        waited++;
      }
      e.probeFailed(); // forget the probe just requested; the next cycle asks again
      waits.push(waited);
    }
    assert.deepEqual(waits, [0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000]);
    // A window-limited sample grows the window, and the next probe may go at once.
    assert.equal(cycle(e, clock, 64 * KiB, 0.001), 128 * KiB);
    assert.equal(e.onData(100), true);
  });

  test("a failed probe is forgotten and the next data asks for a new one", () => {
    const clock = fakeClock(1000);
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 16 * MiB, now: clock.now });
    assert.equal(e.onData(100), true);
    e.probeFailed();
    assert.equal(e.probeOutstanding, false);
    assert.equal(e.probeAcked(), undefined);
    assert.equal(e.onData(100), true);
  });

  test("never asks for a probe when the cap is the initial window", () => {
    const e = new BdpEstimator({ initialWindow: 64 * KiB, maxWindow: 64 * KiB });
    assert.equal(e.onData(64 * KiB), false);
  });
});

describe("window options", () => {
  test("fill in the documented defaults", () => {
    const w = resolveWindowOptions({});
    assert.deepEqual({ ...w }, { ...windowDefaults });
    assert.deepEqual(windowSettings(w), { initialWindowSize: windowDefaults.initialStreamWindowBytes, maxFrameSize: 16_384 });
  });

  test("the cap follows a larger initial window unless set", () => {
    assert.equal(resolveWindowOptions({ initialStreamWindowBytes: 32 * MiB }).maxWindowBytes, 32 * MiB);
    assert.throws(() => resolveWindowOptions({ initialStreamWindowBytes: 8 * MiB, maxWindowBytes: 1 * MiB }), /maxWindowBytes \(1048576\) must not be below initialStreamWindowBytes/);
  });

  test("reject values HTTP/2 does not allow, naming the option", () => {
    assert.throws(() => resolveWindowOptions({ initialStreamWindowBytes: 2 ** 31 }), /initialStreamWindowBytes must be an integer from 1 to 2147483647/);
    assert.throws(() => resolveWindowOptions({ connectionWindowBytes: 1000 }), /connectionWindowBytes must be an integer from 65535/);
    assert.throws(() => resolveWindowOptions({ maxFrameSize: 8192 }), /maxFrameSize must be an integer from 16384 to 16777215/);
    assert.throws(() => resolveWindowOptions({ maxFrameSize: 2 ** 24 }), /maxFrameSize/);
    assert.throws(() => resolveWindowOptions({ maxWindowBytes: 1.5 }), /maxWindowBytes must be an integer/);
  });
});

/** The parts of an Http2Session a WindowTuner uses, recorded. */
class FakeSession extends EventEmitter {
  readonly calls: string[] = [];
  readonly socket = { bytesRead: 0 };
  closed = false;
  destroyed = false;
  private acks: Array<(err: Error | null) => void> = [];
  ping(cb: (err: Error | null) => void): boolean {
    this.calls.push("ping");
    this.acks.push(cb);
    return true;
  }
  ack(): void {
    for (const cb of this.acks.splice(0)) cb(null);
  }
  settings(s: { initialWindowSize: number }): void {
    this.calls.push(`settings ${s.initialWindowSize}`);
  }
  setLocalWindowSize(n: number): void {
    this.calls.push(`connection ${n}`);
  }
}

describe("window tuner", () => {
  test("sets the connection window at start, probes when a reader takes data, samples the socket and raises both windows on growth", () => {
    const clock = fakeClock(1000);
    const session = new FakeSession();
    const tuner = new WindowTuner(session as unknown as Http2Session, resolveWindowOptions({ connectionWindowBytes: 96 * KiB }), { now: clock.now, minSampleMs: 0 });
    tuner.start();
    session.socket.bytesRead = 70 * KiB;
    tuner.dataTaken(16 * KiB);
    // A full window arrives on the socket before the ack, whatever the reader took meanwhile.
    session.socket.bytesRead += 64 * KiB;
    clock.advance(1);
    session.ack();
    assert.deepEqual(session.calls, [`connection ${96 * KiB}`, "ping", `connection ${128 * KiB}`, `settings ${128 * KiB}`]);
    assert.equal(tuner.streamWindowBytes, 128 * KiB);
    assert.equal(tuner.raises, 1);
    // Reading what arrived before the ack: no new DATA on the socket, so no new probe.
    tuner.dataTaken(16 * KiB);
    assert.equal(tuner.probes, 1);
  });

  test("a sample covers at least minSampleMs: what arrives after a quick ack still counts", () => {
    // The tuner reads the clock and waits out the rest of the floor with setTimeout: both faked.
    const clock = fakeClock(1000);
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const session = new FakeSession();
      const tuner = new WindowTuner(session as unknown as Http2Session, resolveWindowOptions({}), { now: clock.now, minSampleMs: 30 });
      tuner.start();
      session.socket.bytesRead = 1000;
      tuner.dataTaken(1000);
      clock.advance(1);
      session.ack(); // 1 ms later, before anything more arrived
      session.socket.bytesRead += 64 * KiB; // the window's worth arrives within the floor
      assert.equal(tuner.raises, 0, "not judged at the ack");
      clock.advance(28);
      mock.timers.tick(28);
      assert.equal(tuner.raises, 0, "not judged before the floor");
      clock.advance(1);
      mock.timers.tick(1);
      assert.equal(tuner.raises, 1);
      assert.equal(tuner.streamWindowBytes, 128 * KiB);
    } finally {
      mock.timers.reset();
    }
  });

  test("with bdpProbe off it sets the windows once and never pings", () => {
    const session = new FakeSession();
    const tuner = new WindowTuner(session as unknown as Http2Session, resolveWindowOptions({ bdpProbe: false }));
    tuner.start();
    session.socket.bytesRead = 10 * MiB;
    tuner.dataTaken(64 * KiB);
    assert.deepEqual(session.calls, [`connection ${windowDefaults.connectionWindowBytes}`]);
    assert.equal(tuner.probes, 0);
  });
});
