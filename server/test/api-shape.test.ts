// The shape every API has (routes/api.ts), checked against the installed Hono: a sub-app mounted with
// app.route() answers its own errors in its own body, from its handlers and from its middleware, and
// its unknown paths with its own 404; the unexpected is hidden from the client and logged with its
// stack; a filesystem error the volume explains is named. Over a real socket, as production serves it.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../src/errors.js";
import { defineApi, type ErrorBody } from "../src/routes/api.js";
import { serveApis } from "./support/harness.js";

// Two made-up shapes; like every API's, they send the error's headers (Allow, WWW-Authenticate, …).
const plainBody: ErrorBody = (c, error) => c.json({ plain: `${error.code}: ${error.message}` }, error.status, { ...error.headers });
const nestedBody: ErrorBody = (c, error) => c.json({ nested: { status: error.status, code: error.code } }, error.status, { ...error.headers });

let server: Awaited<ReturnType<typeof serveApis>>;
beforeAll(async () => {
  server = await serveApis((faults) => [
    defineApi({ basePath: "/plain", errorBody: plainBody, faults }, (api) => {
      api.get("/refused", () => {
        throw new HttpError(409, "Conflict", "refused here");
      });
      api.get("/broken", () => {
        throw new Error("open /secret/volume/path failed", { cause: Object.assign(new Error("the disk said no"), { code: "EIO" }) });
      });
      api.get("/full", () => {
        throw Object.assign(new Error("ENOSPC: no space left on device, write '/secret/volume/x'"), { code: "ENOSPC" });
      });
    }),
    defineApi({ basePath: "/nested", errorBody: nestedBody, faults }, (api) => {
      api.get("/refused", () => {
        throw new HttpError(409, "Conflict", "refused here");
      });
      api.put("/only-put", (c) => c.body(null, 204));
    }),
  ]);
});
afterAll(async () => {
  await server.close();
});

const get = (target: string, init?: RequestInit) => fetch(`${server.url}${target}`, init);

function rawGet(target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Options, not a URL string: a URL would be normalized too.
    const { hostname, port } = new URL(server.url);
    const request = http.request({ hostname, port, path: target }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("sub-apps mounted with app.route()", () => {
  it("answer a handler's HttpError in their own body", async () => {
    const plain = await get("/plain/refused");
    expect(plain.status).toBe(409);
    expect(await plain.json()).toEqual({ plain: "Conflict: refused here" });
    const nested = await get("/nested/refused");
    expect(nested.status).toBe(409);
    expect(await nested.json()).toEqual({ nested: { status: 409, code: "Conflict" } });
  });

  it("answer their middleware's errors in their own body: 405 with Allow, '..' segments", async () => {
    const wrongMethod = await get("/nested/only-put");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("PUT");
    expect(await wrongMethod.json()).toEqual({ nested: { status: 405, code: "MethodNotAllowed" } });
    // Sent as written (fetch would normalize the segment away); the normalized path is the API's.
    const dotted = await rawGet("/plain/x/%2e%2e/refused");
    expect(dotted.status).toBe(400);
    expect(JSON.parse(dotted.body)).toEqual({ plain: "BadRequest: the path must not contain '.' or '..' segments" });
  });

  it("answer their unknown paths with their own 404; a path no API claims gets the native body", async () => {
    expect(await (await get("/plain/nothing")).json()).toEqual({ plain: "NotFound: no such route" });
    expect(await (await get("/nested/nothing/deeper")).json()).toEqual({ nested: { status: 404, code: "NotFound" } });
    const unclaimed = await get("/elsewhere");
    expect(unclaimed.status).toBe(404);
    expect(await unclaimed.json()).toEqual({ error: { code: "NotFound", message: "no such route" } });
    const lines = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === "request");
    expect(lines.filter((line) => line.route === "unmatched").length).toBeGreaterThanOrEqual(2);
  });

  it("hide an unexpected error from the client (500, no path, no stack) and log it with its stack and cause", async () => {
    const broken = await get("/plain/broken");
    expect(broken.status).toBe(500);
    const text = await broken.text();
    expect(JSON.parse(text)).toEqual({ plain: "Internal: internal server error" });
    expect(text).not.toContain("/secret");
    const logged = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === "unhandled error");
    const error = logged?.error as { message?: string; stack?: string; cause?: { code?: string } } | undefined;
    expect(error?.message).toContain("/secret/volume/path");
    expect(error?.stack).toMatch(/api-shape\.test\.ts/);
    expect(error?.cause?.code).toBe("EIO");
    expect(text).not.toContain("disk said no");
  });

  it("name a filesystem error the volume explains: no space is 507, without the path", async () => {
    const full = await get("/plain/full");
    expect(full.status).toBe(507);
    const text = await full.text();
    expect(text).toMatch(/^\{"plain":"InsufficientStorage: /);
    expect(text).not.toContain("/secret");
  });
});
