/**
 * `rill/web`: what runs in a browser. Nothing here imports a `node:` module (a test walks the
 * import graph to keep it so); it works over a Connect-es transport, which the page makes with
 * `@connectrpc/connect-web` (`createConnectTransport({ baseUrl })` or `createGrpcWebTransport`)
 * against a Rill server, which serves both protocols on its gRPC port.
 */
export { subscribeTopic, type SubscriptionState, type WebSubscribeOptions } from "./subscribe-topic.js";
export { PubSubService, type Event } from "../../gen/rill/pubsub/v1/pubsub_pb.js";
