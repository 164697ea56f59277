// Operations endpoints: liveness, readiness, metrics, and an index of the APIs at '/'. No authentication:
// kubelet and Prometheus call these. Mounted last, this API also answers (404) every path no other claims.
import type { Hono } from "hono";
import type { Authorizer } from "../auth/types.js";
import type { AppEnv } from "../http/env.js";
import type { HttpMetrics } from "../metrics.js";
import type { ArtifactStore } from "../storage/store.js";
import type { VolumeHealth } from "../storage/volume-health.js";
import { VERSION } from "../version.js";
import { defineApi, nativeErrorBody, type FaultHandling } from "./api.js";

const VOLUME_CHECK_TIMEOUT_MS = 2000;

export interface Lifecycle {
  /** Set on SIGTERM: readiness fails at once. */
  shuttingDown: boolean;
  /** Whether the S3 listener accepts connections; undefined when S3 is off (set by server.ts). */
  s3Listening?: (() => boolean) | undefined;
}

export interface OperationsDeps {
  readonly store: ArtifactStore;
  readonly authorizer: Authorizer;
  readonly metrics: HttpMetrics;
  readonly lifecycle: Lifecycle;
  readonly nodeName: string;
  /** AUTH_MODE=kubernetes: readiness depends on the API server; otherwise that check is skipped. */
  readonly usesKubernetes: boolean;
  readonly faults: FaultHandling;
}

/** The volume's probe (store.checkVolume), bounded: a hung volume (NFS) is a failed check, not a hung probe. */
async function volumeHealth(store: ArtifactStore): Promise<VolumeHealth> {
  const attempt = store.checkVolume().catch((error: unknown) => ({ writable: false, problem: `the volume check failed (${String(error)})` }));
  const timeout = new Promise<VolumeHealth>((resolve) =>
    setTimeout(resolve, VOLUME_CHECK_TIMEOUT_MS, { writable: false, problem: "the artifact volume did not answer within 2 s" }).unref(),
  );
  return Promise.race([attempt, timeout]);
}

/** What '/' answers: enough for a person with curl to find the rest (README.md has the details). */
const API_INDEX = {
  name: "kfp-artifacts",
  version: VERSION,
  apis: {
    artifacts: {
      artifact: "/v1/namespaces/{namespace}/artifacts/{key}",
      listing: "/v1/namespaces/{namespace}/artifacts?prefix=&delimiter=/&limit=&cursor=",
    },
    kfp: [
      "/apis/{v1beta1,v2beta1}/runs/{run}/nodes/{node}/artifacts/{name}:write",
      "/apis/{v1beta1,v2beta1}/runs/{run}/nodes/{node}/artifacts/{name}:read",
    ],
    operations: ["/healthz", "/readyz", "/metrics"],
  },
};

export function createOperationsApi(deps: OperationsDeps): Hono<AppEnv> {
  return defineApi({ basePath: "", errorBody: nativeErrorBody, faults: deps.faults }, (app) => registerRoutes(app, deps));
}

function registerRoutes(app: Hono<AppEnv>, deps: OperationsDeps): void {
  app.get("/", (c) => c.json(API_INDEX));
  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    if (deps.lifecycle.shuttingDown) {
      return c.json({ status: "shutting down", node: deps.nodeName }, 503);
    }
    const [health, kubernetes] = await Promise.all([
      volumeHealth(deps.store),
      deps.usesKubernetes ? deps.authorizer.checkReady() : Promise.resolve("skipped" as const),
    ]);
    // KFP reaches the server through S3: a pod whose S3 listener is gone must leave the Service.
    const s3 = deps.lifecycle.s3Listening?.();
    const volume = health.writable;
    const ready = volume && kubernetes !== false && s3 !== false;
    // A full volume stays ready (reads and deletes still work), but says why writes fail.
    const messages = health.problem === undefined ? {} : { messages: { volume: health.problem } };
    return c.json(
      { status: ready ? "ready" : "not ready", node: deps.nodeName, checks: { volume, kubernetes, ...(s3 === undefined ? {} : { s3 }) }, ...messages },
      ready ? 200 : 503,
    );
  });

  app.get("/metrics", async (c) => {
    const body = await deps.metrics.text();
    return c.body(body, 200, { "Content-Type": deps.metrics.registry.contentType });
  });
}
