// `helm lint --strict` with the default values and with every ci/ values file.
import { describe, expect, it } from "vitest";
import { chartDir, ciDir, ciValuesFiles, helm } from "./lib/render.js";

describe("helm lint --strict", () => {
  it.each(["(defaults)", ...ciValuesFiles()])("passes with %s", async (valuesFile) => {
    const values = valuesFile === "(defaults)" ? [] : ["--values", `${ciDir}/${valuesFile}`];
    const result = await helm(["lint", "--strict", chartDir, ...values]);
    expect(result.stdout + result.stderr).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(result.code).toBe(0);
  });

  it("fails on a typo in a Kubernetes field, which the schema types", async () => {
    const result = await helm(["lint", "--strict", chartDir, "--set", "securityContext.readOnlyRootFileSystem=true"]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain("additional properties 'readOnlyRootFileSystem' not allowed");
  });
});
