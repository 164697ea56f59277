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

export function createAuthMetrics(registry: Registry): AuthMetrics {
  // Reuse a metric already in the registry so that two authorizers on one registry (tests) do not throw.
  const cacheTotal =
    (registry.getSingleMetric("kfp_artifacts_auth_cache_total") as Counter<"cache" | "result"> | undefined) ??
    new Counter({
      name: "kfp_artifacts_auth_cache_total",
      help: "Authentication and authorization cache lookups, by cache and result.",
      labelNames: ["cache", "result"] as const,
      registers: [registry],
    });
  const reviewsTotal =
    (registry.getSingleMetric("kfp_artifacts_auth_reviews_total") as Counter<"kind" | "outcome"> | undefined) ??
    new Counter({
      name: "kfp_artifacts_auth_reviews_total",
      help: "TokenReviews and SubjectAccessReviews sent to the Kubernetes API server, by outcome.",
      labelNames: ["kind", "outcome"] as const,
      registers: [registry],
    });
  const latency =
    (registry.getSingleMetric("kfp_artifacts_auth_review_duration_seconds") as Histogram<"kind"> | undefined) ??
    new Histogram({
      name: "kfp_artifacts_auth_review_duration_seconds",
      help: "Latency of calls to the Kubernetes API server (reviews and readiness probes), including failures.",
      labelNames: ["kind"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
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
