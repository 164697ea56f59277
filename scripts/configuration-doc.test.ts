// docs/configuration.md is generated from the server's configuration schema; these tests fail when the
// committed file drifts from it, and when the schema documents a default it does not apply.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { describeSettings, loadConfig } from "../server/src/config.js";
import { CONFIGURATION_DOC_PATH, renderConfigurationDoc, variablesByChartValue } from "./configuration-doc.js";

const repoRoot = path.resolve(import.meta.dirname, "..");

describe("docs/configuration.md", () => {
  it("is what the configuration schema generates (run `make manifests` after changing a setting)", () => {
    const committed = readFileSync(path.join(repoRoot, CONFIGURATION_DOC_PATH), "utf8");
    expect(committed).toBe(renderConfigurationDoc());
  });

  it("has a row for every variable the server reads, in the schema's order", () => {
    const settings = describeSettings();
    const rows = renderConfigurationDoc(settings)
      .split("\n")
      .flatMap((line) => /^\| `([A-Z0-9_]+)` \|/.exec(line)?.[1] ?? []);
    expect(rows).toEqual(settings.map((setting) => setting.name));
    expect(rows).toContain("AUTH_READY_WINDOW_SECONDS");
    expect(rows.length).toBeGreaterThan(35);
  });

  it("documents defaults the server applies: each default, set explicitly, changes nothing", () => {
    const defaults = loadConfig({});
    for (const setting of describeSettings()) {
      if (setting.default === undefined) continue;
      expect(loadConfig({ [setting.name]: setting.default }), setting.name).toEqual(defaults);
    }
  });

  it("says how the chart sets every variable: from a value, or itself", () => {
    const silent = describeSettings().filter((setting) => setting.chartValue === undefined && setting.chartNote === undefined);
    expect(silent.map((setting) => setting.name)).toEqual([]);
    expect(variablesByChartValue().get("s3.credentials.existingSecret")).toEqual(["S3_ACCESS_KEY", "S3_SECRET_KEY"]);
  });
});
