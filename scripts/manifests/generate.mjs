#!/usr/bin/env node
// Generates every file derived from the Helm chart, so the chart stays the single source of truth:
//   charts/kfp-artifacts/examples/<topology>.yaml   `helm template` of each ci/*-values.yaml
//   charts/kfp-artifacts/README.md                  the values table, from values.yaml's comments
//   kustomize/base/**                               static manifests of the central server
//   kustomize/components/*/generated/*.yaml         objects the components add (DaemonSet, PDB, S3 alias, ...)
//   docs/configuration.md                           the server's environment, from server/src/config.ts
// Usage: node scripts/manifests/generate.mjs [--check]
// --check renders in memory and fails, naming the files, when anything differs from what is committed (CI's guard against hand edits and forgotten regeneration).
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import YAML from "yaml";
import { renderChartReadme } from "./chart-readme.mjs";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const chartDir = path.join(repoRoot, "charts/kfp-artifacts");
const helm = path.join(repoRoot, "bin/helm");

// Static manifests are rendered as this release in this namespace (Kubeflow's install namespace).
const RELEASE = "kfp-artifacts";
const NAMESPACE = "kubeflow";
// The dedicated template is rendered for this namespace, then made namespace-neutral for stamping.
const PLACEHOLDER_NAMESPACE = "dedicated-placeholder";
// The manager is a component of its own in kustomize (kustomize/components/manager), not part of the base.
const STATIC = ["--set", "helmLabels=false", "--skip-tests", "--set", "manager.enabled=false"];
const GENERATED_HEADER =
  "# Generated from charts/kfp-artifacts by `make manifests` (scripts/manifests/generate.mjs). Do not edit.\n";

/** scripts/configuration-doc.ts (TypeScript, reading the server's schema), bundled with esbuild and loaded. */
async function loadConfigurationDoc() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "configuration-doc-"));
  const outfile = path.join(dir, "configuration-doc.mjs");
  try {
    await build({
      entryPoints: [path.join(repoRoot, "scripts/configuration-doc.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      logLevel: "warning",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `helm template` of the chart; returns the YAML text. */
async function helmTemplate(args) {
  const { stdout } = await run(helm, ["template", RELEASE, chartDir, "--namespace", NAMESPACE, ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

function parseObjects(text) {
  return YAML.parseAllDocuments(text)
    .map((document) => document.toJS())
    .filter((object) => object && typeof object === "object");
}

function dumpObjects(objects) {
  return GENERATED_HEADER + objects.map((object) => YAML.stringify(object, { lineWidth: 0 })).join("---\n");
}

function pick(objects, kind, name) {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length === 0) throw new Error(`the chart rendered no ${kind}${name ? ` named ${name}` : ""}`);
  return found;
}

/** The objects of one component (label `app.kubernetes.io/component`), e.g. a server's and not its RBAC's. */
function ofComponent(objects, ...components) {
  return objects.filter((o) => components.includes(o.metadata.labels?.["app.kubernetes.io/component"]));
}

/** Rewrites a dedicated server rendered for PLACEHOLDER_NAMESPACE into a template kustomize stamps
 * with `namespace:` and `nameSuffix: -<namespace>` (which re-creates the chart's names exactly). */
function neutralizeDedicated(value, fullname) {
  const placeholderName = `${fullname}-${PLACEHOLDER_NAMESPACE}`;
  if (Array.isArray(value)) return value.map((item) => neutralizeDedicated(item, fullname));
  if (value && typeof value === "object") {
    const copy = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === "namespace" && item === PLACEHOLDER_NAMESPACE) continue;
      copy[key] = neutralizeDedicated(item, fullname);
    }
    return copy;
  }
  return value === placeholderName ? fullname : value;
}

/** Kubeflow's system key Secret exactly as kubeflow/manifests' third-party/seaweedfs ships it (its
 * well-known pair), under the chart's labels; the chart itself only references it or generates a random one. */
function kubeflowSystemKeySecret(alias, values) {
  const { existingSecret, accessKeyKey, secretKeyKey } = values.s3.credentials;
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: existingSecret,
      namespace: alias.metadata.namespace,
      labels: { ...alias.metadata.labels, "app.kubernetes.io/component": "s3-credentials" },
    },
    type: "Opaque",
    stringData: { [accessKeyKey]: "minio", [secretKeyKey]: "minio123" },
  };
}

function kustomization(resources, extra = {}) {
  return (
    GENERATED_HEADER +
    YAML.stringify({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      ...extra,
      resources,
    })
  );
}

/** Every generated file: relative path -> content. */
async function generate() {
  const files = new Map();

  const ciDir = path.join(chartDir, "ci");
  const ciFiles = (await readdir(ciDir)).filter((name) => name.endsWith("-values.yaml")).sort();
  const examples = await Promise.all(
    ciFiles.map(async (name) => [name, await helmTemplate(["--values", path.join(ciDir, name)])]),
  );
  for (const [name, text] of examples) {
    const topology = name.replace(/-values\.yaml$/, "");
    const header = `# helm template ${RELEASE} charts/kfp-artifacts -n ${NAMESPACE} -f charts/kfp-artifacts/ci/${name}\n`;
    files.set(`charts/kfp-artifacts/examples/${topology}.yaml`, GENERATED_HEADER + header + text);
  }

  const valuesText = await readFile(path.join(chartDir, "values.yaml"), "utf8");
  const chartValues = YAML.parse(valuesText);
  const schema = JSON.parse(await readFile(path.join(chartDir, "values.schema.json"), "utf8"));
  const chart = YAML.parse(await readFile(path.join(chartDir, "Chart.yaml"), "utf8"));
  const configurationDoc = await loadConfigurationDoc();
  files.set(configurationDoc.CONFIGURATION_DOC_PATH, configurationDoc.renderConfigurationDoc());
  const variablesByValue = configurationDoc.variablesByChartValue();
  files.set("charts/kfp-artifacts/README.md", renderChartReadme({ valuesText, schema, chart, variablesByValue }));

  const [central, dedicated, daemonset, rwx, networkPolicy, kubeflow, manager] = await Promise.all([
    helmTemplate([...STATIC]),
    helmTemplate([...STATIC, "--set", "shared.enabled=false", "--set", `dedicated.namespaces={${PLACEHOLDER_NAMESPACE}}`]),
    helmTemplate([...STATIC, "--values", path.join(ciDir, "daemonset-values.yaml")]),
    helmTemplate([...STATIC, "--values", path.join(ciDir, "shared-rwx-values.yaml")]),
    helmTemplate([...STATIC, "--set", "networkPolicy.enabled=true"]),
    helmTemplate([...STATIC, "--values", path.join(ciDir, "kubeflow-values.yaml")]),
    helmTemplate([...STATIC, "--set", "manager.enabled=true"]),
  ]).then((texts) => texts.map(parseObjects));

  const fullname = pick(central, "Deployment")[0].metadata.name;
  const serverKinds = ["ServiceAccount", "PersistentVolumeClaim", "Deployment", "Service", "ClusterRoleBinding"];

  files.set("kustomize/base/auth/clusterrole.yaml", dumpObjects(pick(central, "ClusterRole", `${fullname}-auth`)));
  // The S3 static key's user and its grants (ClusterRole and ClusterRoleBinding of the same name).
  const s3SystemKey = `${fullname}-s3-system-key`;
  files.set(
    "kustomize/base/auth/s3-system-key.yaml",
    dumpObjects([...pick(central, "ClusterRole", s3SystemKey), ...pick(central, "ClusterRoleBinding", s3SystemKey)]),
  );
  files.set("kustomize/base/auth/kustomization.yaml", kustomization(["clusterrole.yaml", "s3-system-key.yaml"]));
  for (const kind of serverKinds) {
    files.set(`kustomize/base/shared/${kind.toLowerCase()}.yaml`, dumpObjects(ofComponent(pick(central, kind), "server")));
  }
  files.set("kustomize/base/shared/kustomization.yaml", kustomization(serverKinds.map((k) => `${k.toLowerCase()}.yaml`)));
  files.set("kustomize/base/kustomization.yaml", kustomization(["auth", "shared"]));

  for (const kind of serverKinds) {
    const objects = ofComponent(pick(dedicated, kind), "dedicated-server").map((object) => neutralizeDedicated(object, fullname));
    files.set(`kustomize/base/dedicated/${kind.toLowerCase()}.yaml`, dumpObjects(objects));
  }
  files.set(
    "kustomize/base/dedicated/kustomization.yaml",
    kustomization(serverKinds.map((k) => `${k.toLowerCase()}.yaml`)),
  );

  files.set("kustomize/components/daemonset/generated/daemonset.yaml", dumpObjects(pick(daemonset, "DaemonSet")));
  files.set(
    "kustomize/components/rwx/generated/poddisruptionbudget.yaml",
    dumpObjects(pick(rwx, "PodDisruptionBudget")),
  );
  files.set(
    "kustomize/components/networkpolicy/generated/networkpolicy.yaml",
    dumpObjects(pick(networkPolicy, "NetworkPolicy")),
  );
  files.set(
    "kustomize/components/istio/generated/authorizationpolicy.yaml",
    dumpObjects(pick(kubeflow, "AuthorizationPolicy")),
  );
  const aliases = ofComponent(pick(kubeflow, "Service"), "s3-alias");
  files.set("kustomize/components/kubeflow-s3/generated/service.yaml", dumpObjects(aliases));
  files.set("kustomize/components/kubeflow-s3/generated/secret.yaml", dumpObjects([kubeflowSystemKeySecret(aliases[0], chartValues)]));
  files.set(
    "kustomize/components/kubeflow-rbac/generated/clusterroles.yaml",
    dumpObjects([...pick(central, "ClusterRole", `${fullname}-edit`), ...pick(central, "ClusterRole", `${fullname}-view`)]),
  );
  files.set("kustomize/components/manager/generated/manager.yaml", dumpObjects(ofComponent(manager, "manager")));
  return files;
}

// Directories whose every file is generated: a stale file there is drift too.
const GENERATED_DIRS = ["charts/kfp-artifacts/examples", "kustomize/base"];

async function listFiles(root, relative) {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true }).catch(() => []);
  const nested = await Promise.all(
    entries.map((entry) => {
      const child = path.posix.join(relative, entry.name);
      return entry.isDirectory() ? listFiles(root, child) : [child];
    }),
  );
  return nested.flat();
}

async function main() {
  const check = process.argv.includes("--check");
  const files = await generate();
  if (!check) {
    for (const dir of GENERATED_DIRS) await rm(path.join(repoRoot, dir), { recursive: true, force: true });
    for (const [relative, content] of files) {
      await mkdir(path.dirname(path.join(repoRoot, relative)), { recursive: true });
      await writeFile(path.join(repoRoot, relative), content);
    }
    console.log(`generated ${files.size} files`);
    return;
  }
  const drift = [];
  for (const [relative, content] of files) {
    const committed = await readFile(path.join(repoRoot, relative), "utf8").catch(() => undefined);
    if (committed !== content) drift.push(committed === undefined ? `missing: ${relative}` : `differs: ${relative}`);
  }
  for (const dir of GENERATED_DIRS) {
    for (const relative of await listFiles(repoRoot, dir)) {
      if (!files.has(relative)) drift.push(`stale: ${relative}`);
    }
  }
  if (drift.length > 0) {
    console.error(`generated manifests are out of date (run \`make manifests\` and commit):\n  ${drift.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`manifests up to date (${files.size} files)`);
}

await main();
