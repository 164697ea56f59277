// Authenticates Bearer tokens with TokenReviews, behind a bounded cache keyed by the token's SHA-256
// (raw tokens are never kept) and with concurrent reviews of one token coalesced.
import { createHash } from "node:crypto";
import type { V1TokenReview } from "@kubernetes/client-node";
import { serviceUnavailable } from "../errors.js";
import { CoalescingCache } from "./bounded-cache.js";
import type { ReviewerOptions } from "./access-reviewer.js";
import { callKubeApi, describeKubeFailure, redact } from "./kube-client.js";
import type { Identity } from "./types.js";

/** A rejected token is remembered briefly: enough to absorb a retry storm, short enough to forget typos. */
const MAX_NEGATIVE_TTL_MS = 2_000;

export interface TokenReviewerOptions extends ReviewerOptions {
  readonly audiences: readonly string[];
}

/** The identity of a valid token, or null when the API server says the token is not valid for us. */
export type TokenVerdict = Identity | null;

export class TokenReviewer {
  private readonly verdicts: CoalescingCache<TokenVerdict>;

  constructor(private readonly options: TokenReviewerOptions) {
    this.verdicts = new CoalescingCache(options.cacheMaxEntries, (result) => options.metrics.cache("token", result), options.now);
  }

  /** Rejects with a 503 HttpError when the API server cannot answer (failures are never cached). */
  authenticate(token: string): Promise<TokenVerdict> {
    return this.verdicts.getOrLoad(
      createHash("sha256").update(token).digest("hex"),
      () => this.review(token),
      (verdict) => (verdict ? this.options.cacheTtlMs : Math.min(this.options.cacheTtlMs, MAX_NEGATIVE_TTL_MS)),
    );
  }

  private async review(token: string): Promise<TokenVerdict> {
    const { apis, audiences, metrics, logger, timeoutMs } = this.options;
    const body: V1TokenReview = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, audiences: [...audiences] },
    };
    const stopTimer = metrics.startTimer("token");
    let review: V1TokenReview;
    try {
      review = await callKubeApi(() => apis.authentication.createTokenReview({ body }), timeoutMs);
    } catch (error) {
      const failure = describeKubeFailure(error, [token]);
      metrics.review("token", "error");
      this.options.onApiAnswer(false);
      logger.error(
        failure.ourFault
          ? "TokenReview refused by the Kubernetes API server: check this server's credentials and RBAC (create tokenreviews)"
          : "TokenReview failed: the Kubernetes API server did not answer",
        { server: apis.server, status: failure.status, detail: failure.detail },
      );
      throw serviceUnavailable("authorization service unavailable");
    } finally {
      stopTimer();
    }
    this.options.onApiAnswer(true);

    const status = review.status;
    const username = status?.user?.username;
    // The API server reports the audiences it validated; one of ours must be among them, or an
    // audience-unaware authenticator accepted a token minted for someone else.
    const audienceOk = (status?.audiences ?? []).some((audience) => audiences.includes(audience));
    if (status?.authenticated !== true || !username || !audienceOk) {
      metrics.review("token", "unauthenticated");
      logger.debug("token rejected by TokenReview", {
        authenticated: status?.authenticated === true,
        audienceOk,
        reason: status?.error === undefined ? undefined : redact(status.error, [token]),
      });
      return null;
    }
    metrics.review("token", "authenticated");
    const extra = status.user?.extra;
    return Object.freeze({
      user: username,
      groups: Object.freeze([...(status.user?.groups ?? [])]),
      ...(status.user?.uid ? { uid: status.user.uid } : {}),
      ...(extra && Object.keys(extra).length > 0 ? { extra } : {}),
      via: "token" as const,
    });
  }
}
