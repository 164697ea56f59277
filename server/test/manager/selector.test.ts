// The manager's namespace selector: the string form of a Kubernetes label selector, checked at start.
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseLabelSelector } from "../../src/manager/selector.js";
import { REPO_ROOT } from "../support/harness.js";

const MANAGER_BUNDLE = path.join(REPO_ROOT, "server/dist/manager.mjs");

describe("parseLabelSelector", () => {
  it("reads equality, set-based and existence requirements, with the commas of a set kept inside it", () => {
    expect(parseLabelSelector("pipelines.kubeflow.org/enabled=true")).toEqual([{ key: "pipelines.kubeflow.org/enabled", operator: "=", values: ["true"] }]);
    expect(parseLabelSelector("a=b, tier in (gold, silver),!legacy,env notin (dev),team,x==y,z!=w,empty=")).toEqual([
      { key: "a", operator: "=", values: ["b"] },
      { key: "tier", operator: "in", values: ["gold", "silver"] },
      { key: "legacy", operator: "!", values: [] },
      { key: "env", operator: "notin", values: ["dev"] },
      { key: "team", operator: "exists", values: [] },
      { key: "x", operator: "=", values: ["y"] },
      { key: "z", operator: "!=", values: ["w"] },
      { key: "empty", operator: "=", values: [""] },
    ]);
  });

  it.each([
    ["", /empty: it would select every namespace/],
    ["a=b,", /empty requirement/],
    ["a=b,,c", /empty requirement/],
    ["a in (b", /unbalanced parentheses/],
    ["a in b)", /unbalanced parentheses/],
    ["a in ()", /in needs at least one value/],
    ["a=b c", /not a requirement/],
    ["a>3", /not a requirement/],
    ["-a=b", /not a label key/],
    ["a=b_", /not a label value/],
    [`a=${"v".repeat(64)}`, /not a label value/],
    ["Bad_Prefix/a=b", /not a DNS subdomain/],
    ["a in (b,c d)", /not a label value/],
  ])("refuses %j, naming the problem", (selector, message) => {
    expect(() => parseLabelSelector(selector)).toThrow(message);
  });
});

describe("the manager's start", () => {
  it("stops with exit code 2 and a message naming NAMESPACE_SELECTOR when it is not a selector", async () => {
    const child = spawn(process.execPath, [MANAGER_BUNDLE], {
      env: { PATH: process.env.PATH ?? "", MANAGER_NAME: "kfp-artifacts-manager", POD_NAMESPACE: "kubeflow", TEMPLATES_FILE: "/nonexistent", NAMESPACE_SELECTOR: "tier in (gold" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    const line = JSON.parse(output.trim()) as { level: string; msg: string };
    expect(line.level).toBe("error");
    expect(line.msg).toMatch(/NAMESPACE_SELECTOR: not a label selector: .*unbalanced parentheses/);
  });
});
