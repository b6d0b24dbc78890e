/**
 * Where a piece of code belongs, coarsely, for the profile summaries (profile-summary.ts,
 * alloc-sampler.ts): V8's pseudo-frames ("(garbage collector)", "(program)"…), an npm package,
 * a node subsystem (`node:internal/http2/core` → "node http2"), a folder of Rill's.
 */
export function codeArea(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native code)";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const [scope, name] = u.slice(nm + "node_modules/".length).split("/");
    return scope!.startsWith("@") ? `${scope}/${name}` : scope!;
  }
  if (u.startsWith("node:")) return `node ${u.replace(/^node:(internal\/)?/, "").split("/")[0]!.replace(/\.js$/, "")}`;
  const d = u.indexOf("/dist/");
  if (d < 0) return u;
  const parts = u.slice(d + "/dist/".length).split("/");
  return parts.length > 2 ? `rill ${parts[0]}/${parts[1]}` : `rill ${parts[0]}`;
}
