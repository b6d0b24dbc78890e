/**
 * Rill's server for bench/large-unary.ts `--server rill`: the same contract as server.py
 * (`grpc.testing.TestService/UnaryCall` answers `response_size` bytes, pre-built per size, no
 * message size limit), to see the clients' limits when the server is not Python's. Prints
 * {"type":"ready","port":N} on stdout once listening on 127.0.0.1 and runs until killed.
 * `BENCH_RILL_SERVER` (JSON) passes extra options to `createServer`.
 */
import { TestService } from "../../gen/grpc/testing/test_pb.js";
import { createServer, type ServerOptions } from "../../src/index.js";
import { envOptions } from "../common.js";

const bodies = new Map<number, Uint8Array>();
const bodyOf = (size: number): Uint8Array => {
  let b = bodies.get(size);
  if (b === undefined) bodies.set(size, (b = new Uint8Array(size)));
  return b;
};
const server = createServer({ maxReceiveMessageBytes: Number.POSITIVE_INFINITY, ...envOptions<ServerOptions>("BENCH_RILL_SERVER") });
server.add(TestService, { unaryCall: (req) => ({ payload: { body: bodyOf(req.responseSize) } }) });
const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ type: "ready", port }));
// Exits (writing a --cpu-prof profile, when profiling by hand) on SIGTERM; the orchestrator kills by PID.
process.on("SIGTERM", () => process.exit(0));
