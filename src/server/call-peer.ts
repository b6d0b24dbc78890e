/**
 * Who called, as interceptors and observers see it (`Peer`): the address, and the TLS session
 * read from the call only if asked.
 *
 * A class on purpose. An object literal with a getter (`{ address, get tls() {…} }`) made per
 * call costs V8 a new hidden class per object: the getter is a new closure each time, and a
 * getter lives in the hidden class, which is allocated in old space. Those old-space classes
 * point at the call's young objects, so every call's objects survived the scavenges until the
 * next mark-compact: with the tracing observer reading the peer, a Node 20 server promoted ~9 KB
 * per call and its scavenges took 8 ms instead of 2 (see test/unit/per-call-accessors.test.ts).
 */
import type { HandlerContext } from "../handler-context.js";
import type { Peer } from "../interceptor.js";
import type { TlsPeer } from "../transport/tls-peer.js";

export class CallPeer implements Peer {
  readonly address: string;

  constructor(private readonly call: Pick<HandlerContext, "peer" | "tls">) {
    this.address = call.peer;
  }

  get tls(): TlsPeer | undefined {
    return this.call.tls;
  }
}
