// The release's versions in step (scripts/release/versions.mjs): the tree as committed, and each way a
// release could go out of step, so the check the release workflow runs first can fail.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { releaseProblems } from "./versions.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const tree = {
  packageJson: readFileSync(path.join(root, "package.json"), "utf8"),
  chartYaml: readFileSync(path.join(root, "charts/kfp-artifacts/Chart.yaml"), "utf8"),
  changelog: readFileSync(path.join(root, "CHANGELOG.md"), "utf8"),
  readme: readFileSync(path.join(root, "README.md"), "utf8"),
};
const version = (JSON.parse(tree.packageJson) as { version: string }).version;

describe("release versions", () => {
  it("are in step in the tree: appVersion, the Artifact Hub image, a SemVer chart version, changes and license", () => {
    expect(releaseProblems(tree)).toEqual([]);
  });

  it("keeps a changelog in Keep a Changelog form, with an Unreleased section", () => {
    expect(tree.changelog).toMatch(/^# Changelog\n/);
    expect(tree.changelog).toContain("https://keepachangelog.com/en/1.1.0/");
    expect(tree.changelog).toMatch(/^## \[Unreleased\]$/m);
  });

  it("refuses a tag for another version, and a version the changelog has no section for", () => {
    expect(releaseProblems({ ...tree, tag: "v9.9.9" })).toContain(`tag v9.9.9 is not v${version}, the version of package.json`);
    expect(releaseProblems({ ...tree, changelog: "## [Unreleased]\n", tag: `v${version}` })).toEqual([
      `CHANGELOG.md has no section "## [${version}] - <date>": move the Unreleased entries there`,
    ]);
    expect(releaseProblems({ ...tree, changelog: `## [${version}] - 2027-01-15\n`, tag: `v${version}` })).toEqual([]);
  });

  it("names a README image tag out of step, and a README that names none", () => {
    expect(tree.readme).toContain(`ghcr.io/kubeflow/kfp-artifacts:${version}`);
    expect(releaseProblems({ ...tree, readme: tree.readme.replace(`newTag: ${version}`, "newTag: 9.9.9") })).toEqual([`README.md names the image tag 9.9.9, not ${version}`]);
    expect(releaseProblems({ ...tree, readme: tree.readme.replace(`image.tag=${version}`, "image.tag=latest") })).toEqual([`README.md names the image tag latest, not ${version}`]);
    expect(releaseProblems({ ...tree, readme: "# kfp-artifacts\n" })).toEqual(["README.md names no image tag"]);
  });

  it("names an appVersion, an image tag or a chart version out of step", () => {
    const chart = tree.chartYaml;
    expect(releaseProblems({ ...tree, chartYaml: chart.replace(/^appVersion: .*$/m, 'appVersion: "9.9.9"') })).toEqual([
      `Chart.yaml appVersion 9.9.9 differs from package.json version ${version}`,
    ]);
    expect(releaseProblems({ ...tree, chartYaml: chart.replace(`kfp-artifacts:${version}`, "kfp-artifacts:latest") })).toEqual([
      `artifacthub.io/images names ghcr.io/kubeflow/kfp-artifacts:latest, not the tag ${version}`,
    ]);
    expect(releaseProblems({ ...tree, chartYaml: chart.replace(/^version: .*$/m, "version: 1.2") })).toEqual(["Chart.yaml version 1.2 is not SemVer"]);
  });

  it("lets the chart version move on its own", () => {
    expect(releaseProblems({ ...tree, chartYaml: tree.chartYaml.replace(/^version: .*$/m, "version: 0.4.2") })).toEqual([]);
  });

  it("needs the Artifact Hub changes to name a kind and a description", () => {
    const chartYaml = tree.chartYaml.replace(/- kind: added\n {6}description: Shared/, "- kind: improved\n      description: Shared");
    expect(releaseProblems({ ...tree, chartYaml })[0]).toMatch(/^artifacthub\.io\/changes: .*"kind":"improved".* needs a kind/);
  });
});
