// The README's install commands, as written there: first its Helm block (install, `helm test`, uninstall,
// the PVC deleted), then its Kustomize overlay of one's own (the central overlay, the namespace component,
// the image entry) applied with its `kubectl apply -k .`, which is then the shared server the common
// contract runs against. Both land in `kubeflow` with the fixed names a Kubeflow install uses.
//
// The commands run with the project's helm and kubectl first on PATH, against the e2e cluster, from the
// checkout (Helm) and from a directory holding the kustomization and the checkout as ./kfp-artifacts
// (Kustomize). Nothing of them is replaced unless E2E_IMAGE_* names another image than the one the README
// installs; then `imageSubstitutions` says what changes.
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { readme, strictScript, testedCommands, testedFiles } from "../../scripts/docs/readme.js";
import { serviceUrl } from "../support/clients.js";
import { run } from "../support/commands.js";
import { env, REPO_ROOT } from "../support/env.js";
import { kubectlDeleteKustomization } from "../support/install.js";
import { apply, apps, core, deleteNamespaces, isNotFound, namespaceExists } from "../support/kube.js";
import { describeSharedServer, type SharedServer } from "../support/shared-contract.js";
import { e2eSuite } from "../support/suite.js";
import { createTenants } from "../support/tenants.js";

const suite = e2eSuite("shared-kustomize");
const NAMESPACE = "kubeflow";
const NAME = "kfp-artifacts";
const README = readme();
const imageOverridden = process.env.E2E_IMAGE_REPOSITORY !== undefined || process.env.E2E_IMAGE_TAG !== undefined;
let server: SharedServer;

/** The project's helm and kubectl, as `make tools` installs them, ahead of whatever else is on PATH. */
const toolsPath = () => [...new Set([path.dirname(env.helm), path.dirname(env.kubectl)])].join(":") + `:${process.env.PATH ?? ""}`;

/** Above helm's own `--wait` deadline (5 minutes unless `--timeout` says otherwise), so helm's message is the one seen. */
const README_COMMANDS_TIMEOUT_MS = 330_000;

async function runReadme(commands: string, cwd: string, prelude = ""): Promise<string> {
  const { stdout, stderr } = await run("bash", ["-c", strictScript(prelude + commands)], { cwd, timeoutMs: README_COMMANDS_TIMEOUT_MS, env: { PATH: toolsPath() } });
  return stdout + stderr;
}

/**
 * With E2E_IMAGE_* the README's commands would install the published image, not the one under test:
 * Helm's installs get the image values as one more `-f` file, and the kustomization's `images:` entry
 * its newName and newTag. Without E2E_IMAGE_* nothing changes.
 */
const imageSubstitutions = {
  async helmPrelude(dir: string): Promise<string> {
    if (!imageOverridden) return "";
    const values = path.join(dir, "image-values.yaml");
    await writeFile(values, stringify({ image: { registry: "", repository: env.imageRepository, tag: env.imageTag } }));
    return `helm() { if [[ $1 == install ]]; then command helm "$@" -f '${values}'; else command helm "$@"; fi; }\n`;
  },
  kustomization(text: string): string {
    if (!imageOverridden) return text;
    const kustomization = parse(text) as { images?: { name: string; newName?: string; newTag?: string }[] };
    const entry = kustomization.images?.find((image) => image.name === "ghcr.io/kubeflow/kfp-artifacts");
    if (entry === undefined) throw new Error("the README's kustomization has no images: entry for ghcr.io/kubeflow/kfp-artifacts");
    Object.assign(entry, { newName: env.imageRepository, newTag: env.imageTag });
    return stringify(kustomization);
  },
};

suite.setup(async () => {
  // Fixed names, and the README's commands create and delete the namespace: a leftover of an earlier run,
  // or a namespace of someone else's, must not be taken over.
  if (await namespaceExists(NAMESPACE)) throw new Error(`namespace ${NAMESPACE} already exists: delete it (kubectl delete namespace ${NAMESPACE})`);
  suite.watchNamespace(NAMESPACE);
  suite.onCleanup(`delete namespace ${NAMESPACE}`, () => deleteNamespaces([NAMESPACE]));
});

describe("the README's Helm commands, as written", () => {
  it("install into kubeflow, pass helm test, and uninstall with the PVC deleted", async () => {
    const dir = path.join(env.workDir, suite.name("readme-helm"));
    await mkdir(dir, { recursive: true });
    suite.onCleanup("helm uninstall (README)", () => run(env.helm, ["uninstall", NAME, "-n", NAMESPACE, "--ignore-not-found", "--wait"], { timeoutMs: 150_000 }).then(() => undefined));
    const output = await runReadme(testedCommands(README, "helm"), REPO_ROOT, await imageSubstitutions.helmPrelude(dir));
    expect(output).toMatch(/STATUS: deployed/);
    expect(output).toMatch(/Phase:\s+Succeeded/);
    expect(output).toMatch(/release "kfp-artifacts" uninstalled/);
    expect(output).toMatch(/persistentvolumeclaim "kfp-artifacts" deleted/);
    await expect(apps.readNamespacedDeployment({ name: NAME, namespace: NAMESPACE })).rejects.toSatisfy(isNotFound);
    await expect(core.readNamespacedPersistentVolumeClaim({ name: NAME, namespace: NAMESPACE })).rejects.toSatisfy(isNotFound);
  }, README_COMMANDS_TIMEOUT_MS + 30_000);
});

describe("shared server, the README's Kustomize overlay, as written", () => {
  suite.setup(async () => {
    // A directory next to a checkout of the repository, as the README lays it out.
    const dir = path.join(env.workDir, suite.name("readme-kustomize"));
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await symlink(REPO_ROOT, path.join(dir, "kfp-artifacts"));
    for (const [file, text] of testedFiles(README, "kustomize")) {
      await writeFile(path.join(dir, file), file === "kustomization.yaml" ? imageSubstitutions.kustomization(text) : text);
    }
    suite.onCleanup("kubectl delete -k (README)", () => kubectlDeleteKustomization(dir));
    await runReadme(testedCommands(README, "kustomize"), dir);
    const [teamA, teamB] = await createTenants(suite, ["e2e-k-team-a", "e2e-k-team-b"], { editClusterRole: `${NAME}-edit` });
    if (teamA === undefined || teamB === undefined) throw new Error("tenants missing");
    server = {
      url: serviceUrl(NAME, NAMESPACE),
      namespace: NAMESPACE,
      podSelector: "app.kubernetes.io/instance=kfp-artifacts,app.kubernetes.io/component=server",
      replicas: 1,
      teamA,
      teamB,
    };
  }, README_COMMANDS_TIMEOUT_MS + 30_000);

  it("creates the namespace and runs the central overlay's Deployment: one replica, Recreate, the image the README names", async () => {
    const namespace = await core.readNamespace({ name: NAMESPACE });
    expect(namespace.metadata?.labels?.["app.kubernetes.io/part-of"]).toBe("kfp-artifacts");
    const deployment = await apps.readNamespacedDeployment({ name: NAME, namespace: NAMESPACE });
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.spec?.strategy?.type).toBe("Recreate");
    const kustomization = parse(testedFiles(README, "kustomize").get("kustomization.yaml") ?? "") as { images: { newTag: string }[] };
    const expected = imageOverridden ? `${env.imageRepository}:${env.imageTag}` : `ghcr.io/kubeflow/kfp-artifacts:${kustomization.images[0]?.newTag ?? ""}`;
    expect(deployment.spec?.template.spec?.containers[0]?.image).toBe(expected);
  });

  describeSharedServer(() => server);

  it("deletes, with docs/upgrading.md's commands as written, only the S3 key copies the old chart made", async () => {
    const { teamA, teamB } = server;
    const copyName = `${NAME}-s3`;
    const oldChartSecret = (namespace: string, releaseNamespace: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: copyName,
        namespace,
        labels: { "app.kubernetes.io/instance": NAME, "app.kubernetes.io/component": "s3-credentials", "app.kubernetes.io/name": NAME },
        annotations: { "helm.sh/resource-policy": "keep", "meta.helm.sh/release-name": NAME, "meta.helm.sh/release-namespace": releaseNamespace },
      },
      stringData: { accesskey: "old-copy", secretkey: "old-copy" },
    });
    // The pair itself in the release's namespace, the old chart's copy in team-a, and in team-b a Secret
    // of the same name and labels that another release made.
    const keptIn = [NAMESPACE, teamB.namespace];
    await apply([oldChartSecret(NAMESPACE, NAMESPACE), oldChartSecret(teamB.namespace, "elsewhere"), oldChartSecret(teamA.namespace, NAMESPACE)]);
    const upgrading = await readFile(path.join(REPO_ROOT, "docs/upgrading.md"), "utf8");
    const output = await runReadme(testedCommands(upgrading, "old-s3-copies"), REPO_ROOT);
    expect(output).toMatch(new RegExp(`^secret "${copyName}" deleted`, "m"));
    await expect(core.readNamespacedSecret({ name: copyName, namespace: teamA.namespace })).rejects.toSatisfy(isNotFound);
    for (const namespace of keptIn) {
      const found = await core.readNamespacedSecret({ name: copyName, namespace });
      expect(found.data?.accesskey, namespace).toBe(Buffer.from("old-copy").toString("base64"));
    }
  });
});
