/**
 * Rill: streaming RPC for TypeScript on Node.js, speaking the gRPC wire protocol over HTTP/2.
 *
 * Servers: `createServer()`, `server.add(Service, impl)`, `server.listen()`.
 * Clients: `createChannel(target)`, `createClient(Service, channel)`.
 */
export { createServer } from "./server/server.js";
export type { Server, ServerOptions, ListenOptions } from "./server/server.js";
export type { CorsOptions } from "./server/cors.js";
export type { HttpHandler, HttpRequest, HttpResponse } from "./server/web-protocols.js";
export type { HandlerContext, Protocol } from "./handler-context.js";
export type {
  ServiceImpl,
  MethodImpl,
  UnaryHandler,
  ServerStreamingHandler,
  ClientStreamingHandler,
  BidiStreamingHandler,
} from "./server/service-impl.js";
export { createChannel } from "./channel/channel.js";
export type { Channel, ChannelOptions } from "./channel/channel.js";
export type { WindowOptions } from "./flow-control/window-options.js";
export type { ConnectivityState } from "./channel/connectivity.js";
export type { BackoffOptions, Clock } from "./channel/backoff.js";
export { ConnectionBackoff } from "./channel/backoff.js";
export type { KeepaliveOptions } from "./channel/keepalive.js";
export type { Resolver, ResolverFactory, ResolverListener } from "./channel/resolver.js";
export { dnsResolver, staticResolver } from "./channel/resolver.js";
export type { Address, Target } from "./channel/target.js";
export { parseTarget } from "./channel/target.js";
export { pickFirst, registerBalancer, roundRobin } from "./channel/balancer.js";
export type { Balancer, Picker } from "./channel/balancer.js";
export { parseServiceConfig, parseRetryPolicy, parseHedgingPolicy } from "./channel/service-config.js";
export type { ServiceConfig, ServiceConfigJson, RetryPolicy, HedgingPolicy, HedgingPolicyJson, MethodConfig } from "./channel/service-config.js";
export { createClient } from "./client/client.js";
export type { Client, ClientOptions, ClientMethod } from "./client/client.js";
export type { CallOptions } from "./client/call-options.js";
export { subscribe } from "./client/subscribe.js";
export type { SubscribeOptions, StreamingMethod } from "./client/subscribe.js";
export { RpcError, IdleTimeoutError, errorDetail } from "./protocol/errors.js";
export { Code, codeName, parseCode } from "./protocol/code.js";
export { Metadata } from "./protocol/metadata.js";
export type { MetadataInit, MetadataValue } from "./protocol/metadata.js";
export { protoCodec, jsonCodec } from "./codec/codec.js";
export type { Codec } from "./codec/codec.js";
export { consoleLogger, silentLogger } from "./logger.js";
export type { Logger } from "./logger.js";
export { createPushable } from "./stream/pushable.js";
export type { Pushable } from "./stream/pushable.js";
export { withCompression, gzip, deflate } from "./codec/compression.js";
export type { Compression } from "./codec/compression.js";
export { chainInterceptors, observeMessages } from "./interceptor.js";
export type { Interceptor, CallHandler, CallRequest, CallResponse, Peer, MessageObserver } from "./interceptor.js";
export type { CallObserver, CallObservation, ObservedCall, ObservedOutcome } from "./observer.js";
export { createLoggingInterceptor, formatCallLogEntry } from "./interceptors/logging.js";
export type { CallLogEntry, LoggingInterceptorOptions } from "./interceptors/logging.js";
export { createBearerClientInterceptor, createBearerServerInterceptor, bearerCallCredentials, principalOf } from "./interceptors/bearer-auth.js";
export type { BearerServerOptions, TokenSource } from "./interceptors/bearer-auth.js";
export { insecure, tls, withCallCredentials } from "./channel/credentials.js";
export { createInProcessChannel } from "./in-process.js";
export type { ChannelCredentials, CallCredentials, CallCredentialsContext, TlsCredentialsOptions } from "./channel/credentials.js";
export type { ServerTlsOptions } from "./server/server.js";
export type { TlsPeer, PeerCertificate } from "./transport/tls-peer.js";
