// 405 Method Not Allowed with Allow (RFC 9110 §15.5.6) for every route, derived from what is
// registered: a wrong method on a known path is not the 404 of an unknown one.
import type { Hono, MiddlewareHandler } from "hono";
import { PatternRouter } from "hono/router/pattern-router";
import { HttpError } from "../errors.js";
import type { AppEnv } from "./env.js";

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

interface Route {
  readonly methods: ReadonlySet<string>;
  /** The Allow value: the methods in a stable order. */
  readonly allow: string;
}

class RouteTable {
  readonly #paths: string[] = [];
  readonly #routes: Route[] = [];
  readonly #all = new PatternRouter<number>();
  /** Per method, a router of only the routes that do not answer it (built on first use). */
  readonly #refusing = new Map<string, PatternRouter<number>>();

  constructor(app: Hono<AppEnv>) {
    const byPath = new Map<string, Set<string>>();
    for (const route of app.routes) {
      // Middleware (app.use) is registered for every method: it answers nothing by itself.
      if (route.method === "ALL") continue;
      const methods = byPath.get(route.path) ?? new Set<string>();
      methods.add(route.method);
      // Hono answers HEAD with the GET handler.
      if (route.method === "GET") methods.add("HEAD");
      byPath.set(route.path, methods);
    }
    for (const [routePath, methods] of byPath) {
      this.#all.add("ALL", routePath, this.#routes.length);
      this.#paths.push(routePath);
      this.#routes.push({ methods, allow: [...methods].sort((a, b) => rank(a) - rank(b)).join(", ") });
    }
  }

  /** The route a request belongs to when it is one that does not answer its method; undefined otherwise. */
  refusing(method: string, path: string): Route | undefined {
    let refusing = this.#refusing.get(method);
    if (refusing === undefined) {
      refusing = new PatternRouter<number>();
      this.#routes.forEach((route, index) => {
        if (!route.methods.has(method)) refusing?.add("ALL", this.#paths[index] ?? "", index);
      });
      this.#refusing.set(method, refusing);
    }
    // Most requests match none of the few routes that refuse their method: one cheap test.
    if (refusing.match(method, path)[0].length === 0) return undefined;
    let first: number | undefined;
    for (const [index] of this.#all.match(method, path)[0]) if (first === undefined || index < first) first = index;
    const route = first === undefined ? undefined : this.#routes[first];
    return route !== undefined && !route.methods.has(method) ? route : undefined;
  }
}

function rank(method: string): number {
  const index = METHOD_ORDER.indexOf(method);
  return index === -1 ? METHOD_ORDER.length : index;
}

/**
 * Middleware, registered before the routes, that answers 405 with Allow when the request's method is not
 * one its path answers. A path belongs to the first route registered for it, the one Hono would try
 * first: `/artifacts/*` also matches `/artifacts`, which is the listing's (GET, HEAD), so a PUT there is
 * 405, not an attempt to store a key with no name. The table is built on the first request, once every
 * route is registered.
 */
export function allowedMethods(app: Hono<AppEnv>): MiddlewareHandler<AppEnv> {
  let table: RouteTable | undefined;
  return async (c, next) => {
    table ??= new RouteTable(app);
    const route = table.refusing(c.req.method, c.req.path);
    if (route !== undefined) {
      throw new HttpError(405, "MethodNotAllowed", `this resource allows ${route.allow}`, { Allow: route.allow });
    }
    await next();
  };
}
