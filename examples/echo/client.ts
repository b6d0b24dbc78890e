/**
 * Calls Echo four ways. Run the demo server first (`npm start`), then
 * `node dist/examples/echo/client.js [target]`.
 */
import { createChannel, createClient } from "../../src/index.js";
import { Echo } from "../../gen/echo/echo_pb.js";

const channel = createChannel(process.argv[2] ?? "127.0.0.1:50051");
const echo = createClient(Echo, channel);

// Unary: a promise of one response.
const res = await echo.unaryEcho({ message: "hello" });
console.log("unary:", res.message);

// Server streaming: break out after three, which cancels the endless stream on the server.
let n = 0;
for await (const r of echo.serverStreamingEcho({ message: "tick" })) {
  console.log("server stream:", r.message);
  if (++n === 3) break;
}

// Client streaming: any async iterable of requests.
async function* words() {
  for (const message of ["one", "two", "three"]) yield { message };
}
console.log("client stream:", (await echo.clientStreamingEcho(words())).message);

// Bidi: responses arrive while requests are still being sent.
for await (const r of echo.bidirectionalStreamingEcho(words())) console.log("bidi:", r.message);

channel.close();
