// Routing, validation and the API contract over a real socket: one server per configuration, each
// test in a namespace of its own.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { listFiles, startTestServer, type TestServer } from "./support/harness.js";

const sha = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

const servers = new Map<string, Promise<TestServer>>();
afterAll(async () => {
  await Promise.all([...servers.values()].map(async (server) => (await server).close()));
});

/** The file's server for `env`, started on first use. */
async function makeApp(env: Record<string, string> = {}) {
  const id = JSON.stringify(env);
  let started = servers.get(id);
  if (started === undefined) {
    started = startTestServer(env);
    servers.set(id, started);
  }
  const server = await started;
  return {
    root: server.root,
    store: server.running.store,
    request: (target: string, init?: RequestInit) => fetch(`${server.url}${target}`, init),
  };
}

type TestApp = Awaited<ReturnType<typeof makeApp>>;
let testCount = 0;
/** This test's namespace and its artifacts' path (a fresh namespace per test: the servers are shared). */
let NS = "";
let A = "";

async function put(t: TestApp, key: string, body: string, headers: Record<string, string> = {}) {
  return t.request(`${A}/${key}`, { method: "PUT", body, headers });
}

async function errorOf(response: Response) {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return body.error;
}

describe("native API", () => {
  let t: TestApp;
  beforeEach(async () => {
    testCount += 1;
    NS = `team-${testCount}`;
    A = `/v1/namespaces/${NS}/artifacts`;
    t = await makeApp();
  });

  it("PUT creates (201), replaces (200) and returns uri, namespace, key, size, sha256", async () => {
    const first = await put(t, "pipe/run-1/model.txt", "hello");
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({
      uri: `kfp-artifacts://${NS}/pipe/run-1/model.txt`,
      namespace: NS,
      key: "pipe/run-1/model.txt",
      size: 5,
      sha256: sha("hello"),
    });
    const second = await put(t, "pipe/run-1/model.txt", "hello, world");
    expect(second.status).toBe(200);
    expect(((await second.json()) as { sha256: string }).sha256).toBe(sha("hello, world"));
    expect(await fs.readFile(path.join(t.root, NS, "pipe/run-1/model.txt"), "utf8")).toBe("hello, world");
  });

  it("GET streams the content with the download headers; HEAD has the same headers and no body", async () => {
    await put(t, "dir/résumé report.txt", "content");
    const key = `dir/${encodeURIComponent("résumé report.txt")}`;
    const get = await t.request(`${A}/${key}`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe("content");
    expect(get.headers.get("etag")).toBe(`"${sha("content")}"`);
    expect(get.headers.get("content-length")).toBe("7");
    expect(get.headers.get("accept-ranges")).toBe("bytes");
    expect(get.headers.get("x-content-type-options")).toBe("nosniff");
    expect(get.headers.get("content-disposition")).toBe(
      `attachment; filename="r_sum_ report.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20report.txt`,
    );
    expect(Date.parse(get.headers.get("last-modified") ?? "")).not.toBeNaN();
    const head = await t.request(`${A}/${key}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("etag")).toBe(get.headers.get("etag"));
    expect(head.headers.get("content-length")).toBe("7");
    expect(await head.text()).toBe("");
  });

  it("ETag changes whenever the content changes", async () => {
    await put(t, "k", "one");
    const first = (await t.request(`${A}/k`)).headers.get("etag");
    await put(t, "k", "two");
    const second = (await t.request(`${A}/k`)).headers.get("etag");
    expect(first).not.toBe(second);
  });

  it("conditional GET answers 304 for a matching If-None-Match", async () => {
    await put(t, "k", "data");
    const etag = (await t.request(`${A}/k`)).headers.get("etag") ?? "";
    const cached = await t.request(`${A}/k`, { headers: { "If-None-Match": etag } });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe("");
    const stale = await t.request(`${A}/k`, { headers: { "If-None-Match": '"other"' } });
    expect(stale.status).toBe(200);
  });

  it("serves single byte ranges (206), suffix ranges, and 416 for unsatisfiable ones", async () => {
    await put(t, "k", "0123456789");
    const middle = await t.request(`${A}/k`, { headers: { Range: "bytes=2-4" } });
    expect(middle.status).toBe(206);
    expect(await middle.text()).toBe("234");
    expect(middle.headers.get("content-range")).toBe("bytes 2-4/10");
    const suffix = await t.request(`${A}/k`, { headers: { Range: "bytes=-3" } });
    expect(await suffix.text()).toBe("789");
    for (const range of ["bytes=20-", "bytes=10-"]) {
      const refused = await t.request(`${A}/k`, { headers: { Range: range } });
      expect(refused.status).toBe(416);
      expect(refused.headers.get("content-range")).toBe("bytes */10");
      expect((await errorOf(refused)).code).toBe("RangeNotSatisfiable");
    }
  });

  it("?peek=N returns at most N bytes and tells the full size", async () => {
    await put(t, "k", "0123456789");
    const peek = await t.request(`${A}/k?peek=4`);
    expect(peek.status).toBe(200);
    expect(await peek.text()).toBe("0123");
    expect(peek.headers.get("x-artifact-size")).toBe("10");
    expect(await (await t.request(`${A}/k?peek=100`)).text()).toBe("0123456789");
    expect((await t.request(`${A}/k?peek=-1`)).status).toBe(400);
  });

  it("If-None-Match: * makes PUT create-only (412 when the key exists, old content kept)", async () => {
    expect((await put(t, "k", "first", { "If-None-Match": "*" })).status).toBe(201);
    const again = await put(t, "k", "second", { "If-None-Match": "*" });
    expect(again.status).toBe(412);
    expect(await (await t.request(`${A}/k`)).text()).toBe("first");
  });

  it("X-Checksum-SHA256: a match stores, a mismatch answers 400 and stores nothing", async () => {
    expect((await put(t, "good", "abc", { "X-Checksum-SHA256": sha("abc").toUpperCase() })).status).toBe(201);
    const bad = await put(t, "bad", "abc", { "X-Checksum-SHA256": sha("abd") });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).message).toMatch(/checksum mismatch/);
    expect((await t.request(`${A}/bad`)).status).toBe(404);
    expect((await put(t, "bad", "abc", { "X-Checksum-SHA256": "xyz" })).status).toBe(400);
    expect(await listFiles(path.join(t.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("a directory answers 409 to GET and to DELETE without ?recursive=true", async () => {
    await put(t, "dir/a", "1");
    await put(t, "dir/sub/b", "2");
    expect((await t.request(`${A}/dir`)).status).toBe(409);
    expect((await t.request(`${A}/dir`, { method: "DELETE" })).status).toBe(409);
    expect((await t.request(`${A}/dir?recursive=true`, { method: "DELETE" })).status).toBe(204);
    expect((await t.request(`${A}/dir/a`)).status).toBe(404);
    expect(await listFiles(path.join(t.root, NS))).toEqual([]);
  });

  it("DELETE removes a file (204), prunes empty parents, and 404s after", async () => {
    await put(t, "a/b/c", "x");
    await put(t, "a/keep", "y");
    expect((await t.request(`${A}/a/b/c`, { method: "DELETE" })).status).toBe(204);
    expect((await t.request(`${A}/a/b/c`, { method: "DELETE" })).status).toBe(404);
    await expect(fs.stat(path.join(t.root, NS, "a/b"))).rejects.toThrow();
    expect(await fs.readFile(path.join(t.root, NS, "a/keep"), "utf8")).toBe("y");
  });

  it("refuses a key whose parent is a file, and a file over a directory (409)", async () => {
    await put(t, "file", "x");
    expect((await put(t, "file/child", "y")).status).toBe(409);
    await put(t, "dir/child", "y");
    expect((await put(t, "dir", "z")).status).toBe(409);
  });

  it("lists sorted and paginated, with prefix and delimiter", async () => {
    for (const key of ["b/2", "a.txt", "a/1", "a/z/3", "c", "a/0"]) await put(t, key, key);
    const all = (await (await t.request(A)).json()) as { items: { key: string; size: number; sha256: string; type: string }[]; prefixes: string[]; nextCursor: string | null };
    expect(all.items.map((item) => item.key)).toEqual(["a.txt", "a/0", "a/1", "a/z/3", "b/2", "c"]);
    expect(all.items[0]).toMatchObject({ key: "a.txt", size: 5, sha256: sha("a.txt"), type: "file" });
    expect(all.nextCursor).toBeNull();

    const top = (await (await t.request(`${A}?delimiter=/`)).json()) as typeof all;
    expect(top.items.map((item) => item.key)).toEqual(["a.txt", "c"]);
    expect(top.prefixes).toEqual(["a/", "b/"]);

    const underA = (await (await t.request(`${A}?prefix=a/&delimiter=/`)).json()) as typeof all;
    expect(underA.items.map((item) => item.key)).toEqual(["a/0", "a/1"]);
    expect(underA.prefixes).toEqual(["a/z/"]);

    const keys: string[] = [];
    let cursor: string | null = "";
    let pages = 0;
    while (cursor !== null && pages < 10) {
      const page = (await (await t.request(`${A}?limit=2${cursor ? `&cursor=${cursor}` : ""}`)).json()) as typeof all;
      keys.push(...page.items.map((item) => item.key));
      cursor = page.nextCursor;
      pages += 1;
    }
    expect(keys).toEqual(["a.txt", "a/0", "a/1", "a/z/3", "b/2", "c"]);
    expect(pages).toBe(3);

    const partial = (await (await t.request(`${A}?prefix=a`)).json()) as typeof all;
    expect(partial.items.map((item) => item.key)).toEqual(["a.txt", "a/0", "a/1", "a/z/3"]);
  });

  it("lists an empty or unknown namespace as empty and refuses bad parameters", async () => {
    expect(await (await t.request("/v1/namespaces/nobody/artifacts")).json()).toEqual({ items: [], prefixes: [], nextCursor: null });
    for (const limit of ["0", "5000", "ten"]) {
      const refused = await t.request(`${A}?limit=${limit}`);
      expect(refused.status).toBe(400);
      expect((await errorOf(refused)).message).toBe("limit must be a whole number from 1 to 1000");
    }
    expect((await t.request(`${A}?delimiter=x`)).status).toBe(400);
    expect((await t.request(`${A}?cursor=garbage`)).status).toBe(400);
    expect((await t.request(`${A}?prefix=${encodeURIComponent("../")}`)).status).toBe(400);
  });

  it("answers 404 for a missing artifact and for an unknown route, in the JSON error shape", async () => {
    const missing = await t.request(`${A}/nothing`);
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toEqual({ code: "NotFound", message: "artifact not found" });
    const unknown = await t.request("/v2/whatever");
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe("NotFound");
  });

  it("refuses a bad namespace with 400", async () => {
    for (const ns of ["Team-A", "team_a", "a".repeat(64)]) {
      expect((await t.request(`/v1/namespaces/${ns}/artifacts/k`)).status).toBe(400);
    }
  });

  it("exposes health, readiness with the node name, and Prometheus metrics", async () => {
    const withNode = await makeApp({ NODE_NAME: "worker-7" });
    expect(await (await withNode.request("/healthz")).json()).toEqual({ status: "ok" });
    const ready = await withNode.request("/readyz");
    expect(ready.status).toBe(200);
    // AUTH_MODE=none asks no API server: not checked, and said so rather than reported as true.
    expect(await ready.json()).toMatchObject({ status: "ready", node: "worker-7", checks: { volume: true, kubernetes: "skipped" } });
    await put(withNode, "k", "12345");
    await withNode.store.usage.get(NS);
    const metrics = await (await withNode.request("/metrics")).text();
    expect(metrics).toMatch(/kfp_artifacts_http_requests_total\{route="\/v1\/namespaces\/:namespace\/artifacts\/\*",method="PUT",status="201"\} 1/);
    expect(metrics).toMatch(/kfp_artifacts_volume_free_bytes \d+/);
    expect(metrics).toMatch(new RegExp(`kfp_artifacts_namespace_used_bytes\\{artifact_namespace="${NS}"\\} 5`));
    expect(metrics).toMatch(/kfp_artifacts_http_request_duration_seconds_bucket/);
  });

  it("a dedicated server answers only for its namespace (404 elsewhere)", async () => {
    const scoped = await makeApp({ SCOPE_NAMESPACE: NS });
    expect((await put(scoped, "k", "x")).status).toBe(201);
    const other = await scoped.request("/v1/namespaces/team-b/artifacts/k", { method: "PUT", body: "x" });
    expect(other.status).toBe(404);
    expect((await errorOf(other)).message).toMatch(`serves only the namespace ${NS}`);
    expect(await listFiles(scoped.root)).not.toContain(expect.stringMatching(/^team-b/));
  });

  it("enforces MAX_UPLOAD_BYTES with 413 and keeps nothing", async () => {
    const small = await makeApp({ MAX_UPLOAD_BYTES: "10" });
    const declared = await put(small, "big", "x".repeat(11));
    expect(declared.status).toBe(413);
    expect((await small.request(`${A}/big`)).status).toBe(404);
    expect(await listFiles(small.root)).toEqual([]);
  });

  it("enforces NAMESPACE_QUOTA_BYTES with 507, counts replacements, and recovers after a delete", async () => {
    const quota = await makeApp({ NAMESPACE_QUOTA_BYTES: "10" });
    expect((await put(quota, "a", "12345")).status).toBe(201);
    expect((await put(quota, "a", "1234567")).status).toBe(200); // replacing: 7 used, not 12
    const over = await put(quota, "b", "12345");
    expect(over.status).toBe(507);
    expect((await errorOf(over)).message).toMatch(/quota/);
    expect((await quota.request(`${A}/b`)).status).toBe(404);
    expect((await quota.request(`${A}/a`)).status).toBe(200);
    expect((await quota.request(`${A}/a`, { method: "DELETE" })).status).toBe(204);
    expect((await put(quota, "b", "12345")).status).toBe(201);
    expect(await quota.store.usage.get(NS)).toBe(5);
    // Another namespace has its own quota.
    expect((await quota.request("/v1/namespaces/team-b/artifacts/x", { method: "PUT", body: "1234567890" })).status).toBe(201);
  });

  it("enforces NAMESPACE_QUOTA_BYTES on writes to different keys committed at once: exactly what fits is kept", async () => {
    const quota = await makeApp({ NAMESPACE_QUOTA_BYTES: "12" });
    const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => put(quota, `k${i}`, "12345").then((response) => response.status)));
    expect(statuses.filter((status) => status === 201)).toHaveLength(2);
    expect(statuses.filter((status) => status === 507)).toHaveLength(4);
    expect(await quota.store.usage.get(NS)).toBe(10);
    const kept = (await listFiles(quota.root)).filter((file) => file.startsWith(`${NS}/`));
    expect(kept).toHaveLength(2);
  });

  it("enforces the MIN_FREE_BYTES reserve with 507 while reads keep working", async () => {
    const reserve = await makeApp({ MIN_FREE_BYTES: "1Ti" });
    const refused = await put(reserve, "k", "x");
    expect(refused.status).toBe(507);
    expect((await errorOf(refused)).message).toMatch(/free space/);
    expect(await listFiles(reserve.root)).toEqual([]);
    expect((await reserve.request(A)).status).toBe(200);
  });

  it("never reveals a filesystem path in an error", async () => {
    const responses = [
      await t.request(`${A}/missing`),
      await t.request(`${A}/a%2F..%2Fb`),
      await put(t, "x\\y", "z"),
      await t.request(`${A}/${"x".repeat(300)}`),
    ];
    for (const response of responses) {
      const text = await response.text();
      expect(text).not.toContain(t.root);
      expect(text).not.toMatch(/\/tmp\/|kfp-artifacts-api|\.kfp-artifacts|at .*\.ts:\d+/);
    }
  });
});
