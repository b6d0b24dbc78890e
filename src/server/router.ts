import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { AnyHandler, ServiceImpl } from "./service-impl.js";

/** One servable method: its descriptor, its handler, and its HTTP/2 `:path`. */
export interface Route {
  readonly path: string;
  readonly method: DescMethod;
  readonly handler: AnyHandler;
}

/**
 * Maps `/package.Service/Method` paths to handlers.
 *
 * A service may be added once; adding it again is a programming error and throws, because
 * silently replacing handlers hides bugs.
 */
export class Router {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Map<string, DescService>();

  add<S extends DescService>(service: S, impl: ServiceImpl<S>): void {
    if (this.services.has(service.typeName)) {
      throw new Error(`service ${service.typeName} was already added to this server`);
    }
    const known = new Set(service.methods.map((m) => m.localName));
    for (const key of Object.keys(impl)) {
      if (!known.has(key)) {
        const names = [...known].join(", ");
        throw new Error(`${service.typeName} has no method "${key}"; its methods are: ${names}`);
      }
    }
    this.services.set(service.typeName, service);
    for (const method of service.methods) {
      const handler = (impl as Record<string, AnyHandler | undefined>)[method.localName];
      if (typeof handler !== "function") continue;
      const path = `/${service.typeName}/${method.name}`;
      this.routes.set(path, { path, method, handler: handler.bind(impl) as AnyHandler });
    }
  }

  /** The route for a `:path`, or undefined (the caller answers UNIMPLEMENTED). */
  find(path: string): Route | undefined {
    return this.routes.get(path);
  }

  /** Whether a service of this full name was added (to tell "unknown service" from "unknown method"). */
  hasService(typeName: string): boolean {
    return this.services.has(typeName);
  }

  /** Every service added, in the order added. */
  get serviceList(): DescService[] {
    return [...this.services.values()];
  }
}
