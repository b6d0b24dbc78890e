/**
 * The raw node:http2 baseline with each call in an AsyncLocalStorage context of its own, on both
 * sides (`AsyncLocalStorage.run`, a store per call), as OpenTelemetry's context manager makes a
 * call's span current: what node charges any stack for that alone, whatever the tracing does
 * (issue 17). `--observed` runs it beside raw.
 */
import { connectClient, startServer, useCallContext } from "./raw.js";

useCallContext();

export { connectClient, startServer };
