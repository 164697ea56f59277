// Authorizes (identity, namespace, verb) with SubjectAccessReviews on pipelines.kubeflow.org/v1beta1
// runs, behind a bounded decision cache (allow and deny) with concurrent identical reviews coalesced.
import type { V1SubjectAccessReview } from "@kubernetes/client-node";
import { serviceUnavailable } from "../errors.js";
import type { Logger } from "../log.js";
import { CoalescingCache } from "./bounded-cache.js";
import { callKubeApi, describeKubeFailure, type KubeApis } from "./kube-client.js";
import type { AuthMetrics } from "./metrics.js";
import type { ArtifactVerb, Identity } from "./types.js";

/** The resource whose custom verbs grant artifact access. */
export const ARTIFACT_RESOURCE = Object.freeze({ group: "pipelines.kubeflow.org", version: "v1beta1", resource: "runs" });

/** What a reviewer needs: the API, cache bounds, a deadline per call, metrics and logs. */
export interface ReviewerOptions {
  readonly apis: KubeApis;
  readonly cacheTtlMs: number;
  readonly cacheMaxEntries: number;
  readonly timeoutMs: number;
  readonly metrics: AuthMetrics;
  readonly logger: Logger;
  /** Told after every call whether the API server answered successfully (for readiness). */
  readonly onApiAnswer: (answered: boolean) => void;
  readonly now?: () => number;
}

export class AccessReviewer {
  private readonly decisions: CoalescingCache<boolean>;

  constructor(private readonly options: ReviewerOptions) {
    this.decisions = new CoalescingCache(options.cacheMaxEntries, (result) => options.metrics.cache("decision", result), options.now);
  }

  /** Number of cached decisions (for tests of the bound). */
  get cachedDecisions(): number {
    return this.decisions.size;
  }

  /** True when allowed; rejects with a 503 HttpError when the API server cannot answer. */
  isAllowed(identity: Identity, namespace: string, verb: ArtifactVerb): Promise<boolean> {
    return this.decisions.getOrLoad(
      decisionKey(identity, namespace, verb),
      () => this.review(identity, namespace, verb),
      () => this.options.cacheTtlMs,
    );
  }

  private async review(identity: Identity, namespace: string, verb: ArtifactVerb): Promise<boolean> {
    const { apis, metrics, logger, timeoutMs } = this.options;
    const body: V1SubjectAccessReview = {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: identity.user,
        groups: [...identity.groups],
        ...(identity.uid ? { uid: identity.uid } : {}),
        ...(identity.extra ? { extra: copyExtra(identity.extra) } : {}),
        resourceAttributes: { ...ARTIFACT_RESOURCE, namespace, verb },
      },
    };
    const stopTimer = metrics.startTimer("access");
    let review: V1SubjectAccessReview;
    try {
      review = await callKubeApi(() => apis.authorization.createSubjectAccessReview({ body }), timeoutMs);
    } catch (error) {
      const failure = describeKubeFailure(error, []);
      metrics.review("access", "error");
      this.options.onApiAnswer(false);
      logger.error(
        failure.ourFault
          ? "SubjectAccessReview refused by the Kubernetes API server: check this server's credentials and RBAC (create subjectaccessreviews)"
          : "SubjectAccessReview failed: the Kubernetes API server did not answer",
        { server: apis.server, status: failure.status, detail: failure.detail, namespace, verb },
      );
      throw serviceUnavailable("authorization service unavailable");
    } finally {
      stopTimer();
    }
    this.options.onApiAnswer(true);
    // `denied` can only strengthen a refusal; anything but an explicit allowed=true is a denial.
    const allowed = review.status?.allowed === true && review.status.denied !== true;
    metrics.review("access", allowed ? "allowed" : "denied");
    if (review.status?.evaluationError) {
      logger.warn("SubjectAccessReview reported an evaluation error", {
        namespace,
        verb,
        evaluationError: review.status.evaluationError,
      });
    }
    return allowed;
  }
}

/** Everything the decision depends on; groups and extra values are order-insensitive for RBAC. */
export function decisionKey(identity: Identity, namespace: string, verb: ArtifactVerb): string {
  const extra = identity.extra
    ? Object.keys(identity.extra)
        .sort()
        .map((name) => [name, [...(identity.extra?.[name] ?? [])].sort()])
    : [];
  return JSON.stringify([identity.user, [...identity.groups].sort(), identity.uid ?? "", extra, namespace, verb]);
}

function copyExtra(extra: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(extra).map(([name, values]) => [name, [...values]]));
}
