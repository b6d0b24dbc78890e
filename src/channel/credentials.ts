/**
 * Channel credentials (how a channel's connections are secured) and call credentials (metadata
 * generators run before each call, e.g. OAuth tokens).
 *
 * Invariants:
 * - Credentials are immutable values, checked once when made: a client `cert` without its
 *   `key` (or the reverse) throws there, not at the first connection.
 * - Call credentials never go out on a plaintext connection unless the channel's credentials
 *   say `allowInsecureCallCredentials`: composing them with `insecure()` throws, and a call
 *   that brings its own on such a channel fails with UNAUTHENTICATED before anything is sent
 *   (grpc-go refuses the same way: a token on plaintext is readable by anyone on the path).
 */
import type { ConnectionOptions } from "node:tls";
import type { DescMethod } from "@bufbuild/protobuf";
import type { MetadataInit } from "../protocol/metadata.js";

/** What a call-credentials generator is told about the call it adds metadata to. */
export interface CallCredentialsContext {
  /** The method being called. */
  readonly method: DescMethod;
  /** "/package.Service/Method". */
  readonly path: string;
  /** The channel's `:authority`. */
  readonly authority: string;
  /** "https://authority/package.Service": the audience JWT-style tokens are minted for. */
  readonly serviceUrl: string;
  /** Aborts when the call is cancelled or its deadline passes. */
  readonly signal: AbortSignal | undefined;
}

/**
 * Per-call credentials: returns metadata (or a promise of it) to add to a call's request
 * metadata. Throwing an `RpcError` fails the call with it; anything else thrown fails the call
 * with UNAVAILABLE naming the cause.
 */
export type CallCredentials = (context: CallCredentialsContext) => MetadataInit | Promise<MetadataInit>;

/** How a channel secures its connections, and the call credentials every call on it carries. */
export interface ChannelCredentials {
  /** True for TLS. */
  readonly secure: boolean;
  /** TLS options given to `http2.connect` (ca, cert, key, servername); empty for plaintext. */
  readonly connectOptions: Readonly<ConnectionOptions>;
  /** The name the server's certificate is checked against (and the `:authority`), if overridden. */
  readonly serverNameOverride: string | undefined;
  /** Generators run, in order, before each call on the channel. */
  readonly callCredentials: readonly CallCredentials[];
  /** Whether call credentials may travel over this (plaintext) channel. */
  readonly allowInsecureCallCredentials: boolean;
}

/**
 * Plaintext HTTP/2 (h2c), the default. Call credentials are refused on it unless
 * `allowInsecureCallCredentials` is set (for a trusted hop such as a sidecar proxy on localhost).
 */
export function insecure(options: { allowInsecureCallCredentials?: boolean } = {}): ChannelCredentials {
  return Object.freeze({
    secure: false,
    connectOptions: Object.freeze({}),
    serverNameOverride: undefined,
    callCredentials: Object.freeze([]),
    allowInsecureCallCredentials: options.allowInsecureCallCredentials ?? false,
  });
}

type Pem = string | Buffer | Array<string | Buffer>;

/** Options of `tls()`. */
export interface TlsCredentialsOptions {
  /** Trusted CA certificates (PEM). Default: node's bundled roots. */
  ca?: Pem;
  /** Client certificate chain (PEM) for mTLS; needs `key`. */
  cert?: Pem;
  /** Private key (PEM) of `cert`. */
  key?: Pem;
  /**
   * Check the server's certificate against this name instead of the target's host, and send it
   * as SNI and `:authority` (grpc-go's serverNameOverride). For tests and private names.
   */
  serverNameOverride?: string;
}

/** TLS with ALPN "h2". The server's certificate must verify against `ca` (or the system roots). */
export function tls(options: TlsCredentialsOptions = {}): ChannelCredentials {
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new Error("tls(): a client certificate needs its private key: give both `cert` and `key`, or neither");
  }
  const override = options.serverNameOverride;
  if (override !== undefined && (override === "" || /[\s/:]/.test(override))) {
    throw new Error(`tls(): serverNameOverride "${override}" is not a host name`);
  }
  const connectOptions: ConnectionOptions = { ALPNProtocols: ["h2"] };
  if (options.ca !== undefined) connectOptions.ca = options.ca;
  if (options.cert !== undefined) connectOptions.cert = options.cert;
  if (options.key !== undefined) connectOptions.key = options.key;
  if (override !== undefined) connectOptions.servername = override;
  return Object.freeze({
    secure: true,
    connectOptions: Object.freeze(connectOptions),
    serverNameOverride: override,
    callCredentials: Object.freeze([]),
    allowInsecureCallCredentials: false,
  });
}

/**
 * `credentials` with call credentials added (run after the ones it already has). Throws when
 * `credentials` is plaintext and does not allow insecure call credentials.
 */
export function withCallCredentials(credentials: ChannelCredentials, ...callCredentials: CallCredentials[]): ChannelCredentials {
  if (!credentials.secure && !credentials.allowInsecureCallCredentials) throw new Error(insecureCallCredentialsMessage);
  return Object.freeze({
    ...credentials,
    callCredentials: Object.freeze([...credentials.callCredentials, ...callCredentials]),
  });
}

/** Why call credentials were refused: says what is wrong and the two ways out. */
export const insecureCallCredentialsMessage =
  "call credentials require a secure channel: use `credentials: tls(...)`, or `insecure({ allowInsecureCallCredentials: true })` " +
  "if the plaintext hop is trusted (tokens would otherwise be sent in the clear)";

/**
 * `error` from a connection attempt, reworded when it is a TLS failure a user can fix (the
 * original stays as `cause`): a plaintext server, an untrusted server certificate, a name
 * mismatch, a client certificate the server wanted or refused; the original is kept as
 * `tlsError`. Other errors pass through.
 */
export function explainConnectError(error: Error, credentials: ChannelCredentials, address: string): Error {
  if (!credentials.secure) return error;
  const text = `${(error as NodeJS.ErrnoException).code ?? ""} ${error.message}`;
  // Not `cause`: callers unwrap causes to get past node's stream-cancel wrapper, which would undo this.
  const explain = (why: string) => Object.assign(new Error(`TLS handshake with ${address} failed: ${why}`), { tlsError: error });
  if (/wrong version number|packet length too long|http request/i.test(text)) {
    return explain("the server does not speak TLS (a plaintext server? then use the default `insecure()` credentials)");
  }
  if (/certificate required/i.test(text)) return explain("the server requires a client certificate (mTLS): give `tls({ cert, key })`");
  if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error)/i.test(text)) {
    return explain("the server refused our client certificate (is it signed by a CA the server trusts?)");
  }
  if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|CERT_UNTRUSTED|unable to (get|verify)/i.test(text)) {
    return explain(`the server's certificate is not trusted (${error.message}); pass the CA that signed it as \`tls({ ca })\``);
  }
  if (/ERR_TLS_CERT_ALTNAME_INVALID/.test(text)) {
    return explain(`${error.message}; connect by a name the certificate lists, or set \`tls({ serverNameOverride })\``);
  }
  return error;
}

/**
 * Why a connection that closed before the server's HTTP/2 settings, without an error, failed.
 * Over TLS that is a server refusing the handshake's last step: node reports a refused client
 * certificate (TLS 1.3 checks it after the client's handshake is done) as a bare close.
 */
export function explainEarlyClose(credentials: ChannelCredentials, address: string): Error {
  if (!credentials.secure) return new Error(`${address} closed the connection before sending its HTTP/2 settings (is it a gRPC server?)`);
  const why =
    credentials.connectOptions.cert === undefined
      ? "if it requires a client certificate (mTLS), give `tls({ cert, key })`"
      : "it most likely refused our client certificate (is it signed by a CA the server trusts?)";
  return new Error(`TLS connection to ${address} closed by the server before it sent its HTTP/2 settings: ${why}`);
}
