/**
 * The raw node:http2 baseline with an RPC library's API on top (see iterated.ts): the server's
 * stream handler is an async generator and its client-stream handler a `for await` loop, the
 * client reads a server stream with `for await` and sends a client stream from an async
 * generator, every message decoded into an object. Unary calls and the ping-pong are raw's.
 */
import { connectClient, startServer, useIteration } from "./raw.js";

useIteration();

export { connectClient, startServer };
