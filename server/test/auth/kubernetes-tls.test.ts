// The production shape: an https API server whose CA comes from the kubeconfig. Proves the shared
// keep-alive agent carries the kubeconfig's TLS settings, and that a certificate we cannot verify fails
// closed.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { rootCertificates } from "node:tls";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createKubernetesAuthorizer, type KubernetesAuthorizerConfig } from "../../src/auth/kubernetes.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { authorize } from "../support/authorize.js";
import { EDITOR_VERBS, FakeKubeApi, writeKubeconfigFile } from "../support/fake-kube-api.js";

let workDir: string;
let api: FakeKubeApi;

const config = (kubeconfig: string): KubernetesAuthorizerConfig => ({
  authAudiences: ["pipelines.kubeflow.org"],
  trustedUserHeader: undefined,
  trustedUserPrefix: "",
  authCacheTtlMs: 10_000,
  authCacheMaxEntries: 100,
  authReadyWindowMs: 60_000,
  kubeconfig,
});

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "kfp-auth-tls-"));
  api = await FakeKubeApi.start({
    tls: true,
    tokens: { "runner-token": { user: "system:serviceaccount:team-a:runner", groups: ["system:serviceaccounts"] } },
    rules: [{ group: "system:serviceaccounts", namespace: "team-a", verbs: EDITOR_VERBS }],
  });
});

afterAll(async () => {
  await api.stop();
  await rm(workDir, { recursive: true, force: true });
});

it("reviews over HTTPS with the kubeconfig's CA, reusing one connection", async () => {
  expect(api.url).toMatch(/^https:/);
  const logs: string[] = [];
  const authorizer = createKubernetesAuthorizer(config(await api.writeKubeconfig(workDir)), {
    registry: new Registry(),
    logger: createLogger("debug", (line) => logs.push(line)),
  });
  const headers = new Headers({ authorization: "Bearer runner-token" });
  expect(await authorizer.checkReady()).toBe(true);
  const before = api.connections;
  await expect(authorize(authorizer, headers, "team-a", "writeArtifact")).resolves.toMatchObject({
    user: "system:serviceaccount:team-a:runner",
  });
  for (let i = 0; i < 20; i += 1) {
    await expect(authorize(authorizer, headers, `other-${i}`, "readArtifact")).rejects.toMatchObject({ status: 403 });
  }
  expect(api.calls.subjectAccessReviews).toBe(21);
  expect(api.connections - before).toBeLessThanOrEqual(1);
  expect(logs.join("")).not.toContain("runner-token");
});

it("fails closed when the API server's certificate does not verify", async () => {
  const untrusted = await writeKubeconfigFile(
    path.join(workDir, "untrusted-kubeconfig"),
    api.url,
    api.callerToken,
    rootCertificates[0], // a real root CA that did not sign the fake's certificate
  );
  const logs: string[] = [];
  const authorizer = createKubernetesAuthorizer(config(untrusted), {
    registry: new Registry(),
    logger: createLogger("debug", (line) => logs.push(line)),
  });
  const answered = api.calls.tokenReviews;
  const error: unknown = await authorize(authorizer, new Headers({ authorization: "Bearer runner-token" }), "team-a", "readArtifact").catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HttpError);
  expect((error as HttpError).status).toBe(503);
  expect(api.calls.tokenReviews).toBe(answered); // no request got through the TLS handshake
  expect(logs.join("")).toMatch(/certificate|self[- ]signed|verify/i);
  expect(await authorizer.checkReady()).toBe(false);
});
