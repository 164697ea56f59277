// Where the e2e suites find the cluster, the tools and the image. Everything can be overridden from the
// environment so the suites also run against a cluster that `make cluster` did not create.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const packageVersion = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

export const env = {
  /** Written by `make cluster` (scripts/cluster/create-cluster.sh). */
  kubeconfig: process.env.KFP_KUBECONFIG ?? path.join(REPO_ROOT, ".cache/cluster/kubeconfig"),
  /** The kind cluster's name (`make cluster`, scripts/cluster/lib.sh), for `kind load`. */
  clusterName: process.env.KFP_CLUSTER_NAME ?? "kfp-artifacts",
  helm: process.env.HELM ?? path.join(REPO_ROOT, "bin/helm"),
  kubectl: process.env.KUBECTL ?? path.join(REPO_ROOT, "bin/kubectl"),
  chartDir: path.join(REPO_ROOT, "charts/kfp-artifacts"),
  kustomizeDir: path.join(REPO_ROOT, "kustomize"),
  /** The tag `make e2e` loads into the cluster: the chart's and kustomize's default image. */
  imageRepository: process.env.E2E_IMAGE_REPOSITORY ?? "ghcr.io/kubeflow/kfp-artifacts",
  imageTag: process.env.E2E_IMAGE_TAG ?? packageVersion,
  /** The host directory every kind node mounts at `sharedNodeDir` (e2e/kind/cluster.yaml). */
  sharedHostDir: process.env.KFP_E2E_SHARED_DIR ?? "/tmp/kfp-artifacts-e2e-shared",
  sharedNodeDir: "/var/kfp-artifacts-shared",
  diagnosticsDir: path.join(REPO_ROOT, "e2e/diagnostics"),
  /** A scratch directory for generated kustomizations and values files (git-ignored). */
  workDir: path.join(REPO_ROOT, ".cache/e2e"),
} as const;

export const image = `${env.imageRepository}:${env.imageTag}`;
/** The product image carries Node.js, which the client pods run (it has no shell or curl). */
export const NODE_BINARY = "/nodejs/bin/node";
/** The audience pipeline pods' projected tokens are issued for. */
export const KFP_AUDIENCE = "pipelines.kubeflow.org";
