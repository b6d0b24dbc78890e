import type { ClientCallStream, ClientTransport, StreamHeaders, WebProtocol } from "./call-stream.js";
import { ClientConnectStream, type Decompress } from "./client-connect-stream.js";
import { ClientConnectUnaryStream } from "./client-connect-unary-stream.js";
import { ClientGrpcWebStream } from "./client-grpc-web-stream.js";
import { ClientTranslatedStream } from "./client-translated-stream.js";

/** How a call speaks when its channel is set to gRPC-Web or Connect. */
export interface WebCallProtocol {
  readonly protocol: WebProtocol;
  readonly codec: string;
  /** The method is unary (Connect's unary form; every other kind uses its streaming form). */
  readonly unary: boolean;
  /** The call's receive limit (a Connect unary response without a length is held up to it). */
  readonly maxReceiveBytes: number;
  readonly decompress: Decompress;
}

/**
 * A transport whose streams speak gRPC-Web or Connect on `inner`'s HTTP/2 connection, for a
 * channel to a server that serves only those (a connect-es or Envoy gRPC-Web endpoint). The
 * call above sees gRPC; the questions about a stream's connection (GOAWAY, loss) are asked of
 * the HTTP/2 stream underneath.
 */
export function webClientTransport(inner: ClientTransport, call: WebCallProtocol): ClientTransport {
  const under = (s: ClientCallStream): ClientCallStream | undefined => (s instanceof ClientTranslatedStream ? s.innerStream : s);
  return {
    key: inner.key,
    get lastError() {
      return inner.lastError;
    },
    openStream(headers: StreamHeaders, reset: AbortSignal | undefined): ClientCallStream {
      const open = (h: StreamHeaders) => inner.openStream(h, reset);
      if (call.protocol === "grpc-web") return new ClientGrpcWebStream(open, headers, call.codec);
      if (!call.unary) return new ClientConnectStream(open, headers, call.codec, call.decompress);
      const stream = new ClientConnectUnaryStream(open, headers, call.codec, call.maxReceiveBytes);
      reset?.addEventListener("abort", () => stream.close(), { once: true });
      return stream;
    },
    dataObserver: (s) => {
      const u = under(s);
      return u === undefined ? undefined : inner.dataObserver(u);
    },
    unprocessed: (s, e) => {
      const u = under(s);
      // Never opened: the server never saw it.
      return u === undefined ? true : inner.unprocessed(u, e);
    },
    connectionLost: (s) => {
      const u = under(s);
      return u !== undefined && inner.connectionLost(u);
    },
    endReason: (s) => {
      const u = under(s);
      return u === undefined ? undefined : inner.endReason(u);
    },
    explain: (e) => inner.explain(e),
  };
}
