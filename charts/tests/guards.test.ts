// Every guard in templates/_validate.tpl: the configuration fails to render, and the message names the fix.
import { describe, expect, it } from "vitest";
import { helmTemplate, type RenderOptions } from "./lib/render.js";

type GuardCase = { name: string; options: RenderOptions; message: RegExp[] };

const cases: GuardCase[] = [
  {
    name: "a DaemonSet on a ReadWriteOnce volume",
    options: { set: ["shared.workloadKind=daemonset"] },
    message: [/shared.workloadKind=daemonset/, /persistence.accessMode=ReadWriteMany/, /persistence.hostPath/],
  },
  {
    name: "several shared replicas on a ReadWriteOnce volume",
    options: { set: ["shared.replicas=2"] },
    message: [/shared.replicas=2 cannot share a ReadWriteOnce volume/, /persistence.accessMode=ReadWriteMany/],
  },
  {
    name: "several dedicated replicas on a ReadWriteOnce volume",
    options: { set: ["dedicated.namespaces[0].name=team-a", "dedicated.namespaces[0].replicas=3"] },
    message: [/dedicated server "team-a" has 3 replicas on a ReadWriteOnce volume/, /accessMode=ReadWriteMany/],
  },
  {
    name: "nothing to install",
    options: { set: ["shared.enabled=false"] },
    message: [/nothing to install: set shared.enabled=true or list namespaces in dedicated.namespaces/],
  },
  {
    name: "a dedicated namespace listed twice",
    options: { set: ["dedicated.namespaces={team-a,team-a}"] },
    message: [/dedicated.namespaces lists "team-a" twice/],
  },
  {
    name: "a dedicated server name over 63 characters",
    options: { set: [`dedicated.namespaces={${"n".repeat(60)}}`] },
    message: [/longer than 63 characters: shorten the namespace name or set fullnameOverride/],
  },
  {
    name: "an existing claim and a host path at once",
    options: { set: ["persistence.existingClaim=data", "persistence.hostPath=/mnt/data"] },
    message: [/persistence.existingClaim and persistence.hostPath are both set/],
  },
  {
    name: "a termination grace period that does not exceed the shutdown delay and grace",
    options: { set: ["terminationGracePeriodSeconds=30"] },
    message: [/terminationGracePeriodSeconds=30 must exceed shutdownDelaySeconds \+ shutdownGraceSeconds = 30/],
  },
  {
    name: "kfp-launcher ConfigMaps without dedicated namespaces",
    options: { set: ["kfpLauncherConfig.enabled=true"] },
    message: [/kfpLauncherConfig.enabled .* dedicated.namespaces is empty/],
  },
];

describe("guards", () => {
  it.each(cases)("refuses $name", async ({ options, message }) => {
    const result = await helmTemplate(options);
    expect(result.code).not.toBe(0);
    for (const pattern of message) expect(result.stderr).toMatch(pattern);
  });

  it("accepts the fixes the messages suggest", async () => {
    const fixes: RenderOptions[] = [
      { set: ["shared.workloadKind=daemonset", "persistence.accessMode=ReadWriteMany"] },
      { set: ["shared.workloadKind=daemonset", "persistence.hostPath=/mnt/shared"] },
      { set: ["shared.replicas=2", "persistence.accessMode=ReadWriteMany"] },
      {
        set: [
          "dedicated.namespaces[0].name=team-a",
          "dedicated.namespaces[0].replicas=3",
          "dedicated.namespaces[0].persistence.accessMode=ReadWriteMany",
        ],
      },
      { set: ["terminationGracePeriodSeconds=31"] },
    ];
    const results = await Promise.all(fixes.map((options) => helmTemplate(options)));
    for (const result of results) expect(result.stderr).toBe("");
    expect(results.map((result) => result.code)).toEqual(fixes.map(() => 0));
  });
});
