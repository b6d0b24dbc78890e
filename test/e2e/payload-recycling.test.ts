/**
 * Large response payloads are reused once node reported them written (`recyclePayload`): a
 * response must never carry bytes of a later one, whatever the flow-control window holds back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BenchService } from "../../gen/bench/v1/bench_pb.js";
import { useHarness } from "../support/harness.js";

const h = useHarness();

for (const [name, channelOptions] of [
  ["HTTP/2's 64 KiB window, no BDP probing", { initialStreamWindowBytes: 65_535, bdpProbe: false }],
  ["default windows", {}],
] as const) {
  test(`every message of a server stream of 256 KiB messages arrives with its own bytes, with ${name}`, async () => {
    const count = 48;
    const size = 256 * 1024;
    const { target } = await h.server((s) =>
      s.add(BenchService, {
        unary: (r) => r,
        async *serverStream() {
          // A fresh message per send, each of its own byte: a payload reused too early shows as a wrong byte.
          for (let i = 0; i < count; i++) yield { data: new Uint8Array(size).fill(i + 1) };
        },
        clientStream: async () => ({ data: new Uint8Array(0) }),
        async *bidi() {},
      }),
    );
    const client = h.client(BenchService, target, channelOptions);
    let i = 0;
    for await (const m of client.serverStream({ data: new Uint8Array(0) })) {
      i++;
      assert.equal(m.data.byteLength, size);
      const wrong = m.data.findIndex((b) => b !== i);
      assert.equal(wrong, -1, `message ${i} has byte ${m.data[wrong]} at ${wrong}`);
      // A slow reader now and then, so node holds written payloads behind flow control.
      if (i % 8 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(i, count);
  });
}
