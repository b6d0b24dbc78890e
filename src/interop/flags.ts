/**
 * Command-line parsing shared by the interop programs: the standard interop flags are
 * `--name=value` with snake_case names, and booleans are spelled `true`/`false`.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Thrown for a bad command line; the programs print it with their usage and exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses `argv` against string-valued `names`; unknown flags and positionals are errors. */
export function parseFlags<const N extends string>(argv: string[], names: readonly N[]): Partial<Record<N, string>> {
  const options: NonNullable<ParseArgsConfig["options"]> = {};
  for (const n of names) options[n] = { type: "string" };
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    return values as Partial<Record<N, string>>;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Parses a boolean flag value: true/false (also 1/0, yes/no); absent → `fallback`. */
export function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (v === "true" || v === "1" || v === "yes") return true;
  if (v === "false" || v === "0" || v === "no") return false;
  throw new UsageError(`--${name} must be true or false, got "${value}"`);
}

/** Parses a port (0–65535); absent → `fallback`, or an error when there is none. */
export function parsePort(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${value}"`);
  return n;
}
