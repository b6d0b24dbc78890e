/** How a server call looks to the server's call observers (observer.ts) when it starts. */
import type { DescMethod } from "@bufbuild/protobuf";
import type { ObservedCall } from "../observer.js";
import type { Peer } from "../interceptor.js";
import type { HandlerContext, Protocol } from "../handler-context.js";
import type { Metadata } from "../protocol/metadata.js";
import { CallPeer } from "./call-peer.js";

/**
 * A server call as its observers see it when it starts: a view made for `start` and dropped after
 * (the metadata and peer are read from the call only if an observer asks).
 */
export class ServerObservedCall implements ObservedCall {
  constructor(
    /** The call, by what it tells a handler (method, protocol, peer, TLS, request metadata). */
    private readonly call: HandlerContext,
    readonly path: string,
  ) {}
  get side(): "server" {
    return "server";
  }
  get method(): DescMethod {
    return this.call.method;
  }
  get protocol(): Protocol {
    return this.call.protocol;
  }
  get authority(): undefined {
    return undefined;
  }
  get peer(): Peer {
    return new CallPeer(this.call);
  }
  get metadata(): Metadata {
    return this.call.requestMetadata;
  }
}
