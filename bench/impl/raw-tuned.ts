/**
 * The raw node:http2 baseline with large flow-control windows on both ends: 4 MiB per stream
 * (SETTINGS_INITIAL_WINDOW_SIZE) and 16 MiB per connection, fixed (no probing). Issue 8's
 * "tuned" reference: what node:http2 moves when the window is not the limit.
 */
import { tunedWindows } from "../common.js";
import { connectClient, startServer, useWindows } from "./raw.js";

useWindows(tunedWindows);

export { connectClient, startServer };
