/** `rill list HOST:PORT [SERVICE]`: the services a server exposes, or the methods of one. */
import { parseArgs } from "node:util";
import { callOptions, withChannel } from "./command.js";
import { findService, loadDescriptors } from "./descriptors.js";
import { commonFlags, commonHelp, parseAddress, parseOrUsage } from "./options.js";
import { useColour, styles, type Io } from "./output.js";

export const listUsage = `usage: rill list HOST:PORT [SERVICE] [flags]

Lists the services of the server (through reflection, or from --protoset/--proto), or the
methods of SERVICE as package.Service/Method, one per line (with the call kind on a terminal;
bare names when piped, for xargs).

${commonHelp}`;

export async function list(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseOrUsage(() => parseArgs({ args: argv, options: commonFlags, allowPositionals: true }));
  if (values.help === true) return io.stdout.write(listUsage), 0;
  const address = parseAddress(positionals[0], listUsage);
  const service = positionals[1];
  const s = styles(useColour(io.stdout));
  return withChannel(io, address, values, async (channel) => {
    const d = await loadDescriptors(values, channel, callOptions(values, "reflect"), service === undefined ? [] : [service]);
    if (service === undefined) {
      for (const name of [...d.services].sort()) io.stdout.write(`${name}\n`);
      return 0;
    }
    const desc = findService(d, service);
    for (const m of desc.methods) {
      // The call kind only for people: piped output is bare names, one per line, for xargs.
      const kind = m.methodKind === "unary" || io.stdout.isTTY !== true ? "" : s.dim(`  (${m.methodKind.replace("_", " ")})`);
      io.stdout.write(`${desc.typeName}/${m.name}${kind}\n`);
    }
    return 0;
  });
}
