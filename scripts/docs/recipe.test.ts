// The shell recipes the project documents: docs/get-artifacts.md (which the shared-helm e2e suite runs
// as written) and the token recipe NOTES.txt prints after `helm install`. Here, without a cluster: the
// page parses, is valid bash, reads no variable it does not set, and names only objects the chart
// renders, with an identity whose RoleBinding grants the verb each request needs in its namespace.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { at, isHelmHook, type Container, type KubeObject, renderChart, renderNotes, type RenderOptions, repoRoot } from "../../charts/tests/lib/render.js";
import {
  assignedVariables,
  expand,
  fencedBlocks,
  parseRecipe,
  readVariables,
  type Recipe,
  RecipeError,
  recipeScript,
  references,
  type References,
  variants,
} from "./recipe.js";

const PAGE = path.join(repoRoot, "docs/get-artifacts.md");
const page = readFileSync(PAGE, "utf8");

type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[] };

function serverContainer(objects: KubeObject[]): Container {
  const workload = objects.find((object) => ["Deployment", "DaemonSet"].includes(object.kind) && !isHelmHook(object) && object.metadata.labels?.["app.kubernetes.io/component"] !== "manager");
  const containers = at(workload, "spec", "template", "spec", "containers") as Container[] | undefined;
  const server = containers?.find((container) => container.name === "server");
  if (!server) throw new Error("the chart rendered no server container");
  return server;
}

/** What is wrong with a recipe's references against the objects the chart renders (empty: nothing). */
function accessProblems(found: References, objects: KubeObject[]): string[] {
  const problems: string[] = [];
  const rendered = objects.filter((object) => !isHelmHook(object));
  const clusterRoles = new Map(rendered.filter((object) => object.kind === "ClusterRole").map((object) => [object.metadata.name, object]));
  const grants = (role: string, verb: string) =>
    ((clusterRoles.get(role)?.rules ?? []) as Rule[]).some(
      (rule) => rule.apiGroups?.includes("pipelines.kubeflow.org") && rule.resources?.includes("runs") && rule.verbs?.includes(verb),
    );
  const env = serverContainer(rendered).env ?? [];
  const envValue = (name: string) => env.find((variable) => variable.name === name)?.value;

  for (const binding of found.roleBindings) {
    if (!clusterRoles.has(binding.clusterRole)) problems.push(`RoleBinding ${binding.namespace}/${binding.name}: the chart renders no ClusterRole ${binding.clusterRole}`);
  }
  for (const forward of found.portForwards) {
    const service = rendered.find((object) => object.kind === "Service" && object.metadata.name === forward.service && object.metadata.namespace === forward.namespace);
    const ports = (at(service, "spec", "ports") as { port: number }[] | undefined) ?? [];
    if (!service) problems.push(`port-forward: the chart renders no Service ${forward.namespace}/${forward.service}`);
    else if (!ports.some((port) => port.port === forward.targetPort)) problems.push(`port-forward: Service ${forward.namespace}/${forward.service} has no port ${forward.targetPort}`);
  }
  const audiences = (envValue("AUTH_AUDIENCES") ?? "").split(",");
  for (const token of found.tokens) {
    if (!found.serviceAccounts.some((account) => account.namespace === token.namespace && account.name === token.serviceAccount)) {
      problems.push(`a token for ${token.namespace}/${token.serviceAccount}, a ServiceAccount the recipe does not create`);
    }
    if (token.audience === undefined || !audiences.includes(token.audience)) problems.push(`a token for audience ${String(token.audience)}; the server accepts ${audiences.join(", ")}`);
  }
  if (found.artifactRequests.length > 0 && found.tokens.length === 0) problems.push("requests artifacts but makes no token");
  for (const request of found.artifactRequests) {
    for (const token of found.tokens) {
      const granted = found.roleBindings.some(
        (binding) =>
          binding.namespace === request.namespace &&
          binding.subject.namespace === token.namespace &&
          binding.subject.name === token.serviceAccount &&
          grants(binding.clusterRole, request.verb),
      );
      if (!granted) problems.push(`${request.verb} in ${request.namespace}: no RoleBinding there grants it to ${token.namespace}/${token.serviceAccount}`);
    }
  }
  const s3Secret = env.find((variable) => variable.name === "S3_ACCESS_KEY")?.valueFrom as { secretKeyRef?: { name?: string } } | undefined;
  for (const secret of found.secrets) {
    if (secret.name !== s3Secret?.secretKeyRef?.name) problems.push(`Secret ${secret.name}: the server reads its S3 keys from ${String(s3Secret?.secretKeyRef?.name)}`);
  }
  for (const object of found.s3Objects) {
    if (object.bucket !== envValue("S3_KUBEFLOW_BUCKET")) problems.push(`s3://${object.bucket}: the Kubeflow bucket is ${String(envValue("S3_KUBEFLOW_BUCKET"))}`);
  }
  return problems;
}

const allSteps = (recipe: Recipe) => recipe.steps.map((step) => step.text).join("\n");

function bashSyntaxErrors(script: string): string {
  const result = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
  return result.status === 0 ? "" : result.stderr;
}

describe("Markdown recipes", () => {
  const sample = [
    "Intro",
    "```sh recipe-settings",
    "NAME=team-a   # a comment",
    'QUOTED="two words"',
    "```",
    "````md",
    "```sh recipe",
    "not a block of its own",
    "```",
    "````",
    "```sh recipe",
    "echo \"$NAME\"",
    "```",
    "```sh recipe=one",
    "touch one.txt",
    "```",
    "```yaml",
    "kind: Illustration",
    "```",
  ].join("\n");

  it("finds fenced blocks with their info strings, a longer fence enclosing a shorter one", () => {
    const blocks = fencedBlocks(sample);
    expect(blocks.map((block) => [block.language, block.attributes.join(" "), block.line])).toEqual([
      ["sh", "recipe-settings", 2],
      ["md", "", 6],
      ["sh", "recipe", 11],
      ["sh", "recipe=one", 14],
      ["yaml", "", 17],
    ]);
    expect(blocks[1]?.text).toBe("```sh recipe\nnot a block of its own\n```");
  });

  it("reads the settings and the steps, and only the marked blocks", () => {
    const recipe = parseRecipe(sample);
    expect(recipe.settings).toEqual({ NAME: "team-a", QUOTED: "two words" });
    expect(recipe.steps.map((step) => [step.variant, step.text])).toEqual([
      [undefined, 'echo "$NAME"'],
      ["one", "touch one.txt"],
    ]);
    expect(variants(recipe)).toEqual(["one"]);
  });

  it("refuses a page without one settings block, without steps, or with a step that is not sh", () => {
    expect(() => parseRecipe("```sh recipe\nls\n```")).toThrow(RecipeError);
    expect(() => parseRecipe("```sh recipe-settings\nA=1\n```")).toThrow(/no `recipe` block/);
    expect(() => parseRecipe("```sh recipe-settings\nA=1\n```\n```python recipe\nprint()\n```")).toThrow(/must be `sh`/);
  });

  it("builds a script with the runner's settings, and refuses settings the page does not have or lacks", () => {
    const recipe = parseRecipe(sample);
    const script = recipeScript(recipe, { NAME: "it's", QUOTED: "x" });
    expect(script).toContain("NAME='it'\\''s'");
    expect(script).not.toContain("team-a");
    expect(script).toMatch(/mkdir one\n\(\ncd one\n.*\ntouch one\.txt\n\)/);
    expect(bashSyntaxErrors(script)).toBe("");
    expect(() => recipeScript(recipe, { NAME: "a" })).toThrow(/missing for QUOTED/);
    expect(() => recipeScript(recipe, { NAME: "a", QUOTED: "b", EXTRA: "c" })).toThrow(/no setting EXTRA/);
    expect(() => recipeScript(recipe, { NAME: "a", QUOTED: "b" }, ["two"])).toThrow(/no variant two/);
  });

  it("runs the common steps once and each variant in its own directory", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "recipe-"));
    try {
      const result = spawnSync("bash", ["-c", recipeScript(parseRecipe(sample), { NAME: "team-a", QUOTED: "x" })], { cwd: dir, encoding: "utf8" });
      expect(result.stderr).toBe("");
      expect(result.stdout).toBe("team-a\n");
      expect(existsSync(path.join(dir, "one", "one.txt"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("knows which variables a script reads and sets", () => {
    expect([...readVariables(`echo "$A" \${B} '$NOT_READ' $!`)]).toEqual(["A", "B"]);
    expect([...assignedVariables("A=1\nexport B=$(x)\n  C='y'")]).toEqual(["A", "B", "C"]);
  });
});

describe("docs/get-artifacts.md", () => {
  const recipe = parseRecipe(page);

  it("offers curl and the aws CLI after the common steps", () => {
    expect(variants(recipe)).toEqual(["curl", "aws"]);
    expect(Object.keys(recipe.settings)).toEqual(["NAMESPACE", "KEY", "SERVER_NAMESPACE", "SERVER", "LOCAL_PORT", "LOCAL_S3_PORT"]);
  });

  it("is valid bash", () => {
    expect(bashSyntaxErrors(recipeScript(recipe, recipe.settings))).toBe("");
  });

  it("reads no variable that neither the settings nor the recipe set", () => {
    const known = new Set([...Object.keys(recipe.settings), ...assignedVariables(allSteps(recipe))]);
    expect([...readVariables(allSteps(recipe))].filter((name) => !known.has(name))).toEqual([]);
  });

  it("names only objects the chart renders, and binds the identity it makes a token for to read what it downloads", async () => {
    const objects = await renderChart({ release: recipe.settings.SERVER ?? "" });
    const found = references(expand(allSteps(recipe), recipe.settings));
    expect(found.tokens).toEqual([{ namespace: "team-a", serviceAccount: "artifact-reader", audience: "pipelines.kubeflow.org" }]);
    expect(found.artifactRequests).toEqual([{ namespace: "team-a", key: recipe.settings.KEY, verb: "readArtifact" }]);
    expect(found.s3Objects).toEqual([{ bucket: "mlpipeline", key: `private-artifacts/team-a/${recipe.settings.KEY ?? ""}`, verb: "readArtifact" }]);
    expect(found.portForwards.map((forward) => forward.targetPort)).toEqual([8080, 9000]);
    expect(accessProblems(found, objects)).toEqual([]);
  });

  it("fails the check when the binding is missing or names a role the chart does not render", async () => {
    const objects = await renderChart();
    const steps = expand(allSteps(recipe), recipe.settings);
    const unbound = steps.replace(/^kubectl .* create rolebinding .*$/m, "");
    expect(accessProblems(references(unbound), objects)).toEqual(["readArtifact in team-a: no RoleBinding there grants it to team-a/artifact-reader"]);
    const wrongRole = steps.replace('--clusterrole="kfp-artifacts-view"', "--clusterrole=kfp-artifacts-reader");
    expect(accessProblems(references(wrongRole), objects)).toContain("RoleBinding team-a/artifact-reader: the chart renders no ClusterRole kfp-artifacts-reader");
  });
});

describe("NOTES.txt's token recipe", () => {
  const configurations: { title: string; options: RenderOptions }[] = [
    { title: "the defaults", options: {} },
    { title: "dedicated servers only", options: { set: ["shared.enabled=false", "dedicated.namespaces={team-a}"] } },
    { title: "a rebranded full name", options: { set: ["fullnameOverride=acme-artifacts"] } },
  ];

  it.each(configurations)("with $title, binds the ServiceAccount it makes a token for to write where it uploads", async ({ options }) => {
    const [notes, objects] = await Promise.all([renderNotes(options), renderChart(options)]);
    const tokenRecipe = notes.slice(notes.indexOf("\n  3. "), notes.indexOf("\n  4. "));
    expect(tokenRecipe).toContain("create token");
    const found = references(tokenRecipe);
    expect(found.tokens).toHaveLength(1);
    expect(found.artifactRequests.map((request) => request.verb)).toEqual(["writeArtifact"]);
    expect(accessProblems(found, objects)).toEqual([]);
  });

  it("would fail for a token of the namespace's default ServiceAccount, which no binding lets write", async () => {
    const objects = await renderChart();
    const defaultAccount = [
      "kubectl -n kubeflow port-forward svc/kfp-artifacts 8080:8080",
      "TOKEN=$(kubectl create token default -n kubeflow --audience pipelines.kubeflow.org)",
      'curl -H "Authorization: Bearer $TOKEN" -T ./file.txt http://127.0.0.1:8080/v1/namespaces/kubeflow/artifacts/demo/file.txt',
    ].join("\n");
    expect(accessProblems(references(defaultAccount), objects)).toEqual([
      "a token for kubeflow/default, a ServiceAccount the recipe does not create",
      "writeArtifact in kubeflow: no RoleBinding there grants it to kubeflow/default",
    ]);
  });
});
