import assert from "node:assert/strict";
import { RpcError, type Code } from "../../src/index.js";

/**
 * For `assert.rejects(p, rejectsWith(Code.X, /why/))`: the error is an RpcError with that code
 * and, if given, a status message (`rawMessage`, as the server sent it) matching `message`.
 */
export function rejectsWith(code: Code, message?: RegExp): (e: unknown) => true {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, `expected an RpcError, got ${String(e)}`);
    assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.rawMessage}`);
    if (message !== undefined) assert.match(e.rawMessage, message);
    return true;
  };
}

/** The RpcError `p` rejects with, for tests that look at more than its code; fails when `p` resolves or rejects with anything else. */
export async function statusOf(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RpcError, `expected an RpcError, got ${String(e)}`);
    return e;
  }
  throw new Error("expected the call to fail");
}
