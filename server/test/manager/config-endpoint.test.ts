// The filesystem-storage config endpoint: the chart's dedicated servers and the manager's, in the KEP's shape.
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createFilesystemStorageApi, FILESYSTEM_STORAGE_CONFIG_PATH, type StatusReader } from "../../src/routes/filesystem-storage.js";
import { serveApis } from "../support/harness.js";

const status = JSON.stringify({
  "team-c": { namespace: "team-c", condition: "Dedicated", dedicated: true, endpoint: "http://kfp-artifacts-team-c.team-c.svc:8080" },
  "team-d": { namespace: "team-d", condition: "InvalidBlock", dedicated: false },
  "team-e": { namespace: "team-e", condition: "Shared", dedicated: false },
});

const servers: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

/** The endpoint alone on a real socket, as the server mounts it. */
async function serve(env: Record<string, string>, readStatus?: StatusReader): Promise<string> {
  const config = loadConfig({ AUTH_MODE: "none", ...env });
  const server = await serveApis((faults) => [createFilesystemStorageApi(config, { faults, ...(readStatus ? { readStatus } : {}) })]);
  servers.push(server);
  return server.url + FILESYSTEM_STORAGE_CONFIG_PATH;
}

describe(FILESYSTEM_STORAGE_CONFIG_PATH, () => {
  it("lists the chart's and the manager's dedicated namespaces with their endpoints", async () => {
    let reads = 0;
    const url = await serve({ DEDICATED_SERVERS: "team-a=http://kfp-artifacts-team-a.team-a.svc:8080" }, () => {
      reads += 1;
      return Promise.resolve(status);
    });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      enabled: true,
      dedicated_namespaces: ["team-a", "team-c"],
      endpoints: { "team-a": "http://kfp-artifacts-team-a.team-a.svc:8080", "team-c": "http://kfp-artifacts-team-c.team-c.svc:8080" },
    });
    await (await fetch(url)).arrayBuffer();
    expect(reads).toBe(1); // cached
  });

  it("answers with the chart's servers when the status cannot be read, and with none at all", async () => {
    const failing = await serve({ DEDICATED_SERVERS: "team-a=http://a" }, () => Promise.reject(new Error("forbidden")));
    expect(await (await fetch(failing)).json()).toMatchObject({ dedicated_namespaces: ["team-a"] });
    expect(await (await fetch(await serve({}))).json()).toEqual({ enabled: true, dedicated_namespaces: [], endpoints: {} });
  });
});
