// The symlink-swap race: someone with direct access to a namespace's directory on the volume (a pod
// mounting it) swaps a directory for a symlink to a directory outside the volume, in a tight loop, with
// renameat2(RENAME_EXCHANGE), while the server works on keys below it. A check of the path followed by a
// second use of the path would follow the symlink in between. Every read, write, delete, listing and
// archive walk, on the native API, the KFP API and the S3 endpoint, must leave the outside directory
// exactly as it was and never answer its contents or names, and a lost race is a clean 4xx.
//
// The swapper is Python 3 calling libc's renameat2 through ctypes (Node has no binding for it); it
// exchanges `team-a/race` with `team-a/swap` (a symlink to the outside directory), and
// `team-a/tree/race` with `team-a/tree/swap`, until it is stopped or its own deadline passes.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import zlib from "node:zlib";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTarGz } from "./support/archives.js";
import { artifactUrl, startTestServer, tempDir, type TestServer } from "./support/harness.js";

/** Requests per operation: enough for the unfixed server to lose dozens of races, seconds per operation. */
const ROUNDS = 300;
const CONCURRENCY = 4;
const MARKER = "OUTSIDE-THE-VOLUME";
const OUTSIDE_ONLY = "outside-only-name";

const SWAPPER = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
renameat2 = libc.renameat2
renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD, RENAME_EXCHANGE = -100, 2
pairs = [(sys.argv[i].encode(), sys.argv[i + 1].encode()) for i in range(1, len(sys.argv), 2)]
deadline = time.monotonic() + 300
print("swapping", flush=True)
while time.monotonic() < deadline:
    for a, b in pairs:
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
`;

let s: TestServer;
let base: string;
let outside: string;
let swapper: ChildProcess;
let s3: S3Client;

/** Every entry below `dir` with what it holds (content digest, "dir" or the link's target). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (current: string, relative: string): Promise<void> => {
    for (const entry of await fs.readdir(current, { withFileTypes: true })) {
      const rel = relative === "" ? entry.name : `${relative}/${entry.name}`;
      const full = path.join(current, entry.name);
      if (entry.isSymbolicLink()) result.set(rel, `link→${await fs.readlink(full)}`);
      else if (entry.isDirectory()) {
        result.set(rel, "dir");
        await walk(full, rel);
      } else result.set(rel, createHash("sha256").update(await fs.readFile(full)).digest("hex"));
    }
  };
  await walk(dir, "");
  return result;
}

/** The same names inside (team-a/race) and outside, so any read through the swapped link shows. */
async function populate(dir: string, content: (name: string) => string, extra: string[] = []): Promise<void> {
  await fs.mkdir(path.join(dir, "r0/n"), { recursive: true });
  for (let i = 0; i < ROUNDS; i += 1) {
    await fs.writeFile(path.join(dir, `f${i}`), content(`f${i}`));
    await fs.writeFile(path.join(dir, `g${i}`), content(`g${i}`));
    await fs.mkdir(path.join(dir, `d${i}`), { recursive: true });
    await fs.writeFile(path.join(dir, `d${i}/inner`), content(`d${i}/inner`));
    await fs.writeFile(path.join(dir, `r0/n/m${i}`), content(`r0/n/m${i}`));
  }
  for (const name of extra) await fs.writeFile(path.join(dir, name), content(name));
}

/**
 * Puts the outside directory back as it started, so each operation's figures are its own. Its
 * `tree-target` is what team-a/tree/swap points to: the names of team-a/tree/race, large and
 * incompressible, so an archive that reads them sends their bytes at once (not held in gzip's buffer
 * until a stream that fails afterwards is cut).
 */
async function resetOutside(): Promise<void> {
  await fs.rm(outside, { recursive: true, force: true });
  await fs.mkdir(outside);
  await populate(outside, (name) => `${MARKER} ${name}`, [OUTSIDE_ONLY]);
  await fs.mkdir(path.join(outside, "tree-target"));
  for (const name of ["a", "b", OUTSIDE_ONLY]) {
    await fs.writeFile(path.join(outside, "tree-target", name), Buffer.concat([Buffer.from(`${MARKER} ${name}\n`), randomBytes(256 << 10)]));
  }
}

interface Figures {
  /** Entries outside that are new or hold other content. */
  written: number;
  /** Entries outside that are gone. */
  removed: number;
  /** Answers that carried outside content or an outside name. */
  read: number;
  /** Answers of 500 and above. */
  serverErrors: number;
  /** Answers that named a filesystem path. */
  pathsShown: number;
}

interface Answer {
  readonly status: number;
  /** Everything the client saw: the body (an archive's names and contents), or an error's text. */
  readonly text: string;
}

/** Runs `operation` ROUNDS times against the swapping directory and counts what reached outside. */
async function race(operation: (i: number) => Promise<Answer>): Promise<Figures> {
  await resetOutside();
  const before = await snapshot(outside);
  const figures: Figures = { written: 0, removed: 0, read: 0, serverErrors: 0, pathsShown: 0 };
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < ROUNDS) {
      const answer = await operation(next++);
      if (answer.text.includes(MARKER) || answer.text.includes(OUTSIDE_ONLY)) figures.read += 1;
      if (answer.status >= 500) figures.serverErrors += 1;
      if (answer.text.includes(base)) figures.pathsShown += 1;
    }
    done += 1;
  };
  // The race is live during the operation, or the operation proved nothing: what team-a/race is, sampled
  // meanwhile, must have been both a directory and the symlink.
  const seen = new Set<string>();
  const sample = async () => {
    while (done < CONCURRENCY || seen.size < 2) {
      const stat = await fs.lstat(path.join(s.root, "team-a/race")).catch(() => undefined);
      seen.add(stat?.isSymbolicLink() ? "symlink" : "directory");
      if (done === CONCURRENCY && swapper.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, lane), sample()]);
  expect(swapper.exitCode, "the swapper stopped").toBeNull();
  expect([...seen].sort(), "what team-a/race was during the operation").toEqual(["directory", "symlink"]);
  const after = await snapshot(outside);
  for (const [name, content] of after) if (before.get(name) !== content) figures.written += 1;
  for (const name of before.keys()) if (!after.has(name)) figures.removed += 1;
  return figures;
}

const CLEAN: Figures = { written: 0, removed: 0, read: 0, serverErrors: 0, pathsShown: 0 };

/**
 * The status and every byte the client received, an archive inflated: a download cut short (a stream
 * that failed, as it must when what it sends is removed meanwhile) still shows what it carried.
 */
async function answerOf(response: Response): Promise<Answer> {
  const chunks: Buffer[] = [];
  const reader = response.body?.getReader();
  try {
    for (let next = await reader?.read(); next !== undefined && !next.done; next = await reader?.read()) chunks.push(Buffer.from(next.value));
  } catch {
    // Cut short: judged on what arrived.
  }
  const body = Buffer.concat(chunks);
  const gzip = body.length > 2 && body[0] === 0x1f && body[1] === 0x8b;
  // Tar keeps names and contents as they are: the inflated bytes show any outside name or content.
  const text = gzip ? zlib.gunzipSync(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : body;
  return { status: response.status, text: text.toString("latin1") };
}

const request = async (url: string, init?: RequestInit) => answerOf(await fetch(url, init));
const native = (key: string, query = "") => `${artifactUrl(s.url, "team-a", key)}${query}`;
const kfp = (run: string, name: string, action: "read" | "write", query = "") => `${s.url}/apis/v2beta1/runs/${run}/nodes/n/artifacts/${name}:${action}${query}`;

/** An S3 call's outcome as an Answer: the body or listing it returned, or the error it raised. */
async function s3Answer(call: () => Promise<string>): Promise<Answer> {
  try {
    return { status: 200, text: await call() };
  } catch (error) {
    if (error instanceof S3ServiceException) return { status: error.$metadata.httpStatusCode ?? 0, text: `${error.name} ${error.message}` };
    throw error;
  }
}

beforeAll(async () => {
  base = await tempDir("symlink-race");
  outside = path.join(base, "outside");
  const root = path.join(base, "root");
  const race = path.join(root, "team-a/race");
  await fs.mkdir(race, { recursive: true });
  await populate(race, (name) => `inside ${name}`);
  await fs.mkdir(path.join(root, "team-a/tree/race"), { recursive: true });
  await fs.writeFile(path.join(root, "team-a/tree/race/a"), "inside tree a");
  await fs.writeFile(path.join(root, "team-a/tree/race/b"), "inside tree b");
  await resetOutside();
  await fs.symlink(outside, path.join(root, "team-a/swap"));
  await fs.symlink(path.join(outside, "tree-target"), path.join(root, "team-a/tree/swap"));
  s = await startTestServer({ S3_ACCESS_KEY: "minio", S3_SECRET_KEY: "minio123-secret" }, { root });
  s3 = new S3Client({
    endpoint: s.s3Url,
    region: "minio",
    forcePathStyle: true,
    credentials: { accessKeyId: "minio", secretAccessKey: "minio123-secret" },
    maxAttempts: 1,
  });
  // The run the KFP calls use, claimed (pipeline "race") before the swapping starts.
  const claim = await fetch(kfp("r0", "seed", "write", "?namespace=team-a&pipeline=race"), { method: "POST", body: "seed" });
  expect(claim.status).toBe(200);
  swapper = spawn("python3", ["-c", SWAPPER, race, path.join(root, "team-a/swap"), path.join(root, "team-a/tree/race"), path.join(root, "team-a/tree/swap")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    swapper.stdout?.once("data", () => resolve());
    swapper.once("exit", (code) => reject(new Error(`the swapper exited (${code}) before swapping`)));
  });
}, 60_000);

afterAll(async () => {
  if (swapper !== undefined && swapper.exitCode === null) {
    const exited = new Promise((resolve) => swapper.once("exit", resolve));
    swapper.kill("SIGKILL");
    await exited;
  }
  await s?.close();
});

// Each operation is ROUNDS requests while a core swaps: seconds each, more on a loaded machine.
describe("a directory swapped for a symlink to outside the volume, in a loop, during each operation", { timeout: 90_000 }, () => {
  it("native PUT of a file", async () => {
    expect.soft(await race((i) => request(native(`race/p${i}`), { method: "PUT", body: `written ${i}` }))).toEqual(CLEAN);
  });

  it("native PUT ?archive=tar.gz of a directory", async () => {
    const archive = await makeTarGz([{ name: "x/y", content: "extracted" }]);
    expect.soft(await race((i) => request(native(`race/a${i}`, "?archive=tar.gz"), { method: "PUT", body: archive }))).toEqual(CLEAN);
  });

  it("native GET of a file, whole and a range", async () => {
    expect.soft(await race((i) => request(native(`race/f${i}`)))).toEqual(CLEAN);
    expect.soft(await race((i) => request(native(`race/f${i}`), { headers: { Range: "bytes=0-31" } }))).toEqual(CLEAN);
  });

  it("native GET ?archive=tar.gz of a directory holding the swapped one, read slowly", async () => {
    expect.soft(
      await race(async (i) => {
        const response = await fetch(native("tree", "?archive=tar.gz"));
        if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        return answerOf(response);
      }),
    ).toEqual(CLEAN);
  });

  it("native listing: below the swapped directory and the whole namespace", async () => {
    // Below the swapped directory, only the names that exist outside alone (one readdir per request).
    expect.soft(await race(() => request(`${s.url}/v1/namespaces/team-a/artifacts?prefix=race/outside&limit=1000`))).toEqual(CLEAN);
    expect.soft(await race(() => request(`${s.url}/v1/namespaces/team-a/artifacts?prefix=tree/&limit=1000`))).toEqual(CLEAN);
  });

  it("KFP :write and :read", async () => {
    expect.soft(await race((i) => request(kfp("r0", `w${i}`, "write"), { method: "POST", body: `kfp ${i}` }))).toEqual(CLEAN);
    expect.soft(await race((i) => request(kfp("r0", `m${i}`, "read")))).toEqual(CLEAN);
  });

  it("S3 PutObject", async () => {
    expect.soft(await race((i) => s3Answer(async () => JSON.stringify(await s3.send(new PutObjectCommand({ Bucket: "team-a", Key: `race/s${i}`, Body: `s3 ${i}` })))))).toEqual(CLEAN);
  });

  it("S3 GetObject", async () => {
    expect.soft(
      await race((i) => s3Answer(async () => (await (await s3.send(new GetObjectCommand({ Bucket: "team-a", Key: `race/f${i}` }))).Body?.transformToString()) ?? "")),
    ).toEqual(CLEAN);
  });

  it("S3 ListObjectsV2", async () => {
    expect.soft(await race(() => s3Answer(async () => JSON.stringify(await s3.send(new ListObjectsV2Command({ Bucket: "team-a", Prefix: "race/outside" })))))).toEqual(CLEAN);
  });

  it("S3 DeleteObject", async () => {
    expect.soft(await race((i) => s3Answer(async () => JSON.stringify(await s3.send(new DeleteObjectCommand({ Bucket: "team-a", Key: `race/g${i}` })))))).toEqual(CLEAN);
  });

  it("native DELETE of a file and of a directory (recursive)", async () => {
    expect.soft(await race((i) => request(native(`race/f${i}`), { method: "DELETE" }))).toEqual(CLEAN);
    expect.soft(await race((i) => request(native(`race/d${i}`, "?recursive=true"), { method: "DELETE" }))).toEqual(CLEAN);
  });
});
