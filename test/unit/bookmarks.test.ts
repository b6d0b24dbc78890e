import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Bookmarks, type BookmarkTarget } from "../../src/services/pubsub/bookmarks.js";

/** A subscription stand-in: its cursor is set by the test, its bookmarks recorded. */
function target(cursor: string, room = true): BookmarkTarget & { cursor: string; sent: unknown[]; room: boolean } {
  return {
    cursor,
    sent: [],
    room,
    sendBookmark(message) {
      if (!this.room) return false;
      this.sent.push(message);
      return true;
    },
  };
}

describe("bookmark schedules (a hand-driven clock)", () => {
  test("a bookmark goes out once the position has stood still for the interval, and again each interval after", () => {
    let now = 0;
    const b = new Bookmarks(() => now);
    const t = target("5@e");
    b.add(t, 1000, (p) => `bm ${p}`);
    now = 999;
    b.tick();
    assert.deepEqual(t.sent, []);
    now = 1000;
    b.tick();
    assert.deepEqual(t.sent, ["bm 5@e"]);
    now = 1999;
    b.tick();
    assert.equal(t.sent.length, 1);
    now = 2000;
    b.tick();
    assert.deepEqual(t.sent, ["bm 5@e", "bm 5@e"]);
    b.stop();
  });

  test("an event sent (the cursor moved) restarts the interval, and the bookmark names the new position", () => {
    let now = 0;
    const b = new Bookmarks(() => now);
    const t = target("1@e");
    b.add(t, 1000, (p) => p);
    now = 800;
    t.cursor = "2@e";
    b.tick();
    now = 1500;
    b.tick();
    assert.deepEqual(t.sent, [], "800 ms of silence since the event");
    now = 1800;
    b.tick();
    assert.deepEqual(t.sent, ["2@e"]);
    b.stop();
  });

  test("a stream with no room (or not live) gets its bookmark at the first tick it has room, not one per missed tick", () => {
    let now = 0;
    const b = new Bookmarks(() => now);
    const t = target("1@e", false);
    b.add(t, 100, (p) => p);
    for (now = 100; now <= 500; now += 100) b.tick();
    assert.deepEqual(t.sent, []);
    t.room = true;
    now = 525;
    b.tick();
    now = 550;
    b.tick();
    assert.deepEqual(t.sent, ["1@e"]);
    b.stop();
  });

  test("a deleted subscription gets no more bookmarks", () => {
    let now = 0;
    const b = new Bookmarks(() => now);
    const t = target("1@e");
    b.add(t, 100, (p) => p);
    b.delete(t);
    now = 1000;
    b.tick();
    assert.deepEqual(t.sent, []);
  });
});
