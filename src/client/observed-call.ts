/** How a client call looks to the channel's call observers (observer.ts) when it starts. */
import type { DescMethod } from "@bufbuild/protobuf";
import type { ObservedCall } from "../observer.js";
import type { Protocol } from "../handler-context.js";
import { Metadata, type MetadataInit } from "../protocol/metadata.js";

/** What the view reads of the call (a narrow slice of ClientCall). */
export interface ObservableClientCall {
  readonly method: DescMethod;
  readonly channel: { readonly authority: string; readonly options: { readonly protocol: Protocol } };
  readonly options: { readonly metadata?: MetadataInit | undefined };
}

/**
 * A client call as its observers see it when it starts. The metadata is a copy of the caller's,
 * made only if an observer asks for it; what they add to it is what the call sends.
 */
export class ClientObservedCall implements ObservedCall {
  /** The metadata the observers saw (and may have changed), if one asked. */
  copy: Metadata | undefined;
  constructor(private readonly call: ObservableClientCall) {}
  get side(): "client" {
    return "client";
  }
  get method(): DescMethod {
    return this.call.method;
  }
  get path(): string {
    return `/${this.call.method.parent.typeName}/${this.call.method.name}`;
  }
  get protocol(): Protocol {
    return this.call.channel.options.protocol;
  }
  get authority(): string {
    return this.call.channel.authority;
  }
  get peer(): undefined {
    return undefined;
  }
  get metadata(): Metadata {
    // A caller's metadata that cannot be parsed throws here, to the observer; the call then fails
    // with it as it would without observers.
    return (this.copy ??= new Metadata(this.call.options.metadata));
  }
}
