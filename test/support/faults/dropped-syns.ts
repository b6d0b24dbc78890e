/**
 * A host whose SYNs vanish: a TCP connect to it neither succeeds nor fails, it just hangs (for
 * about two minutes on Linux, until the kernel gives up retrying the SYN). That is what a
 * firewalled host, a blackholed route, or a server whose accept queue is full looks like.
 *
 * How: a python3 process listens with backlog 0 and never calls accept(); two connections of its
 * own fill the accept queue, and Linux then drops further SYNs (net.ipv4.tcp_abort_on_overflow
 * = 0, the default). node cannot do this itself: libuv accepts every connection at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";

const script = `
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(2):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
print(port, flush=True)
sys.stdin.read()
`;

export interface DroppedSynsHost {
  readonly port: number;
  readonly target: string;
  /** Stops the listener (its process exits; connects then get RST at once). */
  close(): Promise<void>;
}

/** Starts a host that drops SYNs; rejects when python3 is missing or the kernel does not drop them. */
export async function startDroppedSynsHost(): Promise<DroppedSynsHost> {
  const child: ChildProcess = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the SYN-dropping listener (python3) exited with ${code}`)));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
  });
  child.removeAllListeners("exit");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const host: DroppedSynsHost = {
    port,
    target: `127.0.0.1:${port}`,
    async close() {
      // Closing its stdin ends the listener: no signal to a process by name.
      child.stdin!.end();
      await exited;
    },
  };
  // Check that a connect really hangs here, so a test never passes for the wrong reason.
  const hung = await new Promise<boolean>((resolve) => {
    const s = connect(port, "127.0.0.1");
    const timer = setTimeout(() => (s.destroy(), resolve(true)), 300);
    s.once("connect", () => (clearTimeout(timer), s.destroy(), resolve(false)));
    s.once("error", () => (clearTimeout(timer), resolve(false)));
  });
  if (!hung) {
    await host.close();
    throw new Error("a connect to the full accept queue did not hang: this kernel does not drop SYNs on overflow");
  }
  return host;
}
