// Installing the product: Helm releases of charts/kfp-artifacts and `kubectl apply -k` of kustomize/.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "yaml";
import { helm, kubectl } from "./commands.js";
import { env } from "./env.js";

export type Values = Record<string, unknown>;

/** The chart's default image is the one `make e2e` loads; only an explicit override changes it. */
function imageValues(): Values {
  if (process.env.E2E_IMAGE_REPOSITORY === undefined && process.env.E2E_IMAGE_TAG === undefined) return {};
  return { image: { registry: "", repository: env.imageRepository, tag: env.imageTag } };
}

async function valuesFile(release: string, values: Values): Promise<string> {
  await mkdir(env.workDir, { recursive: true });
  const file = path.join(env.workDir, `${release}-${Date.now()}-values.yaml`);
  await writeFile(file, stringify({ ...imageValues(), ...values }));
  return file;
}

export interface Release {
  readonly name: string;
  readonly namespace: string;
}

/** `helm install --wait`: returns once every workload is ready (helm's own bounded wait). */
export async function helmInstall(release: Release, values: Values, timeoutSeconds = 240): Promise<void> {
  const file = await valuesFile(release.name, values);
  await helm(["install", release.name, env.chartDir, "-n", release.namespace, "-f", file, "--wait", "--timeout", `${timeoutSeconds}s`], {
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
}

export async function helmUpgrade(release: Release, values: Values, timeoutSeconds = 240): Promise<void> {
  const file = await valuesFile(release.name, values);
  await helm(["upgrade", release.name, env.chartDir, "-n", release.namespace, "-f", file, "--wait", "--timeout", `${timeoutSeconds}s`], {
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
}

export async function helmTest(release: Release, timeoutSeconds = 180): Promise<string> {
  const { stdout } = await helm(["test", release.name, "-n", release.namespace, "--timeout", `${timeoutSeconds}s`, "--logs"], {
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
  return stdout;
}

export async function helmUninstall(release: Release): Promise<void> {
  await helm(["uninstall", release.name, "-n", release.namespace, "--wait", "--timeout", "120s", "--ignore-not-found"], { timeoutMs: 150_000 });
}

/** `<release>-kfp-artifacts` unless the release name already contains the chart name (the chart's rule). */
export const fullname = (release: string) => (release.includes("kfp-artifacts") ? release : `${release}-kfp-artifacts`);

/**
 * Writes a kustomization that uses `overlay` (a directory under kustomize/overlays) unchanged, only
 * switching the image when E2E_IMAGE_* asks for another; returns its directory for `kubectl apply -k`.
 */
export async function kustomization(name: string, overlay: string): Promise<string> {
  const dir = path.join(env.workDir, name);
  await mkdir(dir, { recursive: true });
  const relative = path.relative(dir, path.join(env.kustomizeDir, "overlays", overlay));
  const images = process.env.E2E_IMAGE_REPOSITORY === undefined && process.env.E2E_IMAGE_TAG === undefined
    ? {}
    : { images: [{ name: "ghcr.io/kubeflow/kfp-artifacts", newName: env.imageRepository, newTag: env.imageTag }] };
  await writeFile(
    path.join(dir, "kustomization.yaml"),
    stringify({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: [relative], ...images }),
  );
  return dir;
}

export async function kubectlApplyKustomization(dir: string): Promise<void> {
  await kubectl(["apply", "-k", dir], { timeoutMs: 120_000 });
}

export async function kubectlDeleteKustomization(dir: string): Promise<void> {
  await kubectl(["delete", "-k", dir, "--ignore-not-found", "--wait=true", "--timeout=120s"], { timeoutMs: 150_000 });
}
