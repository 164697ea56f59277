// The filesystem-storage config endpoint: the chart's dedicated servers and the manager's, in the KEP's shape.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { AppEnv } from "../../src/http/env.js";
import { silentLogger } from "../../src/log.js";
import { FILESYSTEM_STORAGE_CONFIG_PATH, registerFilesystemStorageRoutes } from "../../src/routes/filesystem-storage.js";

const status = JSON.stringify({
  "team-c": { namespace: "team-c", condition: "Dedicated", dedicated: true, endpoint: "http://kfp-artifacts-team-c.team-c.svc:8080" },
  "team-d": { namespace: "team-d", condition: "InvalidBlock", dedicated: false },
  "team-e": { namespace: "team-e", condition: "Shared", dedicated: false },
});

function app(env: Record<string, string>, read?: () => Promise<string | undefined>) {
  const hono = new Hono<AppEnv>();
  registerFilesystemStorageRoutes(hono, loadConfig({ AUTH_MODE: "none", ...env }), silentLogger, read);
  return hono;
}

describe(FILESYSTEM_STORAGE_CONFIG_PATH, () => {
  it("lists the chart's and the manager's dedicated namespaces with their endpoints", async () => {
    let reads = 0;
    const hono = app({ DEDICATED_SERVERS: "team-a=http://kfp-artifacts-team-a.team-a.svc:8080" }, () => {
      reads += 1;
      return Promise.resolve(status);
    });
    const response = await hono.request(FILESYSTEM_STORAGE_CONFIG_PATH);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      enabled: true,
      dedicated_namespaces: ["team-a", "team-c"],
      endpoints: { "team-a": "http://kfp-artifacts-team-a.team-a.svc:8080", "team-c": "http://kfp-artifacts-team-c.team-c.svc:8080" },
    });
    await hono.request(FILESYSTEM_STORAGE_CONFIG_PATH);
    expect(reads).toBe(1); // cached
  });

  it("answers with the chart's servers when the status cannot be read, and with none at all", async () => {
    const failing = app({ DEDICATED_SERVERS: "team-a=http://a" }, () => Promise.reject(new Error("forbidden")));
    expect(await (await failing.request(FILESYSTEM_STORAGE_CONFIG_PATH)).json()).toMatchObject({ dedicated_namespaces: ["team-a"] });
    expect(await (await app({}).request(FILESYSTEM_STORAGE_CONFIG_PATH)).json()).toEqual({ enabled: true, dedicated_namespaces: [], endpoints: {} });
  });
});
