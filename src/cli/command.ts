/**
 * What every server-facing command does around its own work: open the channel the flags
 * describe, turn flags into call options, and report a failure (with the connection diagnosed)
 * as grpcurl would. The channel is always closed, so the process exits when the work is done.
 */
import type { Channel } from "../channel/channel.js";
import type { CallOptions } from "../client/call-options.js";
import { explainFailure, openChannel, type TlsFlags } from "./connection.js";
import { parseDuration, parseHeaders } from "./options.js";
import { reportError, type Io } from "./output.js";

/** The flags `callOptions` reads. */
export interface CallFlags {
  header?: string[] | undefined;
  timeout?: string | undefined;
}

/** Call options (metadata, deadline) from the flags. */
export function callOptions(flags: CallFlags): CallOptions {
  const options: CallOptions = { metadata: parseHeaders(flags.header) };
  if (flags.timeout !== undefined) options.timeoutMs = parseDuration(flags.timeout, "--timeout");
  return options;
}

/** Runs `work` with a channel to `address`; failures are reported on stderr and become the exit code. */
export async function withChannel(io: Io, address: string, flags: TlsFlags, work: (channel: Channel) => Promise<number>): Promise<number> {
  let channel: Channel | undefined;
  try {
    channel = openChannel(address, flags);
    return await work(channel);
  } catch (e) {
    const { error, hint } = await explainFailure(e, address, flags);
    return reportError(io, error, hint);
  } finally {
    channel?.close();
  }
}
