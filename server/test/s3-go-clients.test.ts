// The S3 listener against the real Go clients that talk to Kubeflow's artifact store: the KFP launcher's
// gocloud.dev/s3blob over aws-sdk-go-v2 and Argo's minio-go, at the versions KFP 2.17 and Argo 4.0.5
// ship, configured as those products configure them (server/test/s3/go-clients). A TypeScript S3
// client would prove only that our reading of the protocol agrees with itself.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveSecretKey, namespaceAccessKeyId } from "../src/s3/credentials.js";
import { EDITOR_VERBS, FakeKubeApi } from "./support/fake-kube-api.js";
import { listFiles, REPO_ROOT, startTestServer, tempDir, type TestServer } from "./support/harness.js";

const MODULE_DIR = path.join(REPO_ROOT, "server/test/s3/go-clients");
const BINARY = path.join(REPO_ROOT, ".cache/s3-go-clients/s3-go-clients");
const ACCESS_KEY = "kfp-system-key";
const SECRET_KEY = "go-clients-secret-0123456789";
const MASTER_KEY = "go-clients-master-key-0123456789abcdef";
const SCENARIO_TIMEOUT_MS = 120_000;
/** A first build downloads the clients' modules (about 1 GB unpacked) and compiles them: minutes. */
const BUILD_TIMEOUT_MS = 600_000;

interface Run {
  readonly code: number | string;
  readonly output: string;
}

function run(command: string, args: readonly string[], options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs} ms]\n`;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, output });
    });
  });
}

/**
 * Builds the Go program into .cache/ unless the binary there was built from the same sources by the
 * same Go (then even Go's own up-to-date check, about half a second, is skipped). The binary is written
 * under a temporary name and renamed, so two test runs at once never execute a half-written file.
 */
async function buildGoClients(): Promise<void> {
  const version = await run("go", ["version"], { env: process.env, timeoutMs: 30_000 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") {
      throw new Error(
        "`go` is not on PATH. This test builds the KFP and Argo S3 clients in server/test/s3/go-clients " +
          "with the Go toolchain (1.25 or later); install Go and run it again.",
      );
    }
    throw error;
  });
  if (version.code !== 0) throw new Error(`go version failed (${version.code}):\n${version.output}`);

  const hash = createHash("sha256").update(version.output);
  for (const name of (await fs.readdir(MODULE_DIR)).sort()) {
    if (!/\.go$|^go\.(mod|sum)$/.test(name)) continue;
    hash.update(`\0${name}\0`).update(await fs.readFile(path.join(MODULE_DIR, name)));
  }
  const stamp = hash.digest("hex");
  const stampFile = `${BINARY}.stamp`;
  const built = await fs.readFile(stampFile, "utf8").catch(() => "");
  if (built === stamp && (await fs.stat(BINARY).catch(() => undefined))?.isFile()) return;

  await fs.mkdir(path.dirname(BINARY), { recursive: true });
  const partial = `${BINARY}.${process.pid}.tmp`;
  const build = await run("go", ["build", "-trimpath", "-o", partial, "."], { cwd: MODULE_DIR, env: process.env, timeoutMs: BUILD_TIMEOUT_MS - 30_000 });
  if (build.code !== 0) {
    await fs.rm(partial, { force: true });
    throw new Error(`go build in ${MODULE_DIR} failed (${build.code}):\n${build.output}`);
  }
  await fs.rename(partial, BINARY);
  await fs.writeFile(stampFile, stamp);
}

/** HOME and TMPDIR of the scenarios (their fixtures, up to 70 MiB), removed after the file. */
let home: string;

/**
 * Runs one scenario and returns its report. The environment is bare, as in a pipeline pod: nothing of
 * the developer's AWS_* settings or ~/.aws reaches aws-sdk-go-v2's LoadDefaultConfig.
 */
function scenario(s3Url: string, args: Record<string, string>): Promise<Run> {
  const flags = Object.entries({ endpoint: new URL(s3Url).host, ...args }).map(([name, value]) => `-${name}=${value}`);
  return run(BINARY, flags, {
    env: { PATH: process.env.PATH ?? "", HOME: home, TMPDIR: home },
    timeoutMs: SCENARIO_TIMEOUT_MS - 5_000,
  });
}

function expectPassed(result: Run, name: string): void {
  expect(result.code, result.output).toBe(0);
  expect(result.output).toMatch(new RegExp(`^${name}: \\d+ passed, 0 failed$`, "m"));
}

beforeAll(async () => {
  home = await tempDir("go-clients-home");
  await buildGoClients();
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (home) await fs.rm(home, { recursive: true, force: true });
});

describe("the S3 listener with the Go clients KFP and Argo ship", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ S3_PORT: "0", S3_ACCESS_KEY: ACCESS_KEY, S3_SECRET_KEY: SECRET_KEY });
  });

  afterAll(async () => {
    await server?.close();
  });

  it(
    "KFP 2.17 launcher (gocloud.dev s3blob, aws-sdk-go-v2): a directory artifact under mlpipeline/private-artifacts/team-a/",
    async () => {
      const result = await scenario(server.s3Url, {
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
        bucket: "mlpipeline",
        prefix: "private-artifacts/team-a/v2/artifacts/",
        scenario: "kfp-launcher",
      });
      expectPassed(result, "kfp-launcher");
      // Deleted over S3 is deleted on the volume: the namespace holds no file of the run.
      expect(await listFiles(path.join(server.root, "team-a"))).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "Argo 4.0.5 log archive (minio-go): bucket team-a, a 70 MiB multipart upload, presigned URLs, multi-delete",
    async () => {
      const result = await scenario(server.s3Url, {
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
        bucket: "team-a",
        prefix: "artifacts",
        scenario: "argo",
      });
      expectPassed(result, "argo");
      expect(await listFiles(path.join(server.root, "team-a"))).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

describe("namespace keys with the Go clients, under AUTH_MODE=kubernetes", () => {
  let api: FakeKubeApi;
  let server: TestServer;
  // What a pipeline pod of team-a is given: the key its default-editor ServiceAccount acts as.
  const teamA = { accessKey: namespaceAccessKeyId("team-a"), secretKey: deriveSecretKey(MASTER_KEY, namespaceAccessKeyId("team-a")) };

  beforeAll(async () => {
    api = await FakeKubeApi.start({
      rules: [
        { group: "system:serviceaccounts:team-a", namespace: "team-a", verbs: EDITOR_VERBS },
        { group: "system:serviceaccounts:team-b", namespace: "team-b", verbs: EDITOR_VERBS },
      ],
    });
    const kubeconfig = await api.writeKubeconfig(await tempDir("go-clients-kubeconfig"));
    server = await startTestServer({
      AUTH_MODE: "kubernetes",
      KUBECONFIG: kubeconfig,
      S3_PORT: "0",
      S3_ACCESS_KEY: ACCESS_KEY,
      S3_SECRET_KEY: SECRET_KEY,
      S3_ACCESS_KEY_USER: "system:serviceaccount:kubeflow:ml-pipeline",
      S3_MASTER_KEY: MASTER_KEY,
    });
  });

  afterAll(async () => {
    await server?.close();
    await api?.stop();
  });

  it.each([
    { where: "mlpipeline/private-artifacts/team-b/", bucket: "mlpipeline", prefix: "private-artifacts/team-b/v2/artifacts/", allowedBucket: "mlpipeline", allowedPrefix: "private-artifacts/team-a/v2/artifacts/" },
    { where: "bucket team-b", bucket: "team-b", prefix: "", allowedBucket: "team-a", allowedPrefix: "" },
  ])(
    "team-a's key: allowed in team-a, AccessDenied in $where; wrong secret, unknown key refused",
    async ({ bucket, prefix, allowedBucket, allowedPrefix }) => {
      const result = await scenario(server.s3Url, {
        "access-key": teamA.accessKey,
        "secret-key": teamA.secretKey,
        bucket,
        prefix,
        "allowed-bucket": allowedBucket,
        "allowed-prefix": allowedPrefix,
        scenario: "denied",
      });
      expectPassed(result, "denied");
      expect(await listFiles(path.join(server.root, "team-b"))).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
