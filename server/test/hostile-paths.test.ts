// A hostile-path corpus sent as raw request targets (no client-side normalization). Every case is
// refused, and nothing outside the namespace directory is touched: the whole volume and a sibling
// directory outside it are snapshotted before and compared after every request.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, tempDir, within, type TestServer } from "./support/harness.js";

let s: TestServer;
let outside: string;

/** Path → size:mtime:sha256 (or "dir"/"link→target") of everything below `dir` except team-a/. */
async function snapshot(dir: string, skip: string | undefined): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (current: string, rel: string) => {
    for (const entry of await fs.readdir(current, { withFileTypes: true })) {
      const relative = rel ? `${rel}/${entry.name}` : entry.name;
      if (relative === skip) continue;
      const full = path.join(current, entry.name);
      if (entry.isSymbolicLink()) result.set(relative, `link→${await fs.readlink(full)}`);
      else if (entry.isDirectory()) {
        result.set(relative, "dir");
        await walk(full, relative);
      } else {
        const stat = await fs.stat(full);
        const digest = createHash("sha256").update(await fs.readFile(full)).digest("hex");
        result.set(relative, `${stat.size}:${stat.mtimeMs}:${digest}`);
      }
    }
  };
  await walk(dir, "");
  return result;
}

/** Sends a request with the target exactly as given and returns the status code. */
function rawRequest(port: number, method: string, target: string, body = ""): Promise<number> {
  return within(
    5000,
    new Promise<number>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      let response = "";
      socket.on("data", (chunk: Buffer) => {
        response += chunk.toString("latin1");
        const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
        if (match && response.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(Number(match[1]));
        }
      });
      socket.on("error", reject);
      socket.write(Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, "latin1"));
    }),
    `${method} ${target}`,
  );
}

beforeAll(async () => {
  const base = await tempDir("hostile");
  outside = path.join(base, "outside");
  const root = path.join(base, "root");
  await fs.mkdir(outside, { recursive: true });
  await fs.writeFile(path.join(outside, "secret.txt"), "outside the volume");
  await fs.mkdir(path.join(root, "team-a/dir"), { recursive: true });
  await fs.mkdir(path.join(root, "team-b"), { recursive: true });
  await fs.writeFile(path.join(root, "team-b/secret.txt"), "another tenant");
  await fs.writeFile(path.join(root, "team-a/dir/ok.txt"), "mine");
  // Symlinks planted on the volume (by someone with direct access): never followed out of team-a.
  await fs.symlink("../team-b", path.join(root, "team-a/link-dir"));
  await fs.symlink(outside, path.join(root, "team-a/link-abs"));
  await fs.symlink("../team-b/secret.txt", path.join(root, "team-a/link-file"));
  await fs.symlink(outside, path.join(root, "team-a/dir/deep-link"));
  s = await startTestServer({}, { root });
});

afterAll(async () => {
  await s.close();
});

const NS = "/v1/namespaces/team-a/artifacts";
const traversalTargets = [
  `${NS}/../../team-b/artifacts/secret.txt`,
  `${NS}/%2e%2e/%2e%2e/team-b/secret.txt`,
  `${NS}/%2E%2E/team-b/secret.txt`,
  `${NS}/..%2fteam-b%2fsecret.txt`,
  `${NS}/..%2F..%2F..%2Fetc%2Fpasswd`,
  `${NS}/dir/../../team-b/secret.txt`,
  `${NS}/./dir/ok.txt`,
  `${NS}/dir/%2e/ok.txt`,
  `${NS}/%2fetc%2fpasswd`,
  `${NS}//etc/passwd`,
  `${NS}/dir//ok.txt`,
  `${NS}/dir/`,
  `${NS}/a%00b`,
  `${NS}/dir/ok.txt%00.png`,
  `${NS}/a%0ab`,
  `${NS}/a%0d%0aX-Injected:%20yes`,
  `${NS}/a%7fb`,
  `${NS}/a%c2%85b`,
  `${NS}/a%5c..%5c..%5cteam-b`,
  `${NS}/..%5c..%5cteam-b%5csecret.txt`,
  `${NS}/%ff%fe`,
  `${NS}/%e2%80%a8line`,
  `${NS}/bad%zzescape`,
  `${NS}/${"x".repeat(256)}`,
  `${NS}/${"abcdefgh/".repeat(120)}x`,
  `${NS}/link-dir/secret.txt`,
  `${NS}/link-abs/secret.txt`,
  `${NS}/link-file`,
  `${NS}/dir/deep-link/secret.txt`,
  "/v1/namespaces/../artifacts/team-b",
  "/v1/namespaces/%2e%2e/artifacts/team-b/secret.txt",
  "/v1/namespaces/.kfp-artifacts/artifacts/meta",
  "/v1/namespaces/team-b%2fsecret.txt/artifacts/x",
  "/v1/namespaces/Team-A/artifacts/x",
  "/v1/namespaces/team_a/artifacts/x",
  `/v1/namespaces/${"a".repeat(64)}/artifacts/x`,
  "/v1/namespaces/%00/artifacts/x",
  "/v1/namespaces//artifacts/x",
  "/v1/namespaces/team-a/artifacts/%2e%2e",
  "/v1/namespaces/team-a/artifacts/%2e",
];

describe("hostile path corpus", () => {
  it("has at least 40 distinct targets", () => {
    expect(new Set(traversalTargets).size).toBeGreaterThanOrEqual(40);
  });

  for (const method of ["GET", "PUT", "DELETE"] as const) {
    it.each(traversalTargets)(`${method} %s is refused and touches nothing outside team-a`, async (target) => {
      const volumeBefore = await snapshot(s.root, "team-a");
      const outsideBefore = await snapshot(outside, undefined);
      const status = await rawRequest(new URL(s.url).port ? Number(new URL(s.url).port) : 80, method, target, method === "PUT" ? "pwned" : "");
      expect(status, `${method} ${target}`).toBeGreaterThanOrEqual(400);
      expect(status, `${method} ${target}`).toBeLessThan(500);
      // The internal directory's tmp may hold this request's staging file only while it runs.
      const volumeAfter = await snapshot(s.root, "team-a");
      expect(volumeAfter).toEqual(volumeBefore);
      expect(await snapshot(outside, undefined)).toEqual(outsideBefore);
    });
  }

  // The same corpus through the S3 door: artifact paths become /<bucket>/<key> in both bucket styles,
  // namespace-segment attacks become bucket names. S3 deletes are idempotent, so a DELETE may answer 204,
  // but nothing may change.
  const s3Targets = traversalTargets.flatMap((target) =>
    target.startsWith(`${NS}/`)
      ? [`/team-a/${target.slice(NS.length + 1)}`, `/mlpipeline/private-artifacts/team-a/${target.slice(NS.length + 1)}`]
      : [target.replace(/^\/v1\/namespaces\/(.*?)\/artifacts/, "/$1").replace(/^\/v1\/namespaces\//, "/")],
  );
  for (const method of ["GET", "PUT", "DELETE"] as const) {
    it.each(s3Targets)(`S3 ${method} %s is refused and touches nothing outside team-a`, async (target) => {
      const volumeBefore = await snapshot(s.root, "team-a");
      const outsideBefore = await snapshot(outside, undefined);
      const status = await rawRequest(Number(new URL(s.s3Url).port), method, target, method === "PUT" ? "pwned" : "");
      if (!(method === "DELETE" && status === 204)) {
        expect(status, `${method} ${target}`).toBeGreaterThanOrEqual(400);
        expect(status, `${method} ${target}`).toBeLessThan(500);
      }
      expect(await snapshot(s.root, "team-a")).toEqual(volumeBefore);
      expect(await snapshot(outside, undefined)).toEqual(outsideBefore);
    });
  }

  it("left the planted files and links exactly as they were", async () => {
    expect(await fs.readFile(path.join(s.root, "team-b/secret.txt"), "utf8")).toBe("another tenant");
    expect(await fs.readFile(path.join(outside, "secret.txt"), "utf8")).toBe("outside the volume");
    expect(await fs.readlink(path.join(s.root, "team-a/link-dir"))).toBe("../team-b");
  });

  it("still serves the legitimate artifact next to the traps", async () => {
    const response = await fetch(`${s.url}${NS}/dir/ok.txt`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("mine");
  });
});
