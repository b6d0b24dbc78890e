/**
 * After a trailers-only status (one HEADERS frame with END_STREAM), a client that is still
 * sending is told to stop with RST_STREAM(NO_ERROR), as grpc-go does. The RST must follow the
 * HEADERS frame onto the wire: Node 22.23 discards a stream's queued HEADERS when the RST is
 * submitted before nghttp2 has written them, and the client then sees RST_STREAM(NO_ERROR)
 * without a status (INTERNAL). Node reports no event for "HEADERS written", but the stream's
 * local side only counts as closed (`state.localClose`) once the END_STREAM frame has gone out.
 */
import { ResetCode, type ServerCallStream } from "../transport/call-stream.js";

/** Polling after the first check, while the session's socket is still busy writing. */
const retryMs = 10;
/**
 * How long to wait for the HEADERS frame before sending the RST regardless. Only a socket that
 * writes nothing for this long gets here; the stream must not stay open forever either.
 */
const giveUpMs = 5000;

/** Call right after `stream.respond(headers, { endStream: true })`. */
export function stopClientAfterStatusHeaders(stream: ServerCallStream): void {
  if (stream.readableEnded || stream.destroyed) return;
  const deadline = Date.now() + giveUpMs;
  const check = (): void => {
    if (stream.readableEnded || stream.destroyed || stream.closed) return;
    if (stream.state.localClose !== 1 && Date.now() < deadline) {
      setTimeout(check, retryMs);
      return;
    }
    stream.close(ResetCode.NoError);
  };
  // node writes pending frames from a native immediate queued by respond(), which runs before
  // this one: the check normally succeeds at once.
  setImmediate(check);
}
