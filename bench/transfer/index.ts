/**
 * The transfer benchmark's implementations by name (the main suite's names).
 *
 * Unlike ../impl/index.ts, every child process loads all of them, as the transfer benchmark
 * always has: the published figures were measured that way, and loading only the measured stack
 * moves them (256 MiB `--quick` runs, Rill alone ~350 → ~285 MB/s, raw up), presumably through
 * the heap size V8's GC heuristics start from. Changing that is a change of method, not of code.
 */
import { tunedWindows, type ImplName } from "../common.js";
import type { TransferImpl } from "./common.js";
import * as connect from "./connect.js";
import * as grpcJs from "./grpc-js.js";
import { rawTransfer } from "./raw.js";
import * as rill from "./rill.js";

export function transferImpl(name: ImplName): TransferImpl {
  switch (name) {
    case "raw":
      return rawTransfer(undefined);
    case "raw-tuned":
      return rawTransfer(tunedWindows);
    case "rill":
      return rill;
    case "grpc-js":
      return grpcJs;
    case "connect":
      return connect;
    case "rill-observed":
    case "raw-iter":
    case "grpc-js-observed":
    case "raw-ctx":
      throw new Error(`the transfer benchmark has no ${name} implementation (it is the main suite's, for its small-message rows)`);
  }
}
