/**
 * What every server-facing command does around its own work: open the channel the flags
 * describe, turn flags into call options, and report a failure (with the connection diagnosed)
 * as grpcurl would. The channel is always closed, so the process exits when the work is done.
 */
import type { Channel } from "../channel/channel.js";
import type { CallOptions } from "../client/call-options.js";
import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { explainFailure, openChannel, type TlsFlags } from "./connection.js";
import { parseDuration, parseHeaders, parseSize } from "./options.js";
import { reportError, type Io } from "./output.js";

/** The flags `callOptions` reads. */
export interface CallFlags {
  header?: string[] | undefined;
  "rpc-header"?: string[] | undefined;
  "reflect-header"?: string[] | undefined;
  timeout?: string | undefined;
  "max-receive-size"?: string | undefined;
}

/**
 * Call options (metadata, deadline) from the flags: for the call itself (`-H` and
 * `--rpc-header`), or for reflection (`-H` and `--reflect-header`), as grpcurl splits them.
 */
export function callOptions(flags: CallFlags, purpose: "rpc" | "reflect" = "rpc"): CallOptions {
  const extra = purpose === "rpc" ? flags["rpc-header"] : flags["reflect-header"];
  const options: CallOptions = { metadata: parseHeaders([...(flags.header ?? []), ...(extra ?? [])]) };
  if (flags.timeout !== undefined) options.timeoutMs = parseDuration(flags.timeout, "--timeout");
  return options;
}

/** Channel options from the flags: the receive limit. */
export function channelExtras(flags: CallFlags): { maxReceiveMessageBytes?: number } {
  const size = flags["max-receive-size"];
  return size === undefined ? {} : { maxReceiveMessageBytes: parseSize(size, "--max-receive-size") };
}

/** Runs `work` with a channel to `address`; failures are reported on stderr and become the exit code. */
export async function withChannel(io: Io, address: string, flags: TlsFlags & CallFlags, work: (channel: Channel) => Promise<number>): Promise<number> {
  let channel: Channel | undefined;
  try {
    channel = openChannel(address, flags, channelExtras(flags));
    return await work(channel);
  } catch (e) {
    if (e instanceof RpcError && e.code === Code.ResourceExhausted && /receive|too large|larger|exceeds/i.test(e.rawMessage)) {
      return reportError(io, e, "raise the limit with --max-receive-size, e.g. --max-receive-size 64MiB (grpcurl: -max-msg-sz BYTES)");
    }
    const { error, hint } = await explainFailure(e, address, flags);
    return reportError(io, error, hint);
  } finally {
    channel?.close();
  }
}
