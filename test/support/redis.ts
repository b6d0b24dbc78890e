/**
 * A private redis-server for a test file: started through the project's setup script (which
 * installs Debian's package when missing and fails loudly when it cannot), stopped by PID.
 */
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

interface RedisInstance {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL("../../../scripts/setup-redis.mjs", import.meta.url));

/** Starts one redis-server for the enclosing suite; `get()` returns it inside tests. */
export function useRedis(): { get(): RedisInstance } {
  let instance: RedisInstance | undefined;
  before(async () => {
    const mod = (await import(script)) as { startRedis(o?: { port?: number }): Promise<RedisInstance> };
    instance = await mod.startRedis();
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
