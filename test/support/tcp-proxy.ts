/**
 * The fault proxy under its first name, for the tests that only cut or blackhole: see
 * faults/fault-proxy.ts for every fault it can inject.
 */
import { startFaultProxy, type FaultProxy } from "./faults/fault-proxy.js";

export type TcpProxy = FaultProxy;

export function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
  return startFaultProxy(upstreamPort);
}
