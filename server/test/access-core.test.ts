// The authorization core over a real socket: the authentication adapter runs once per request however
// often an API asks (authenticate, then admit for one or more namespaces), and again for the next
// request; each core keeps its own caller; the query is the request's, decoded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AccessRequest, Authorizer } from "../src/auth/types.js";
import { AccessCore, accessRequest, type Caller } from "../src/routes/access.js";
import { defineApi, nativeErrorBody } from "../src/routes/api.js";
import { serveApis } from "./support/harness.js";

const adapterCalls: string[] = [];
const otherAdapterCalls: string[] = [];
const authorizer: Authorizer = {
  authenticate: () => Promise.reject(new Error("the adapters here do not ask the authorizer")),
  authorizeIdentity: () => Promise.resolve(),
  checkReady: () => Promise.resolve(true),
};
const identity = { user: "alice", groups: [], via: "token" as const };
const adapter =
  (calls: string[]) =>
  (_c: unknown, request: AccessRequest): Promise<Caller> => {
    calls.push(`${request.method} ${request.rawPath}`);
    return Promise.resolve({ identity });
  };
const core = new AccessCore({ authorizer, scopeNamespace: undefined }, adapter(adapterCalls));
const otherCore = new AccessCore({ authorizer, scopeNamespace: undefined }, adapter(otherAdapterCalls));

let server: Awaited<ReturnType<typeof serveApis>>;
beforeAll(async () => {
  server = await serveApis((faults) => [
    defineApi({ basePath: "/t", errorBody: nativeErrorBody, faults }, (api) => {
      api.get("/twice", async (c) => {
        const first = await core.authenticate(c);
        await core.admit(c, "team-a", "readArtifact");
        const last = await core.admit(c, "team-b", "readArtifact");
        await otherCore.admit(c, "team-a", "readArtifact");
        return c.json({ same: first === last, query: accessRequest(c).query });
      });
    }),
  ]);
});
afterAll(async () => {
  await server.close();
});

describe("AccessCore", () => {
  it("runs the adapter once per request and core, and again for the next request", async () => {
    adapterCalls.length = 0;
    otherAdapterCalls.length = 0;
    for (let round = 0; round < 2; round += 1) {
      const response = await fetch(`${server.url}/t/twice?a=1&b=x+y%21&flag`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ same: true, query: [["a", "1"], ["b", "x y!"], ["flag", ""]] });
    }
    expect(adapterCalls).toEqual(["GET /t/twice", "GET /t/twice"]);
    expect(otherAdapterCalls).toEqual(["GET /t/twice", "GET /t/twice"]);
  });

  it("a query that is not correctly percent-encoded is a 400, not a 500", async () => {
    const response = await fetch(`${server.url}/t/twice?a=%zz`);
    expect(response.status).toBe(400);
  });
});
