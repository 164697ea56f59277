// Retention as the chart packages it: the RETENTION_* environment of every server (a dedicated server gets
// its own namespace's overrides) in a form the server's configuration accepts, the schema's refusals, and
// the PrometheusRule, rendered only when enabled.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../server/src/config.js";
import { at, type Container, findObject, helmTemplate, type KubeObject, NAMESPACE, objectsOfKind, type PodSpec, renderChart, type RenderOptions } from "./lib/render.js";

function workloads(objects: KubeObject[]): KubeObject[] {
  return objects.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet");
}

function serverContainer(workload: KubeObject): Container {
  const container = (at(workload, "spec", "template", "spec") as PodSpec).containers.find((c) => c.name === "server");
  if (!container) throw new Error(`${workload.metadata.name} has no server container`);
  return container;
}

function retentionEnv(workload: KubeObject): Record<string, string | undefined> {
  const env = serverContainer(workload).env ?? [];
  return Object.fromEntries(env.filter((v) => v.name.startsWith("RETENTION_")).map((v) => [v.name, v.value]));
}

/** The container's environment as Kubernetes resolves it (namespace field, node name, stand-in secrets). */
function resolvedEnv(workload: KubeObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of serverContainer(workload).env ?? []) {
    const fieldPath = at(variable.valueFrom, "fieldRef", "fieldPath");
    const secret = at(variable.valueFrom, "secretKeyRef") as { name: string; key: string } | undefined;
    if (fieldPath === "metadata.namespace") env[variable.name] = workload.metadata.namespace ?? "";
    else if (fieldPath !== undefined) env[variable.name] = "node-1";
    else if (secret !== undefined) env[variable.name] = `${secret.name}.${secret.key}.0123456789abcdef0123456789abcdef`;
    else env[variable.name] = variable.value ?? "";
  }
  return env;
}

const OVERRIDES = [
  "retention.days=30",
  "retention.namespaceDays.team-a=7",
  "retention.namespaceDays.team-b=0",
  "retention.prefixDays.team-a/tmp/=1",
  "retention.prefixDays.kubeflow/v2/artifacts/=14",
  "retention.sweepIntervalSeconds=600",
  "retention.dryRun=true",
  "dedicated.namespaces={team-a,team-c}",
];

describe("retention environment", () => {
  it("gives every server the defaults: keep forever, sweep hourly, for real", async () => {
    const objects = await renderChart({ skipTests: true, set: ["dedicated.namespaces={team-a}"] });
    expect(workloads(objects)).toHaveLength(2);
    for (const workload of workloads(objects)) {
      expect(retentionEnv(workload), workload.metadata.name).toEqual({
        RETENTION_DAYS: "0",
        RETENTION_NAMESPACE_DAYS: "",
        RETENTION_PREFIX_DAYS: "",
        RETENTION_SWEEP_INTERVAL_SECONDS: "3600",
        RETENTION_DRY_RUN: "false",
      });
      expect(loadConfig(resolvedEnv(workload)).retention).toEqual({ defaultDays: 0, rules: [], sweepIntervalMs: 3_600_000, orphanSweepIntervalMs: 21_600_000, dryRun: false });
    }
  });

  it("gives the shared server every override and a dedicated server those of its own namespace", async () => {
    const objects = await renderChart({ skipTests: true, set: OVERRIDES });
    const shared = findObject(objects, "Deployment", "kfp-artifacts", NAMESPACE);
    expect(retentionEnv(shared)).toEqual({
      RETENTION_DAYS: "30",
      RETENTION_NAMESPACE_DAYS: "team-a=7,team-b=0",
      RETENTION_PREFIX_DAYS: "kubeflow/v2/artifacts/=14,team-a/tmp/=1",
      RETENTION_SWEEP_INTERVAL_SECONDS: "600",
      RETENTION_DRY_RUN: "true",
    });
    expect(loadConfig(resolvedEnv(shared)).retention).toEqual({
      defaultDays: 30,
      rules: [
        { namespace: "team-a", prefix: "", days: 7 },
        { namespace: "team-b", prefix: "", days: 0 },
        { namespace: "kubeflow", prefix: "v2/artifacts/", days: 14 },
        { namespace: "team-a", prefix: "tmp/", days: 1 },
      ],
      sweepIntervalMs: 600_000,
      orphanSweepIntervalMs: 21_600_000,
      dryRun: true,
    });
    const teamA = loadConfig(resolvedEnv(findObject(objects, "Deployment", "kfp-artifacts-team-a", "team-a")));
    expect(teamA.scopeNamespace).toBe("team-a");
    expect(teamA.retention.rules).toEqual([
      { namespace: "team-a", prefix: "", days: 7 },
      { namespace: "team-a", prefix: "tmp/", days: 1 },
    ]);
    const teamC = loadConfig(resolvedEnv(findObject(objects, "Deployment", "kfp-artifacts-team-c", "team-c")));
    expect(teamC.retention).toEqual({ defaultDays: 30, rules: [], sweepIntervalMs: 600_000, orphanSweepIntervalMs: 21_600_000, dryRun: true });
  });

  it("puts the same environment on a DaemonSet", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: ["shared.workloadKind=daemonset", "persistence.accessMode=ReadWriteMany", "retention.days=3", "retention.namespaceDays.team-a=1"],
    });
    const daemonset = findObject(objects, "DaemonSet", "kfp-artifacts", NAMESPACE);
    expect(retentionEnv(daemonset)).toMatchObject({ RETENTION_DAYS: "3", RETENTION_NAMESPACE_DAYS: "team-a=1" });
  });

  it("writes days read from a values file (floats to Helm) as whole numbers", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "retention-values-"));
    try {
      const file = path.join(dir, "values.yaml");
      await writeFile(file, 'retention:\n  days: 365\n  namespaceDays:\n    team-a: 36500\n  prefixDays:\n    "team-a/cache/v1.2/": 2\n  sweepIntervalSeconds: 86400\n');
      const shared = findObject(await renderChart({ valuesFiles: [file], skipTests: true }), "Deployment", "kfp-artifacts", NAMESPACE);
      expect(retentionEnv(shared)).toMatchObject({
        RETENTION_DAYS: "365",
        RETENTION_NAMESPACE_DAYS: "team-a=36500",
        RETENTION_PREFIX_DAYS: "team-a/cache/v1.2/=2",
        RETENTION_SWEEP_INTERVAL_SECONDS: "86400",
      });
      expect(loadConfig(resolvedEnv(shared)).retention.rules).toContainEqual({ namespace: "team-a", prefix: "cache/v1.2/", days: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const rejections: { name: string; options: RenderOptions; error: RegExp }[] = [
  { name: "negative days", options: { set: ["retention.days=-1"] }, error: /retention\/days/ },
  { name: "days beyond a century", options: { set: ["retention.days=36501"] }, error: /retention\/days/ },
  { name: "days that are not a number", options: { setString: ["retention.days=7d"] }, error: /retention\/days/ },
  { name: "a namespace override for a name that is not a namespace", options: { set: ["retention.namespaceDays.Team_A=7"] }, error: /'Team_A' does not match/ },
  { name: "a namespace override that is not a number", options: { setString: ["retention.namespaceDays.team-a=week"] }, error: /retention\/namespaceDays/ },
  { name: "a prefix override with no prefix", options: { set: ["retention.prefixDays.team-a=1"] }, error: /'team-a' does not match/ },
  { name: "a prefix override with a comma", options: { set: ["retention.prefixDays.team-a/a\\,b/=1"] }, error: /'team-a\/a,b\/' does not match/ },
  { name: "a sweep interval under 10 seconds", options: { set: ["retention.sweepIntervalSeconds=5"] }, error: /retention\/sweepIntervalSeconds/ },
  { name: "an orphan sweep interval under a minute", options: { set: ["retention.orphanSweepIntervalSeconds=30"] }, error: /retention\/orphanSweepIntervalSeconds/ },
  { name: "a dry-run switch that is a string", options: { setString: ["retention.dryRun=yes"] }, error: /retention\/dryRun/ },
  { name: "an unknown retention key", options: { set: ["retention.maxAgeDays=3"] }, error: /additional properties 'maxAgeDays' not allowed/ },
  { name: "an unknown alert rule key", options: { set: ["prometheusRule.severity=page"] }, error: /additional properties 'severity' not allowed/ },
  { name: "a free-space threshold with an unknown unit", options: { set: ["prometheusRule.volumeFreeBytes=1GB"] }, error: /prometheusRule\/volumeFreeBytes/ },
  { name: "an alert label that Prometheus refuses", options: { set: ["prometheusRule.alertLabels.team-name=ml"] }, error: /'team-name' does not match/ },
  { name: "zero missed intervals", options: { set: ["prometheusRule.sweepMissedIntervals=0"] }, error: /prometheusRule\/sweepMissedIntervals/ },
];

describe("retention values schema", () => {
  it.each(rejections)("rejects $name", async ({ options, error }) => {
    const result = await helmTemplate(options);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toMatch(error);
  });
});

type Rule = { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> };

function alertRules(rule: KubeObject): Rule[] {
  return (at(rule, "spec", "groups") as { rules: Rule[] }[]).flatMap((group) => group.rules);
}

/** Parentheses, braces and brackets of a PromQL expression close in order (outside strings). */
function balanced(expr: string): boolean {
  const closing: Record<string, string> = { "(": ")", "{": "}", "[": "]" };
  const stack: string[] = [];
  let quoted = false;
  for (const char of expr) {
    if (char === '"') quoted = !quoted;
    if (quoted) continue;
    if (char in closing) stack.push(closing[char] ?? "");
    else if (")}]".includes(char) && stack.pop() !== char) return false;
  }
  return stack.length === 0 && !quoted;
}

describe("PrometheusRule", () => {
  it("is not rendered unless enabled", async () => {
    expect(objectsOfKind(await renderChart({ set: ["serviceMonitor.enabled=true"] }), "PrometheusRule")).toHaveLength(0);
  });

  it("alerts on a volume nearly full and full, and on sweeps failing, not removing and not completing", async () => {
    const objects = await renderChart({
      set: [
        "prometheusRule.enabled=true",
        "prometheusRule.labels.release=prometheus",
        "prometheusRule.alertLabels.team=ml",
        "prometheusRule.volumeFreeBytes=2Gi",
        "prometheusRule.sweepMissedIntervals=4",
        "limits.minFreeBytes=512Mi",
        "retention.sweepIntervalSeconds=900",
        "dedicated.namespaces={team-a}",
      ],
    });
    const rules = objectsOfKind(objects, "PrometheusRule");
    expect(rules).toHaveLength(1);
    const rule = findObject(objects, "PrometheusRule", "kfp-artifacts", NAMESPACE);
    expect(rule.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(rule.metadata.labels).toMatchObject({ release: "prometheus", "app.kubernetes.io/component": "monitoring" });
    const alerts = alertRules(rule);
    expect(alerts.map((a) => a.alert)).toEqual([
      "KfpArtifactsVolumeNearlyFull",
      "KfpArtifactsVolumeFull",
      "KfpArtifactsServerErrors",
      "KfpArtifactsAuthorizationFailingClosed",
      "KfpArtifactsRetentionSweepFailing",
      "KfpArtifactsMaintenanceJobFailing",
      "KfpArtifactsRetentionRemovalErrors",
      "KfpArtifactsRetentionSweepNotCompleting",
    ]);
    const byName = new Map(alerts.map((a) => [a.alert.replace(/^KfpArtifacts/, ""), a]));
    expect(byName.get("VolumeNearlyFull")?.expr).toBe('min by (namespace, service) (kfp_artifacts_volume_free_bytes{service=~"kfp-artifacts|kfp-artifacts-.+"}) < 2147483648');
    expect(byName.get("VolumeFull")?.expr).toContain("< 536870912");
    expect(byName.get("VolumeFull")?.labels.severity).toBe("critical");
    // Two intervals and a quarter of an hour: a failing sweep's counter appears at its first failure, so
    // increase() needs the second one inside the window.
    expect(byName.get("RetentionSweepFailing")?.expr).toContain('kfp_artifacts_job_runs_total{job_name="retention",outcome="error",service=~"kfp-artifacts|kfp-artifacts-.+"}[2700s]');
    // The other jobs (orphans every 6 hours the longest) alert per job, with two runs inside the window.
    expect(byName.get("MaintenanceJobFailing")?.expr).toBe(
      'sum by (namespace, service, job_name) (increase(kfp_artifacts_job_runs_total{job_name!="retention",outcome="error",service=~"kfp-artifacts|kfp-artifacts-.+"}[44100s])) > 0',
    );
    expect(byName.get("RetentionRemovalErrors")?.expr).toContain("kfp_artifacts_retention_sweep_errors_total{");
    const stale = byName.get("RetentionSweepNotCompleting")?.expr ?? "";
    expect(stale).toContain('kfp_artifacts_job_last_success_timestamp_seconds{job_name="retention",');
    expect(stale).toContain("> 3600");
    expect(stale).toContain("kfp_artifacts_process_start_time_seconds{");
    for (const alert of alerts) {
      expect(balanced(alert.expr), alert.alert).toBe(true);
      // The servers' samples carry job_name and artifact_namespace, never a label Prometheus renames.
      expect(alert.expr, alert.alert).not.toMatch(/exported_/);
      expect(alert.labels.team, alert.alert).toBe("ml");
      expect(["warning", "critical"]).toContain(alert.labels.severity);
      // Prometheus's own templates pass through Helm untouched.
      expect(alert.annotations.description, alert.alert).toContain("{{ $labels.service }}");
      expect(alert.annotations.summary).toBeTruthy();
    }
  });

  it("gives every server the orphan sweep's interval, and the maintenance alert two of its runs and a quarter of an hour", async () => {
    const objects = await renderChart({ set: ["prometheusRule.enabled=true", "retention.orphanSweepIntervalSeconds=3600", "dedicated.namespaces={team-a}"] });
    for (const workload of workloads(objects)) {
      const env = resolvedEnv(workload);
      expect(env.ORPHAN_SWEEP_INTERVAL_SECONDS, workload.metadata.name).toBe("3600");
      expect(loadConfig(env).retention.orphanSweepIntervalMs, workload.metadata.name).toBe(3_600_000);
    }
    const maintenance = alertRules(findObject(objects, "PrometheusRule", "kfp-artifacts", NAMESPACE)).find((a) => a.alert.endsWith("MaintenanceJobFailing"));
    expect(maintenance?.expr).toContain("[8100s]");
    expect(maintenance?.annotations.description).toContain("more than once in 8100s");
    // Never shorter than two runs of the 10-minute multipart job.
    const frequent = await renderChart({ set: ["prometheusRule.enabled=true", "retention.orphanSweepIntervalSeconds=60"] });
    expect(alertRules(findObject(frequent, "PrometheusRule", "kfp-artifacts", NAMESPACE)).find((a) => a.alert.endsWith("MaintenanceJobFailing"))?.expr).toContain("[2100s]");
  });

  it("refuses a nearly-full threshold at or below the free space where writes stop", async () => {
    const result = await helmTemplate({ set: ["prometheusRule.enabled=true", "prometheusRule.volumeFreeBytes=256Mi"] });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("prometheusRule.volumeFreeBytes (268435456 bytes) must exceed limits.minFreeBytes (268435456 bytes)");
  });

  it("selects the servers of its own release, whatever their names", async () => {
    const objects = await renderChart({ release: "ml", set: ["prometheusRule.enabled=true", "fullnameOverride=ml-store", "nameOverride=ml-artifacts"] });
    const rule = findObject(objects, "PrometheusRule", "ml-store", NAMESPACE);
    for (const alert of alertRules(rule)) {
      expect(alert.alert).toMatch(/^MlArtifacts/);
      expect(alert.expr).toContain('service=~"ml-store|ml-store-.+"');
    }
  });
});
