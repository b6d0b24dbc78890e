/**
 * Echo's three streaming methods with finite, predictable answers, for suites whose tests differ
 * only in the unary method: `{ ...echoStreams, unaryEcho(req, ctx) { ... } }`.
 */
import type { Echo } from "../../gen/echo/echo_pb.js";
import type { ServiceImpl } from "../../src/index.js";

export const echoStreams: Omit<ServiceImpl<typeof Echo>, "unaryEcho"> = {
  /** Answers "<message> 0", "<message> 1", "<message> 2". */
  async *serverStreamingEcho(req) {
    for (let i = 0; i < 3; i++) yield { message: `${req.message} ${i}` };
  },
  /** Answers the messages joined with spaces. */
  async clientStreamingEcho(reqs) {
    const all: string[] = [];
    for await (const r of reqs) all.push(r.message);
    return { message: all.join(" ") };
  },
  /** Answers each message with itself. */
  async *bidirectionalStreamingEcho(reqs) {
    for await (const r of reqs) yield { message: r.message };
  },
};
