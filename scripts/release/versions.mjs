// The versions a release publishes, in step: package.json's version is the server's, which the image is
// tagged with and Chart.yaml's appVersion (the chart's default image tag), the Artifact Hub image
// annotation and the README's install commands repeat. The chart's own `version` is independent (a
// chart-only fix bumps it alone) but must be SemVer, as Helm and OCI registries require. With --tag, the release tag must be v<version> and
// CHANGELOG.md must have that version's section.
//   node scripts/release/versions.mjs [--tag v0.1.0]     (exit 1 naming each problem)
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const CHANGE_KINDS = new Set(["added", "changed", "deprecated", "removed", "fixed", "security"]);

/**
 * @param {{ packageJson: string, chartYaml: string, changelog: string, readme?: string, tag?: string }} files the files' text
 * @returns {string[]} what is out of step (empty: nothing)
 */
export function releaseProblems({ packageJson, chartYaml, changelog, readme, tag }) {
  const problems = [];
  const version = JSON.parse(packageJson).version;
  const chart = YAML.parse(chartYaml);
  if (!SEMVER.test(String(version))) problems.push(`package.json version ${version} is not SemVer`);
  if (!SEMVER.test(String(chart.version))) problems.push(`Chart.yaml version ${chart.version} is not SemVer`);
  if (chart.appVersion !== version) problems.push(`Chart.yaml appVersion ${chart.appVersion} differs from package.json version ${version}`);

  const annotations = chart.annotations ?? {};
  const images = YAML.parse(annotations["artifacthub.io/images"] ?? "[]") ?? [];
  if (images.length === 0) problems.push("Chart.yaml has no artifacthub.io/images annotation");
  for (const { image } of images) {
    if (!String(image).endsWith(`:${version}`)) problems.push(`artifacthub.io/images names ${image}, not the tag ${version}`);
  }
  const changes = YAML.parse(annotations["artifacthub.io/changes"] ?? "[]") ?? [];
  if (changes.length === 0) problems.push("Chart.yaml has no artifacthub.io/changes annotation");
  for (const change of changes) {
    if (!CHANGE_KINDS.has(change?.kind) || typeof change?.description !== "string") {
      problems.push(`artifacthub.io/changes: ${JSON.stringify(change)} needs a kind (${[...CHANGE_KINDS].join(", ")}) and a description`);
    }
  }
  if (!annotations["artifacthub.io/license"]) problems.push("Chart.yaml has no artifacthub.io/license annotation");

  // The README's install commands name the image by its tag (`make image`, `kind load`, `docker run`,
  // `--set image.tag=`, the kustomization's `newTag:`); a reader of a release must get that release's.
  if (readme !== undefined) {
    const tags = [...readme.matchAll(/kfp-artifacts:([0-9A-Za-z][0-9A-Za-z.+-]*)|image\.tag=([0-9A-Za-z][0-9A-Za-z.+-]*)|newTag: (\S+)/g)].map(
      (match) => match[1] ?? match[2] ?? match[3],
    );
    if (tags.length === 0) problems.push("README.md names no image tag");
    for (const readmeTag of new Set(tags)) {
      if (readmeTag !== version) problems.push(`README.md names the image tag ${readmeTag}, not ${version}`);
    }
  }
  if (tag !== undefined) {
    if (tag !== `v${version}`) problems.push(`tag ${tag} is not v${version}, the version of package.json`);
    if (!new RegExp(`^## \\[${version.replace(/[.+]/g, "\\$&")}\\] - \\d{4}-\\d{2}-\\d{2}$`, "m").test(changelog)) {
      problems.push(`CHANGELOG.md has no section "## [${version}] - <date>": move the Unreleased entries there`);
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const tagIndex = process.argv.indexOf("--tag");
  const problems = releaseProblems({
    packageJson: readFileSync(path.join(root, "package.json"), "utf8"),
    chartYaml: readFileSync(path.join(root, "charts/kfp-artifacts/Chart.yaml"), "utf8"),
    changelog: readFileSync(path.join(root, "CHANGELOG.md"), "utf8"),
    readme: readFileSync(path.join(root, "README.md"), "utf8"),
    tag: tagIndex >= 0 ? process.argv[tagIndex + 1] ?? "" : undefined,
  });
  for (const problem of problems) console.error(`release: ${problem}`);
  if (problems.length > 0) process.exit(1);
  console.log("release: versions in step");
}
