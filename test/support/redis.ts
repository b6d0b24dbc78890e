/**
 * A private redis-server for a test file: started through the project's setup script (which
 * installs Debian's package when missing and fails loudly when it cannot), stopped by PID.
 */
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

export interface RedisInstance {
  url: string;
  port: number;
  pid: number;
  /** Its working dir (where SAVE writes dump.rdb). */
  dir: string;
  /** Kills it with SIGKILL, as a crash; removes its dir unless the dir was given. */
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL("../../../scripts/setup-redis.mjs", import.meta.url));

/** Starts one redis-server for the enclosing suite; `get()` returns it inside tests. */
export function useRedis(): { get(): RedisInstance } {
  let instance: RedisInstance | undefined;
  before(async () => {
    instance = await startRedisServer();
  });
  after(async () => {
    await instance?.stop();
  });
  return {
    get() {
      if (instance === undefined) throw new Error("redis-server is not running (the suite's before hook failed)");
      return instance;
    },
  };
}

/** Options of `startRedisServer`. */
export interface RedisServerOptions {
  port?: number;
  dir?: string;
  /** An append-only file fsynced before every reply (`appendfsync always`): a restart loses no acknowledged write. */
  appendonly?: boolean;
}

/**
 * Starts a redis-server of the test's own (stopped by the test): on `port` to come back where a
 * crashed one was, and in `dir` to load the dump.rdb a SAVE left there (a restart from a snapshot)
 * or, with `appendonly`, the AOF it kept there.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisInstance> {
  const mod = (await import(script)) as { startRedis(o?: RedisServerOptions): Promise<RedisInstance> };
  return mod.startRedis(options);
}
