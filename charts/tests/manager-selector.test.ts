// manager.namespaceSelector: a label selector as a string or as matchLabels/matchExpressions, checked at
// install by the schema, handed to the manager as the string its own parser accepts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseLabelSelector } from "../../server/src/manager/selector.js";
import { envOf, findObject, helmTemplate, renderChart, type Container } from "./lib/render.js";

const scratch = mkdtempSync(path.join(os.tmpdir(), "manager-selector-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let files = 0;
/** A values file: a selector object cannot be written with --set without also keeping the string default. */
function valuesFile(namespaceSelector: unknown): string {
  const file = path.join(scratch, `values-${(files += 1)}.yaml`);
  writeFileSync(file, stringify({ manager: { enabled: true, namespaceSelector } }));
  return file;
}

async function renderedSelector(namespaceSelector: unknown): Promise<string | undefined> {
  const objects = await renderChart({ valuesFiles: [valuesFile(namespaceSelector)], set: ["manager.enabled=true"], skipTests: true });
  const deployment = findObject(objects, "Deployment", "kfp-artifacts-manager", "kubeflow") as unknown as { spec: { template: { spec: { containers: Container[] } } } };
  const [manager] = deployment.spec.template.spec.containers;
  return manager === undefined ? undefined : envOf(manager).get("NAMESPACE_SELECTOR");
}

describe("manager.namespaceSelector", () => {
  it.each([
    ["the default string", "pipelines.kubeflow.org/enabled=true", "pipelines.kubeflow.org/enabled=true"],
    ["a set-based string", "pipelines.kubeflow.org/enabled=true,tier in (gold,silver),!legacy", "pipelines.kubeflow.org/enabled=true,tier in (gold,silver),!legacy"],
    [
      "matchLabels and every matchExpressions operator",
      {
        matchLabels: { "pipelines.kubeflow.org/enabled": "true", tier: "gold" },
        matchExpressions: [
          { key: "env", operator: "In", values: ["prod", "staging"] },
          { key: "zone", operator: "NotIn", values: ["a"] },
          { key: "team", operator: "Exists" },
          { key: "legacy", operator: "DoesNotExist" },
        ],
      },
      "pipelines.kubeflow.org/enabled=true,tier=gold,env in (prod,staging),zone notin (a),team,!legacy",
    ],
  ])("renders %s as the string the manager parses", async (_what, selector, expected) => {
    const rendered = await renderedSelector(selector);
    expect(rendered).toBe(expected);
    expect(() => parseLabelSelector(rendered ?? "")).not.toThrow();
  });

  it.each([
    ["an unbalanced set", "tier in (gold"],
    ["an empty string", ""],
    ["a trailing comma", "a=b,"],
    ["a comparison the manager does not take", "replicas>3"],
    ["an empty object, which would select every namespace", {}],
    ["empty matchLabels", { matchLabels: {} }],
    ["a label value that is not a string (YAML true)", { matchLabels: { "pipelines.kubeflow.org/enabled": true } }],
    ["In without values", { matchExpressions: [{ key: "env", operator: "In" }] }],
    ["NotIn with no values", { matchExpressions: [{ key: "env", operator: "NotIn", values: [] }] }],
    ["Exists with values", { matchExpressions: [{ key: "env", operator: "Exists", values: ["x"] }] }],
    ["an operator in the wrong case", { matchExpressions: [{ key: "env", operator: "in", values: ["x"] }] }],
    ["a key that is not a label key", { matchExpressions: [{ key: "-env", operator: "Exists" }] }],
    ["an unknown field", { matchLabel: { a: "b" } }],
  ])("refuses %s at install", async (_what, selector) => {
    const result = await helmTemplate({ valuesFiles: [valuesFile(selector)], set: ["manager.enabled=true"], skipTests: true });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toMatch(/manager\/namespaceSelector/);
  });
});
