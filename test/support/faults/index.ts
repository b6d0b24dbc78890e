/**
 * Network faults for tests (and for anyone testing a gRPC client): each module simulates one
 * way a connection goes wrong in production.
 */
export { startFaultProxy, type Direction, type FaultProxy, type FaultProxyOptions } from "./fault-proxy.js";
export { startSilentPeer, type SilentPeer } from "./silent-peer.js";
export { startDroppedSynsHost, type DroppedSynsHost } from "./dropped-syns.js";
export { startEarlyAnswerServer, type EarlyAnswerOptions, type EarlyAnswerServer } from "./early-answer-server.js";
