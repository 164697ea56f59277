// AUTH_MODE=kubernetes against the fake API server over real HTTP, through a kubeconfig file: the real
// @kubernetes/client-node code path, end to end, for the whole authorization matrix.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AccessDenied, createAuthorizer } from "../../src/auth/index.js";
import {
  createKubernetesAuthorizer,
  type KubernetesAuthorizer,
  type KubernetesAuthorizerConfig,
} from "../../src/auth/kubernetes.js";
import type { ArtifactVerb } from "../../src/auth/types.js";
import { loadConfig } from "../../src/config.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { authorize } from "../support/authorize.js";
import { EDITOR_VERBS, FakeKubeApi, VIEWER_VERBS, writeKubeconfigFile } from "../support/fake-kube-api.js";

const TOKENS = {
  alice: "alice-token-4f1c9e", // editor in team-a through a group only
  victor: "victor-token-77ab02", // viewer in team-a by user name
  mallory: "mallory-token-0d3e55", // authenticated, no rules
  stranger: "stranger-token-9a8b7c", // minted for another audience
  webhook: "webhook-token-5e6f70", // audience-unaware authenticator, other audience
  pipeline: "pipeline-token-3c2d1e", // a pipeline service account with uid and extra
};

let workDir: string;
let api: FakeKubeApi;
let kubeconfigPath: string;
let logLines: string[];
let registry: Registry;

const baseConfig: KubernetesAuthorizerConfig = {
  authAudiences: ["pipelines.kubeflow.org"],
  trustedUserHeader: undefined,
  trustedUserPrefix: "",
  authCacheTtlMs: 10_000,
  authCacheMaxEntries: 1_000,
  authReadyWindowMs: 60_000,
  kubeconfig: undefined,
};

function makeAuthorizer(
  overrides: Partial<KubernetesAuthorizerConfig> = {},
  apiTimeoutMs = 5_000,
): KubernetesAuthorizer {
  return createKubernetesAuthorizer(
    { ...baseConfig, kubeconfig: kubeconfigPath, ...overrides },
    { registry, logger: createLogger("debug", (line) => logLines.push(line)) },
    { apiTimeoutMs },
  );
}

function bearer(token: string, extra: Record<string, string> = {}): Headers {
  return new Headers({ authorization: `Bearer ${token}`, ...extra });
}

/** The HttpError the promise rejects with (fails the test if it resolves or rejects otherwise). */
async function httpError(promise: Promise<unknown>): Promise<HttpError> {
  const outcome = await promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ rejected: error }),
  );
  if (!("rejected" in outcome)) throw new Error(`expected an HttpError, got ${JSON.stringify(outcome.resolved)}`);
  expect(outcome.rejected).toBeInstanceOf(HttpError);
  return outcome.rejected as HttpError;
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "kfp-auth-test-"));
  api = await FakeKubeApi.start({
    tokens: {
      [TOKENS.alice]: { user: "alice@example.com", groups: ["team-a-editors", "system:authenticated"] },
      [TOKENS.victor]: { user: "victor@example.com", groups: ["system:authenticated"] },
      [TOKENS.mallory]: { user: "mallory@example.com", groups: ["system:authenticated"] },
      [TOKENS.stranger]: { user: "stranger", audiences: ["https://other.example.com"] },
      [TOKENS.webhook]: { user: "hooked", audiences: ["https://other.example.com"], audienceAware: false },
      [TOKENS.pipeline]: {
        user: "system:serviceaccount:team-a:pipeline-runner",
        groups: ["system:serviceaccounts", "system:serviceaccounts:team-a"],
        uid: "7d1f5a0c-uid",
        extra: { "authentication.kubernetes.io/pod-name": ["run-abc-123"] },
      },
    },
    rules: [
      { group: "team-a-editors", namespace: "team-a", verbs: EDITOR_VERBS },
      { user: "victor@example.com", namespace: "team-a", verbs: VIEWER_VERBS },
      { user: "system:serviceaccount:team-a:pipeline-runner", namespace: "team-a", verbs: EDITOR_VERBS },
      { user: "proxy-user@example.com", namespace: "team-a", verbs: VIEWER_VERBS },
    ],
  });
  kubeconfigPath = await api.writeKubeconfig(workDir);
});

afterAll(async () => {
  await api.stop();
  await rm(workDir, { recursive: true, force: true });
});

beforeEach(async () => {
  await api.resume();
  api.failure = { kind: "none" };
  api.delayMs = 0;
  api.resetConnections = 0;
  api.resetCounts();
  logLines = [];
  registry = new Registry();
});

afterEach(() => {
  // No test may leak a token into the logs, whatever it did.
  const logs = logLines.join("");
  for (const token of [...Object.values(TOKENS), api.callerToken]) expect(logs).not.toContain(token);
});

describe("authentication", () => {
  it("answers 401 with WWW-Authenticate to a request without identity, without asking the API", async () => {
    const error = await httpError(authorize(makeAuthorizer(), new Headers(), "team-a", "readArtifact"));
    expect(error.status).toBe(401);
    expect(error.headers["WWW-Authenticate"]).toMatch(/^Bearer/);
    expect(api.calls.tokenReviews + api.calls.subjectAccessReviews).toBe(0);
  });

  it("answers 401 to an Authorization header that is not a Bearer token", async () => {
    const authorizer = makeAuthorizer();
    for (const value of ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer  two words"]) {
      const error = await httpError(authorize(authorizer, new Headers({ authorization: value }), "team-a", "readArtifact"));
      expect(error.status).toBe(401);
    }
    expect(api.calls.tokenReviews).toBe(0);
  });

  it("answers 401 to a token the API server does not authenticate, and sends our audiences", async () => {
    const error = await httpError(authorize(makeAuthorizer(), bearer("not-a-real-token"), "team-a", "readArtifact"));
    expect(error.status).toBe(401);
    expect(error.headers["WWW-Authenticate"]).toMatch(/^Bearer/);
    expect(api.received.tokenReviews).toEqual([{ token: "not-a-real-token", audiences: ["pipelines.kubeflow.org"] }]);
    expect(api.calls.subjectAccessReviews).toBe(0);
  });

  it("answers 401 to a token minted for another audience", async () => {
    const error = await httpError(authorize(makeAuthorizer(), bearer(TOKENS.stranger), "team-a", "readArtifact"));
    expect(error.status).toBe(401);
    expect(api.calls.subjectAccessReviews).toBe(0);
  });

  it("answers 401 when an audience-unaware authenticator reports none of our audiences", async () => {
    const error = await httpError(authorize(makeAuthorizer(), bearer(TOKENS.webhook), "team-a", "readArtifact"));
    expect(error.status).toBe(401);
    expect(api.calls.tokenReviews).toBe(1);
    expect(api.calls.subjectAccessReviews).toBe(0);
  });
});

describe("authorization", () => {
  it("allows through a group only, and the SubjectAccessReview carries user and groups", async () => {
    const identity = await authorize(makeAuthorizer(), bearer(TOKENS.alice), "team-a", "writeArtifact");
    expect(identity).toEqual({
      user: "alice@example.com",
      groups: ["team-a-editors", "system:authenticated"],
      via: "token",
    });
    expect(api.received.subjectAccessReviews).toEqual([
      {
        user: "alice@example.com",
        groups: ["team-a-editors", "system:authenticated"],
        resourceAttributes: {
          group: "pipelines.kubeflow.org",
          version: "v1beta1",
          resource: "runs",
          namespace: "team-a",
          verb: "writeArtifact",
        },
      },
    ]);
  });

  it("forwards uid and extra of a service account token", async () => {
    const identity = await authorize(makeAuthorizer(), bearer(TOKENS.pipeline), "team-a", "deleteArtifact");
    expect(identity.uid).toBe("7d1f5a0c-uid");
    expect(identity.extra).toEqual({ "authentication.kubernetes.io/pod-name": ["run-abc-123"] });
    const [review] = api.received.subjectAccessReviews;
    expect(review?.uid).toBe("7d1f5a0c-uid");
    expect(review?.extra).toEqual({ "authentication.kubernetes.io/pod-name": ["run-abc-123"] });
    expect(review?.groups).toEqual(["system:serviceaccounts", "system:serviceaccounts:team-a"]);
  });

  it("gives a viewer read only and an editor read, write and delete", async () => {
    const authorizer = makeAuthorizer();
    const verbs: ArtifactVerb[] = ["readArtifact", "writeArtifact", "deleteArtifact"];
    for (const verb of verbs) {
      await expect(authorize(authorizer, bearer(TOKENS.alice), "team-a", verb)).resolves.toMatchObject({
        user: "alice@example.com",
      });
    }
    await expect(authorize(authorizer, bearer(TOKENS.victor), "team-a", "readArtifact")).resolves.toMatchObject({
      user: "victor@example.com",
    });
    for (const verb of ["writeArtifact", "deleteArtifact"] as const) {
      const error = await httpError(authorize(authorizer, bearer(TOKENS.victor), "team-a", verb));
      expect(error.status).toBe(403);
      expect(error.message).toContain(verb);
      expect(error.message).toContain('"team-a"');
    }
  });

  it("answers 403 in another namespace and to an authenticated user without rules, logged at warn", async () => {
    const authorizer = makeAuthorizer();
    const other = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-b", "readArtifact"));
    expect(other.status).toBe(403);
    expect(other.message).toBe('user "alice@example.com" may not readArtifact in namespace "team-b"');
    // The refusal still names who was refused, for the request's audit line.
    expect(other).toBeInstanceOf(AccessDenied);
    expect((other as AccessDenied).identity).toMatchObject({ user: "alice@example.com", groups: ["team-a-editors", "system:authenticated"] });
    const nobody = await httpError(authorize(authorizer, bearer(TOKENS.mallory), "team-a", "readArtifact"));
    expect(nobody.status).toBe(403);
    const denials = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === "access denied");
    expect(denials).toHaveLength(2);
    expect(denials[0]).toMatchObject({
      level: "warn",
      user: "alice@example.com",
      groups: ["team-a-editors", "system:authenticated"],
      namespace: "team-b",
      verb: "readArtifact",
    });
  });
});

describe("trusted user header", () => {
  it("is ignored entirely when not configured", async () => {
    const headers = new Headers({ "kubeflow-userid": "accounts.google.com:proxy-user@example.com" });
    const error = await httpError(authorize(makeAuthorizer(), headers, "team-a", "readArtifact"));
    expect(error.status).toBe(401);
    // A token still decides, whatever the header says.
    headers.set("authorization", `Bearer ${TOKENS.victor}`);
    await expect(authorize(makeAuthorizer(), headers, "team-a", "readArtifact")).resolves.toMatchObject({
      user: "victor@example.com",
      via: "token",
    });
  });

  it("names the user, prefix stripped and without groups, when configured", async () => {
    const authorizer = makeAuthorizer({ trustedUserHeader: "kubeflow-userid", trustedUserPrefix: "accounts.google.com:" });
    const headers = new Headers({ "Kubeflow-UserID": "accounts.google.com:proxy-user@example.com" });
    await expect(authorize(authorizer, headers, "team-a", "readArtifact")).resolves.toEqual({
      user: "proxy-user@example.com",
      groups: [],
      via: "trusted-header",
    });
    expect(api.calls.tokenReviews).toBe(0);
    expect(api.received.subjectAccessReviews[0]).toMatchObject({ user: "proxy-user@example.com", groups: [] });
    const denied = await httpError(authorize(authorizer, headers, "team-a", "writeArtifact"));
    expect(denied.status).toBe(403);
  });

  it("answers 401 when the configured prefix is missing or nothing follows it", async () => {
    const authorizer = makeAuthorizer({ trustedUserHeader: "kubeflow-userid", trustedUserPrefix: "accounts.google.com:" });
    for (const value of ["proxy-user@example.com", "accounts.google.com:"]) {
      const error = await httpError(authorize(authorizer, new Headers({ "kubeflow-userid": value }), "team-a", "readArtifact"));
      expect(error.status).toBe(401);
    }
    expect(api.calls.subjectAccessReviews).toBe(0);
  });
});

describe("caching and coalescing", () => {
  it("sends one review of each kind for 50 concurrent then 50 sequential identical requests", async () => {
    const authorizer = makeAuthorizer();
    api.delayMs = 50; // keep the first reviews in flight while the others arrive
    const concurrent = await Promise.all(
      Array.from({ length: 50 }, () => authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact")),
    );
    expect(concurrent.every((identity) => identity.user === "alice@example.com")).toBe(true);
    for (let i = 0; i < 50; i += 1) await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    expect(api.calls.tokenReviews).toBe(1);
    expect(api.calls.subjectAccessReviews).toBe(1);
    const metrics = await registry.metrics();
    expect(metrics).toContain('kfp_artifacts_auth_cache_total{cache="decision",result="hit"} 50');
    expect(metrics).toContain('kfp_artifacts_auth_reviews_total{kind="token",outcome="authenticated"} 1');
    expect(metrics).toContain('kfp_artifacts_auth_reviews_total{kind="access",outcome="allowed"} 1');
    expect(metrics).toMatch(/kfp_artifacts_auth_review_duration_seconds_count\{kind="access"\} 1/);
  });

  it("caches denials and rejected tokens too", async () => {
    const authorizer = makeAuthorizer();
    for (let i = 0; i < 10; i += 1) {
      expect((await httpError(authorize(authorizer, bearer(TOKENS.victor), "team-a", "deleteArtifact"))).status).toBe(403);
      expect((await httpError(authorize(authorizer, bearer("bogus-token"), "team-a", "readArtifact"))).status).toBe(401);
    }
    expect(api.calls.subjectAccessReviews).toBe(1);
    expect(api.calls.tokenReviews).toBe(2); // victor's and the bogus one
    expect(await registry.metrics()).toContain('kfp_artifacts_auth_reviews_total{kind="access",outcome="denied"} 1');
  });

  it("asks again once the TTL has passed", async () => {
    const authorizer = makeAuthorizer({ authCacheTtlMs: 150 });
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    expect(api.calls.subjectAccessReviews).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    expect(api.calls.tokenReviews).toBe(2);
    expect(api.calls.subjectAccessReviews).toBe(2);
  });

  it("keeps nothing with a TTL of 0", async () => {
    const authorizer = makeAuthorizer({ authCacheTtlMs: 0 });
    for (let i = 0; i < 3; i += 1) await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    expect(api.calls.tokenReviews).toBe(3);
    expect(api.calls.subjectAccessReviews).toBe(3);
  });

  it("never holds more decisions than authCacheMaxEntries, evicting the least recently used", async () => {
    const authorizer = makeAuthorizer({ authCacheMaxEntries: 3 });
    const namespaces = ["ns-1", "ns-2", "ns-3", "ns-4", "ns-5"];
    for (const namespace of namespaces) {
      await httpError(authorize(authorizer, bearer(TOKENS.alice), namespace, "readArtifact"));
      expect(authorizer.cachedDecisions).toBeLessThanOrEqual(3);
    }
    expect(authorizer.cachedDecisions).toBe(3);
    expect(api.calls.subjectAccessReviews).toBe(5);
    await httpError(authorize(authorizer, bearer(TOKENS.alice), "ns-5", "readArtifact")); // still cached
    expect(api.calls.subjectAccessReviews).toBe(5);
    await httpError(authorize(authorizer, bearer(TOKENS.alice), "ns-1", "readArtifact")); // evicted
    expect(api.calls.subjectAccessReviews).toBe(6);
  });
});

describe("fail closed", () => {
  it("answers 503, never allows, when the API server is stopped; recovers when it is back", async () => {
    const authorizer = makeAuthorizer();
    await api.stop();
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"));
    expect(error.status).toBe(503);
    expect(error.message).toBe("authorization service unavailable");
    const failureLog = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.level === "error");
    expect(failureLog?.detail).toMatch(/ECONNREFUSED/);
    await api.resume();
    await expect(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact")).resolves.toMatchObject({
      user: "alice@example.com",
    });
  });

  it("answers 503 to an API server error and does not cache the failure", async () => {
    const authorizer = makeAuthorizer();
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"); // token now cached
    api.failure = { kind: "status", status: 500 };
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "writeArtifact"));
    expect(error.status).toBe(503);
    // An error answer is not a successful one: readiness asks again at once, and the API still fails.
    expect(await authorizer.checkReady()).toBe(false);
    expect(api.calls.version).toBe(1);
    api.failure = { kind: "none" };
    await expect(authorize(authorizer, bearer(TOKENS.alice), "team-a", "writeArtifact")).resolves.toMatchObject({
      user: "alice@example.com",
    });
    expect(await registry.metrics()).toContain('kfp_artifacts_auth_reviews_total{kind="access",outcome="error"} 1');
  });

  it("answers 503 within the deadline when the API server hangs", async () => {
    const authorizer = makeAuthorizer({}, 300);
    api.failure = { kind: "hang" };
    const started = performance.now();
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"));
    const elapsed = performance.now() - started;
    expect(error.status).toBe(503);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("answers 503 and logs a misconfiguration when the API refuses our own requests, without leaking the token", async () => {
    const authorizer = makeAuthorizer();
    // The worst case: a 403 whose message echoes our request, token included.
    api.failure = { kind: "status", status: 403, echoRequest: true };
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"));
    expect(error.status).toBe(503);
    const logged = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.level === "error");
    expect(logged?.msg).toMatch(/credentials and RBAC \(create tokenreviews\)/);
    expect(logged?.status).toBe(403);
    expect(logged?.detail).toContain("[redacted]");
    // afterEach checks that no token appears anywhere in the logs.
  });

  it("answers 503 when our own kubeconfig credentials are rejected", async () => {
    const wrongCredentials = await writeKubeconfigFile(path.join(workDir, "wrong-kubeconfig"), api.url, "not-our-token");
    const authorizer = makeAuthorizer({ kubeconfig: wrongCredentials });
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"));
    expect(error.status).toBe(503);
    expect(api.calls.unauthenticatedCallers).toBe(1);
  });
});

describe("connections", () => {
  it("reuses kept-alive connections to the API server across reviews", async () => {
    const authorizer = makeAuthorizer();
    const before = api.connections;
    for (let i = 0; i < 20; i += 1) await httpError(authorize(authorizer, bearer(TOKENS.alice), `ns-${i}`, "readArtifact"));
    expect(api.calls.subjectAccessReviews).toBe(20);
    expect(api.connections - before).toBeLessThanOrEqual(2);
  });

  it("retries a review once after a connection reset, and fails closed when resets persist", async () => {
    const authorizer = makeAuthorizer();
    api.resetConnections = 1;
    await expect(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact")).resolves.toMatchObject({
      user: "alice@example.com",
    });
    expect(api.calls.tokenReviews).toBe(2);
    api.resetConnections = 10;
    const error = await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "writeArtifact"));
    expect(error.status).toBe(503);
    expect(api.calls.subjectAccessReviews).toBe(3); // 1 answered, then 2 resets: one try and one retry
  });
});

describe("logging", () => {
  it("never writes a token, even at debug level, across every outcome", async () => {
    const authorizer = makeAuthorizer({}, 300);
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    await httpError(authorize(authorizer, bearer("bogus-token-1234567"), "team-a", "readArtifact"));
    await httpError(authorize(authorizer, bearer(TOKENS.victor), "team-a", "writeArtifact"));
    api.failure = { kind: "status", status: 500, echoRequest: true };
    await httpError(authorize(authorizer, bearer(TOKENS.mallory), "team-a", "readArtifact"));
    api.failure = { kind: "hang" };
    await httpError(authorize(authorizer, bearer(TOKENS.pipeline), "team-a", "readArtifact"));
    const logs = logLines.join("");
    expect(logLines.length).toBeGreaterThanOrEqual(4); // debug rejection, warn denial, two errors
    expect(logs).toContain("[redacted]");
    for (const token of ["bogus-token-1234567", ...Object.values(TOKENS), api.callerToken]) {
      expect(logs).not.toContain(token);
    }
  });
});

describe("readiness", () => {
  it("probes once, trusts a recent answer, and follows the API server down and up", async () => {
    const authorizer = makeAuthorizer({ authReadyWindowMs: 1_000 });
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => authorizer.checkReady()));
    expect(concurrent).toEqual([true, true, true, true, true]);
    expect(api.calls.version).toBe(1);
    expect(await authorizer.checkReady()).toBe(true);
    expect(api.calls.version).toBe(1); // inside the window

    await api.stop();
    // A failed review ends the window at once.
    await httpError(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact"));
    expect(await authorizer.checkReady()).toBe(false);
    expect(await authorizer.checkReady()).toBe(false);
    await api.resume();
    expect(await authorizer.checkReady()).toBe(true);
    expect(api.calls.version).toBe(2); // the first probe and this one: the failed two reached no listener
  });

  it("counts a successful review as an answer, and probes again after the window", async () => {
    const authorizer = makeAuthorizer({ authReadyWindowMs: 100 });
    await authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact");
    expect(await authorizer.checkReady()).toBe(true);
    expect(api.calls.version).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    api.failure = { kind: "status", status: 500 };
    expect(await authorizer.checkReady()).toBe(false);
    expect(api.calls.version).toBe(1);
  });

  it("is false within the deadline when the API server hangs", async () => {
    const authorizer = makeAuthorizer({}, 300);
    api.failure = { kind: "hang" };
    const started = performance.now();
    expect(await authorizer.checkReady()).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("wiring", () => {
  it("createAuthorizer builds the Kubernetes authorizer from KUBECONFIG", async () => {
    const config = loadConfig({ AUTH_MODE: "kubernetes", KUBECONFIG: kubeconfigPath });
    const authorizer = createAuthorizer(config, { registry, logger: createLogger("error", (line) => logLines.push(line)) });
    await expect(authorize(authorizer, bearer(TOKENS.alice), "team-a", "readArtifact")).resolves.toMatchObject({
      user: "alice@example.com",
    });
    expect(api.calls.tokenReviews).toBe(1);
  });

  it("refuses to start without KUBECONFIG outside a cluster, or without an audience", () => {
    const previous = process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      expect(() => createAuthorizer(loadConfig({ AUTH_MODE: "kubernetes" }), { registry, logger: createLogger("error", () => {}) })).toThrow(
        /found neither a cluster \(KUBERNETES_SERVICE_HOST is not set\) nor KUBECONFIG: for local use set AUTH_MODE=none/,
      );
    } finally {
      if (previous !== undefined) process.env.KUBERNETES_SERVICE_HOST = previous;
    }
    expect(() => makeAuthorizer({ authAudiences: [] })).toThrow(/AUTH_AUDIENCES/);
  });
});
