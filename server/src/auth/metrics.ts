// Prometheus metrics of authentication and authorization (kfp_artifacts_auth_*).
import { Counter, Histogram, type Registry } from "prom-client";

export type CacheName = "token" | "decision";
export type ReviewKind = "token" | "access";
export type ReviewOutcome = "allowed" | "denied" | "authenticated" | "unauthenticated" | "error";
/** Calls to the API server, for the latency histogram: both reviews and the readiness probe. */
export type ApiCallKind = ReviewKind | "version";

export interface AuthMetrics {
  cache(cache: CacheName, result: "hit" | "miss"): void;
  review(kind: ReviewKind, outcome: ReviewOutcome): void;
  /** Starts a latency timer for one API server call; call the result when it settles. */
  startTimer(kind: ApiCallKind): () => void;
}

/** The metric already in the registry under `name`, or a new one: two authorizers may share a registry (tests). */
function registered<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export function createAuthMetrics(registry: Registry): AuthMetrics {
  const cacheTotal = registered(registry, "kfp_artifacts_auth_cache_total", () =>
    new Counter({
      name: "kfp_artifacts_auth_cache_total",
      help: "Authentication and authorization cache lookups, by cache and result.",
      labelNames: ["cache", "result"] as const,
      registers: [registry],
    }),
  );
  const reviewsTotal = registered(registry, "kfp_artifacts_auth_reviews_total", () =>
    new Counter({
      name: "kfp_artifacts_auth_reviews_total",
      help: "TokenReviews and SubjectAccessReviews sent to the Kubernetes API server, by outcome.",
      labelNames: ["kind", "outcome"] as const,
      registers: [registry],
    }),
  );
  const latency = registered(registry, "kfp_artifacts_auth_review_duration_seconds", () =>
    new Histogram({
      name: "kfp_artifacts_auth_review_duration_seconds",
      help: "Latency of calls to the Kubernetes API server (reviews and readiness probes), including failures.",
      labelNames: ["kind"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  );
  return {
    cache: (cache, result) => cacheTotal.inc({ cache, result }),
    review: (kind, outcome) => reviewsTotal.inc({ kind, outcome }),
    startTimer: (kind) => {
      const stop = latency.startTimer({ kind });
      return () => {
        stop();
      };
    },
  };
}
