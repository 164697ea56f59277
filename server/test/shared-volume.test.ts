// Two servers on one volume (replicas on a ReadWriteMany claim, or a DaemonSet's pods on a shared one),
// and crashes in the middle of a multi-step change. What must hold: an artifact is always there whole,
// in one version or the other; a race between the two processes is a clean 409 or 404, never a 500;
// and a crash at any step leaves one whole version to serve after the restart.
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, S3ServiceException, UploadPartCommand } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { UploadWriter } from "../src/storage/upload-writers.js";
import { makeTarGz } from "./support/archives.js";
import { artifactUrl, listFiles, startChildServer, startTestServer, tempDir, within, type ChildServer, type TestServer } from "./support/harness.js";

const children: ChildServer[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const child of children.splice(0)) child.child.kill("SIGKILL");
  for (const server of servers.splice(0)) await server.close();
});

async function child(env: Record<string, string>): Promise<ChildServer> {
  const started = await startChildServer({ S3_ENABLED: "false", ...env });
  children.push(started);
  return started;
}

/** Two in-process servers on one root: each has its own locks and usage, as two processes would. */
async function twoServers(env: Record<string, string> = {}): Promise<[TestServer, TestServer]> {
  const first = await startTestServer({ S3_ENABLED: "false", ...env });
  servers.push(first);
  const second = await startTestServer({ S3_ENABLED: "false", ...env }, { root: first.root });
  servers.push(second);
  return [first, second];
}

const version = (label: string) => makeTarGz([{ name: "a", content: `${label}-a` }, { name: "b", content: `${label}-b` }]);

async function send(url: string, init: RequestInit = {}): Promise<number> {
  const response = await fetch(url, init);
  await response.arrayBuffer();
  return response.status;
}

/** The directory artifact's two files as served: both there and from one version, or what is wrong. */
async function directoryVersion(base: string, key: string): Promise<string> {
  const [a, b] = await Promise.all(["a", "b"].map(async (name) => {
    const response = await fetch(artifactUrl(base, "team-a", `${key}/${name}`));
    return { status: response.status, text: await response.text() };
  }));
  if (a?.status !== 200 || b?.status !== 200) return `missing (${a?.status}, ${b?.status})`;
  const label = a.text.slice(0, -2);
  return b.text === `${label}-b` ? label : `mixed (${a.text}, ${b.text})`;
}

/** Calls `before` once, just before the first rename(2) whose source `matches`, then renames. */
function beforeRename(matches: (source: string) => boolean, before: () => Promise<void>): void {
  const rename = fs.rename.bind(fs);
  let done = false;
  vi.spyOn(fs, "rename").mockImplementation(async (source, target) => {
    if (!done && matches(String(source))) {
      done = true;
      await before();
    }
    return rename(source, target);
  });
}

describe("two servers on one volume", () => {
  it("a peer deletes the last sibling between the two renames of a directory replacement: the new version lands whole", async () => {
    const [writer, peer] = await twoServers();
    expect(await send(artifactUrl(writer.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: await version("v1") })).toBe(201);
    expect(await send(artifactUrl(writer.url, "team-a", "d/y"), { method: "PUT", body: "y" })).toBe(201);
    // The old d/x is aside, so d/y is d's last entry: the peer's delete prunes d, as it may.
    let peerDelete = 0;
    beforeRename((source) => source.endsWith(".extract"), async () => {
      peerDelete = await send(artifactUrl(peer.url, "team-a", "d/y"), { method: "DELETE" });
    });
    expect(await send(artifactUrl(writer.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: await version("v2") })).toBe(200);
    expect(peerDelete).toBe(204);
    expect(await directoryVersion(peer.url, "d/x")).toBe("v2");
    expect(await listFiles(path.join(writer.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("a peer prunes the parent between a file upload's mkdir and its rename: the file lands", async () => {
    const [writer, peer] = await twoServers();
    expect(await send(artifactUrl(writer.url, "team-a", "d/y"), { method: "PUT", body: "y" })).toBe(201);
    beforeRename((source) => source.endsWith(".upload"), async () => {
      expect(await send(artifactUrl(peer.url, "team-a", "d/y"), { method: "DELETE" })).toBe(204);
    });
    expect(await send(artifactUrl(writer.url, "team-a", "d/z"), { method: "PUT", body: "z" })).toBe(201);
    expect(await (await fetch(artifactUrl(peer.url, "team-a", "d/z"))).text()).toBe("z");
  });

  it("a peer's directory lands between the two renames of a replacement: 409, the peer's version stays whole", async () => {
    const [writer, peer] = await twoServers();
    expect(await send(artifactUrl(writer.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: await version("v1") })).toBe(201);
    const peerVersion = await version("peer");
    let peerPut = 0;
    beforeRename((source) => source.endsWith(".extract") && peerPut === 0, async () => {
      peerPut = -1;
      peerPut = await send(artifactUrl(peer.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: peerVersion });
    });
    const response = await fetch(artifactUrl(writer.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: await version("v2") });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: { code: "Conflict" } });
    expect(peerPut).toBe(201);
    expect(await directoryVersion(writer.url, "d/x")).toBe("peer");
    expect(await listFiles(path.join(writer.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("S3: a multipart upload aborted through the peer while this server completes it is NoSuchUpload, not a 500", async () => {
    const keys = { S3_ACCESS_KEY: "minio", S3_SECRET_KEY: "minio123-secret" };
    const [writer, peer] = await twoServers({ ...keys, S3_ENABLED: "true" });
    const s3 = (server: TestServer) =>
      new S3Client({ endpoint: server.s3Url, region: "minio", forcePathStyle: true, credentials: { accessKeyId: keys.S3_ACCESS_KEY, secretAccessKey: keys.S3_SECRET_KEY }, maxAttempts: 1 });
    const upload = { Bucket: "team-a", Key: "multi/raced" };
    const { UploadId } = await s3(writer).send(new CreateMultipartUploadCommand(upload));
    const { ETag } = await s3(writer).send(new UploadPartCommand({ ...upload, UploadId, PartNumber: 1, Body: "the only part" }));
    // The completion hands its first part to the upload worker after it has chosen the parts: the peer
    // aborts just then, so that the worker finds the part gone.
    const { appendRange } = Object.getOwnPropertyDescriptors(UploadWriter.prototype);
    let armed = true;
    vi.spyOn(UploadWriter.prototype, "appendRange").mockImplementation(async function (this: UploadWriter, range) {
      if (armed && range.source.includes(UploadId ?? "no upload")) {
        armed = false;
        await s3(peer).send(new AbortMultipartUploadCommand({ ...upload, UploadId }));
      }
      return (appendRange?.value as UploadWriter["appendRange"]).call(this, range);
    });
    const outcome = await s3(writer)
      .send(new CompleteMultipartUploadCommand({ ...upload, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }))
      .then(() => "completed", (error: unknown) => (error instanceof S3ServiceException ? `${error.$metadata.httpStatusCode} ${error.name}` : String(error)));
    expect(armed).toBe(false);
    expect(outcome).toBe("404 NoSuchUpload");
    expect((await fetch(artifactUrl(writer.url, "team-a", "multi/raced"))).status).toBe(404);
  });

  it("two processes, 150 rounds of PUT d/x?archive=tar.gz on one against DELETE d/y (the last sibling) on the other: d/x is always there whole", { timeout: 240_000 }, async () => {
    const root = await tempDir("shared-rounds");
    const [first, second] = await Promise.all([child({ ARTIFACTS_ROOT: root }), child({ ARTIFACTS_ROOT: root })]);
    const [v1, v2] = await Promise.all([version("v1"), version("v2")]);
    const outcomes: string[] = [];
    for (let round = 0; round < 150; round += 1) {
      expect(await send(artifactUrl(first.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: v1 })).toBeLessThan(300);
      expect(await send(artifactUrl(first.url, "team-a", "d/y"), { method: "PUT", body: "y" })).toBe(201);
      // The delete is started a little later each round, so it meets the replacement at every step.
      const [put, del] = await Promise.all([
        send(artifactUrl(first.url, "team-a", "d/x") + "?archive=tar.gz", { method: "PUT", body: v2 }),
        new Promise((resolve) => setTimeout(resolve, round % 30)).then(() => send(artifactUrl(second.url, "team-a", "d/y"), { method: "DELETE" })),
      ]);
      outcomes.push(`PUT ${put}, DELETE ${del}, d/x ${await directoryVersion(second.url, "d/x")}`);
    }
    const wrong = outcomes.filter((outcome) => outcome !== "PUT 200, DELETE 204, d/x v2");
    expect(wrong).toEqual([]);
  });

  it("two processes, a 10 s storm of writes, directory writes, deletes, reads and listings on overlapping keys: no 5xx, and every artifact left is whole", { timeout: 120_000 }, async () => {
    const root = await tempDir("shared-storm");
    const [first, second] = await Promise.all([child({ ARTIFACTS_ROOT: root }), child({ ARTIFACTS_ROOT: root })]);
    const archives = await Promise.all([version("v1"), version("v2")]);
    // Keys that are each other's parents and siblings: every kind of collision between the two.
    const keys = ["d/x", "d/y", "d/e/f", "d/e/g", "d/x/a", "e/f/g/h", "e/f"];
    const statuses = new Map<string, number>();
    const deadline = Date.now() + 10_000;
    const worker = async (base: string, seed: number) => {
      let state = seed;
      const pick = (n: number) => ((state = (state * 1103515245 + 12345) & 0x7fffffff), state % n);
      while (Date.now() < deadline) {
        const key = keys[pick(keys.length)]!;
        const url = artifactUrl(base, "team-a", key);
        const operations: Record<string, () => Promise<number>> = {
          PUT: () => send(url, { method: "PUT", body: `file ${key}` }),
          "PUT archive": () => send(`${url}?archive=tar.gz`, { method: "PUT", body: archives[pick(2)]! }),
          DELETE: () => send(`${url}?recursive=true`, { method: "DELETE" }),
          GET: () => send(url),
          LIST: () => send(`${base}/v1/namespaces/team-a/artifacts?prefix=d/`),
        };
        const [operation, run] = Object.entries(operations)[pick(5)]!;
        const status = await run();
        const label = `${operation} ${status}`;
        statuses.set(label, (statuses.get(label) ?? 0) + 1);
      }
    };
    await Promise.all([worker(first.url, 1), worker(first.url, 2), worker(second.url, 3), worker(second.url, 4)]);
    const serverErrors = [...statuses].filter(([label]) => / 5\d\d$/.test(label));
    expect(serverErrors).toEqual([]);
    expect(statuses.size).toBeGreaterThan(5);

    // Whatever is left: each file served with the digest its listing states and the content one write
    // gave it; an archive's file beside its sibling from the same archive, unless that sibling is itself
    // a key the storm writes, replaces and deletes on its own (d/x/a inside d/x's archive).
    const listing = (await (await fetch(`${second.url}/v1/namespaces/team-a/artifacts`)).json()) as { items: Array<{ key: string; sha256: string | null }> };
    const contents = new Map<string, string>();
    for (const item of listing.items) {
      const body = Buffer.from(await (await fetch(artifactUrl(first.url, "team-a", item.key))).arrayBuffer());
      if (item.sha256 !== null) expect(createHash("sha256").update(body).digest("hex"), item.key).toBe(item.sha256);
      contents.set(item.key, body.toString());
    }
    for (const [key, content] of contents) {
      const directory = key.slice(0, key.lastIndexOf("/"));
      const leaf = key.slice(directory.length + 1);
      expect([`file ${key}`, `v1-${leaf}`, `v2-${leaf}`], key).toContain(content);
      if (!content.startsWith("v")) continue;
      const siblingLeaf = leaf === "a" ? "b" : "a";
      const sibling = `${directory}/${siblingLeaf}`;
      if (keys.includes(sibling)) continue;
      expect(contents.get(sibling), key).toBe(`${content.slice(0, content.indexOf("-"))}-${siblingLeaf}`);
    }
    expect((await listFiles(path.join(root, ".kfp-artifacts/tmp"))).filter((name) => name.endsWith(".record"))).toEqual([]);
  });
});

describe("NAMESPACE_QUOTA_BYTES across two servers on one volume", () => {
  const quota = { NAMESPACE_QUOTA_BYTES: "100000" };
  const put = (server: TestServer, key: string, bytes: number) => send(artifactUrl(server.url, "team-a", key), { method: "PUT", body: Buffer.alloc(bytes, 1) });

  it("each server counts what the other wrote and deleted", async () => {
    const [first, second] = await twoServers(quota);
    expect(await put(second, "seed", 1000)).toBe(201); // the second server has measured the namespace
    expect(await put(first, "one", 60_000)).toBe(201);
    expect(await put(second, "two", 60_000)).toBe(507); // 121,000 bytes would be over
    expect(await send(artifactUrl(second.url, "team-a", "one"), { method: "DELETE" })).toBe(204);
    expect(await put(first, "three", 60_000)).toBe(201); // 61,000 bytes: room again
    expect(await put(first, "four", 40_000)).toBe(507);
  });

  it("ten writes at once through two servers, room for five: exactly five are stored", async () => {
    const [first, second] = await twoServers(quota);
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, index) => put(index % 2 === 0 ? first : second, `part-${index}`, 20_000)));
    expect(statuses.filter((status) => status === 201)).toHaveLength(5);
    expect(statuses.filter((status) => status === 507)).toHaveLength(5);
    expect(await listFiles(path.join(first.root, "team-a"))).toHaveLength(5);
  });

  it("a lock left by a server that died goes once stale, and the namespace is measured again (the dead holder's change counts)", async () => {
    const [first, second] = await twoServers({ ...quota, LOG_LEVEL: "info" });
    expect(await put(first, "one", 60_000)).toBe(201);
    // A holder that wrote 30,000 bytes, then died holding the lock, before recording them.
    await fs.writeFile(path.join(first.root, "team-a/unrecorded"), Buffer.alloc(30_000));
    const lock = path.join(first.root, ".kfp-artifacts/locks/team-a.lock");
    await fs.writeFile(lock, "{}");
    const longAgo = new Date(Date.now() - 60_000);
    await fs.utimes(lock, longAgo, longAgo);
    expect(await put(second, "two", 20_000)).toBe(507); // 110,000 bytes with what the dead holder wrote
    expect(second.logs.join("\n")).toMatch(/broke a quota lock its holder left/);
    expect(await put(first, "three", 10_000)).toBe(201); // exactly 100,000
    await expect(fs.stat(lock)).rejects.toThrow();
  });
});

describe("a crash in the middle of a directory replacement", () => {
  async function crashDuringReplacement(step: string): Promise<{ root: string; restarted: ChildServer }> {
    const root = await tempDir("crash-replace");
    const first = await child({ ARTIFACTS_ROOT: root, KFP_ARTIFACTS_CRASH_AT: step });
    const url = artifactUrl(first.url, "team-a", "d/x") + "?archive=tar.gz";
    expect(await send(url, { method: "PUT", body: await version("v1") })).toBe(201);
    await expect(send(url, { method: "PUT", body: await version("v2") })).rejects.toThrow();
    expect(await within(5000, first.exited, "the crash")).toBe("SIGKILL");
    const restarted = await child({ ARTIFACTS_ROOT: root });
    return { root, restarted };
  }

  it("SIGKILL between the two renames (old version aside, new one not in place): the restart puts the old version back whole", async () => {
    const { root, restarted } = await crashDuringReplacement("replacement-moved-aside");
    expect(restarted.output()).toMatch(/put back artifacts whose replacement a crash interrupted/);
    expect(await directoryVersion(restarted.url, "d/x")).toBe("v1");
    expect(await listFiles(path.join(root, ".kfp-artifacts/tmp"))).toEqual([]);
    expect(await listFiles(path.join(root, "team-a"))).toEqual(["d/x/a", "d/x/b"]);
  });

  it("SIGKILL once the new version is in place, the old one still aside: the restart serves the new version and discards the old", async () => {
    const { root, restarted } = await crashDuringReplacement("replacement-moved-in");
    expect(restarted.output()).not.toMatch(/put back artifacts/);
    expect(await directoryVersion(restarted.url, "d/x")).toBe("v2");
    expect(await listFiles(path.join(root, ".kfp-artifacts/tmp"))).toEqual([]);
  });
});
