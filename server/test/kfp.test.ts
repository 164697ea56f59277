// KEP-12513 compatibility API and directory artifacts, over a real socket.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTarGz, readTarGz, type TestEntry } from "./support/archives.js";
import { artifactUrl, listFiles, putChunked, readAround, startTestServer, type TestServer } from "./support/harness.js";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ MAX_ARCHIVE_EXPANDED_BYTES: "8Mi" });
});
afterAll(async () => {
  await s.close();
});

const kfp = (version: string, run: string, node: string, name: string, action: "read" | "write", query = "") =>
  `${s.url}/apis/${version}/runs/${encodeURIComponent(run)}/nodes/${encodeURIComponent(node)}/artifacts/${encodeURIComponent(name)}:${action}${query}`;

/** A directory tree like a component's output: nested, binary, empty, non-ASCII names. */
function outputTree(): TestEntry[] {
  return [
    { name: "model/", type: "directory" },
    { name: "model/weights.bin", content: randomBytes(300_000) },
    { name: "model/config.json", content: '{"layers":3}' },
    { name: "metrics/", type: "directory" },
    { name: "metrics/accuracy.txt", content: "0.97" },
    { name: "metrics/empty", content: "" },
    { name: "données/résultat.csv", content: "a,b\n1,2\n" },
  ];
}

async function tmpIsEmpty(): Promise<boolean> {
  return (await listFiles(path.join(s.root, ".kfp-artifacts/tmp"))).length === 0;
}

describe("KFP compatibility API", () => {
  for (const version of ["v1beta1", "v2beta1"]) {
    it(`${version}: a launcher-style client round-trips a tar.gz of a directory tree`, async () => {
      const tree = outputTree();
      const archive = await makeTarGz(tree);
      const run = `run-${version}-${randomBytes(4).toString("hex")}`;
      const write = await fetch(kfp(version, run, "train-node", "model", "write", "?namespace=team-a&pipeline=training"), {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: archive,
      });
      expect(write.status).toBe(200);
      expect(await write.json()).toEqual({ uri: `kfp-artifacts://team-a/training/${run}/train-node/model` });

      const read = await fetch(kfp(version, run, "train-node", "model", "read"));
      expect(read.status).toBe(200);
      expect(read.headers.get("content-type")).toBe("application/json");
      const body = (await read.json()) as { data: string };
      const decoded = Buffer.from(body.data, "base64");
      expect(decoded.equals(archive)).toBe(true);
      const files = await readTarGz(decoded);
      for (const entry of tree) {
        if (entry.type === "directory") continue;
        expect(files.get(entry.name)?.equals(Buffer.from(entry.content ?? "")), entry.name).toBe(true);
      }
      // The same bytes are a plain artifact on the native API.
      const native = await fetch(artifactUrl(s.url, "team-a", `training/${run}/train-node/model`));
      expect(Buffer.from(await native.arrayBuffer()).equals(archive)).toBe(true);
    });
  }

  it("remembers a run's namespace and pipeline; a conflicting pipeline is refused in KFP's error shape", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    expect((await fetch(kfp("v2beta1", run, "n1", "a", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "1" })).status).toBe(200);
    const later = await fetch(kfp("v2beta1", run, "n2", "b", "write"), { method: "POST", body: "2" });
    expect(await later.json()).toEqual({ uri: `kfp-artifacts://team-a/p/${run}/n2/b` });
    const matching = await fetch(kfp("v1beta1", run, "n2", "b", "read", "?namespace=team-a&pipeline=p"));
    expect(Buffer.from(((await matching.json()) as { data: string }).data, "base64").toString()).toBe("2");
    const conflicting = await fetch(kfp("v2beta1", run, "n3", "c", "write", "?namespace=team-a&pipeline=q"), { method: "POST", body: "3" });
    expect(conflicting.status).toBe(409);
    const error = (await conflicting.json()) as Record<string, string>;
    expect(Object.keys(error).sort()).toEqual(["error_details", "error_message"]);
    expect(error.error_message).toMatch(/another pipeline/);
    expect(await listFiles(path.join(s.root, "team-a/q"))).toEqual([]);
  });

  it("keeps runs per namespace: the same run id elsewhere is another run, and a caller who may use both must name one", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    await fetch(kfp("v2beta1", run, "n", "a", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "a's" });
    const other = await fetch(kfp("v2beta1", run, "n", "a", "write", "?namespace=team-b&pipeline=q"), { method: "POST", body: "b's" });
    expect(await other.json()).toEqual({ uri: `kfp-artifacts://team-b/q/${run}/n/a` });
    // AUTH_MODE=none: this caller may use both namespaces, so a call naming neither is ambiguous.
    const ambiguous = await fetch(kfp("v2beta1", run, "n", "a", "read"));
    expect(ambiguous.status).toBe(409);
    expect(((await ambiguous.json()) as { error_message: string }).error_message).toMatch(/several namespaces/);
    const read = async (namespace: string) =>
      Buffer.from(((await (await fetch(kfp("v2beta1", run, "n", "a", "read", `?namespace=${namespace}`))).json()) as { data: string }).data, "base64").toString();
    expect(await read("team-a")).toBe("a's");
    expect(await read("team-b")).toBe("b's");
  });

  it("still reads and writes a run recorded before runs were namespaced (one record per run id)", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const digest = createHash("sha256").update(run).digest("hex");
    const legacy = path.join(s.root, ".kfp-artifacts/runs", digest.slice(0, 2), `${digest}.json`);
    await fs.mkdir(path.dirname(legacy), { recursive: true });
    await fs.writeFile(legacy, JSON.stringify({ runId: run, namespace: "team-a", pipeline: "old" }));
    const write = await fetch(kfp("v2beta1", run, "n", "a", "write"), { method: "POST", body: "kept" });
    expect(await write.json()).toEqual({ uri: `kfp-artifacts://team-a/old/${run}/n/a` });
    const read = await fetch(kfp("v2beta1", run, "n", "a", "read", "?namespace=team-a"));
    expect(Buffer.from(((await read.json()) as { data: string }).data, "base64").toString()).toBe("kept");
    expect((await fetch(kfp("v2beta1", run, "n", "a", "write", "?namespace=team-a&pipeline=new"), { method: "POST", body: "x" })).status).toBe(409);
  });

  it("refuses a first write without pipeline, or without namespace when no service account names one (400), and a read of an unknown run (404)", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const missing = await fetch(kfp("v2beta1", run, "n", "a", "write"), { method: "POST", body: "x" });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error_message: string }).error_message).toMatch(/must name its pipeline/);
    // AUTH_MODE=none: no token, so no service account whose namespace could be taken.
    const anonymous = await fetch(kfp("v2beta1", run, "n", "a", "write", "?pipeline=p"), { method: "POST", body: "x" });
    expect(anonymous.status).toBe(400);
    expect(((await anonymous.json()) as { error_message: string }).error_message).toMatch(/must name its namespace.*no service account/);
    expect(await listFiles(s.root)).not.toContain(expect.stringContaining(run));
    const unknown = await fetch(kfp("v2beta1", run, "n", "a", "read"));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toHaveProperty("error_message");
  });

  it("answers 404 for a missing artifact of a known run", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    await fetch(kfp("v2beta1", run, "n", "a", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "x" });
    expect((await fetch(kfp("v2beta1", run, "n", "nothing", "read"))).status).toBe(404);
  });

  it.each([
    ["run_id", (bad: string) => kfp("v2beta1", bad, "n", "a", "write", "?namespace=team-a&pipeline=p")],
    ["node_id", (bad: string) => kfp("v2beta1", "r-hostile", bad, "a", "write", "?namespace=team-a&pipeline=p")],
    ["name", (bad: string) => kfp("v2beta1", "r-hostile", "n", bad, "write", "?namespace=team-a&pipeline=p")],
    ["pipeline", (bad: string) => kfp("v2beta1", "r-hostile2", "n", "a", "write", `?namespace=team-a&pipeline=${encodeURIComponent(bad)}`)],
  ])("refuses hostile %s values with 400 and keeps nothing", async (what, url) => {
    // An artifact name may hold '/' (a file of a directory output); the other names may not.
    const slashes = what === "name" ? ["../x", "a/../../x", "a/./b", "a//b", "/a", "a/", `${"a/".repeat(64)}a`] : ["a/b"];
    for (const bad of ["..", ".", "a\\b", "a\u0000b", "a\nb", "x".repeat(300), ...slashes]) {
      const response = await fetch(url(bad), { method: "POST", body: "pwned" });
      expect([400, 404], `${JSON.stringify(bad)} → ${response.status}`).toContain(response.status);
      expect(await response.json()).toHaveProperty("error_message");
    }
    expect(await tmpIsEmpty()).toBe(true);
    expect(await listFiles(s.root)).not.toContain(expect.stringMatching(/pwned/));
  });

  it("streams a large :read as exact-length base64 JSON", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const data = randomBytes((5 << 20) + 1); // not a multiple of 3: padding at the end
    await fetch(kfp("v2beta1", run, "n", "big", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: data });
    const read = await fetch(kfp("v2beta1", run, "n", "big", "read"));
    const text = await read.text();
    expect(read.headers.get("content-length")).toBe(String(text.length));
    const parsed = JSON.parse(text) as { data: string };
    expect(Buffer.from(parsed.data, "base64").equals(data)).toBe(true);
  });

  it.each([0, 1, 2, 3, 768 << 10, (768 << 10) + 1, (1536 << 10) - 1])(":read of %i bytes is exact base64 JSON at the piece boundaries", async (size) => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const data = randomBytes(size);
    const write = await fetch(kfp("v2beta1", run, "n", "edge", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: data });
    expect(write.status).toBe(200);
    const read = await fetch(kfp("v2beta1", run, "n", "edge", "read"));
    const text = await read.text();
    expect(read.headers.get("content-length")).toBe(String(text.length));
    expect(text).toBe(JSON.stringify({ data: data.toString("base64") }));
  });

  it("a :read whose file is truncated underneath it ends short, never with other bytes", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const data = randomBytes(48 << 20);
    await fetch(kfp("v2beta1", run, "n", "shrinking", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: data });
    const read = await fetch(kfp("v2beta1", run, "n", "shrinking", "read"));
    const expected = JSON.stringify({ data: data.toString("base64") });
    expect(read.headers.get("content-length")).toBe(String(expected.length));
    const { outcome, received } = await readAround(read, () => fs.truncate(path.join(s.root, "team-a", "p", run, "n", "shrinking"), 1 << 20));
    expect(outcome).toBe("cut short");
    const got = received.toString("latin1");
    expect(got.length).toBeLessThan(expected.length);
    expect(expected.startsWith(got)).toBe(true);
  });
});

describe("KFP v2 object names: a directory output is one object per file", () => {
  const raw = (run: string, name: string, action: "read" | "write", query = "") =>
    `${s.url}/apis/v2beta1/runs/${run}/nodes/train/artifacts/${name}:${action}${query}`;

  it("a name with %2F is a key with '/'; a raw '/' names the same key; :read of the directory is the base64 of its tar.gz", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const weights = randomBytes(200_000);
    const first = await fetch(raw(run, "model%2Fweights.bin", "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: weights });
    expect(await first.json()).toEqual({ uri: `kfp-artifacts://team-a/p/${run}/train/model/weights.bin` });
    const second = await fetch(raw(run, "model/config/layers.json", "write"), { method: "POST", body: '{"layers":3}' });
    expect(await second.json()).toEqual({ uri: `kfp-artifacts://team-a/p/${run}/train/model/config/layers.json` });
    expect(await fs.readFile(path.join(s.root, "team-a/p", run, "train/model/weights.bin"))).toEqual(weights);

    // One file of it, either spelling.
    for (const name of ["model%2Fconfig%2Flayers.json", "model/config%2Flayers.json"]) {
      const file = await fetch(raw(run, name, "read"));
      expect(Buffer.from(((await file.json()) as { data: string }).data, "base64").toString(), name).toBe('{"layers":3}');
    }
    const directory = await fetch(raw(run, "model", "read"));
    expect(directory.status).toBe(200);
    expect(directory.headers.get("content-type")).toBe("application/json");
    const files = await readTarGz(Buffer.from(((await directory.json()) as { data: string }).data, "base64"));
    expect([...files.keys()].filter((name) => !name.endsWith("/")).sort()).toEqual(["config/layers.json", "weights.bin"]);
    expect(files.get("weights.bin")?.equals(weights)).toBe(true);
    expect(files.get("config/layers.json")?.toString()).toBe('{"layers":3}');
  });

  it.each([
    ["..%2F..%2Fteam-b%2Fstolen", "a '..' segment"],
    ["model%2F..%2F..%2F..%2F..%2Fteam-b%2Fstolen", "a '..' segment deeper in"],
    ["%2E%2E%2Fstolen", "an encoded '..'"],
    ["model%2F.%2Fx", "a '.' segment"],
    ["model%2F%2Fx", "an empty segment"],
    ["%2Fx", "a leading '/'"],
    ["model%5Cx", "a backslash"],
    ["model%2", "a broken escape"],
  ])("refuses %s (%s) with 400 in KFP's shape, storing nothing anywhere", async (name) => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const before = await listFiles(s.root);
    const response = await fetch(raw(run, name, "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "pwned" });
    expect(response.status).toBe(400);
    const error = (await response.json()) as Record<string, string>;
    expect(Object.keys(error).sort()).toEqual(["error_details", "error_message"]);
    expect(error.error_message).toMatch(/artifact name/);
    expect(JSON.stringify(error)).not.toContain(s.root);
    expect(await listFiles(s.root)).toEqual(before);
  });

  it("bounds the whole key: a name that makes the key longer or deeper than the limits is 400", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const deep = await fetch(raw(run, Array.from({ length: 62 }, () => "d").join("%2F"), "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "x" });
    expect(deep.status).toBe(400);
    expect(((await deep.json()) as { error_message: string }).error_message).toMatch(/more than 64 segments/);
    const long = await fetch(raw(run, Array.from({ length: 5 }, () => "l".repeat(250)).join("%2F"), "write", "?namespace=team-a&pipeline=p"), { method: "POST", body: "x" });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error_message: string }).error_message).toMatch(/longer than 1024 bytes/);
    expect(await listFiles(path.join(s.root, "team-a/p"))).not.toContain(expect.stringContaining(run));
  });
});

describe("directory artifacts (?archive=tar.gz)", () => {
  it("PUT extracts a directory; files are artifacts; GET ?archive=tar.gz streams it back entry by entry", async () => {
    const entries: TestEntry[] = Array.from({ length: 400 }, (_, i) => ({
      name: `shard-${String(Math.floor(i / 50)).padStart(2, "0")}/part-${String(i).padStart(4, "0")}.bin`,
      content: randomBytes(1000 + i),
    }));
    const put = await fetch(`${artifactUrl(s.url, "team-a", "dataset")}?archive=tar.gz`, { method: "PUT", body: await makeTarGz(entries) });
    expect(put.status).toBe(201);
    const result = (await put.json()) as { files: number; size: number; uri: string };
    expect(result.files).toBe(400);
    expect(result.size).toBe(entries.reduce((sum, entry) => sum + Buffer.from(entry.content ?? "").length, 0));
    expect(result.uri).toBe("kfp-artifacts://team-a/dataset");

    const one = await fetch(artifactUrl(s.url, "team-a", "dataset/shard-03/part-0150.bin"));
    expect(Buffer.from(await one.arrayBuffer()).equals(Buffer.from(entries[150]?.content ?? ""))).toBe(true);
    expect((await fetch(artifactUrl(s.url, "team-a", "dataset"))).status).toBe(409);

    const download = await fetch(`${artifactUrl(s.url, "team-a", "dataset")}?archive=tar.gz`);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("application/gzip");
    expect(download.headers.get("content-disposition")).toContain("dataset.tar.gz");
    const files = await readTarGz(Buffer.from(await download.arrayBuffer()));
    const downloadedFiles = [...files.keys()].filter((name) => !name.endsWith("/"));
    expect(downloadedFiles).toHaveLength(400);
    for (const entry of entries) expect(files.get(entry.name)?.equals(Buffer.from(entry.content ?? "")), entry.name).toBe(true);
  });

  it("a single file downloads as a one-entry archive", async () => {
    await fetch(artifactUrl(s.url, "team-a", "single.txt"), { method: "PUT", body: "solo" });
    const files = await readTarGz(Buffer.from(await (await fetch(`${artifactUrl(s.url, "team-a", "single.txt")}?archive=tar.gz`)).arrayBuffer()));
    expect([...files.entries()].map(([name, content]) => [name, content.toString()])).toEqual([["single.txt", "solo"]]);
  });

  it("replacing a directory is all or nothing: a bad archive leaves the old directory intact", async () => {
    const key = "swap";
    await fetch(`${artifactUrl(s.url, "team-a", key)}?archive=tar.gz`, { method: "PUT", body: await makeTarGz([{ name: "old.txt", content: "old" }]) });
    const bad = await makeTarGz([{ name: "new.txt", content: "new" }, { name: "../escape.txt", content: "x" }]);
    expect((await fetch(`${artifactUrl(s.url, "team-a", key)}?archive=tar.gz`, { method: "PUT", body: bad })).status).toBe(400);
    expect(await (await fetch(artifactUrl(s.url, "team-a", `${key}/old.txt`))).text()).toBe("old");
    expect((await fetch(artifactUrl(s.url, "team-a", `${key}/new.txt`))).status).toBe(404);

    const good = await makeTarGz([{ name: "new.txt", content: "new" }]);
    expect((await fetch(`${artifactUrl(s.url, "team-a", key)}?archive=tar.gz`, { method: "PUT", body: good })).status).toBe(200);
    expect((await fetch(artifactUrl(s.url, "team-a", `${key}/old.txt`))).status).toBe(404);
    expect(await (await fetch(artifactUrl(s.url, "team-a", `${key}/new.txt`))).text()).toBe("new");
    expect(await tmpIsEmpty()).toBe(true);
  });

  const hostile: [string, () => Promise<Buffer<ArrayBuffer>>, number, RegExp][] = [
    ["traversal", () => makeTarGz([{ name: "ok.txt", content: "ok" }, { name: "a/../../escape.txt", content: "x" }]), 400, /'\.' or '\.\.'/],
    ["absolute path", () => makeTarGz([{ name: "/etc/cron.d/evil", content: "x" }]), 400, /absolute|empty segments/],
    ["symlink", () => makeTarGz([{ name: "link", type: "symlink", linkname: "/etc/passwd" }]), 400, /symlink/],
    ["hardlink", () => makeTarGz([{ name: "a.txt", content: "a" }, { name: "hard", type: "link", linkname: "a.txt" }]), 400, /link/],
    ["character device", () => makeTarGz([{ name: "null", type: "character-device" }]), 400, /character-device/],
    ["fifo", () => makeTarGz([{ name: "pipe", type: "fifo" }]), 400, /fifo/],
    ["backslash name", () => makeTarGz([{ name: "a\\..\\b", content: "x" }]), 400, /backslash/],
    ["duplicate entry", () => makeTarGz([{ name: "a", content: "1" }, { name: "a", content: "2" }]), 400, /two entries/],
    ["file/directory clash", () => makeTarGz([{ name: "a", content: "1" }, { name: "a/b", content: "2" }]), 400, /conflict/],
    ["decompression bomb", () => makeTarGz([{ name: "zeros", content: Buffer.alloc(16 << 20) }]), 413, /expands to more than/],
    ["not gzip", () => Promise.resolve(Buffer.from("this is not an archive")), 400, /not a valid tar\.gz/],
    ["truncated gzip", async () => (await makeTarGz([{ name: "a", content: randomBytes(100_000) }])).subarray(0, 5000), 400, /not a valid tar\.gz/],
  ];
  it.each(hostile)("refuses a hostile archive (%s) and keeps nothing", async (_name, build, status, message) => {
    const key = `hostile-${_name.replace(/\W+/g, "-")}`;
    const response = await fetch(`${artifactUrl(s.url, "team-a", key)}?archive=tar.gz`, { method: "PUT", body: await build() });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(message);
    expect((await fetch(artifactUrl(s.url, "team-a", key))).status).toBe(404);
    expect(await tmpIsEmpty()).toBe(true);
    expect(await listFiles(s.root)).not.toContain("escape.txt");
  });

  it("bounds the compressed body by MAX_UPLOAD_BYTES (413)", async () => {
    const small = await startTestServer({ MAX_UPLOAD_BYTES: "64Ki" });
    try {
      const archive = await makeTarGz([{ name: "noise", content: randomBytes(256 << 10) }]);
      const response = await putChunked(`${artifactUrl(small.url, "team-a", "big")}?archive=tar.gz`, archive);
      expect(response.status).toBe(413);
      expect(await listFiles(small.root)).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it("counts the expanded size against the namespace quota", async () => {
    const quota = await startTestServer({ NAMESPACE_QUOTA_BYTES: "100Ki" });
    try {
      const response = await fetch(`${artifactUrl(quota.url, "team-a", "big")}?archive=tar.gz`, {
        method: "PUT",
        body: await makeTarGz([{ name: "zeros", content: Buffer.alloc(200 << 10) }]), // compresses to ~1 KiB
      });
      expect(response.status).toBe(507);
      // Nothing but the namespace's usage as the volume records it (with a quota, every server reads it).
      expect(await listFiles(quota.root)).toEqual([".kfp-artifacts/usage/team-a.json"]);
    } finally {
      await quota.close();
    }
  });
});
