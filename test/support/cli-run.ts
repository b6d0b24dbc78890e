/**
 * Runs the built `rill` CLI as a child process, as a user runs it, and collects its output and
 * exit code. Shared by the CLI tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const cliPath = join(repoRoot, "dist", "src", "cli", "rill.js");

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Called with the child once it is spawned (to send it signals). */
  onSpawn?: (child: ChildProcess) => void;
}

/** Runs `rill ...args` (or `command ...args` when `command` is given) and resolves when it exits. */
export function runRill(args: string[], options: CliRunOptions = {}, command: string[] = [process.execPath, cliPath]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const [file, ...pre] = command;
    const child = spawn(file!, [...pre, ...args], { stdio: ["pipe", "pipe", "pipe"], cwd: options.cwd, env: { ...process.env, NO_COLOR: "1", ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    options.onSpawn?.(child);
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}
