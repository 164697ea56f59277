// On failure only: what a person needs to see why, written to e2e/diagnostics/<suite>-<time>/ (git-ignored),
// in the spirit of prometheus-operator's e2e framework: objects, pod descriptions, current and previous
// container logs, events, and the cluster's nodes and volumes.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { kubectl } from "./commands.js";
import { env } from "./env.js";
import { core } from "./kube.js";

async function capture(file: string, args: readonly string[]): Promise<void> {
  let text: string;
  try {
    const { stdout, stderr } = await kubectl(args, { timeoutMs: 30_000 });
    text = stdout + (stderr ? `\n# stderr\n${stderr}` : "");
  } catch (error) {
    text = `# kubectl ${args.join(" ")} failed\n${error instanceof Error ? error.message : String(error)}\n`;
  }
  await writeFile(file, text);
}

export async function dumpDiagnostics(suite: string, namespaces: readonly string[]): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const root = path.join(env.diagnosticsDir, `${suite}-${stamp}`);
  await mkdir(root, { recursive: true });
  await capture(path.join(root, "nodes.txt"), ["describe", "nodes"]);
  await capture(path.join(root, "persistentvolumes.txt"), ["get", "pv", "-o", "wide"]);
  await capture(path.join(root, "cluster-events.txt"), ["get", "events", "-A", "--sort-by=.lastTimestamp"]);
  // Cluster-wide RBAC a suite created (Kubeflow's aggregated roles): what a namespace's subjects may do.
  await capture(path.join(root, "e2e-clusterroles.yaml"), ["get", "clusterroles", "-l", "kfp-artifacts.e2e/run=true", "-o", "yaml"]);
  for (const namespace of namespaces) {
    const dir = path.join(root, namespace);
    await mkdir(path.join(dir, "logs"), { recursive: true });
    await capture(path.join(dir, "objects.txt"), ["get", "all,pvc,serviceaccounts,roles,rolebindings,configmaps", "-n", namespace, "-o", "wide"]);
    await capture(path.join(dir, "objects.yaml"), ["get", "all,pvc", "-n", namespace, "-o", "yaml"]);
    await capture(path.join(dir, "describe-pods.txt"), ["describe", "pods", "-n", namespace]);
    await capture(path.join(dir, "events.txt"), ["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]);
    let pods;
    try {
      pods = (await core.listNamespacedPod({ namespace })).items;
    } catch (error) {
      await writeFile(path.join(dir, "logs", "ERROR.txt"), String(error));
      continue;
    }
    for (const pod of pods) {
      const name = pod.metadata?.name ?? "unknown";
      const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
      for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
        const base = path.join(dir, "logs", `${name}_${container.name}`);
        await capture(`${base}.log`, ["logs", "-n", namespace, name, "-c", container.name, "--timestamps"]);
        // Only a restarted container has a previous instance whose log says why it ended.
        const restarts = statuses.find((status) => status.name === container.name)?.restartCount ?? 0;
        if (restarts > 0) await capture(`${base}.previous.log`, ["logs", "-n", namespace, name, "-c", container.name, "--timestamps", "--previous"]);
      }
    }
  }
  return root;
}
