// What every shared (central) server must prove in-cluster, whichever way it was installed (Helm or
// Kustomize). The suite file installs the server and two tenants, then calls describeSharedServer.
import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import { artifactUrl, ClientPod, listUrl, sha256 } from "./clients.js";
import { core, listPods, podReady } from "./kube.js";
import { poll } from "./poll.js";
import type { Tenant } from "./tenants.js";

export interface SharedServer {
  /** `http://<service>.<namespace>.svc:8080` */
  readonly url: string;
  readonly namespace: string;
  /** Label selector of the server pods. */
  readonly podSelector: string;
  readonly replicas: number;
  readonly teamA: Tenant;
  readonly teamB: Tenant;
}

interface StoredArtifact {
  uri: string;
  namespace: string;
  key: string;
  size: number;
  sha256: string;
}

/** An artifact team-a writes in the first test and every later test (pod deletion, upgrade) reads back. */
export const SURVIVOR = { key: "pipelines/training/run-1/model.txt", content: `model weights ${randomBytes(8).toString("hex")}\n` };

export function describeSharedServer(server: () => SharedServer): void {
  it("is Ready and answers /readyz through its Service, naming its node", async () => {
    const { url, teamA } = server();
    const ready = await teamA.client.request({ url: `${url}/readyz`, credential: "none" });
    expect(ready.status).toBe(200);
    const body = ClientPod.json<{ status: string; node: string; checks: { volume: boolean; kubernetes: boolean } }>(ready);
    expect(body).toMatchObject({ status: "ready", checks: { volume: true, kubernetes: true } });
    expect(body.node).not.toBe("");
  });

  it("lets a pipeline ServiceAccount write, read and list its own namespace's artifacts", async () => {
    const { url, teamA } = server();
    const ns = teamA.namespace;
    const [put, get, list] = await teamA.client.requestAll([
      { url: artifactUrl(url, ns, SURVIVOR.key), method: "PUT", body: { text: SURVIVOR.content } },
      { url: artifactUrl(url, ns, SURVIVOR.key) },
      { url: listUrl(url, ns, "pipelines/training/") },
    ]);
    expect(put.status).toBe(201);
    expect(ClientPod.json<StoredArtifact>(put)).toMatchObject({
      uri: `kfp-artifacts://${ns}/${SURVIVOR.key}`,
      size: Buffer.byteLength(SURVIVOR.content),
      sha256: sha256(SURVIVOR.content),
    });
    expect(get.status).toBe(200);
    expect(get.text).toBe(SURVIVOR.content);
    expect(get.headers.etag).toBeTruthy();
    expect(list.status).toBe(200);
    const keys = ClientPod.json<{ items: { key: string }[] }>(list).items.map((item) => item.key);
    expect(keys).toContain(SURVIVOR.key);
  });

  it("answers 403 to team-b's ServiceAccount on team-a's artifacts and list, and nothing changes", async () => {
    const { url, teamA, teamB } = server();
    const [get, list, put, del, ownPut] = await teamB.client.requestAll([
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key) },
      { url: listUrl(url, teamA.namespace) },
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), method: "PUT", body: { text: "overwritten by team-b" } },
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), method: "DELETE" },
      { url: artifactUrl(url, teamB.namespace, "own/data.txt"), method: "PUT", body: { text: "team-b's own" } },
    ]);
    for (const denied of [get, list, put, del]) expect(denied.status).toBe(403);
    expect(get.text).not.toContain(SURVIVOR.content);
    expect(ownPut.status).toBe(201);
    const unchanged = await teamA.client.request({ url: artifactUrl(url, teamA.namespace, SURVIVOR.key) });
    expect(unchanged.status).toBe(200);
    expect(unchanged.text).toBe(SURVIVOR.content);
  });

  it("answers 401 without a credential and to a token issued for the API server's audience", async () => {
    const { url, teamA } = server();
    const [anonymous, anonymousList, wrongAudience] = await teamA.client.requestAll([
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), credential: "none" },
      { url: listUrl(url, teamA.namespace), credential: "none" },
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), credential: "api-server-token" },
    ]);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect(anonymousList.status).toBe(401);
    expect(wrongAudience.status).toBe(401);
  });

  it("ignores a forged kubeflow-userid header while the trusted header is not enabled", async () => {
    const { url, teamA, teamB } = server();
    const forged = { "kubeflow-userid": teamA.user };
    const [withoutToken, withOtherToken] = await teamB.client.requestAll([
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), headers: forged, credential: "none" },
      { url: artifactUrl(url, teamA.namespace, SURVIVOR.key), headers: forged },
    ]);
    expect(withoutToken.status).toBe(401);
    expect(withOtherToken.status).toBe(403);
  });

  it("round-trips the KEP :write/:read API in-cluster, and keeps it per namespace", async () => {
    const { url, teamA, teamB } = server();
    const runId = `run-${randomBytes(4).toString("hex")}`;
    const payload = randomBytes(48 * 1024);
    const base = `${url}/apis/v2beta1/runs/${runId}/nodes/train-node/artifacts`;
    const [written, read, readV1, native] = await teamA.client.requestAll([
      {
        url: `${base}/model:write?namespace=${teamA.namespace}&pipeline=training`,
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: { base64: payload.toString("base64") },
      },
      { url: `${base}/model:read` },
      { url: `${url}/apis/v1beta1/runs/${runId}/nodes/train-node/artifacts/model:read` },
      { url: artifactUrl(url, teamA.namespace, `training/${runId}/train-node/model`) },
    ]);
    expect(written.status).toBe(200);
    expect(ClientPod.json<{ uri: string }>(written).uri).toBe(`kfp-artifacts://${teamA.namespace}/training/${runId}/train-node/model`);
    for (const answer of [read, readV1]) {
      expect(answer.status).toBe(200);
      expect(answer.headers["content-type"]).toMatch(/^application\/json/);
      expect(Buffer.from(ClientPod.json<{ data: string }>(answer).data, "base64").equals(payload)).toBe(true);
    }
    expect(native.status).toBe(200);
    expect(native.sha256).toBe(sha256(payload));
    // Runs are per namespace: team-b can use no namespace holding this run, so it is unknown to it;
    // naming team-a is asking team-a, which team-b may not read.
    const foreign = await teamB.client.request({ url: `${base}/model:read` });
    expect(foreign.status).toBe(404);
    const named = await teamB.client.request({ url: `${base}/model:read?namespace=${teamA.namespace}` });
    expect(named.status).toBe(403);
  });

  it("keeps artifacts when the server pods are deleted", async () => {
    const { url, namespace, podSelector, replicas, teamA } = server();
    const before = (await listPods(namespace, podSelector)).map((pod) => pod.metadata?.name ?? "");
    expect(before).toHaveLength(replicas);
    for (const name of before) await core.deleteNamespacedPod({ name, namespace });
    const after = await waitForReplacedPods(namespace, podSelector, replicas, before);
    expect(after.some((name) => before.includes(name))).toBe(false);
    const read = await teamA.client.request({ url: artifactUrl(url, teamA.namespace, SURVIVOR.key) });
    expect(read.status).toBe(200);
    expect(read.text).toBe(SURVIVOR.content);
  });
}

/** Waits until `replicas` Ready server pods exist and none of them is one of `old`. */
async function waitForReplacedPods(namespace: string, selector: string, replicas: number, old: readonly string[]): Promise<string[]> {
  return poll(
    async () => {
      const pods = await listPods(namespace, selector);
      const names = pods.map((pod) => pod.metadata?.name ?? "");
      return pods.length === replicas && pods.every(podReady) && !names.some((name) => old.includes(name)) ? names : undefined;
    },
    { timeoutMs: 180_000, what: `${replicas} new Ready server pod(s) replacing ${old.join(", ")}` },
  );
}
