/**
 * Bearer-token authentication, a pair: the client side adds `authorization: Bearer <token>`,
 * the server side checks it with the application's function and fails the call with
 * UNAUTHENTICATED (no token, malformed, rejected) or PERMISSION_DENIED (a valid caller that may
 * not call this method).
 * @see https://datatracker.ietf.org/doc/html/rfc6750#section-2.1 (the header's syntax)
 */
import type { CallCredentials } from "../channel/credentials.js";
import { RpcError } from "../protocol/errors.js";
import type { CallRequest, Interceptor } from "../interceptor.js";
import { Code } from "../protocol/code.js";
import type { HandlerContext } from "../handler-context.js";

/** A token, or a function producing one per call (e.g. refreshing an OAuth token). */
export type TokenSource = string | ((request: { readonly path: string }) => string | Promise<string>);

const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;

async function tokenOf(source: TokenSource, path: string): Promise<string> {
  const token = typeof source === "string" ? source : await source({ path });
  if (typeof token !== "string" || !tokenPattern.test(token)) {
    throw new RpcError(Code.Unauthenticated, `${path}: the bearer token source gave no usable token (RFC 6750 token68 characters only)`);
  }
  return token;
}

/**
 * Client interceptor adding `authorization: Bearer <token>` to every call. It sends the token
 * whatever the channel; to have it refused on plaintext, use `bearerCallCredentials` with
 * `withCallCredentials(tls(...), ...)` instead.
 */
export function createBearerClientInterceptor(token: TokenSource): Interceptor {
  if (typeof token === "string") checkStatic(token);
  return (next) => async (request) => {
    request.metadata.set("authorization", `Bearer ${await tokenOf(token, request.path)}`);
    return next(request);
  };
}

/** The same token as call credentials: refused on plaintext channels (see `withCallCredentials`). */
export function bearerCallCredentials(token: TokenSource): CallCredentials {
  if (typeof token === "string") checkStatic(token);
  return async ({ path }) => ({ authorization: `Bearer ${await tokenOf(token, path)}` });
}

function checkStatic(token: string): void {
  if (!tokenPattern.test(token)) throw new Error("bearer token: only RFC 6750 token68 characters are allowed (letters, digits, -._~+/ and trailing =)");
}

/** Options of `createBearerServerInterceptor`. */
export interface BearerServerOptions<P> {
  /**
   * Checks a token and returns who it belongs to (any value but undefined, null or false), or
   * undefined/null/false to reject it (UNAUTHENTICATED). May throw an RpcError of its own.
   */
  validate(token: string, request: CallRequest): P | undefined | null | false | Promise<P | undefined | null | false>;
  /** Whether `principal` may call this method; false → PERMISSION_DENIED. Default: everyone may. */
  authorize?(principal: P, request: CallRequest): boolean | Promise<boolean>;
  /** Methods served without a token, by path ("/grpc.health.v1.Health/Check") or whole service ("grpc.health.v1.Health"). */
  publicMethods?: readonly string[];
}

const principals = new WeakMap<HandlerContext, unknown>();

/** The principal the server's bearer interceptor validated for this call, or undefined. */
export function principalOf<P = unknown>(ctx: HandlerContext<never> | HandlerContext): P | undefined {
  return principals.get(ctx as HandlerContext) as P | undefined;
}

/**
 * Server interceptor requiring `authorization: Bearer <token>`: a missing, malformed or rejected
 * token fails the call with UNAUTHENTICATED before the handler runs, a principal `authorize`
 * refuses with PERMISSION_DENIED. Handlers read the principal with `principalOf(ctx)`.
 */
export function createBearerServerInterceptor<P>(options: BearerServerOptions<P>): Interceptor {
  const open = new Set(options.publicMethods ?? []);
  return (next) => async (request) => {
    if (open.has(request.path) || open.has(request.method.parent.typeName)) return next(request);
    const header = request.metadata.get("authorization");
    if (header === undefined) throw new RpcError(Code.Unauthenticated, `${request.path} requires "authorization: Bearer <token>" metadata`);
    const match = typeof header === "string" ? /^Bearer +(\S+)\s*$/i.exec(header) : null;
    if (match === null) throw new RpcError(Code.Unauthenticated, `the authorization metadata is not a bearer token ("Bearer <token>")`);
    const principal = await options.validate(match[1]!, request);
    if (principal === undefined || principal === null || principal === false) throw new RpcError(Code.Unauthenticated, "the bearer token was rejected");
    if (options.authorize !== undefined && !(await options.authorize(principal, request))) {
      throw new RpcError(Code.PermissionDenied, `not allowed to call ${request.path}`);
    }
    if (request.context !== undefined) principals.set(request.context, principal);
    return next(request);
  };
}
