import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServerBudget, budgetDefaults } from "../../src/server/memory-budget.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("memory budgets", () => {
  it("defaults to 4 MiB per connection and 32 MiB per server, and refuses limits under 64 KiB", () => {
    assert.equal(budgetDefaults.maxConnectionBufferedBytes, 4 * MiB);
    assert.equal(budgetDefaults.maxServerBufferedBytes, 32 * MiB);
    assert.throws(() => new ServerBudget({ maxConnectionBufferedBytes: 1000 }), /maxConnectionBufferedBytes must be an integer of at least 65536/);
    assert.throws(() => new ServerBudget({ maxServerBufferedBytes: 1.5 }), /maxServerBufferedBytes/);
  });

  it("a connection is over its budget past its limit, and back under when bytes are released", () => {
    const server = new ServerBudget({ maxConnectionBufferedBytes: MiB, maxServerBufferedBytes: 8 * MiB });
    const c = server.connection();
    c.add(MiB);
    assert.equal(c.over, false);
    c.add(1);
    assert.equal(c.over, true);
    assert.equal(server.used, MiB + 1);
    c.release(1);
    assert.equal(c.over, false);
  });

  it("a connection holding nothing always admits one message, however large", () => {
    const c = new ServerBudget({ maxConnectionBufferedBytes: MiB }).connection();
    assert.equal(c.admits(4 * MiB), true);
    c.add(4 * MiB);
    assert.equal(c.admits(1), false);
  });

  it("waiters run in order once their bytes fit, and a waiter's own bytes count for the ones after it", () => {
    const c = new ServerBudget({ maxConnectionBufferedBytes: 100 * KiB }).connection();
    c.add(100 * KiB);
    const ran: string[] = [];
    c.whenAdmits(60 * KiB, () => {
      ran.push("a");
      c.add(60 * KiB);
    });
    c.whenAdmits(60 * KiB, () => {
      ran.push("b");
      c.add(60 * KiB);
    });
    assert.deepEqual(ran, []);
    c.release(100 * KiB);
    assert.deepEqual(ran, ["a"]); // b would take the connection to 120 KiB
    c.release(60 * KiB);
    assert.deepEqual(ran, ["a", "b"]);
  });

  it("past the server limit, a connection within its fair share is still admitted and the biggest holders are pushed back", () => {
    const server = new ServerBudget({ maxConnectionBufferedBytes: 8 * MiB, maxServerBufferedBytes: 4 * MiB });
    const hog = server.connection();
    const small = server.connection();
    hog.add(4 * MiB);
    small.add(64 * KiB);
    // The server is over (4 MiB + 64 KiB); the fair share is 2 MiB each.
    assert.equal(hog.over, true);
    assert.equal(small.over, false);
    assert.equal(small.admits(MiB), true);
    assert.equal(hog.admits(1), false);
  });

  it("a connection waiting on the server limit is woken when another connection releases", () => {
    const server = new ServerBudget({ maxConnectionBufferedBytes: 8 * MiB, maxServerBufferedBytes: 4 * MiB });
    const a = server.connection();
    const b = server.connection();
    a.add(3 * MiB);
    b.add(3 * MiB);
    let woke = false;
    b.whenAdmits(0, () => (woke = true));
    assert.equal(woke, false);
    a.release(3 * MiB);
    assert.equal(woke, true);
  });

  it("saturates at twice the limit, and closing a connection releases all it held", () => {
    const server = new ServerBudget({ maxConnectionBufferedBytes: MiB });
    const c = server.connection();
    c.add(2 * MiB - 1);
    assert.equal(c.saturated, false);
    c.add(1);
    assert.equal(c.saturated, true);
    c.close();
    assert.equal(server.used, 0);
    assert.equal(server.holding, 0);
  });
});
