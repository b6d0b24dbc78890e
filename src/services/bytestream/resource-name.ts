/**
 * ByteStream resource names as REAPI remote caches use them
 * (build/bazel/remote/execution/v2/remote_execution.proto, "ContentAddressableStorage"):
 *
 *   read:  [{instance_name}/]blobs/{hash}/{size}
 *   write: [{instance_name}/]uploads/{uuid}/blobs/{hash}/{size}[/{optional_metadata}]
 *
 * `instance_name` may span several segments; none of them may be one of REAPI's keywords, which
 * is what makes the first keyword the end of the instance name. Only SHA-256 (64 lowercase hex
 * digits, as REAPI's Digest requires) is stored here: a `{digest_function}/` segment other than
 * `sha256`, and `compressed-blobs/…` (this server offers no compressors), are INVALID_ARGUMENT,
 * like every malformed name. Names come from the network: their length is bounded and nothing
 * in them reaches a file path except the checked hex hash.
 */
import { Code } from "../../protocol/code.js";
import { RpcError } from "../../protocol/errors.js";

/** A blob's REAPI digest: lowercase hex SHA-256 and size in bytes. */
export interface BlobDigest {
  hash: string;
  size: number;
}

/** A parsed read name. */
export interface ReadResource {
  instanceName: string;
  digest: BlobDigest;
}

/** A parsed write name. `metadata` is what followed the size (ignored, as REAPI allows). */
export interface WriteResource {
  instanceName: string;
  uuid: string;
  digest: BlobDigest;
  metadata: string;
}

/** Longest resource name accepted. */
export const MAX_RESOURCE_NAME = 2048;

const KEYWORDS = new Set(["blobs", "uploads", "actions", "actionResults", "operations", "capabilities", "compressed-blobs"]);
const HASH = /^[0-9a-f]{64}$/;
const SIZE = /^(0|[1-9][0-9]{0,15})$/;
const UUID = /^[A-Za-z0-9_-]{1,64}$/;
const DIGEST_FUNCTION = /^[a-z0-9]{1,32}$/;

function invalid(name: string, why: string): RpcError {
  return new RpcError(Code.InvalidArgument, `invalid resource name ${JSON.stringify(name.slice(0, 200))}: ${why}`);
}

/** Splits off the instance name: the segments before the first REAPI keyword. */
function split(name: string, form: string): { instanceName: string; keyword: string; rest: string[] } {
  if (name === "") throw invalid(name, `it is empty; expected ${form}`);
  if (name.length > MAX_RESOURCE_NAME) throw invalid(name, `longer than ${MAX_RESOURCE_NAME} characters`);
  const segments = name.split("/");
  const at = segments.findIndex((s) => KEYWORDS.has(s));
  if (at < 0) throw invalid(name, `expected ${form}`);
  const instance = segments.slice(0, at);
  if (instance.some((s) => s === "")) throw invalid(name, "the instance name has an empty segment");
  return { instanceName: instance.join("/"), keyword: segments[at]!, rest: segments.slice(at + 1) };
}

/** Reads `{digest_function/}{hash}/{size}` from the front of `rest`; returns the digest and what follows. */
function parseDigest(name: string, rest: string[]): { digest: BlobDigest; after: string[] } {
  let i = 0;
  if (rest.length > 0 && !HASH.test(rest[0]!) && DIGEST_FUNCTION.test(rest[0]!)) {
    if (rest[0] !== "sha256") throw invalid(name, `digest function ${rest[0]} is not supported: this server stores SHA-256 blobs only`);
    i = 1;
  }
  const hash = rest[i];
  const size = rest[i + 1];
  if (hash === undefined || size === undefined) throw invalid(name, "expected {hash}/{size} after blobs/");
  if (!HASH.test(hash)) throw invalid(name, `the hash must be 64 lowercase hex digits (SHA-256), got ${JSON.stringify(hash.slice(0, 80))}`);
  if (!SIZE.test(size) || !Number.isSafeInteger(Number(size))) throw invalid(name, `the size must be a decimal byte count, got ${JSON.stringify(size.slice(0, 40))}`);
  return { digest: { hash, size: Number(size) }, after: rest.slice(i + 2) };
}

function noCompression(name: string, keyword: string): void {
  if (keyword === "compressed-blobs") throw invalid(name, "compressed-blobs are not offered (this server has no compressors); use blobs/{hash}/{size}");
}

/** Parses `[{instance_name}/]blobs/{hash}/{size}`; INVALID_ARGUMENT naming what is wrong. */
export function parseReadResource(name: string): ReadResource {
  const form = "[{instance_name}/]blobs/{hash}/{size}";
  const { instanceName, keyword, rest } = split(name, form);
  noCompression(name, keyword);
  if (keyword !== "blobs") throw invalid(name, `expected ${form}`);
  const { digest, after } = parseDigest(name, rest);
  if (after.length > 0) throw invalid(name, `unexpected segments after the size; expected ${form}`);
  return { instanceName, digest };
}

/** Parses `[{instance_name}/]uploads/{uuid}/blobs/{hash}/{size}[/{optional_metadata}]`; INVALID_ARGUMENT naming what is wrong. */
export function parseWriteResource(name: string): WriteResource {
  const form = "[{instance_name}/]uploads/{uuid}/blobs/{hash}/{size}[/{metadata}]";
  const { instanceName, keyword, rest } = split(name, form);
  if (keyword !== "uploads") throw invalid(name, `expected ${form}`);
  const [uuid, blobs, ...tail] = rest;
  if (uuid === undefined || !UUID.test(uuid)) throw invalid(name, "the upload id after uploads/ must be 1–64 letters, digits, '-' or '_' (a UUID)");
  if (blobs !== undefined) noCompression(name, blobs);
  if (blobs !== "blobs") throw invalid(name, `expected ${form}`);
  const { digest, after } = parseDigest(name, tail);
  return { instanceName, uuid, digest, metadata: after.join("/") };
}

/** The read name of `digest` (under `instanceName` when not empty). */
export function blobResourceName(digest: BlobDigest, instanceName = ""): string {
  return `${instanceName === "" ? "" : `${instanceName}/`}blobs/${digest.hash}/${digest.size}`;
}
