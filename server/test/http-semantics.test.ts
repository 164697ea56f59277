// HTTP semantics (RFC 9110, RFC 9112): what a Range header that cannot be honoured means, 405 with
// Allow, the index at '/', and requests refused before they reach a route (a backslash in the path, a
// duplicate Host) answered in the JSON error shape and logged like any other.
import { createHash } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTarGz } from "./support/archives.js";
import { startTestServer, within, type TestServer } from "./support/harness.js";

/** The artifacts of the namespace the current test has to itself (the file's server is shared). */
let A = "";
let namespaces = 0;
let shared: Promise<TestServer> | undefined;
afterAll(async () => {
  await (await shared)?.close();
});

/** The file's server, with a fresh namespace for the calling test. */
async function makeApp() {
  const server = await (shared ??= startTestServer());
  namespaces += 1;
  A = `/v1/namespaces/team-${namespaces}/artifacts`;
  return { request: (target: string, init?: RequestInit) => fetch(`${server.url}${target}`, init) };
}

/** Sends `request` as written (fetch would normalize it) and resolves the raw answer. */
function raw(url: string, request: string): Promise<string> {
  const { port } = new URL(url);
  return within(
    5000,
    new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1", () => socket.end(request));
      let answer = "";
      socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
      socket.on("close", () => resolve(answer));
      socket.on("error", reject);
    }),
    "raw request",
  );
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
const bodyOf = (answer: string) => answer.slice(answer.indexOf("\r\n\r\n") + 4);

describe("Range", () => {
  it("ignores an unknown unit, a multi-range and a malformed header (200, whole body); 416 only when unsatisfiable", async () => {
    const app = await makeApp();
    await app.request(`${A}/k`, { method: "PUT", body: "0123456789" });
    for (const range of ["items=0-1", "bytes=0-1,4-5", "bytes=x", "bytes=1", "bytes=-", "bytes 0-1", "bytes=1-2-3"]) {
      const response = await app.request(`${A}/k`, { headers: { Range: range } });
      expect(response.status, range).toBe(200);
      expect(response.headers.get("content-range"), range).toBeNull();
      expect(await response.text(), range).toBe("0123456789");
    }
    for (const range of ["bytes=10-", "bytes=20-30", "bytes=-0"]) {
      const refused = await app.request(`${A}/k`, { headers: { Range: range } });
      expect(refused.status, range).toBe(416);
      expect(refused.headers.get("content-range"), range).toBe("bytes */10");
    }
    const single = await app.request(`${A}/k`, { headers: { Range: "bytes=2-4" } });
    expect(single.status).toBe(206);
    expect(await single.text()).toBe("234");
  });

  it("If-Modified-Since at or after Last-Modified answers 304, and If-None-Match takes precedence over it", async () => {
    const app = await makeApp();
    await app.request(`${A}/k`, { method: "PUT", body: "data" });
    const first = await app.request(`${A}/k`);
    const lastModified = first.headers.get("last-modified") ?? "";
    expect((await app.request(`${A}/k`, { headers: { "If-Modified-Since": lastModified } })).status).toBe(304);
    expect((await app.request(`${A}/k`, { headers: { "If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT" } })).status).toBe(200);
    const stale = await app.request(`${A}/k`, { headers: { "If-Modified-Since": lastModified, "If-None-Match": '"other"' } });
    expect(stale.status).toBe(200);
  });
});

describe("conditional reads", () => {
  it("Cache-Control: no-cache on the request does not turn a matching precondition into a 200 (the directive is for caches)", async () => {
    const app = await makeApp();
    await app.request(`${A}/k`, { method: "PUT", body: "data" });
    const etag = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("etag") ?? "";
    for (const cacheControl of ["no-cache", "max-age=0", "no-store"]) {
      const response = await app.request(`${A}/k`, { headers: { "If-None-Match": etag, "Cache-Control": cacheControl } });
      expect(response.status, cacheControl).toBe(304);
    }
    expect((await app.request(`${A}/k`, { headers: { "If-None-Match": '"other"', "Cache-Control": "no-cache" } })).status).toBe(200);
  });
});

describe("conditional writes", () => {
  const put = (app: Awaited<ReturnType<typeof makeApp>>, key: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) =>
    app.request(`${A}/${key}`, { method: "PUT", body, headers });

  it("PUT and DELETE with If-Match replace only the version the client saw; a stale or weak tag gets 412 and nothing changes", async () => {
    const app = await makeApp();
    const first = await put(app, "k", "one");
    const seen = first.headers.get("etag") ?? "";
    expect((await put(app, "k", "two", { "If-Match": seen })).status).toBe(200);
    // Another writer's version is now there: the first client's tag is stale.
    expect((await put(app, "k", "three", { "If-Match": seen })).status).toBe(412);
    expect((await app.request(`${A}/k`, { method: "DELETE", headers: { "If-Match": seen } })).status).toBe(412);
    expect(await (await app.request(`${A}/k`)).text()).toBe("two");
    const current = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("etag") ?? "";
    expect((await put(app, "k", "four", { "If-Match": `W/${current}` })).status).toBe(412);
    expect((await put(app, "k", "four", { "If-Match": `"x", ${current}` })).status).toBe(200);
    expect((await put(app, "new", "x", { "If-Match": "*" })).status).toBe(412);
    expect((await app.request(`${A}/new`)).status).toBe(404);
    expect((await put(app, "k", "five", { "If-Match": "*" })).status).toBe(200);
    const latest = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("etag") ?? "";
    expect((await app.request(`${A}/k`, { method: "DELETE", headers: { "If-Match": latest } })).status).toBe(204);
    expect((await app.request(`${A}/k`)).status).toBe(404);
  });

  it("If-Unmodified-Since before Last-Modified gets 412 on PUT and DELETE; at Last-Modified the write goes through", async () => {
    const app = await makeApp();
    await put(app, "k", "one");
    const lastModified = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("last-modified") ?? "";
    const before = new Date(Date.parse(lastModified) - 60_000).toUTCString();
    expect((await put(app, "k", "two", { "If-Unmodified-Since": before })).status).toBe(412);
    expect((await app.request(`${A}/k`, { method: "DELETE", headers: { "If-Unmodified-Since": before } })).status).toBe(412);
    expect(await (await app.request(`${A}/k`)).text()).toBe("one");
    // If-Match takes precedence: a matching tag wins over a date that would refuse.
    const etag = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("etag") ?? "";
    expect((await put(app, "k", "two", { "If-Match": etag, "If-Unmodified-Since": before })).status).toBe(200);
    const now = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("last-modified") ?? "";
    expect((await put(app, "k", "three", { "If-Unmodified-Since": now })).status).toBe(200);
    expect((await put(app, "fresh", "x", { "If-Unmodified-Since": before })).status).toBe(201);
    const after = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("last-modified") ?? "";
    expect((await app.request(`${A}/k`, { method: "DELETE", headers: { "If-Unmodified-Since": after } })).status).toBe(204);
  });

  it("a directory artifact has no entity tag: If-Match: * matches it, a tag does not, and its date is its own", async () => {
    const app = await makeApp();
    const archive = await makeTarGz([{ name: "a", content: "1" }]);
    expect((await put(app, "d?archive=tar.gz", archive)).status).toBe(201);
    expect((await put(app, "d?archive=tar.gz", archive, { "If-Match": '"abc"' })).status).toBe(412);
    expect((await put(app, "other?archive=tar.gz", archive, { "If-Match": "*" })).status).toBe(412);
    expect((await put(app, "d?archive=tar.gz", archive, { "If-Match": "*" })).status).toBe(200);
    const before = new Date(Date.now() - 3_600_000).toUTCString();
    expect((await app.request(`${A}/d?recursive=true`, { method: "DELETE", headers: { "If-Unmodified-Since": before } })).status).toBe(412);
    expect((await app.request(`${A}/d?recursive=true`, { method: "DELETE", headers: { "If-Match": '"abc"' } })).status).toBe(412);
    expect((await app.request(`${A}/d/a`)).status).toBe(200);
    expect((await app.request(`${A}/d?recursive=true`, { method: "DELETE", headers: { "If-Match": "*" } })).status).toBe(204);
  });

  it("a directory's digest is named for what it is; keys inside an archive obey the limits every key does", async () => {
    const app = await makeApp();
    const archive = await makeTarGz([{ name: "a", content: "1" }]);
    const stored = (await (await put(app, "d?archive=tar.gz", archive)).json()) as { sha256: string; archiveSha256: string };
    expect(stored.archiveSha256).toBe(createHash("sha256").update(archive).digest("hex"));
    expect(stored.sha256).toBe(stored.archiveSha256);
    const deep = Array.from({ length: 60 }, (_, i) => `l${i}`).join("/");
    const tooDeep = await put(app, `${deep}?archive=tar.gz`, await makeTarGz([{ name: "1/2/3/4/5/f", content: "x" }]));
    expect(tooDeep.status).toBe(400);
    expect(await tooDeep.text()).toMatch(/more than 64 segments/);
    const long = "k".repeat(200) + "/" + "k".repeat(200) + "/" + "k".repeat(200) + "/" + "k".repeat(200);
    const tooLong = await put(app, `${long}?archive=tar.gz`, await makeTarGz([{ name: `${"e".repeat(200)}/${"e".repeat(200)}`, content: "x" }]));
    expect(tooLong.status).toBe(400);
    expect(await tooLong.text()).toMatch(/longer than 1024 bytes/);
    expect((await app.request(`${A}/${long}`)).status).toBe(404);
  });

  it("If-Range with a date applies the range only when it is exactly Last-Modified", async () => {
    const app = await makeApp();
    await put(app, "k", "0123456789");
    const lastModified = (await app.request(`${A}/k`, { method: "HEAD" })).headers.get("last-modified") ?? "";
    const exact = await app.request(`${A}/k`, { headers: { Range: "bytes=2-4", "If-Range": lastModified } });
    expect(exact.status).toBe(206);
    const later = new Date(Date.parse(lastModified) + 60_000).toUTCString();
    const notExact = await app.request(`${A}/k`, { headers: { Range: "bytes=2-4", "If-Range": later } });
    expect(notExact.status).toBe(200);
    expect(await notExact.text()).toBe("0123456789");
  });
});

describe("methods and routes", () => {
  it("a wrong method on a known route gets 405 with Allow, in that API's error shape", async () => {
    const app = await makeApp();
    const cases: [string, string, string][] = [
      ["POST", `${A}/k`, "GET, HEAD, PUT, DELETE"],
      ["PUT", A, "GET, HEAD"],
      ["DELETE", "/healthz", "GET, HEAD"],
      ["POST", "/metrics", "GET, HEAD"],
      ["GET", "/apis/v2beta1/runs/r/nodes/n/artifacts/a:write", "POST"],
      ["PUT", "/apis/v1beta1/runs/r/nodes/n/artifacts/a:read", "GET, HEAD"],
    ];
    for (const [method, target, allow] of cases) {
      const response = await app.request(target, { method, body: method === "GET" ? undefined : "x" });
      expect(response.status, `${method} ${target}`).toBe(405);
      expect(response.headers.get("allow"), `${method} ${target}`).toBe(allow);
      const body = (await response.json()) as Record<string, unknown>;
      if (target.startsWith("/apis/")) expect(Object.keys(body).sort()).toEqual(["error_details", "error_message"]);
      else expect(body).toEqual({ error: { code: "MethodNotAllowed", message: `this resource allows ${allow}` } });
    }
    expect((await app.request("/v2/whatever", { method: "POST" })).status).toBe(404);
  });

  it("'/' answers a small JSON index of the APIs", async () => {
    const app = await makeApp();
    const response = await app.request("/");
    expect(response.status).toBe(200);
    const index = (await response.json()) as { name: string; version: string; apis: Record<string, unknown> };
    expect(index.name).toBe("kfp-artifacts");
    expect(index.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(JSON.stringify(index.apis)).toContain("/v1/namespaces/{namespace}/artifacts/{key}");
    expect(JSON.stringify(index.apis)).toContain(":write");
    expect(JSON.stringify(index.apis)).toContain("/readyz");
  });

  it("PUT of a file over a directory artifact says what is there, without suggesting a recursive delete", async () => {
    const app = await makeApp();
    await app.request(`${A}/dir/a`, { method: "PUT", body: "1" });
    const response = await app.request(`${A}/dir`, { method: "PUT", body: "2" });
    expect(response.status).toBe(409);
    const { error } = (await response.json()) as { error: { message: string } };
    expect(error.message).toMatch(/directory/);
    expect(error.message).not.toMatch(/recursive|delete/i);
  });
});

describe("requests refused before routing", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ LOG_LEVEL: "info" });
  });
  afterAll(async () => {
    await s.close();
  });

  const requestLines = () => s.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === "request");

  it("a backslash in the path gets the JSON error body and a log line", async () => {
    const answer = await raw(s.url, "GET /v1/namespaces/team-a/artifacts/a\\b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(answer)).toBe(400);
    expect(answer).toMatch(/\r\ncontent-type: application\/json/i);
    expect(JSON.parse(bodyOf(answer))).toEqual({ error: { code: "BadRequest", message: "the request path must not contain a backslash" } });
    const kfp = await raw(s.url, "GET /apis/v2beta1/runs/r/nodes/n/artifacts/a\\b:read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(kfp)).toBe(400);
    expect(Object.keys(JSON.parse(bodyOf(kfp)) as object).sort()).toEqual(["error_details", "error_message"]);
    expect(requestLines().filter((line) => line.method === "GET" && line.status === 400)).toHaveLength(2);
  });

  it("a duplicate Host header gets 400, and so does an invalid one, both in JSON", async () => {
    const answer = await raw(s.url, "GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n");
    expect(statusOf(answer)).toBe(400);
    expect(JSON.parse(bodyOf(answer))).toEqual({ error: { code: "BadRequest", message: "the request has more than one Host header" } });
    expect(requestLines().filter((line) => line.status === 400)).toHaveLength(3);
    expect(statusOf(await raw(s.url, "GET /healthz HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"))).toBe(200);
    const invalid = await raw(s.url, "GET /healthz HTTP/1.1\r\nHost: a b@c\r\nConnection: close\r\n\r\n");
    expect(statusOf(invalid)).toBe(400);
    expect(JSON.parse(bodyOf(invalid))).toEqual({ error: { code: "BadRequest", message: "the request could not be parsed" } });
  });
});
