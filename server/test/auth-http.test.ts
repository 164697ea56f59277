// Authorization wired into every route, through the real Kubernetes client against the local stand-in
// of the API server: who may do what, denial before any byte is stored, fail-closed, scoping, audit log.
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EDITOR_VERBS, FakeKubeApi, VIEWER_VERBS } from "./support/fake-kube-api.js";
import { artifactUrl, listFiles, startTestServer, tempDir, type TestServer } from "./support/harness.js";

let api: FakeKubeApi;
let s: TestServer;
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

beforeAll(async () => {
  api = await FakeKubeApi.start({
    tokens: {
      "alice-token": { user: "alice", groups: ["team-a-editors"] },
      "victor-token": { user: "victor", groups: ["viewers"] },
      "bob-token": { user: "system:serviceaccount:team-b:pipeline-runner", groups: ["system:serviceaccounts"] },
      "carol-token": { user: "system:serviceaccount:team-c:pipeline-runner", groups: ["system:serviceaccounts"] },
    },
    rules: [
      { group: "team-a-editors", namespace: "team-a", verbs: EDITOR_VERBS },
      { user: "victor", namespace: "team-a", verbs: VIEWER_VERBS },
      { user: "system:serviceaccount:team-b:pipeline-runner", namespace: "team-b", verbs: EDITOR_VERBS },
    ],
  });
  const kubeconfig = await api.writeKubeconfig(await tempDir("kubeconfig"));
  s = await startTestServer({ AUTH_MODE: "kubernetes", KUBECONFIG: kubeconfig, AUTH_CACHE_TTL_SECONDS: "0", LOG_LEVEL: "info" });
});

afterAll(async () => {
  await s.close();
  await api.stop();
});

describe("authorization on the HTTP routes", () => {
  const a = (key: string) => artifactUrl(s.url, "team-a", key);

  it("anonymous → 401 with WWW-Authenticate; nothing stored", async () => {
    const response = await fetch(a("anon"), { method: "PUT", body: "x" });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await listFiles(s.root)).filter((f) => f.startsWith("team-a"))).toEqual([]);
  });

  it("an editor (via a group) writes, reads, lists and deletes", async () => {
    expect((await fetch(a("model"), { method: "PUT", body: "weights", headers: bearer("alice-token") })).status).toBe(201);
    expect(await (await fetch(a("model"), { headers: bearer("alice-token") })).text()).toBe("weights");
    expect((await fetch(`${s.url}/v1/namespaces/team-a/artifacts`, { headers: bearer("alice-token") })).status).toBe(200);
    expect((await fetch(a("model"), { method: "DELETE", headers: bearer("alice-token") })).status).toBe(204);
  });

  it("a viewer reads but may not write or delete (403 before any byte is stored)", async () => {
    await fetch(a("shared"), { method: "PUT", body: "v1", headers: bearer("alice-token") });
    expect(await (await fetch(a("shared"), { headers: bearer("victor-token") })).text()).toBe("v1");
    const write = await fetch(a("shared"), { method: "PUT", body: "v2", headers: bearer("victor-token") });
    expect(write.status).toBe(403);
    expect(((await write.json()) as { error: { message: string } }).error.message).toMatch(/writeArtifact/);
    expect((await fetch(a("shared"), { method: "DELETE", headers: bearer("victor-token") })).status).toBe(403);
    expect(await fs.readFile(path.join(s.root, "team-a/shared"), "utf8")).toBe("v1");
    expect(await listFiles(path.join(s.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("another tenant's service account gets 403 on team-a's artifacts and list, and works in its own namespace", async () => {
    expect((await fetch(a("shared"), { headers: bearer("bob-token") })).status).toBe(403);
    expect((await fetch(`${s.url}/v1/namespaces/team-a/artifacts`, { headers: bearer("bob-token") })).status).toBe(403);
    expect((await fetch(artifactUrl(s.url, "team-b", "x"), { method: "PUT", body: "b", headers: bearer("bob-token") })).status).toBe(201);
  });

  it("KFP :write is authorized in the run's namespace, and a denied write records no run", async () => {
    const denied = await fetch(`${s.url}/apis/v2beta1/runs/r-denied/nodes/n/artifacts/a:write?namespace=team-a&pipeline=p`, {
      method: "POST",
      body: "x",
      headers: bearer("bob-token"),
    });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toHaveProperty("error_message");
    // Bob cannot claim the run for team-b later either, since nobody recorded it for team-a; alice can use it.
    const allowed = await fetch(`${s.url}/apis/v2beta1/runs/r-denied/nodes/n/artifacts/a:write?namespace=team-a&pipeline=p`, {
      method: "POST",
      body: "x",
      headers: bearer("alice-token"),
    });
    expect(allowed.status).toBe(200);
    const read = await fetch(`${s.url}/apis/v1beta1/runs/r-denied/nodes/n/artifacts/a:read`, { headers: bearer("victor-token") });
    expect(read.status).toBe(200);
  });

  it("KFP: a run's first :write without ?namespace= takes the caller's service account's namespace", async () => {
    const write = await fetch(`${s.url}/apis/v2beta1/runs/r-inferred/nodes/n/artifacts/model%2Fw.bin:write?pipeline=p`, {
      method: "POST",
      body: "weights",
      headers: bearer("bob-token"),
    });
    expect(write.status).toBe(200);
    expect(await write.json()).toEqual({ uri: "kfp-artifacts://team-b/p/r-inferred/n/model/w.bin" });
    expect(await fs.readFile(path.join(s.root, "team-b/p/r-inferred/n/model/w.bin"), "utf8")).toBe("weights");
    // Recorded in team-b: later calls find it there without naming it.
    const read = await fetch(`${s.url}/apis/v2beta1/runs/r-inferred/nodes/n/artifacts/model:read`, { headers: bearer("bob-token") });
    expect(read.status).toBe(200);
    expect(api.received.subjectAccessReviews.some((review) => review.resourceAttributes?.namespace === "team-b" && review.user === "system:serviceaccount:team-b:pipeline-runner")).toBe(true);
  });

  it("KFP: the namespace taken from a service account is authorized like a named one (403, no run recorded)", async () => {
    const denied = await fetch(`${s.url}/apis/v2beta1/runs/r-carol/nodes/n/artifacts/a:write?pipeline=p`, { method: "POST", body: "x", headers: bearer("carol-token") });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toHaveProperty("error_message");
    expect(await listFiles(s.root)).not.toContain(expect.stringContaining("r-carol"));
    // Nobody recorded r-carol: team-a's editor may claim it for team-a.
    const claimed = await fetch(`${s.url}/apis/v2beta1/runs/r-carol/nodes/n/artifacts/a:write?namespace=team-a&pipeline=p`, { method: "POST", body: "x", headers: bearer("alice-token") });
    expect(claimed.status).toBe(200);
  });

  it("KFP: a person's token (not a service account) must name the namespace of a run's first :write (400)", async () => {
    const response = await fetch(`${s.url}/apis/v2beta1/runs/r-person/nodes/n/artifacts/a:write?pipeline=p`, { method: "POST", body: "x", headers: bearer("alice-token") });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error_message: string }).error_message).toMatch(/must name its namespace.*service account/);
    // Anonymous: authentication comes first, whatever is missing.
    expect((await fetch(`${s.url}/apis/v2beta1/runs/r-person/nodes/n/artifacts/a:write?pipeline=p`, { method: "POST", body: "x" })).status).toBe(401);
  });

  it("the audit log names user, groups, verb, namespace, key and decision; denials at warn", async () => {
    await fetch(a("audited"), { method: "PUT", body: "x", headers: bearer("victor-token") });
    const line = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((entry) => entry.key === "audited");
    expect(line).toMatchObject({
      level: "warn",
      msg: "request",
      user: "victor",
      groups: ["viewers"],
      verb: "writeArtifact",
      namespace: "team-a",
      key: "audited",
      decision: "deny",
      status: 403,
    });
    expect(s.logs.join("\n")).not.toContain("victor-token");
  });

  const kfp = (run: string, action: "read" | "write", query = "") => `${s.url}/apis/v2beta1/runs/${run}/nodes/n/artifacts/a:${action}${query}`;
  const answer = async (response: Response) => ({ status: response.status, body: await response.text() });

  it("KFP: anonymous requests get the same 401 for an existing run, an unknown one and any ?namespace= guess", async () => {
    const known = await fetch(kfp("r-known", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "x", headers: bearer("alice-token") });
    expect(known.status).toBe(200);
    const reads = await Promise.all(
      ["r-known", "r-never-written"].flatMap((run) =>
        ["", "?namespace=team-a", "?namespace=team-b", "?namespace=team-a&pipeline=p"].map((query) => fetch(kfp(run, "read", query)).then(answer)),
      ),
    );
    const writes = await Promise.all(
      ["r-known", "r-never-written"].flatMap((run) =>
        ["", "?namespace=team-b&pipeline=p", "?namespace=team-a&pipeline=other"].map((query) =>
          fetch(kfp(run, "write", query), { method: "POST", body: "y" }).then(answer),
        ),
      ),
    );
    const first = reads[0];
    expect(first?.status).toBe(401);
    for (const each of [...reads, ...writes]) expect(each).toEqual(first);
  });

  it("KFP: a run id claimed first in another tenant's namespace does not lock its owner out", async () => {
    // Bob guesses (or copies) team-a's next run id and claims it in his own namespace first.
    const squat = await fetch(kfp("r-squatted", "write", "?namespace=team-b&pipeline=p"), { method: "POST", body: "bob's", headers: bearer("bob-token") });
    expect(squat.status).toBe(200);
    const owner = await fetch(kfp("r-squatted", "write", "?namespace=team-a&pipeline=training"), { method: "POST", body: "alice's", headers: bearer("alice-token") });
    expect(owner.status).toBe(200);
    expect(await owner.json()).toEqual({ uri: "kfp-artifacts://team-a/training/r-squatted/n/a" });
    // Later calls without ?namespace= find the one namespace holding the run that the caller may use.
    const later = await fetch(kfp("r-squatted", "write"), { method: "POST", body: "alice's again", headers: bearer("alice-token") });
    expect(await later.json()).toEqual({ uri: "kfp-artifacts://team-a/training/r-squatted/n/a" });
    const data = async (token: string) => {
      const response = await fetch(kfp("r-squatted", "read"), { headers: bearer(token) });
      return Buffer.from(((await response.json()) as { data: string }).data, "base64").toString();
    };
    expect(await data("alice-token")).toBe("alice's again");
    expect(await data("victor-token")).toBe("alice's again");
    expect(await data("bob-token")).toBe("bob's");
  });

  it("KFP: another tenant cannot tell a run it may not read from an unknown one", async () => {
    await fetch(kfp("r-private", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "x", headers: bearer("alice-token") });
    const [existing, unknown] = await Promise.all(["r-private", "r-nobody"].map((run) => fetch(kfp(run, "read"), { headers: bearer("bob-token") }).then(answer)));
    expect(existing?.status).toBe(404);
    expect(existing).toEqual(unknown);
    // Naming the namespace is asking about that namespace: 403 whether or not the run exists there.
    const named = await Promise.all(
      ["r-private", "r-nobody"].map((run) => fetch(kfp(run, "read", "?namespace=team-a"), { headers: bearer("bob-token") }).then(answer)),
    );
    expect(named[0]?.status).toBe(403);
    expect(named[0]).toEqual(named[1]);
  });

  it("run cleanup: a viewer may not, an editor removes the run's artifacts (both layouts) and its record", async () => {
    await fetch(kfp("r-done", "write", "?namespace=team-a&pipeline=train"), { method: "POST", body: "kep", headers: bearer("alice-token") });
    // What KFP 2.17's launcher writes through S3 under the namespace's pipeline root.
    await fetch(a("v2/artifacts/train/r-done/task/out"), { method: "PUT", body: "s3", headers: bearer("alice-token") });
    await fetch(a("v2/artifacts/train/r-other/task/out"), { method: "PUT", body: "keep", headers: bearer("alice-token") });
    const cleanup = (token: string | undefined) =>
      fetch(`${s.url}/apis/v2beta1/runs/r-done/artifacts?namespace=team-a`, { method: "DELETE", headers: token === undefined ? {} : bearer(token) });
    expect((await cleanup(undefined)).status).toBe(401);
    expect((await cleanup("victor-token")).status).toBe(403);
    expect((await fetch(kfp("r-done", "read"), { headers: bearer("alice-token") })).status).toBe(200);
    const done = await cleanup("alice-token");
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual({ run_id: "r-done", namespace: "team-a", removed_directories: 2 });
    expect((await fetch(kfp("r-done", "read"), { headers: bearer("alice-token") })).status).toBe(404);
    expect((await listFiles(path.join(s.root, "team-a"))).filter((file) => file.includes("r-done"))).toEqual([]);
    expect(await fs.readFile(path.join(s.root, "team-a/v2/artifacts/train/r-other/task/out"), "utf8")).toBe("keep");
    // Again: nothing left, the same answer.
    expect(await (await cleanup("alice-token")).json()).toEqual({ run_id: "r-done", namespace: "team-a", removed_directories: 0 });
  });

  it("fails closed with 503 when the API server is down, and recovers", async () => {
    await api.stop();
    try {
      const response = await fetch(a("shared"), { headers: bearer("alice-token") });
      expect(response.status).toBe(503);
      expect((await fetch(`${s.url}/readyz`)).status).toBe(503);
    } finally {
      await api.resume();
    }
    expect((await fetch(a("shared"), { headers: bearer("alice-token") })).status).toBe(200);
  });
});

/**
 * A PUT with Expect: 100-continue over a raw socket: the headers, then the body only if the server
 * says 100 Continue (as curl and the AWS SDKs do). Resolves with the first answer and the whole text.
 */
function putExpectingContinue(url: string, headers: Record<string, string>, body: string): Promise<{ first: string; answer: string }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const lines = Object.entries({ Host: "x", "Content-Length": String(body.length), Expect: "100-continue", Connection: "close", ...headers });
    socket.write(`PUT ${pathname} HTTP/1.1\r\n${lines.map(([name, value]) => `${name}: ${value}\r\n`).join("")}\r\n`);
    let answer = "";
    let first: string | undefined;
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (first === undefined && answer.includes("\r\n")) {
        first = answer.slice(0, answer.indexOf("\r\n"));
        if (first.includes(" 100 ")) socket.write(body);
      }
    });
    socket.on("close", () => resolve({ first: first ?? "", answer }));
    socket.on("error", reject);
    setTimeout(() => socket.destroy(new Error("no answer within 10 s")), 10_000).unref();
  });
}

describe("Expect: 100-continue", () => {
  it("an unauthorised PUT is answered (401, 403) without a 100 Continue, so its body is never sent; an editor's gets the 100, then 201", async () => {
    const anonymous = await putExpectingContinue(artifactUrl(s.url, "team-a", "continue/anon"), {}, "never");
    expect(anonymous.first).toBe("HTTP/1.1 401 Unauthorized");
    expect(anonymous.answer).not.toContain("100 Continue");
    const viewer = await putExpectingContinue(artifactUrl(s.url, "team-a", "continue/viewer"), bearer("victor-token"), "never");
    expect(viewer.first).toBe("HTTP/1.1 403 Forbidden");
    expect(viewer.answer).not.toContain("100 Continue");
    const editor = await putExpectingContinue(artifactUrl(s.url, "team-a", "continue/editor"), bearer("alice-token"), "hello");
    expect(editor.first).toBe("HTTP/1.1 100 Continue");
    expect(editor.answer).toMatch(/\r\nHTTP\/1\.1 201 Created\r\n/);
    expect(await (await fetch(artifactUrl(s.url, "team-a", "continue/editor"), { headers: bearer("alice-token") })).text()).toBe("hello");
    expect((await listFiles(s.root)).filter((file) => file.startsWith("team-a/continue/"))).toEqual(["team-a/continue/editor"]);
  });
});

describe("a dedicated server", () => {
  it("answers 404 for other namespaces without asking the API server", async () => {
    const kubeconfig = await api.writeKubeconfig(await tempDir("kubeconfig-scoped"));
    const scoped = await startTestServer({ AUTH_MODE: "kubernetes", KUBECONFIG: kubeconfig, SCOPE_NAMESPACE: "team-a" });
    try {
      const before = api.calls.tokenReviews + api.calls.subjectAccessReviews;
      const other = await fetch(artifactUrl(scoped.url, "team-b", "x"), { headers: bearer("bob-token") });
      expect(other.status).toBe(404);
      expect(api.calls.tokenReviews + api.calls.subjectAccessReviews).toBe(before);
      expect((await fetch(artifactUrl(scoped.url, "team-a", "x"), { method: "PUT", body: "1", headers: bearer("alice-token") })).status).toBe(201);
    } finally {
      await scoped.close();
    }
  });
});
