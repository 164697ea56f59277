// The chart against the server it deploys: every topology's container environment passes the server's
// own configuration validation (server/src/config.ts), and the `helm test` script round-trips an
// artifact through the real server.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/src/config.js";
import { createLogger } from "../../server/src/log.js";
import { type RunningServer, startServer } from "../../server/src/server.js";
import { at, ciValuesFiles, type Container, type KubeObject, type PodSpec, podSpecs, renderChart } from "./lib/render.js";

const NODE_NAME = "node-1";

/** A stand-in for a Secret's value: a valid key id, and long enough for a secret or master key. */
function secretValue(name: string, key: string): string {
  return `${name}.${key}.0123456789abcdef0123456789abcdef`;
}

/** The environment Kubernetes would give the container, downward API fields and Secrets resolved. */
function resolvedEnv(container: Container, owner: KubeObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const fieldPath = at(variable.valueFrom, "fieldRef", "fieldPath");
    const secret = at(variable.valueFrom, "secretKeyRef") as { name: string; key: string } | undefined;
    if (fieldPath === "metadata.namespace") env[variable.name] = owner.metadata.namespace ?? "";
    else if (fieldPath === "spec.nodeName") env[variable.name] = NODE_NAME;
    else if (fieldPath !== undefined) env[variable.name] = `field:${JSON.stringify(fieldPath)}`;
    else if (secret !== undefined) env[variable.name] = secretValue(secret.name, secret.key);
    else env[variable.name] = variable.value ?? "";
  }
  return env;
}

describe("server environment contract", () => {
  it.each(ciValuesFiles())("the servers of %s start with a valid configuration", async (valuesFile) => {
    const objects = await renderChart({ valuesFiles: [valuesFile], skipTests: true });
    const workloads = objects.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet");
    expect(workloads.length).toBeGreaterThanOrEqual(1);
    for (const workload of workloads) {
      const spec = at(workload, "spec", "template", "spec") as PodSpec;
      const container = spec.containers.find((c) => c.name === "server");
      if (!container) throw new Error(`${workload.metadata.name} has no server container`);
      const config = loadConfig(resolvedEnv(container, workload));
      expect(config.port).toBe(8080);
      expect(config.artifactsRoot).toBe("/artifacts");
      expect(config.nodeName).toBe(NODE_NAME);
      const dedicated = workload.metadata.labels?.["app.kubernetes.io/component"] === "dedicated-server";
      expect(config.scopeNamespace).toBe(dedicated ? workload.metadata.namespace : undefined);
      expect(Number(spec.terminationGracePeriodSeconds) * 1000).toBeGreaterThan(config.shutdownDelayMs + config.shutdownGraceMs);
    }
  });

  it("passes every S3 value in a form the server accepts", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: [
        "s3.port=9100",
        "s3.kubeflowBucket=artifacts.example",
        "s3.systemNamespace=kfp",
        "s3.masterKey.existingSecret=kfp-master-key",
        "s3.namespaceServiceAccount=pipeline-runner",
        "dedicated.namespaces={team-a}",
      ],
    });
    for (const workload of objects.filter((o) => o.kind === "Deployment")) {
      const container = (at(workload, "spec", "template", "spec") as PodSpec).containers[0] as Container;
      const env = resolvedEnv(container, workload);
      const config = loadConfig(env) as unknown as { s3?: { port: number; kubeflowBucket: string; systemNamespace: string; namespaceKey?: unknown } };
      // The S3 settings as the server reads them (present once server/src/config.ts has them).
      if (config.s3) expect(config.s3).toMatchObject({ port: 9100, kubeflowBucket: "artifacts.example", systemNamespace: "kfp" });
      // The shared server holds the master key; a dedicated server its own namespace's pair alone, from its namespace.
      if (workload.metadata.namespace === "team-a") {
        expect(env.S3_MASTER_KEY).toBeUndefined();
        expect(config.s3?.namespaceKey).toMatchObject({ accessKeyId: secretValue("kfp-artifacts-s3-namespace-key", "accesskey"), namespace: "team-a", serviceAccount: "pipeline-runner" });
      } else {
        expect(env.S3_MASTER_KEY).toBe(secretValue("kfp-master-key", "masterkey"));
      }
    }
  });

  it("passes byte sizes written as bare numbers in a values file exactly (Helm reads them as floats)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "byte-sizes-"));
    try {
      const file = path.join(dir, "values.yaml");
      await writeFile(file, "limits:\n  maxUploadBytes: 10737418240\n  minFreeBytes: 1000000\n  namespaceQuotaBytes: 5368709120\n");
      const objects = await renderChart({ valuesFiles: [file], skipTests: true });
      const deployment = objects.find((o) => o.kind === "Deployment") as KubeObject;
      const container = (at(deployment, "spec", "template", "spec") as PodSpec).containers[0] as Container;
      const env = resolvedEnv(container, deployment);
      expect(env).toMatchObject({ MAX_UPLOAD_BYTES: "10737418240", MIN_FREE_BYTES: "1000000", NAMESPACE_QUOTA_BYTES: "5368709120" });
      const config = loadConfig(env);
      expect(config.maxUploadBytes).toBe(10 * 2 ** 30);
      expect(config.minFreeBytes).toBe(1_000_000);
      expect(config.namespaceQuotaBytes).toBe(5 * 2 ** 30);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("passes byte sizes the way the server reads them", async () => {
    const objects = await renderChart({ set: ["limits.maxUploadBytes=1Gi", "limits.namespaceQuotaBytes=5368709120"] });
    const deployment = objects.find((o) => o.kind === "Deployment");
    const container = (at(deployment, "spec", "template", "spec") as PodSpec).containers[0] as Container;
    const config = loadConfig(resolvedEnv(container, deployment as KubeObject));
    expect(config.maxUploadBytes).toBe(2 ** 30);
    expect(config.namespaceQuotaBytes).toBe(5 * 2 ** 30);
    expect(config.minFreeBytes).toBe(256 * 2 ** 20);
  });
});

describe("helm test script", () => {
  let scratch = "";
  let running: RunningServer | undefined;
  let script = "";

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "helm-test-script-"));
    await writeFile(path.join(scratch, "token"), "test-token\n");
    const config = loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      ARTIFACTS_ROOT: path.join(scratch, "data"),
      AUTH_MODE: "none",
      LOG_LEVEL: "error",
    });
    running = await startServer(config, createLogger("error"));
    const objects = await renderChart();
    const pod = podSpecs(objects).find(({ owner }) => owner.startsWith("Pod "));
    const command = pod?.spec.containers[0]?.command as string[] | undefined;
    // The pod reads its projected token from a fixed path; point the script at the scratch token.
    script = (command?.[2] ?? "").replace("/var/run/secrets/tokens/token", path.join(scratch, "token"));
  });

  afterAll(async () => {
    await running?.shutdown();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  function runScript(artifactsUrl: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ["-e", script],
        { env: { ARTIFACTS_URL: artifactsUrl, POD_UID: "3f1c2b", PATH: process.env.PATH ?? "" }, timeout: 30_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it("writes, reads back and deletes an artifact through the server", async () => {
    expect(script).toContain("fetch(url");
    const port = running?.port ?? 0;
    const result = await runScript(`http://127.0.0.1:${port}/v1/namespaces/kubeflow/artifacts`);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, uri: "kfp-artifacts://kubeflow/helm-test/3f1c2b.txt" });
    // The test cleans up after itself.
    expect(await readdir(path.join(scratch, "data/kubeflow/helm-test")).catch(() => [])).toEqual([]);
  });

  it("fails, saying why, when the server refuses the write", async () => {
    const port = running?.port ?? 0;
    const result = await runScript(`http://127.0.0.1:${port}/v1/namespaces/Not_A_Namespace/artifacts`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/artifact round trip failed: PUT 4\d\d/);
  });
});
