/**
 * Ports for tests that need one before anything listens on it: a server started (or restarted)
 * on a known port, another program told which port to bind, or an address where nothing listens.
 */
import { createServer, type AddressInfo } from "node:net";

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0 and released before
 * returning. Nothing listens on it until the caller binds it (another process could take it
 * meanwhile; a caller that must be sure retries, as the nginx suite does).
 */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => s.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
