// Monitoring objects: ServiceMonitor or PodMonitor per server, the alerts beyond retention (server errors,
// authorization failing closed), the Grafana dashboard, and the NetworkPolicy's egress. The alert and
// dashboard queries are checked against the metrics the server really registers.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createAuthMetrics } from "../../server/src/auth/metrics.js";
import { createMetrics } from "../../server/src/metrics.js";
import { at, findObject, helmTemplate, NAMESPACE, objectsOfKind, renderChart } from "./lib/render.js";

/** Names of the series the server exposes (a histogram's `_bucket`, `_sum` and `_count` included). */
async function serverSeries(): Promise<Set<string>> {
  const registry = new Registry();
  createMetrics({ freeBytes: () => Promise.resolve(0), usedBytesByNamespace: () => [] }, registry);
  createAuthMetrics(registry);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
  }
  return names;
}

function metricsIn(expression: string): string[] {
  return [...expression.matchAll(/\b(kfp_artifacts_[a-z_]+)\b/g)].map((match) => match[1] ?? "");
}

describe("ServiceMonitor and PodMonitor", () => {
  it("pass scrapeTimeout, relabelings and metricRelabelings, and live in the namespace asked for", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: [
        "serviceMonitor.enabled=true",
        "serviceMonitor.scrapeTimeout=10s",
        "serviceMonitor.namespace=monitoring",
        "serviceMonitor.relabelings[0].targetLabel=cluster",
        "serviceMonitor.relabelings[0].replacement=prod",
        "serviceMonitor.metricRelabelings[0].action=drop",
        "serviceMonitor.metricRelabelings[0].sourceLabels={__name__}",
        "serviceMonitor.metricRelabelings[0].regex=kfp_artifacts_nodejs_.*",
        "dedicated.namespaces={team-a}",
      ],
    });
    const monitors = objectsOfKind(objects, "ServiceMonitor");
    expect(monitors.map((m) => `${m.metadata.namespace}/${m.metadata.name}`).sort()).toEqual(["monitoring/kfp-artifacts", "monitoring/kfp-artifacts-team-a"]);
    const dedicated = findObject(monitors, "ServiceMonitor", "kfp-artifacts-team-a");
    expect(at(dedicated, "spec", "namespaceSelector")).toEqual({ matchNames: ["team-a"] });
    expect(at(dedicated, "spec", "endpoints", 0)).toEqual({
      port: "http",
      path: "/metrics",
      interval: "30s",
      scrapeTimeout: "10s",
      relabelings: [{ targetLabel: "cluster", replacement: "prod" }],
      metricRelabelings: [{ action: "drop", sourceLabels: ["__name__"], regex: "kfp_artifacts_nodejs_.*" }],
    });
  });

  it("offers a PodMonitor that labels samples with the server's Service name, as the alerts expect", async () => {
    const objects = await renderChart({ skipTests: true, set: ["podMonitor.enabled=true", "shared.workloadKind=daemonset", "persistence.accessMode=ReadWriteMany"] });
    expect(objectsOfKind(objects, "ServiceMonitor")).toEqual([]);
    const monitor = findObject(objects, "PodMonitor", "kfp-artifacts", NAMESPACE);
    expect(at(monitor, "spec", "selector", "matchLabels")).toEqual(at(findObject(objects, "DaemonSet", "kfp-artifacts"), "spec", "selector", "matchLabels"));
    expect(at(monitor, "spec", "podMetricsEndpoints", 0, "relabelings")).toEqual([{ action: "replace", targetLabel: "service", replacement: "kfp-artifacts" }]);
  });

  it("refuses both at once, which would scrape every server twice", async () => {
    const result = await helmTemplate({ set: ["serviceMonitor.enabled=true", "podMonitor.enabled=true"] });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("serviceMonitor.enabled and podMonitor.enabled would scrape every server twice");
  });
});

describe("PrometheusRule beyond retention", () => {
  it("alerts on 5xx beyond the ratio (507 excluded) and on authorization reviews failing, with metrics the server exports", async () => {
    const objects = await renderChart({ skipTests: true, set: ["prometheusRule.enabled=true", "prometheusRule.serverErrorRatio=0.1"] });
    const groups = at(findObject(objects, "PrometheusRule", "kfp-artifacts", NAMESPACE), "spec", "groups") as { name: string; rules: { alert: string; expr: string; labels: Record<string, string> }[] }[];
    const requests = groups.find((group) => group.name === "kfp-artifacts.requests");
    expect(requests?.rules.map((rule) => rule.alert)).toEqual(["KfpArtifactsServerErrors", "KfpArtifactsAuthorizationFailingClosed"]);
    const [errors, authorization] = requests?.rules ?? [];
    expect(errors?.expr).toContain('status=~"5..",status!="507",service=~"kfp-artifacts|kfp-artifacts-.+"');
    expect(errors?.expr).toMatch(/> 0\.1$/);
    expect(authorization?.expr).toContain('kfp_artifacts_auth_reviews_total{outcome="error",service=~"kfp-artifacts|kfp-artifacts-.+"}');
    expect(authorization?.labels.severity).toBe("critical");
    const exported = await serverSeries();
    for (const rule of requests?.rules ?? []) for (const metric of metricsIn(rule.expr)) expect(exported, `${rule.alert}: ${metric}`).toContain(metric);
  });

  it("refuses an error ratio outside (0, 1]", async () => {
    for (const ratio of ["0", "1.5"]) {
      const result = await helmTemplate({ set: ["prometheusRule.enabled=true", `prometheusRule.serverErrorRatio=${ratio}`] });
      expect(result.code, ratio).not.toBe(0);
      expect(result.stderr).toMatch(/prometheusRule\/serverErrorRatio/);
    }
  });
});

describe("Grafana dashboard", () => {
  it("is a ConfigMap for Grafana's sidecar, selecting this release's servers with metrics the server exports", async () => {
    const off = await renderChart({ skipTests: true });
    expect(objectsOfKind(off, "ConfigMap").map((c) => c.metadata.name)).not.toContain("kfp-artifacts-dashboard");
    const objects = await renderChart({ skipTests: true, set: ["grafanaDashboard.enabled=true", "grafanaDashboard.namespace=grafana", "grafanaDashboard.annotations.grafana_folder=Kubeflow"] });
    const configMap = findObject(objects, "ConfigMap", "kfp-artifacts-dashboard", "grafana");
    expect(configMap.metadata.labels?.grafana_dashboard).toBe("1");
    expect(configMap.metadata.annotations).toEqual({ grafana_folder: "Kubeflow" });
    const dashboard = JSON.parse(String(at(configMap, "data", "kfp-artifacts.json"))) as {
      title: string;
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.title).toBe("kfp-artifacts (kfp-artifacts)");
    expect(dashboard.uid).toBe("kfp-artifacts");
    const expressions = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
    expect(expressions.length).toBeGreaterThanOrEqual(8);
    const exported = await serverSeries();
    for (const expression of expressions) {
      expect(expression).toContain('service=~"kfp-artifacts|kfp-artifacts-.+"');
      expect(expression).not.toContain("__SERVERS__");
      for (const metric of metricsIn(expression)) expect(exported, metric).toContain(metric);
    }
    const titles = dashboard.panels.map((panel) => panel.title);
    for (const title of ["5xx share", "Volume free", "Authorization reviews"]) expect(titles).toContain(title);
  });
});

describe("NetworkPolicy egress", () => {
  it("lets the servers reach DNS and the API server only, on every server", async () => {
    const objects = await renderChart({ skipTests: true, set: ["networkPolicy.enabled=true", "dedicated.namespaces={team-a}", "networkPolicy.egress.apiServerPeers[0].ipBlock.cidr=172.18.0.2/32"] });
    const policies = objectsOfKind(objects, "NetworkPolicy");
    expect(policies).toHaveLength(2);
    for (const policy of policies) {
      expect(at(policy, "spec", "policyTypes")).toEqual(["Ingress", "Egress"]);
      expect(at(policy, "spec", "egress")).toEqual([
        { ports: [{ port: 53, protocol: "UDP" }, { port: 53, protocol: "TCP" }] },
        { ports: [{ port: 443, protocol: "TCP" }, { port: 6443, protocol: "TCP" }], to: [{ ipBlock: { cidr: "172.18.0.2/32" } }] },
      ]);
    }
  });

  it("lets an Istio sidecar reach istiod when the chart's Istio policy is on", async () => {
    const objects = await renderChart({ skipTests: true, valuesFiles: ["kubeflow-values.yaml"], set: ["networkPolicy.enabled=true"] });
    const egress = at(objectsOfKind(objects, "NetworkPolicy")[0], "spec", "egress") as unknown[];
    expect(egress).toContainEqual({ ports: [{ port: 15012, protocol: "TCP" }] });
    expect(egress).toHaveLength(3);
  });

  it("adds extra rules, or leaves egress open when turned off", async () => {
    const extra = await renderChart({ skipTests: true, set: ["networkPolicy.enabled=true", "networkPolicy.egress.extra[0].ports[0].port=4317"] });
    expect((at(objectsOfKind(extra, "NetworkPolicy")[0], "spec", "egress") as unknown[]).at(-1)).toEqual({ ports: [{ port: 4317 }] });
    const open = await renderChart({ skipTests: true, set: ["networkPolicy.enabled=true", "networkPolicy.egress.enabled=false"] });
    const policy = objectsOfKind(open, "NetworkPolicy")[0];
    expect(at(policy, "spec", "policyTypes")).toEqual(["Ingress"]);
    expect(at(policy, "spec", "egress")).toBeUndefined();
  });
});
