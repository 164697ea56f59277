// The chart against the server's configuration schema: every variable the server reads is set by the
// chart (from the value docs/configuration.md names, or by the chart itself), and `extraEnv` replaces a
// variable the chart sets instead of adding a second entry.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { describeSettings } from "../../server/src/config.js";
import { chartDir, everyServerWorkload, findObject, type KubeObject, renderChart, serverContainer } from "./lib/render.js";

const values = parse(readFileSync(path.join(chartDir, "values.yaml"), "utf8")) as Record<string, unknown>;
// What the chart leaves to the server's default, and why (the reference says the same in its Chart column).
const NOT_SET_BY_CHART = ["HOST", "KUBECONFIG"];

function envNames(workload: KubeObject): string[] {
  return (serverContainer(workload).env ?? []).map((variable) => variable.name);
}

function envValue(workload: KubeObject, name: string): string | undefined {
  return serverContainer(workload).env?.find((variable) => variable.name === name)?.value;
}

describe("the chart and the server's configuration", () => {
  it("names only chart values that exist in values.yaml", () => {
    const missing = describeSettings()
      .flatMap((setting) => setting.chartValue ?? [])
      .filter((valuePath) => valuePath.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], values) === undefined);
    expect(missing).toEqual([]);
  });

  it("sets every variable the server reads, except those it leaves to the server's default", async () => {
    const objects = await renderChart({ skipTests: true, set: ["manager.enabled=true", "s3.masterKey.existingSecret=master", "dedicated.namespaces={team-a}"] });
    const settings = describeSettings();
    const expected = settings.map((setting) => setting.name).filter((name) => !NOT_SET_BY_CHART.includes(name));
    const shared = envNames(findObject(objects, "Deployment", "kfp-artifacts"));
    const dedicated = envNames(findObject(objects, "Deployment", "kfp-artifacts-team-a", "team-a"));
    expect([...new Set([...shared, ...dedicated])].sort()).toEqual(expected.sort());
    // In S3, the key material is the one difference: the shared server's keys, a dedicated server's own pair.
    const onlyIn = (these: string[], those: string[]) => these.filter((name) => name.startsWith("S3_") && !those.includes(name)).sort();
    expect(onlyIn(shared, dedicated)).toEqual(["S3_ACCESS_KEY", "S3_ACCESS_KEY_USER", "S3_MASTER_KEY", "S3_SECRET_KEY"]);
    expect(onlyIn(dedicated, shared)).toEqual(["S3_NAMESPACE_ACCESS_KEY", "S3_NAMESPACE_SECRET_KEY"]);
    for (const name of NOT_SET_BY_CHART) expect(settings.find((setting) => setting.name === name)?.chartNote).toMatch(/^not set/);
  });

  it.each([
    ["auth.cacheTtlSeconds=30", "AUTH_CACHE_TTL_SECONDS", "30"],
    ["auth.cacheMaxEntries=500", "AUTH_CACHE_MAX_ENTRIES", "500"],
    ["auth.readyWindowSeconds=120", "AUTH_READY_WINDOW_SECONDS", "120"],
    ["limits.maxArchiveExpandedBytes=50Gi", "MAX_ARCHIVE_EXPANDED_BYTES", "50Gi"],
    ["limits.idleTimeoutSeconds=300", "IDLE_TIMEOUT_SECONDS", "300"],
    ["persistence.fsync=false", "FSYNC", "false"],
    ["processes=3", "SERVER_PROCESSES", "3"],
    ["s3.multipartExpiryHours=24", "S3_MULTIPART_EXPIRY_HOURS", "24"],
  ])("passes %s to %s on every server", async (assignment, name, expected) => {
    const workloads = await everyServerWorkload([assignment]);
    expect(workloads).toHaveLength(3);
    for (const workload of workloads) expect(envValue(workload, name), `${workload.kind} ${workload.metadata.name}`).toBe(expected);
  });
});

describe("extraEnv", () => {
  it("replaces a variable the chart sets, in its place, on every server", async () => {
    const workloads = await everyServerWorkload(["extraEnv[0].name=AUTH_TRUSTED_USER_PREFIX", "extraEnv[0].value=corp:"]);
    for (const workload of workloads) {
      const names = envNames(workload);
      expect(names.filter((name) => name === "AUTH_TRUSTED_USER_PREFIX"), workload.metadata.name).toHaveLength(1);
      expect(envValue(workload, "AUTH_TRUSTED_USER_PREFIX")).toBe("corp:");
      // In the chart's position: variables defined after it may still refer to it as $(AUTH_TRUSTED_USER_PREFIX).
      expect(names.indexOf("AUTH_TRUSTED_USER_PREFIX")).toBeLessThan(names.indexOf("LOG_LEVEL"));
    }
  });

  it("replaces a chart entry that reads a Secret with one of its own, and appends new variables in order", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: [
        "extraEnv[0].name=NODE_OPTIONS",
        "extraEnv[0].value=--max-old-space-size=256",
        "extraEnv[1].name=S3_ACCESS_KEY",
        "extraEnv[1].valueFrom.secretKeyRef.name=my-keys",
        "extraEnv[1].valueFrom.secretKeyRef.key=id",
        "extraEnv[2].name=TZ",
        "extraEnv[2].value=UTC",
        "extraEnv[3].name=NODE_OPTIONS",
        "extraEnv[3].value=--max-old-space-size=384",
      ],
    });
    const workload = findObject(objects, "Deployment", "kfp-artifacts");
    const env = serverContainer(workload).env ?? [];
    const names = env.map((variable) => variable.name);
    expect(names.filter((name) => name === "S3_ACCESS_KEY")).toHaveLength(1);
    expect(env.find((variable) => variable.name === "S3_ACCESS_KEY")?.valueFrom).toEqual({ secretKeyRef: { name: "my-keys", key: "id" } });
    // Two extraEnv entries with one name: the last wins, once.
    expect(names.slice(-2)).toEqual(["NODE_OPTIONS", "TZ"]);
    expect(envValue(workload, "NODE_OPTIONS")).toBe("--max-old-space-size=384");
    expect(new Set(names).size).toBe(names.length);
  });
});
