/**
 * Calls Echo four ways. Run the demo server first (`npm start`), then
 * `node dist/examples/echo/client.js [--target HOST:PORT]`.
 */
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { Echo } from "../../gen/echo/echo_pb.js";
import { commonExampleHelp, exampleArgs, runExample } from "../example-cli.js";

const usage = `usage: node dist/examples/echo/client.js [--target HOST:PORT]

Calls grpc.examples.echo.Echo four ways: unary, server streaming, client streaming, bidi.
${commonExampleHelp}`;

const { target } = exampleArgs(usage, {});
const channel = createChannel(target, { logger: silentLogger });
const echo = createClient(Echo, channel);

await runExample(target, async () => {
  try {
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
  } finally {
    channel.close();
  }
});
