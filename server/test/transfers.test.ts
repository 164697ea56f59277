// Streaming over real sockets: large bodies, ranges on the fast path, client aborts, concurrent writers,
// slow clients and file-descriptor hygiene.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTarGz, readTarGz } from "./support/archives.js";
import { artifactUrl, eventually, listFiles, readAround, startTestServer, startUpload, within, type TestServer } from "./support/harness.js";

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const servers: TestServer[] = [];

async function server(env: Record<string, string> = {}): Promise<TestServer> {
  const started = await startTestServer(env);
  servers.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function openFds(): Promise<number> {
  return (await fs.readdir("/proc/self/fd")).length;
}

async function tmpEntries(s: TestServer): Promise<string[]> {
  return listFiles(path.join(s.root, ".kfp-artifacts/tmp"));
}

describe("transfers over a real socket", () => {
  it("round-trips 64 MiB with the right digest, and serves ranges and peeks from the fast path", async () => {
    const s = await server();
    const data = randomBytes(64 << 20);
    const url = artifactUrl(s.url, "team-a", "big/blob.bin");
    const put = await within(30_000, fetch(url, { method: "PUT", body: data }), "64 MiB PUT");
    expect(put.status).toBe(201);
    expect(((await put.json()) as { sha256: string; size: number }).sha256).toBe(sha(data));
    const get = await within(30_000, fetch(url), "64 MiB GET");
    expect(get.headers.get("content-length")).toBe(String(data.length));
    const received = Buffer.from(await get.arrayBuffer());
    expect(received.equals(data)).toBe(true);

    const range = await fetch(url, { headers: { Range: "bytes=1048570-1048580" } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(data.subarray(1048570, 1048581))).toBe(true);
    const peek = await fetch(`${url}?peek=10`);
    expect(Buffer.from(await peek.arrayBuffer()).equals(data.subarray(0, 10))).toBe(true);
    expect(peek.headers.get("x-artifact-size")).toBe(String(data.length));
    const head = await fetch(url, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(data.length));
    expect(head.headers.get("etag")).toBe(`"${sha(data)}"`);
  });

  it("a client abort mid-upload keeps the old version and leaves nothing partial", async () => {
    const s = await server();
    const url = artifactUrl(s.url, "team-a", "model.bin");
    expect((await fetch(url, { method: "PUT", body: "old version" })).status).toBe(201);

    const { request, response } = startUpload(url, { "Content-Length": String(16 << 20) });
    response.catch(() => {}); // the socket is destroyed on purpose
    request.write(randomBytes(4 << 20));
    await eventually(async () => (await tmpEntries(s)).length === 1, 5000, "the upload's temporary file appears");
    request.destroy();

    await eventually(async () => (await tmpEntries(s)).length === 0, 5000, "the temporary file is removed");
    const get = await fetch(url);
    expect(await get.text()).toBe("old version");
    expect(await listFiles(path.join(s.root, "team-a"))).toEqual(["model.bin"]);
  });

  it("concurrent writers to one key: the result is exactly one writer's complete content", async () => {
    const s = await server();
    const url = artifactUrl(s.url, "team-a", "contended");
    const bodies = Array.from({ length: 8 }, () => randomBytes(2 << 20));
    const results = await within(30_000, Promise.all(bodies.map((body) => fetch(url, { method: "PUT", body }))), "8 concurrent PUTs");
    expect(results.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    expect(results.filter((r) => r.status === 201).length).toBe(1);
    const get = await fetch(url);
    const stored = Buffer.from(await get.arrayBuffer());
    const winners = bodies.filter((body) => body.equals(stored));
    expect(winners).toHaveLength(1);
    expect(get.headers.get("etag")).toBe(`"${sha(stored)}"`);
    expect(get.headers.get("x-checksum-sha256")).toBe(sha(stored));
    expect(await tmpEntries(s)).toEqual([]);
  });

  it("concurrent create-only writers: exactly one 201, the others 412", async () => {
    const s = await server();
    const url = artifactUrl(s.url, "team-a", "once");
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => fetch(url, { method: "PUT", body: `writer ${i}`, headers: { "If-None-Match": "*" } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 412, 412, 412, 412, 412]);
    expect(await (await fetch(url)).text()).toMatch(/^writer \d$/);
  });

  it("an oversized streamed body (no Content-Length) is cut off with 413 and nothing is kept", async () => {
    const s = await server({ MAX_UPLOAD_BYTES: "1Mi" });
    const url = artifactUrl(s.url, "team-a", "too-big");
    const { request, response } = startUpload(url, { "Transfer-Encoding": "chunked" });
    request.on("error", () => {}); // the server may close the connection after answering
    request.write(randomBytes(512 << 10));
    request.write(randomBytes(1 << 20));
    request.end();
    const answer = await within(10_000, response, "413 answer");
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "PayloadTooLarge" } });
    expect((await fetch(url)).status).toBe(404);
    await eventually(async () => (await tmpEntries(s)).length === 0, 5000, "no temporary file left");
  });

  it("an oversized declared body is refused before it is read", async () => {
    const s = await server({ MAX_UPLOAD_BYTES: "1Mi" });
    const url = artifactUrl(s.url, "team-a", "too-big");
    const { request, response } = startUpload(url, { "Content-Length": String(100 << 20) });
    request.on("error", () => {});
    request.write(Buffer.alloc(1024)); // only 1 KiB of the declared 100 MiB ever arrives
    const answer = await within(10_000, response, "413 answer");
    expect(answer.status).toBe(413);
    request.destroy();
    expect(await tmpEntries(s)).toEqual([]);
  });

  it("a stalled uploader is timed out: no temporary file, no file descriptor leak", async () => {
    const s = await server({ IDLE_TIMEOUT_SECONDS: "1" });
    const before = await openFds();
    const url = new URL(artifactUrl(s.url, "team-a", "slow"));
    const socket = net.connect(Number(url.port), "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write(`PUT ${url.pathname} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n`);
    socket.write(Buffer.alloc(1000));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    await within(10_000, closed, "the server closing the stalled connection");
    await eventually(async () => (await tmpEntries(s)).length === 0, 5000, "temporary file removed");
    await eventually(async () => (await openFds()) <= before, 5000, "file descriptors back to the baseline");
    expect((await fetch(artifactUrl(s.url, "team-a", "slow"))).status).toBe(404);
  });

  it("the idle timeout does not fire while the server is still working on a request (extraction, fsync, commit)", async () => {
    const s = await server({ IDLE_TIMEOUT_SECONDS: "1" });
    // Thousands of small files, each created and fsynced: seconds of work after the last byte arrived.
    const archive = await makeTarGz(Array.from({ length: 5000 }, (_, i) => ({ name: `d${i % 50}/f${i}`, content: String(i) })));
    const { request, response } = startUpload(`${artifactUrl(s.url, "team-a", "many")}?archive=tar.gz`, { "Content-Length": String(archive.length) });
    const sent = Date.now();
    request.end(archive);
    const answer = await within(120_000, response, "the archive PUT");
    const elapsed = Date.now() - sent;
    expect(answer.status, answer.body).toBe(201);
    expect((JSON.parse(answer.body) as { files: number }).files).toBe(5000);
    // Longer than the idle timeout, or this test proves nothing (the stalled-client tests around it show
    // the timeout still cuts off a client that stops sending or reading).
    expect(elapsed).toBeGreaterThan(1500);
  });

  it("an entry-count bomb (100,001 empty entries) is refused with 413 in seconds, leaving nothing", async () => {
    const s = await server();
    const built = Date.now();
    const archive = await makeTarGz(Array.from({ length: 100_001 }, (_, i) => ({ name: `e${i}` })));
    const buildMs = Date.now() - built;
    const sent = Date.now();
    const answer = await within(60_000, fetch(`${artifactUrl(s.url, "team-a", "bomb")}?archive=tar.gz`, { method: "PUT", body: archive }), "the bomb's refusal");
    const elapsed = Date.now() - sent;
    expect(answer.status).toBe(413);
    expect(await answer.text()).toMatch(/more than 100000 entries/);
    // Each empty entry is ~6 compressed bytes: no per-entry fsync may be spent before the count is known.
    expect(elapsed, `archive of ${archive.length} bytes built in ${buildMs} ms, refused after ${elapsed} ms`).toBeLessThan(20_000);
    await eventually(async () => (await tmpEntries(s)).length === 0, 30_000, "the extraction removed");
    expect((await fetch(artifactUrl(s.url, "team-a", "bomb/e0"))).status).toBe(404);
  }, 120_000);

  it("a directory download during its replacement is one version whole, or ends short: never old and new mixed", async () => {
    const s = await server();
    const url = `${artifactUrl(s.url, "team-a", "dir")}?archive=tar.gz`;
    // "a" is large, so the download is still inside it when the replacement lands; "b" comes after.
    const version = (tag: string) => makeTarGz([{ name: "a", content: Buffer.concat([Buffer.from(tag), randomBytes(16 << 20)]) }, { name: "b", content: tag }]);
    expect((await fetch(url, { method: "PUT", body: await version("old") })).status).toBe(201);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const replacement = await version("new");
    const { outcome, received } = await readAround(response, async () => {
      expect((await fetch(url, { method: "PUT", body: replacement })).status).toBe(200);
    });
    if (outcome === "complete") {
      const files = await readTarGz(received);
      const tags = [files.get("a")?.subarray(0, 3).toString(), files.get("b")?.toString()];
      expect(tags[0], `a is ${tags[0]}, b is ${tags[1]}`).toBe(tags[1]);
    } else {
      expect(outcome).toBe("cut short");
    }
  });

  it("a reader that stops reading is timed out and its file is closed", async () => {
    const s = await server({ IDLE_TIMEOUT_SECONDS: "1" });
    const url = artifactUrl(s.url, "team-a", "large");
    expect((await fetch(url, { method: "PUT", body: randomBytes(32 << 20) })).status).toBe(201);
    const before = await openFds();
    const target = new URL(url);
    const socket = net.connect(Number(target.port), "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write(`GET ${target.pathname} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause(); // never read: the server's writes back up and stall
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    // A paused socket does not see the FIN; the server-side count of open files is what matters.
    await eventually(async () => (await openFds()) <= before, 10_000, "the server closed the stalled download and its file");
    socket.destroy();
    await within(5000, closed, "socket closed");
  });

  it("concurrent downloads and ranges of different artifacts each get exactly their own bytes (read buffers are reused)", async () => {
    const s = await server();
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes((3 << 20) + i * 4099));
    for (const [i, body] of bodies.entries()) {
      expect((await fetch(artifactUrl(s.url, "team-a", `many/${i}`), { method: "PUT", body })).status).toBe(201);
    }
    // Three waves, so buffers handed back by one wave are reused by the next.
    for (let wave = 0; wave < 3; wave += 1) {
      await Promise.all(
        bodies.map(async (body, i) => {
          const whole = await fetch(artifactUrl(s.url, "team-a", `many/${i}`));
          expect(sha(Buffer.from(await whole.arrayBuffer()))).toBe(sha(body));
          const from = 1_000_000 + wave * 77;
          const to = body.length - 5 - i;
          const range = await fetch(artifactUrl(s.url, "team-a", `many/${i}`), { headers: { Range: `bytes=${from}-${to}` } });
          expect(range.status).toBe(206);
          expect(Buffer.from(await range.arrayBuffer()).equals(body.subarray(from, to + 1))).toBe(true);
        }),
      );
    }
  });

  it("a reader that disconnects mid-download: its file is closed and the next downloads are intact", async () => {
    const s = await server();
    const body = randomBytes(24 << 20);
    const url = artifactUrl(s.url, "team-a", "dropped");
    expect((await fetch(url, { method: "PUT", body })).status).toBe(201);
    const before = await openFds();
    for (let i = 0; i < 4; i += 1) {
      const target = new URL(url);
      const socket = net.connect(Number(target.port), "127.0.0.1");
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      socket.write(`GET ${target.pathname} HTTP/1.1\r\nHost: x\r\n\r\n`);
      let received = 0;
      await new Promise<void>((resolve) =>
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received > (2 << 20)) resolve();
        }),
      );
      socket.destroy(); // gone with most of the body unsent
    }
    await eventually(async () => (await openFds()) <= before, 10_000, "the server closed the dropped downloads' files");
    const again = await fetch(url);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
  });

  it("an artifact truncated underneath a download ends the response short, never with other bytes", async () => {
    const s = await server();
    const body = randomBytes(64 << 20);
    const url = artifactUrl(s.url, "team-a", "shrinking");
    expect((await fetch(url, { method: "PUT", body })).status).toBe(201);
    const response = await fetch(url);
    expect(response.headers.get("content-length")).toBe(String(body.length));
    // Not a supported operation (artifacts are replaced by rename), but a volume shared with other tools can do it.
    const { outcome, received: got } = await readAround(response, () => fs.truncate(path.join(s.root, "team-a", "shrinking"), 1 << 20));
    expect(outcome).toBe("cut short");
    expect(got.length).toBeLessThan(body.length);
    expect(got.equals(body.subarray(0, got.length))).toBe(true);
  });

  it("a small artifact served from memory is never served stale: replaced, rewritten in place, swapped for a symlink, deleted", async () => {
    const s = await server();
    const url = artifactUrl(s.url, "team-a", "small/config.json");
    const file = path.join(s.root, "team-a", "small", "config.json");
    const get = async () => {
      const response = await fetch(url);
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()), etag: response.headers.get("etag") };
    };
    const first = randomBytes(4096);
    expect((await fetch(url, { method: "PUT", body: first })).status).toBe(201);
    expect((await get()).body.equals(first)).toBe(true);
    expect((await get()).body.equals(first)).toBe(true); // from memory now

    const second = randomBytes(4096); // same size: only the file's identity tells them apart
    expect((await fetch(url, { method: "PUT", body: second })).status).toBe(200);
    const afterReplace = await get();
    expect(afterReplace.body.equals(second)).toBe(true);
    expect(afterReplace.etag).toBe(`"${sha(second)}"`);
    const range = await fetch(url, { headers: { Range: "bytes=100-199" } });
    expect(Buffer.from(await range.arrayBuffer()).equals(second.subarray(100, 200))).toBe(true);

    // Another program rewrites it in place: new bytes, and a new digest computed from them.
    const third = randomBytes(4096);
    await fs.writeFile(file, third);
    await fs.utimes(file, new Date(), new Date(Date.now() + 10_000));
    const afterRewrite = await get();
    expect(afterRewrite.body.equals(third)).toBe(true);
    expect(afterRewrite.etag).toBe(`"${sha(third)}"`);

    // Swapped for a symlink to another tenant's artifact: refused, never the cached bytes.
    expect((await fetch(artifactUrl(s.url, "team-b", "secret"), { method: "PUT", body: "team-b only" })).status).toBe(201);
    await fs.rm(file);
    await fs.symlink(path.join(s.root, "team-b", "secret"), file);
    expect((await get()).status).toBe(404);

    await fs.rm(file);
    expect((await fetch(url, { method: "PUT", body: first })).status).toBe(201);
    expect((await get()).body.equals(first)).toBe(true);
    expect((await fetch(url, { method: "DELETE" })).status).toBe(204);
    expect((await get()).status).toBe(404);
  });

  it("namespace usage survives a restart: the quota still counts what is on the volume", async () => {
    const first = await startTestServer({ NAMESPACE_QUOTA_BYTES: "1Mi" });
    expect((await fetch(artifactUrl(first.url, "team-a", "a"), { method: "PUT", body: randomBytes(700 << 10) })).status).toBe(201);
    await first.close();
    const restarted = await startTestServer({ NAMESPACE_QUOTA_BYTES: "1Mi" }, { root: first.root });
    servers.push(restarted);
    expect((await fetch(artifactUrl(restarted.url, "team-a", "b"), { method: "PUT", body: randomBytes(400 << 10) })).status).toBe(507);
    expect((await fetch(artifactUrl(restarted.url, "team-b", "b"), { method: "PUT", body: randomBytes(400 << 10) })).status).toBe(201);
    const metrics = await (await fetch(`${restarted.url}/metrics`)).text();
    expect(metrics).toContain(`kfp_artifacts_namespace_used_bytes{artifact_namespace="team-a"} ${700 << 10}`);
  });

  it("SIGTERM-style shutdown lets an in-flight upload finish and refuses new connections", async () => {
    const s = await startTestServer({ SHUTDOWN_GRACE_SECONDS: "10" });
    const url = artifactUrl(s.url, "team-a", "in-flight");
    const { request, response } = startUpload(url, { "Content-Length": String(2 << 20) });
    request.write(randomBytes(1 << 20));
    await eventually(async () => (await listFiles(path.join(s.root, ".kfp-artifacts/tmp"))).length === 1, 5000, "upload started");
    const shutdown = s.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
    request.end(randomBytes(1 << 20));
    expect((await within(10_000, response, "in-flight upload")).status).toBe(201);
    await within(10_000, shutdown, "shutdown");
    expect((await fs.stat(path.join(s.root, "team-a/in-flight"))).size).toBe(2 << 20);
  });
});
