// The manager's process entry point (bundled as manager.mjs, same image as the server): configuration
// from the environment, the lease, the informers, and /metrics, /healthz, /readyz on PORT.
import { createServer } from "node:http";
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { z } from "zod";
import { NAMESPACE_PATTERN } from "../config.js";
import { deriveSecretKey, namespaceAccessKeyId } from "../s3/credentials.js";
import { createLogger } from "../log.js";
import { VERSION } from "../version.js";
import { Controller } from "./controller.js";
import { createManagerKube } from "./kube.js";
import { runLeaderElection } from "./leader.js";
import { createManagerMetrics } from "./metrics.js";
import { parseLabelSelector } from "./selector.js";
import { loadTemplates } from "./templates.js";

/** Within the pod's default 30 s grace period: a reconcile is bounded by the API calls of one namespace. */
const STOP_TIMEOUT_MS = 20_000;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  MANAGER_NAME: z.string().regex(NAMESPACE_PATTERN, "must be a DNS-1123 label"),
  POD_NAMESPACE: z.string().regex(NAMESPACE_PATTERN, "must be a namespace name"),
  POD_NAME: z.string().min(1).default(hostname()),
  TEMPLATES_FILE: z.string().min(1),
  // A label selector's string form, passed to the API server as it is once it parses here.
  NAMESPACE_SELECTOR: z
    .string()
    .default("pipelines.kubeflow.org/enabled=true")
    .superRefine((selector, context) => {
      try {
        parseLabelSelector(selector);
      } catch (error) {
        context.addIssue({ code: "custom", message: `not a label selector: ${(error as Error).message}` });
      }
    }),
  LAUNCHER_CONFIGMAP: z.string().min(1).default("kfp-launcher"),
  LAUNCHER_KEY: z.string().min(1).default("artifactServer"),
  STATIC_DEDICATED_NAMESPACES: z.string().default(""),
  // The shared server's master key (or its static secret key, which stands in for it) and the Secret each
  // dedicated namespace gets its own derived pair in. Empty: the manager writes no key (S3 off, or no key yet).
  S3_MASTER_KEY: z.string().default(""),
  NAMESPACE_KEY_SECRET: z.union([z.literal(""), z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a Secret name")]).default(""),
  LEASE_SECONDS: z.coerce.number().int().min(5).max(300).default(15),
  RESYNC_SECONDS: z.coerce.number().int().min(10).default(300),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  KUBECONFIG: z.string().optional(),
});

async function main(): Promise<void> {
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: `invalid configuration: ${issue?.path.join(".")}: ${issue?.message}` })}\n`);
    process.exit(2);
  }
  const env = parsed.data;
  const logger = createLogger(env.LOG_LEVEL);
  const kubeConfig = new KubeConfig();
  if (env.KUBECONFIG) kubeConfig.loadFromFile(env.KUBECONFIG);
  else kubeConfig.loadFromCluster();

  const templates = loadTemplates(env.TEMPLATES_FILE);
  const kube = createManagerKube(kubeConfig, env.MANAGER_NAME);
  const metrics = createManagerMetrics();
  const staticNamespaces = new Set(env.STATIC_DEDICATED_NAMESPACES.split(",").map((name) => name.trim()).filter(Boolean));
  // Without its ClusterRole (no RBAC for it, or not yet created) the manager still works; uninstall then leaves the servers.
  const owner = await kube.owner(env.MANAGER_NAME).catch((error: unknown) => {
    logger.warn("no owner for the managed objects: uninstalling will not remove them", { error: String(error) });
    return undefined;
  });
  const masterKey = env.S3_MASTER_KEY;
  // The same pair the shared server verifies and answers IAM CreateAccessKey with.
  const namespaceKeys =
    masterKey !== "" && env.NAMESPACE_KEY_SECRET !== ""
      ? {
          secretName: env.NAMESPACE_KEY_SECRET,
          keyFor: (namespace: string) => {
            const accessKeyId = namespaceAccessKeyId(namespace);
            return { accessKeyId, secretAccessKey: deriveSecretKey(masterKey, accessKeyId) };
          },
        }
      : undefined;
  if (env.NAMESPACE_KEY_SECRET !== "" && namespaceKeys === undefined) {
    logger.warn("no S3 master key: dedicated servers get no S3 key pair until the manager restarts with one", { secret: env.NAMESPACE_KEY_SECRET });
  }
  const controller = new Controller({
    kubeConfig,
    kube,
    context: { api: kube.cluster, templates, managerName: env.MANAGER_NAME, identity: `${env.POD_NAMESPACE}/${env.MANAGER_NAME}`, owner, staticNamespaces, namespaceKeys, launcherConfigMap: env.LAUNCHER_CONFIGMAP },
    logger,
    metrics,
    namespaceSelector: env.NAMESPACE_SELECTOR,
    launcherConfigMap: env.LAUNCHER_CONFIGMAP,
    launcherKey: env.LAUNCHER_KEY,
    status: { namespace: env.POD_NAMESPACE, name: `${env.MANAGER_NAME}-status` },
    managerName: env.MANAGER_NAME,
    resyncMs: env.RESYNC_SECONDS * 1000,
  });

  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      response.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    } else if (path === "/readyz") {
      response.writeHead(controller.synced ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ready: controller.synced }));
    } else if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
    } else {
      response.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"NotFound","message":"no such route"}}');
    }
  });
  await new Promise<void>((resolve) => server.listen(env.PORT, resolve));

  await controller.start();
  let stopping = false;
  const election = runLeaderElection({
    api: kube.coordination,
    namespace: env.POD_NAMESPACE,
    name: env.MANAGER_NAME,
    identity: env.POD_NAME,
    leaseSeconds: env.LEASE_SECONDS,
    logger,
    // Once stopping, a lease won meanwhile starts no work: it is released as it is.
    onChange: (leading) => stopping || controller.setLeading(leading),
  });
  logger.info("manager started", { version: VERSION, port: env.PORT, selector: env.NAMESPACE_SELECTOR, staticNamespaces: [...staticNamespaces], owner: owner?.uid, writesNamespaceKeys: namespaceKeys !== undefined });

  // On SIGTERM (a rollout, a drain): finish the namespace being reconciled, then release the Lease, so a
  // standby (or the new pod) leads at its next try instead of waiting for the lease to expire.
  const stop = () => {
    stopping = true;
    logger.info("stopping");
    controller.setLeading(false);
    void election
      .stop(() => controller.idle())
      .then(() => controller.stop())
      .finally(() => server.close(() => process.exit(0)));
    setTimeout(() => process.exit(0), STOP_TIMEOUT_MS).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "manager failed", error: String(error), stack: (error as Error).stack })}\n`);
  process.exit(1);
});
