/**
 * What the interceptors that report on calls (logging, metrics, OpenTelemetry metrics) share:
 * run the call, count its messages both ways, and report once how it ended and how long it took.
 */
import { observeMessages, SingleMessage, withMessages, type CallHandler, type CallRequest, type CallResponse } from "../interceptor.js";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";

/** How a call ended, as the reporting interceptors see it. */
export interface CallOutcome {
  /** The status: OK, the error's code, or CANCELLED when the reader stopped early. */
  readonly code: Code;
  /** The error when the call failed. */
  readonly error: RpcError | undefined;
  /** From the interceptor's start to the end of the response stream, in `now`'s unit (ms). */
  readonly durationMs: number;
  readonly requests: number;
  readonly responses: number;
}

/**
 * Runs `request` through `next`, counting the messages, and calls `report` once: when the
 * response stream ended, failed, or its reader left early (CANCELLED, or the call's own abort
 * reason), or when the call failed to start.
 */
export async function observeCall(request: CallRequest, next: CallHandler, now: () => number, report: (outcome: CallOutcome) => void): Promise<CallResponse> {
  const start = now();
  let requests = 0;
  let responses = 0;
  let reported = false;
  const done = (error: unknown) => {
    if (reported) return;
    reported = true;
    const err = error === undefined ? undefined : RpcError.from(error, Code.Unknown);
    report({ code: err?.code ?? Code.OK, error: err, durationMs: now() - start, requests, responses });
  };
  let response: CallResponse;
  try {
    // One request known now (unary, server streaming): counted, and the request passed as it is.
    let counted = request;
    if (request.messages instanceof SingleMessage) requests = 1;
    else {
      counted = withMessages(
        request,
        observeMessages(request.messages, {
          onMessage: (m) => {
            requests++;
            return m;
          },
        }),
      );
    }
    response = await next(counted);
  } catch (e) {
    done(e);
    throw e;
  }
  return {
    ...response,
    messages: observeMessages(response.messages, {
      onMessage: (m) => {
        responses++;
        return m;
      },
      onEnd: (error, { readerLeft }) => {
        if (!readerLeft) return done(error);
        const reason: unknown = request.signal?.aborted ? request.signal.reason : undefined;
        done(reason ?? new RpcError(Code.Canceled, "the reader stopped before the end of the stream"));
      },
    }),
  };
}
