/**
 * Test certificates made at test time with `openssl` (installed by scripts/setup-openssl.mjs):
 * a CA, a server certificate for 127.0.0.1 / localhost / rill.test.example / *.test.google.fr, a client
 * certificate (CN=rill-test-client) signed by that CA, and a client certificate from an
 * unrelated CA. Everything lives in a temp dir that `remove()` deletes.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM texts of the generated certificates and keys. */
export interface TestCerts {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate signed by another CA, which the server must refuse. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** The temp dir holding the files (ca.pem, server.pem, …). */
  readonly dir: string;
  remove(): void;
}

/** The extra name in the server certificate, reachable only through `serverNameOverride`. */
export const overrideName = "rill.test.example";

/**
 * The name gRPC's interop clients check a test server's certificate against
 * (`--server_host_override`): grpc's test certificate is for *.test.google.fr, and so is ours.
 */
export const interopServerName = "foo.test.google.fr";

async function opensslPath(): Promise<string> {
  const repoRoot = new URL("../../../", import.meta.url);
  const setup = (await import(new URL("scripts/setup-openssl.mjs", repoRoot).href)) as { setupOpenssl(): string };
  return setup.setupOpenssl();
}

/** Generates the certificates (about a second of openssl work). Fails loudly without openssl. */
export async function makeTestCerts(): Promise<TestCerts> {
  const openssl = await opensslPath();
  const dir = mkdtempSync(join(tmpdir(), "rill-certs-"));
  const run = (...args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const key = (name: string) => run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  const ca = (name: string, cn: string) => {
    key(name);
    run("req", "-x509", "-new", "-key", `${name}.key`, "-sha256", "-days", "2", "-subj", `/CN=${cn}/O=Rill Tests`, "-out", `${name}.pem`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  };
  const leaf = (name: string, cn: string, issuer: string, ext: string) => {
    key(name);
    run("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}/O=Rill Tests`, "-out", `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    run("x509", "-req", "-in", `${name}.csr`, "-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`, "-CAcreateserial", "-days", "2", "-sha256",
      "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  };
  ca("ca", "Rill Test CA");
  ca("other-ca", "Unrelated CA");
  leaf("server", "localhost", "ca", `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${overrideName},DNS:*.test.google.fr\nextendedKeyUsage=serverAuth\n`);
  leaf("client", "rill-test-client", "ca", "extendedKeyUsage=clientAuth\n");
  leaf("stranger", "stranger", "other-ca", "extendedKeyUsage=clientAuth\n");
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return {
    caCert: read("ca.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server.key"),
    clientCert: read("client.pem"),
    clientKey: read("client.key"),
    strangerCert: read("stranger.pem"),
    strangerKey: read("stranger.key"),
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
