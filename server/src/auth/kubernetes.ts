// AUTH_MODE=kubernetes: who is calling (TokenReview, or a trusted proxy's header) and may they
// do this (SubjectAccessReview). Every failure of the API server fails closed with a 503.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Config } from "../config.js";
import { unauthorized } from "../errors.js";
import { AccessDenied } from "./access-denied.js";
import { AccessReviewer } from "./access-reviewer.js";
import { callKubeApi, createKubeApis, describeKubeFailure, loadKubeConfig } from "./kube-client.js";
import { createAuthMetrics } from "./metrics.js";
import { readCredentials } from "./request-credentials.js";
import { TokenReviewer } from "./token-reviewer.js";
import type { AccessRequest, ArtifactVerb, Authorizer, AuthorizerDeps, Identity } from "./types.js";

/** Default deadline of one call to the API server. */
export const DEFAULT_API_TIMEOUT_MS = 5_000;

export type KubernetesAuthorizerConfig = Pick<
  Config,
  | "authAudiences"
  | "trustedUserHeader"
  | "trustedUserPrefix"
  | "authCacheTtlMs"
  | "authCacheMaxEntries"
  | "authReadyWindowMs"
  | "kubeconfig"
>;

export interface KubernetesAuthorizerOptions {
  /** Use this instead of loading KUBECONFIG / the in-cluster service account. */
  readonly kubeConfig?: KubeConfig;
  /** Deadline of each call to the API server (default 5 s). */
  readonly apiTimeoutMs?: number;
  /** Clock for cache expiry and the ready window (tests). */
  readonly now?: () => number;
}

export interface KubernetesAuthorizer extends Authorizer {
  /** Cached access decisions (for tests and debugging). */
  readonly cachedDecisions: number;
}

export function createKubernetesAuthorizer(
  config: KubernetesAuthorizerConfig,
  deps: AuthorizerDeps,
  options: KubernetesAuthorizerOptions = {},
): KubernetesAuthorizer {
  if (config.authAudiences.length === 0) {
    throw new Error("AUTH_AUDIENCES must name at least one audience for AUTH_MODE=kubernetes");
  }
  const { logger } = deps;
  const now = options.now ?? Date.now;
  const timeoutMs = options.apiTimeoutMs ?? DEFAULT_API_TIMEOUT_MS;
  const apis = createKubeApis(options.kubeConfig ?? loadKubeConfig(config.kubeconfig), timeoutMs);
  const metrics = createAuthMetrics(deps.registry);

  // Readiness: the last API call's outcome and when it last succeeded.
  let lastAnswerAt = -Infinity;
  let lastCallAnswered = false;
  const onApiAnswer = (answered: boolean) => {
    lastCallAnswered = answered;
    if (answered) lastAnswerAt = now();
  };

  const common = {
    apis,
    cacheTtlMs: config.authCacheTtlMs,
    cacheMaxEntries: config.authCacheMaxEntries,
    timeoutMs,
    metrics,
    logger,
    onApiAnswer,
    now,
  };
  const tokens = new TokenReviewer({ ...common, audiences: config.authAudiences });
  const access = new AccessReviewer(common);
  const trusted = { header: config.trustedUserHeader, prefix: config.trustedUserPrefix };

  async function identify(request: AccessRequest): Promise<Identity> {
    const credentials = readCredentials(request.headers, trusted);
    switch (credentials.kind) {
      case "none":
        throw unauthorized("authentication required: send Authorization: Bearer <token>");
      case "trusted-header":
        return Object.freeze({ user: credentials.user, groups: Object.freeze([]), via: "trusted-header" as const });
      case "token": {
        const identity = await tokens.authenticate(credentials.token);
        if (!identity) throw unauthorized("the bearer token is not valid for this service");
        return identity;
      }
    }
  }

  async function authorizeIdentity(identity: Identity, namespace: string, verb: ArtifactVerb): Promise<void> {
    if (!(await access.isAllowed(identity, namespace, verb))) {
      logger.warn("access denied", { user: identity.user, groups: identity.groups, via: identity.via, namespace, verb });
      throw new AccessDenied(identity, verb, namespace);
    }
  }

  // One probe at a time; /readyz callers arriving meanwhile share it.
  let probe: Promise<boolean> | undefined;
  let lastProbeReady: boolean | undefined;
  async function probeApiServer(): Promise<boolean> {
    const stopTimer = metrics.startTimer("version");
    try {
      await callKubeApi(() => apis.version.getCode(), timeoutMs);
      onApiAnswer(true);
      if (lastProbeReady === false) logger.info("the Kubernetes API server answers again", { server: apis.server });
      lastProbeReady = true;
      return true;
    } catch (error) {
      const failure = describeKubeFailure(error, []);
      onApiAnswer(false);
      // Logged once per transition: kubelet probes every few seconds.
      if (lastProbeReady !== false) {
        logger.error("not ready: the Kubernetes API server does not answer", {
          server: apis.server,
          status: failure.status,
          detail: failure.detail,
        });
      }
      lastProbeReady = false;
      return false;
    } finally {
      stopTimer();
    }
  }

  function checkReady(): Promise<boolean> {
    if (lastCallAnswered && now() - lastAnswerAt <= config.authReadyWindowMs) return Promise.resolve(true);
    probe ??= probeApiServer().finally(() => {
      probe = undefined;
    });
    return probe;
  }

  return {
    authenticate: identify,
    authorizeIdentity,
    checkReady,
    get cachedDecisions() {
      return access.cachedDecisions;
    },
  };
}
