import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { expect, it } from "vitest";
import { createKubernetesAuthorizer } from "../../src/auth/kubernetes.js";
import { silentLogger } from "../../src/log.js";
import { EDITOR_VERBS, FakeKubeApi } from "../support/fake-kube-api.js";

it("measure", async () => {
  const api = await FakeKubeApi.start({ tokens: { t: { user: "u" } }, rules: [{ user: "u", namespace: "*", verbs: EDITOR_VERBS }] });
  const dir = await mkdtemp(path.join(tmpdir(), "m-"));
  const kubeconfig = await api.writeKubeconfig(dir);
  const a = createKubernetesAuthorizer({ authAudiences: ["pipelines.kubeflow.org"], trustedUserHeader: undefined, trustedUserPrefix: "", authCacheTtlMs: 10000, authCacheMaxEntries: 100000, authReadyWindowMs: 1000, kubeconfig }, { registry: new Registry(), logger: silentLogger });
  const h = new Headers({ authorization: "Bearer t" });
  await a.authorize(h, "ns-warm", "readArtifact");
  const c0 = api.connections; const t0 = performance.now();
  const N = 500;
  for (let i = 0; i < N; i++) await a.authorize(h, `ns-${i}`, "readArtifact");
  const ms = performance.now() - t0;
  console.log(`sequential misses: ${N} SARs, ${api.connections - c0} connections, ${(ms / N).toFixed(2)} ms/review`);
  const t1 = performance.now();
  for (let i = 0; i < N; i++) await a.authorize(h, `ns-${i}`, "readArtifact");
  console.log(`sequential hits: ${((performance.now() - t1) / N * 1000).toFixed(1)} us/request`);
  expect(api.calls.subjectAccessReviews).toBe(N + 1);
  await api.stop();
});
