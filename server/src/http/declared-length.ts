// The request's Content-Length as the APIs that stream a body into the store read it.
import type { Context } from "hono";
import { badRequest } from "../errors.js";
import type { AppEnv } from "./env.js";

/** The body's declared size, so a write too large for the quota or the volume is refused before it is read. */
export function declaredLength(c: Context<AppEnv>): number | undefined {
  const header = c.req.header("content-length");
  if (header === undefined) return undefined;
  if (!/^\d+$/.test(header)) throw badRequest("Content-Length must be a whole number");
  return Number(header);
}
