/**
 * What node's `session.request()` costs with and without an options object:
 * `node dist/bench/request-options.js`. Opens 5,000 streams each way (50 in flight, on one
 * loopback connection to an in-process server that answers each at once) per round, the ways
 * taking turns, and prints the median over 7 rounds (a first, warm-up round is not counted) of the
 * mean time spent inside request() itself, with the rounds' range. Why Rill's client passes no options for a
 * call that needs no signal (see Subchannel.openStream).
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

const server = http2.createServer();
server.on("stream", (s) => s.respond({ ":status": 200 }, { endStream: true }));
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
await new Promise((r) => session.once("remoteSettings", r));
const headers = { ":method": "POST", ":path": "/x", "content-type": "application/grpc", te: "trailers" };
const shared = { endStream: false };
const ways: Record<string, () => http2.ClientHttp2Stream> = {
  "no options": () => session.request(headers),
  "{ endStream: false }": () => session.request(headers, { endStream: false }),
  "one shared options object": () => session.request(headers, shared),
};
const streams = 5000;

function round(open: () => http2.ClientHttp2Stream): Promise<number> {
  return new Promise((resolve) => {
    let inside = 0n;
    let started = 0;
    let inflight = 0;
    let closed = 0;
    const more = (): void => {
      while (inflight < 50 && started < streams) {
        started++;
        inflight++;
        const t0 = process.hrtime.bigint();
        const s = open();
        inside += process.hrtime.bigint() - t0;
        s.resume();
        s.end();
        s.on("close", () => {
          inflight--;
          if (++closed === streams) resolve(Number(inside) / streams / 1000);
          else more();
        });
      }
    };
    more();
  });
}

const rounds = 7;
const means = new Map<string, number[]>(Object.keys(ways).map((name) => [name, []]));
for (let r = 0; r <= rounds; r++) for (const [name, open] of Object.entries(ways)) {
  const mean = await round(open);
  if (r > 0) means.get(name)!.push(mean);
}
console.log(`node ${process.version}: µs inside session.request(), median of ${rounds} rounds of ${streams} streams (range)`);
for (const [name, m] of means) {
  m.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(26)} ${m[rounds >> 1]!.toFixed(1)} (${m[0]!.toFixed(1)}–${m[rounds - 1]!.toFixed(1)})`);
}
session.close();
server.close();
