// `make bench`: kfp-artifacts side by side with what an operator would compare it with, on
// this machine, in one run, over loopback. Rounds are interleaved (server, baseline, baseline, server, …) and the
// table shows medians and their ratio, with the spread of the per-round ratios, and the server's peak
// RSS during each measurement (VmHWM, reset before each round through /proc/<pid>/clear_refs).
//
// It reports; it never judges by failing. It exits non-zero only when it could not measure (a tool
// missing, a service that would not start, a transfer that did not complete as expected).
//
// Settings (environment): BENCH_DIR (.bench), BENCH_SIZE_MIB (1024), BENCH_ROUNDS (5),
// BENCH_RPS_SECONDS (5), BENCH_CONNECTIONS (32), BENCH_CONCURRENCY (64), BENCH_CONCURRENT_MIB (16),
// BENCH_WRK_THREADS (1), BENCH_PROCESSES (1: SERVER_PROCESSES of kfp-artifacts' servers),
// BENCH_NGINX_WORKERS (auto or a number; default BENCH_PROCESSES), BENCH_ONLY (comma-separated row ids),
// BENCH_CPU_PROF (1: run the servers under `node --cpu-prof`, profiles in $BENCH_DIR/profiles/server-<label>/),
// SERVER_BUNDLE (server/dist/server.mjs), BENCH_NODE (the node binary that runs the servers; default:
// the one running this driver), BENCH_PEERS_DIR (~/.cache/peers: the minio and weed binaries of the S3
// rows, built there by scripts/bench/peers.sh).
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { EDITOR_VERBS, FakeKubeApi } from "../../server/test/support/fake-kube-api.js";
import { startMinio, startSeaweedfs, type S3Peer } from "./peers.js";
import { CannotMeasure, freePort, httpRequest, run, runChecked, Service, waitForHttp } from "./procs.js";
import { EMPTY_SHA256, S3Signer, type S3Credentials } from "./sigv4.js";
import { formatNumber, markdownTable, median, megabytes, pairedRatios } from "./stats.js";

// ---------------------------------------------------------------------------------------------------
// Settings

function intSetting(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    process.stderr.write(`bench: could not measure: ${name}=${text} must be a whole number from ${min} to ${max}\n`);
    process.exit(1);
  }
  return value;
}

const repoRoot = process.cwd();
const settings = {
  dir: path.resolve(process.env.BENCH_DIR || path.join(repoRoot, ".bench")),
  sizeMiB: intSetting("BENCH_SIZE_MIB", 1024, 1, 16384),
  rounds: intSetting("BENCH_ROUNDS", 5, 1, 50),
  rpsSeconds: intSetting("BENCH_RPS_SECONDS", 5, 1, 60),
  connections: intSetting("BENCH_CONNECTIONS", 32, 1, 1024),
  concurrency: intSetting("BENCH_CONCURRENCY", 64, 1, 256),
  concurrentMiB: intSetting("BENCH_CONCURRENT_MIB", 16, 1, 1024),
  wrkThreads: intSetting("BENCH_WRK_THREADS", 1, 1, 16),
  /** SERVER_PROCESSES of kfp-artifacts' servers; nginx gets as many workers unless BENCH_NGINX_WORKERS says otherwise. */
  processes: intSetting("BENCH_PROCESSES", 1, 1, 64),
  nginxWorkers: process.env.BENCH_NGINX_WORKERS || process.env.BENCH_PROCESSES || "1",
  only: (process.env.BENCH_ONLY ?? "").split(",").map((id) => id.trim()).filter(Boolean),
  cpuProfile: process.env.BENCH_CPU_PROF === "1",
  bundle: path.resolve(process.env.SERVER_BUNDLE || path.join(repoRoot, "server/dist/server.mjs")),
  /** The Node that runs the servers (e.g. the image's Node LTS); the driver itself runs on any. */
  node: process.env.BENCH_NODE || process.execPath,
  peersDir: path.resolve(process.env.BENCH_PEERS_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "peers")),
};
if (!/^(auto|\d+)$/.test(settings.nginxWorkers)) {
  process.stderr.write("bench: could not measure: BENCH_NGINX_WORKERS must be auto or a number\n");
  process.exit(1);
}

const NAMESPACE = "bench";
const TOKEN = "bench-token";
const AUTH_HEADER = `Authorization: Bearer ${TOKEN}`;
const MiB = 1 << 20;
/** The one key pair of the S3 rows: kfp-artifacts' S3_ACCESS_KEY/S3_SECRET_KEY, MinIO's root user, SeaweedFS's identity. */
const S3_CREDENTIALS: S3Credentials = { accessKeyId: "benchaccesskey", secretAccessKey: "bench-secret-key-0123456789", region: "us-east-1" };
const S3_BUCKET = NAMESPACE;
/** Upper bound on any one transfer: far above what loopback needs, so only a hang hits it. */
const TRANSFER_TIMEOUT_MS = 300_000;

const work = {
  run: path.join(settings.dir, "run"),
  src: path.join(settings.dir, "run", "src"),
  logs: path.join(settings.dir, "run", "logs"),
  dd: path.join(settings.dir, "run", "dd"),
  nginx: path.join(settings.dir, "run", "nginx"),
  minio: path.join(settings.dir, "run", "minio"),
  seaweedfs: path.join(settings.dir, "run", "seaweedfs"),
  wrk: path.join(settings.dir, "run", "wrk"),
  profiles: path.join(settings.dir, "profiles"),
};

// ---------------------------------------------------------------------------------------------------
// Services

interface ArtifactServer {
  readonly service: Service;
  readonly url: string;
  /** Its S3 listener (S3_PORT=0: a free port, read from the "listening" log line). */
  readonly s3Url: string;
  readonly root: string;
  readonly label: string;
}

async function startArtifactServer(label: string, env: Record<string, string>): Promise<ArtifactServer> {
  const root = path.join(work.run, `server-${label}`);
  await mkdir(root, { recursive: true });
  const port = await freePort();
  // The image's command line (Dockerfile CMD).
  const nodeArgs = ["--max-semi-space-size=4"];
  if (settings.cpuProfile) {
    // One directory per server: its main thread and its upload worker each write a profile there.
    const profileDir = path.join(work.profiles, `server-${label}`);
    await rm(profileDir, { recursive: true, force: true });
    await mkdir(profileDir, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${profileDir}`);
  }
  const service = Service.start(
    `server (${label})`,
    settings.node,
    [...nodeArgs, settings.bundle],
    {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOST: "127.0.0.1",
      PORT: String(port),
      ARTIFACTS_ROOT: root,
      LOG_LEVEL: "info",
      // Every server answers S3 as the image's does, on a free port; signatures are verified with this key.
      S3_PORT: "0",
      S3_ACCESS_KEY: S3_CREDENTIALS.accessKeyId,
      S3_SECRET_KEY: S3_CREDENTIALS.secretAccessKey,
      S3_REGION: S3_CREDENTIALS.region,
      SERVER_PROCESSES: String(settings.processes),
      ...env,
    },
    path.join(work.logs, `server-${label}.log`),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, service, 30_000);
  const s3Port = await listeningS3Port(service.logFile);
  return { service, url, s3Url: `http://127.0.0.1:${s3Port}`, root, label };
}

/**
 * The s3Port of the server's "listening" log line (JSON, one object per line). Waited for: with
 * SERVER_PROCESSES the line comes through the primary and may land after /healthz first answers.
 */
async function listeningS3Port(logFile: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  do {
    for (const line of (await readFile(logFile, "utf8")).split("\n")) {
      if (!line.includes('"listening"') || !line.endsWith("}")) continue;
      const fields = JSON.parse(line) as { msg?: unknown; s3Port?: unknown };
      if (fields.msg === "listening" && typeof fields.s3Port === "number") return fields.s3Port;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (Date.now() < deadline);
  throw new CannotMeasure(`${logFile}: no "listening" line with an s3Port`);
}

/** scripts/bench/bare-node.mjs: Node's HTTP server with nothing of kfp-artifacts, under the same Node. */
async function startBareNode(mode: "fixed" | "discard" | "contract", extraEnv: Record<string, string> = {}): Promise<{ service: Service; url: string }> {
  const port = await freePort();
  const script = path.join(repoRoot, "scripts/bench/bare-node.mjs");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MODE: mode, PORT: String(port), ...extraEnv };
  const service = Service.start(`bare node (${mode})`, settings.node, [script], env, path.join(work.logs, `bare-node-${mode}.log`));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, service, 30_000);
  return { service, url };
}

/** Seconds for one thread of `node` to digest `file` (read from the page cache in 1 MiB pieces). */
async function timedDigest(file: string, algorithm: "sha256" | "md5" = "sha256"): Promise<number> {
  const program =
    `const fs=require('node:fs');const h=require('node:crypto').createHash('${algorithm}');const b=Buffer.allocUnsafe(1<<20);` +
    "const fd=fs.openSync(process.argv[1]);const t=process.hrtime.bigint();let n;" +
    "while((n=fs.readSync(fd,b,0,b.length,null))>0)h.update(b.subarray(0,n));h.digest();" +
    "process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e9));";
  const result = await runChecked(settings.node, ["-e", program, file], TRANSFER_TIMEOUT_MS);
  const seconds = Number(result.stdout.trim());
  if (!(seconds > 0)) throw new CannotMeasure(`${algorithm} of ${file}: no time printed`);
  return seconds;
}

/** Sequential durable 4 KiB commits per second with nothing but their system calls (scripts/bench/flush-chain.mjs). */
async function flushChainRate(mode: "two-flushes" | "one-flush"): Promise<number> {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", DIR: path.join(work.dd, `flush-chain-${mode}`), MODE: mode, SECONDS_BOUND: "3" };
  const result = await runChecked(settings.node, [path.join(repoRoot, "scripts/bench/flush-chain.mjs")], 60_000, env);
  const rate = Number(result.stdout.trim());
  if (!(rate > 0)) throw new CannotMeasure(`flush-chain.mjs (${mode}): no rate printed`);
  return rate;
}

async function startNginx(filesDir: string): Promise<{ service: Service; url: string }> {
  for (const sub of ["body-temp", "proxy-temp", "fastcgi-temp", "uwsgi-temp", "scgi-temp", "dav"]) {
    await mkdir(path.join(work.nginx, sub), { recursive: true });
  }
  const port = await freePort();
  const template = await readFile(path.join(repoRoot, "scripts/bench/nginx.conf.template"), "utf8");
  const config = template
    .replaceAll("@WORKERS@", settings.nginxWorkers)
    .replaceAll("@PREFIX@", work.nginx)
    .replaceAll("@PORT@", String(port))
    .replaceAll("@FILES@", filesDir);
  const configFile = path.join(work.nginx, "nginx.conf");
  await writeFile(configFile, config);
  await runChecked("nginx", ["-t", "-q", "-p", work.nginx, "-c", configFile], 30_000);
  const service = Service.start("nginx", "nginx", ["-p", work.nginx, "-c", configFile], process.env, path.join(work.logs, "nginx.log"));
  const url = `http://127.0.0.1:${port}`;
  await mkdir(filesDir, { recursive: true });
  await writeFile(path.join(filesDir, ".probe"), "ok");
  await waitForHttp(`${url}/files/.probe`, service, 30_000);
  await rm(path.join(filesDir, ".probe"));
  return { service, url };
}

// ---------------------------------------------------------------------------------------------------
// Transfers (curl and dd: native clients, identical for the server and its baseline)

const CURL_COMMON = ["-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{size_upload}"];

interface CurlOutcome {
  readonly status: number;
  readonly downloaded: number;
  readonly uploaded: number;
  readonly seconds: number;
}

async function curl(args: readonly string[]): Promise<CurlOutcome> {
  const result = await run("curl", [...CURL_COMMON, ...args], TRANSFER_TIMEOUT_MS);
  if (result.code !== 0) throw new CannotMeasure(`curl ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  const [status = "0", downloaded = "0", uploaded = "0"] = result.stdout.trim().split(" ");
  return { status: Number(status), downloaded: Number(downloaded), uploaded: Number(uploaded), seconds: result.seconds };
}

/** GET `url` to /dev/null; seconds, after checking the status and the number of bytes. */
async function timedGet(url: string, expectedBytes: number, headers: readonly string[] = []): Promise<number> {
  const outcome = await curl([...headers.flatMap((header) => ["-H", header]), url]);
  if (outcome.status !== 200 || outcome.downloaded !== expectedBytes) {
    throw new CannotMeasure(`GET ${url}: status ${outcome.status}, ${outcome.downloaded} bytes (expected 200, ${expectedBytes})`);
  }
  return outcome.seconds;
}

/** Streams `file` as the body of `method url` (no Expect: 100-continue round trip); seconds. */
async function timedUpload(method: string, url: string, file: string, bytes: number, okStatuses: readonly number[], headers: readonly string[] = []): Promise<number> {
  const outcome = await curl(["-X", method, "-T", file, "-H", "Expect:", "-H", "Content-Type: application/octet-stream", ...headers.flatMap((header) => ["-H", header]), url]);
  if (!okStatuses.includes(outcome.status) || outcome.uploaded !== bytes) {
    throw new CannotMeasure(`${method} ${url}: status ${outcome.status}, ${outcome.uploaded} bytes sent (expected ${okStatuses.join("/")}, ${bytes})`);
  }
  return outcome.seconds;
}

async function timedDd(source: string, target: string): Promise<number> {
  return (await runChecked("dd", [`if=${source}`, `of=${target}`, "bs=1M", "conv=fdatasync", "status=none"], TRANSFER_TIMEOUT_MS)).seconds;
}

/** Runs `count` copies of `one(i)` at once; wall-clock seconds until the last finished. */
async function timedConcurrently(count: number, one: (index: number) => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: count }, (_, index) => one(index)));
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Flushes dirty pages of the benchmark's filesystem so no round pays for the previous one's writeback. */
async function settleDisk(): Promise<void> {
  await runChecked("sync", ["-f", work.run], 300_000);
}

async function deleteArtifact(server: ArtifactServer, key: string, headers: Record<string, string> = {}): Promise<void> {
  const { status } = await httpRequest(`${server.url}/v1/namespaces/${NAMESPACE}/artifacts/${key}`, { method: "DELETE", headers });
  if (status !== 204 && status !== 404) throw new CannotMeasure(`DELETE ${key} on ${server.label}: status ${status}`);
}

interface WrkOutcome {
  readonly requestsPerSecond: number;
}

async function wrk(
  url: string,
  headers: readonly string[],
  seconds: number,
  script?: { file: string; args: readonly string[] },
  connections = settings.connections,
): Promise<WrkOutcome & { stdout: string }> {
  const args = [
    "-t",
    String(Math.min(settings.wrkThreads, connections)),
    "-c",
    String(connections),
    "-d",
    `${seconds}s`,
    ...headers.flatMap((h) => ["-H", h]),
    ...(script === undefined ? [] : ["-s", script.file]),
    url,
    ...(script === undefined ? [] : ["--", ...script.args]),
  ];
  const result = await runChecked("wrk", args, (seconds + 60) * 1000);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout);
  if (!rps?.[1]) throw new CannotMeasure(`wrk printed no Requests/sec:\n${result.stdout}`);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(result.stdout);
  if (bad) throw new CannotMeasure(`wrk ${url}: ${bad[1]} answers were not 2xx/3xx`);
  const socketErrors = /Socket errors: (.*)/.exec(result.stdout);
  if (socketErrors) throw new CannotMeasure(`wrk ${url}: socket errors (${socketErrors[1]})`);
  return { requestsPerSecond: Number(rps[1]), stdout: result.stdout };
}

// ---------------------------------------------------------------------------------------------------
// Rows of the table

interface Row {
  readonly id: string;
  readonly title: string;
  readonly unit: "MiB/s" | "req/s";
  readonly serverLabel: string;
  readonly baselineLabel: string;
  readonly server: number[];
  readonly baseline: number[];
  /** The server must reach at least this fraction of the baseline (undefined: no target). */
  readonly ratioTarget: number | undefined;
  /** The server's peak RSS must stay below this many MB. */
  readonly rssTargetMB: number;
  peakRssBytes: number;
  /** The server's RSS before the row's first round: memory kept from earlier rows (the peak cannot be reset below it). */
  startRssBytes: number | undefined;
  readonly loadAverage: number;
  readonly notes: string[];
}

function newRow(fields: Omit<Row, "server" | "baseline" | "peakRssBytes" | "startRssBytes" | "loadAverage" | "notes">): Row {
  return { ...fields, server: [], baseline: [], peakRssBytes: 0, startRssBytes: undefined, loadAverage: os.loadavg()[0] ?? 0, notes: [] };
}

/**
 * Interleaved rounds in ABBA order (server first in even rounds, baseline first in odd ones): whichever
 * side runs second inherits the first one's after-effects (writeback, the idle process's garbage
 * collection), and alternating cancels that. Each side is preceded by an untimed `prepare`, and returns
 * its figure for the round (MiB/s or req/s). The server's peak RSS is taken over its own rounds.
 */
async function interleave(
  row: Row,
  server: ArtifactServer,
  sides: {
    prepare?: () => Promise<void>;
    server: () => Promise<number>;
    baseline: () => Promise<number>;
  },
): Promise<void> {
  const serverSide = async () => {
    await sides.prepare?.();
    row.startRssBytes ??= await server.service.rssBytes();
    await server.service.resetPeakRss();
    row.server.push(await sides.server());
    row.peakRssBytes = Math.max(row.peakRssBytes, await server.service.peakRssBytes());
  };
  const baselineSide = async () => {
    await sides.prepare?.();
    row.baseline.push(await sides.baseline());
  };
  for (let round = 0; round < settings.rounds; round += 1) {
    if (round % 2 === 0) {
      await serverSide();
      await baselineSide();
    } else {
      await baselineSide();
      await serverSide();
    }
    process.stderr.write(
      `  ${row.id} round ${round + 1}/${settings.rounds}: server ${formatNumber(row.server.at(-1) ?? Number.NaN)} ${row.unit}, ` +
        `baseline ${formatNumber(row.baseline.at(-1) ?? Number.NaN)} ${row.unit}, peak RSS ${formatNumber(megabytes(row.peakRssBytes))} MB\n`,
    );
  }
}

function wanted(id: string): boolean {
  return settings.only.length === 0 || settings.only.includes(id);
}

// ---------------------------------------------------------------------------------------------------
// S3 rows: kfp-artifacts' S3 listener beside its native API (same server, same file) and beside the S3 of
// MinIO and SeaweedFS. Every S3 request, to any of them, is signed the same way (sigv4.ts: SigV4 in the
// Authorization header, x-amz-content-sha256 = the body's hex SHA-256), and every server verifies it.

/** Pre-signed unique keys per second of a 4 KiB PUT warm-up run: far above any rate seen here (a run that needs more fails). */
const PUT_KEYS_PER_SECOND = 15_000;
/** Later runs are signed for this many times the side's warm-up rate (at least PUT_KEYS_PER_SECOND_MIN a second). */
const PUT_KEYS_HEADROOM = 3;
const PUT_KEYS_PER_SECOND_MIN = 2_000;
/**
 * The untimed burst before each timed 4 KiB PUT run. On this 2-core VM a sequential PUT run that follows
 * 6 s of idle time answered 545, 601, 848 and 980 PUT/s in its four seconds, against 1,100 from the
 * start without the pause (and a second server, idle while another ran, was at full speed at once).
 */
const PUT_BURST_SECONDS = 2;
/** S3 accepts a signed request for 15 minutes from its date. */
const SIGNATURE_LIFETIME_SECONDS = 15 * 60;
/** What a 4 KiB PUT run costs beside its wrk time, at most: the sync before it, the RSS reads, wrk's start. */
const PUT_RUN_OVERHEAD_SECONDS = 10;

interface Side {
  readonly label: string;
  /** The process whose peak RSS is taken over this side's rounds. */
  readonly service: Service;
  readonly measure: (round: number) => Promise<number>;
  readonly values: number[];
  peakRssBytes: number;
  startRssBytes: number | undefined;
}

function side(label: string, service: Service, measure: (round: number) => Promise<number>): Side {
  return { label, service, measure, values: [], peakRssBytes: 0, startRssBytes: undefined };
}

interface S3Row {
  readonly id: string;
  readonly title: string;
  readonly unit: "MiB/s" | "req/s";
  /** kfp-artifacts over S3 */
  readonly s3: Side;
  /** the same operation on the same server's native API */
  readonly native: Side;
  readonly peers: readonly Side[];
  readonly loadAverage: number;
  readonly notes: string[];
}

/** The S3 path should stay within 10 % of the native one: S3 ÷ native ≥ 0.9. */
const S3_NATIVE_TARGET = 0.9;

function wantedS3(id: string): boolean {
  return wanted(id) || settings.only.includes("s3");
}

/**
 * ABBA over any number of sides: in order in even rounds, in reverse in odd ones (the first and the last
 * side trade places; every side is preceded by the untimed `prepare`).
 */
async function interleaveSides(row: S3Row, prepare?: () => Promise<void>): Promise<void> {
  const sides = [row.s3, row.native, ...row.peers];
  for (let round = 0; round < settings.rounds; round += 1) {
    for (const one of round % 2 === 0 ? sides : [...sides].reverse()) {
      await prepare?.();
      one.startRssBytes ??= await one.service.rssBytes();
      await one.service.resetPeakRss();
      one.values.push(await one.measure(round));
      one.peakRssBytes = Math.max(one.peakRssBytes, await one.service.peakRssBytes());
    }
    const figures = sides.map((one) => `${one.label} ${formatNumber(one.values.at(-1) ?? Number.NaN)}`).join(", ");
    process.stderr.write(`  ${row.id} round ${round + 1}/${settings.rounds}: ${figures} ${row.unit}\n`);
  }
}

/**
 * Runs an upload row's rounds, each after `clean` (the row's keys deleted on every side) and a sync, so
 * that no round pays for another's writeback; cleans once more at the end.
 */
async function interleaveUploads(row: S3Row, clean: () => Promise<void>): Promise<void> {
  await interleaveSides(row, async () => {
    await clean();
    await settleDisk();
  });
  await clean();
}

/** The signed headers of one request, as curl/wrk -H lines. */
function signedHeaderLines(baseUrl: string, method: string, encodedPath: string, payloadSha256: string): string[] {
  const signer = new S3Signer(S3_CREDENTIALS, new URL(baseUrl).host);
  return Object.entries(signer.headers(method, encodedPath, payloadSha256)).map(([name, value]) => `${name}: ${value}`);
}

/** One signed request with no body (bucket creation, deletes); fails unless its status is one of `ok`. */
async function s3Request(baseUrl: string, method: string, key: string, ok: readonly number[]): Promise<number> {
  const encodedPath = S3Signer.path(S3_BUCKET, key);
  const signer = new S3Signer(S3_CREDENTIALS, new URL(baseUrl).host);
  const headers = { ...signer.headers(method, encodedPath, EMPTY_SHA256), "Content-Length": "0" };
  const { status, body } = await httpRequest(`${baseUrl}${encodedPath}`, { method, headers, body: "" });
  if (!ok.includes(status)) throw new CannotMeasure(`${method} ${baseUrl}${encodedPath}: status ${status}: ${body.slice(0, 300)}`);
  return status;
}

async function s3Get(baseUrl: string, key: string, bytes: number): Promise<number> {
  const encodedPath = S3Signer.path(S3_BUCKET, key);
  return timedGet(`${baseUrl}${encodedPath}`, bytes, signedHeaderLines(baseUrl, "GET", encodedPath, EMPTY_SHA256));
}

async function s3Put(baseUrl: string, key: string, file: string, bytes: number, sha256: string): Promise<number> {
  const encodedPath = S3Signer.path(S3_BUCKET, key);
  return timedUpload("PUT", `${baseUrl}${encodedPath}`, file, bytes, [200], signedHeaderLines(baseUrl, "PUT", encodedPath, sha256));
}

/** How KFP's launcher uploads a file above 5 MiB: gocloud.dev's S3 writer over aws-sdk-go-v2's upload manager, at their defaults. */
const MULTIPART_PART_BYTES = 5 * MiB;
const MULTIPART_CONCURRENCY = 5;

interface UploadPart {
  readonly offset: number;
  readonly size: number;
  readonly sha256: string;
}

/** The parts of a multipart upload of `file`: each one's offset, size and SHA-256 (signed once, sent every round). */
async function multipartParts(file: string, bytes: number): Promise<UploadPart[]> {
  const parts: UploadPart[] = [];
  const handle = await open(file, "r");
  try {
    for (let offset = 0; offset < bytes; offset += MULTIPART_PART_BYTES) {
      const size = Math.min(MULTIPART_PART_BYTES, bytes - offset);
      const buffer = Buffer.allocUnsafe(size);
      await handle.read(buffer, 0, size, offset);
      parts.push({ offset, size, sha256: createHash("sha256").update(buffer).digest("hex") });
    }
  } finally {
    await handle.close();
  }
  return parts;
}

/**
 * Seconds to upload `file` to `key` as one multipart upload: CreateMultipartUpload, the parts
 * MULTIPART_CONCURRENCY at a time (each read from the file just before it is sent), then
 * CompleteMultipartUpload, whose answer is the object's being there. Every request signed.
 */
async function s3MultipartPut(baseUrl: string, key: string, file: string, parts: readonly UploadPart[]): Promise<number> {
  const encodedPath = S3Signer.path(S3_BUCKET, key);
  const signer = new S3Signer(S3_CREDENTIALS, new URL(baseUrl).host);
  const started = performance.now();
  const created = await httpRequest(`${baseUrl}${encodedPath}?uploads=`, { method: "POST", headers: { ...signer.headers("POST", encodedPath, EMPTY_SHA256, { uploads: "" }), "Content-Length": "0" }, body: "" });
  const uploadId = created.status === 200 ? /<UploadId>([^<]+)<\/UploadId>/.exec(created.body)?.[1] : undefined;
  if (uploadId === undefined) throw new CannotMeasure(`CreateMultipartUpload ${baseUrl}${encodedPath}: status ${created.status}, no UploadId: ${created.body.slice(0, 300)}`);
  const etags: string[] = new Array<string>(parts.length);
  const handle = await open(file, "r");
  try {
    let next = 0;
    const uploader = async (): Promise<void> => {
      for (let index = next++; index < parts.length; index = next++) {
        const part = parts[index]!;
        const body = Buffer.allocUnsafe(part.size);
        await handle.read(body, 0, part.size, part.offset);
        const query = { partNumber: String(index + 1), uploadId };
        const { status, headers } = await httpRequest(`${baseUrl}${encodedPath}?partNumber=${index + 1}&uploadId=${encodeURIComponent(uploadId)}`, {
          method: "PUT",
          headers: { ...signer.headers("PUT", encodedPath, part.sha256, query), "Content-Length": String(part.size) },
          body,
          timeoutMs: 120_000,
        });
        const etag = headers.etag;
        if (status !== 200 || etag === undefined) throw new CannotMeasure(`UploadPart ${index + 1} ${baseUrl}${encodedPath}: status ${status}`);
        etags[index] = etag;
      }
    };
    await Promise.all(Array.from({ length: MULTIPART_CONCURRENCY }, uploader));
  } finally {
    await handle.close();
  }
  const completion = `<CompleteMultipartUpload>${etags.map((etag, index) => `<Part><PartNumber>${index + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
  const completionSha256 = createHash("sha256").update(completion).digest("hex");
  const completed = await httpRequest(`${baseUrl}${encodedPath}?uploadId=${encodeURIComponent(uploadId)}`, {
    method: "POST",
    headers: { ...signer.headers("POST", encodedPath, completionSha256, { uploadId }), "Content-Length": String(Buffer.byteLength(completion)) },
    body: completion,
    timeoutMs: 600_000,
  });
  // S3 may answer 200 with an error in the body.
  if (completed.status !== 200 || !completed.body.includes("<CompleteMultipartUploadResult")) {
    throw new CannotMeasure(`CompleteMultipartUpload ${baseUrl}${encodedPath}: status ${completed.status}: ${completed.body.slice(0, 300)}`);
  }
  return (performance.now() - started) / 1000;
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** What one 4 KiB PUT run sends: wrk-put.lua's target (a key prefix, or @file of pre-signed requests) and the header lines every request carries. */
interface PutRequests {
  readonly target: string;
  readonly headers: readonly string[];
}

/** Native API PUTs, each to a new key below `keyPrefix` (wrk-put.lua numbers them), with `headers` (e.g. a bearer token). */
function nativePuts(keyPrefix: string, headers: readonly string[]): PutRequests {
  return { target: `/v1/namespaces/${NAMESPACE}/artifacts/${keyPrefix}`, headers };
}

/**
 * S3 PUTs of the body whose SHA-256 is `bodySha256`, each to a new key below `keyPrefix`: enough for
 * `seconds` at `keysPerSecond`, pre-signed one by one into `file` (signatures cannot be computed in
 * wrk's Lua) at one x-amz-date, valid for 15 minutes.
 */
async function signedPuts(baseUrl: string, bodySha256: string, keyPrefix: string, keysPerSecond: number, seconds: number, file: string): Promise<PutRequests> {
  const signer = new S3Signer(S3_CREDENTIALS, new URL(baseUrl).host);
  const lines: string[] = [];
  for (let index = 0; index < keysPerSecond * seconds; index += 1) {
    const encodedPath = S3Signer.path(S3_BUCKET, `${keyPrefix}${index}`);
    lines.push(`${encodedPath} ${signer.authorization("PUT", encodedPath, bodySha256)}`);
  }
  await writeFile(file, `${lines.join("\n")}\n`);
  return { target: `@${file}`, headers: [`x-amz-date: ${signer.date}`, `x-amz-content-sha256: ${bodySha256}`] };
}

/** req/s of `seconds` of 4 KiB PUTs (wrk, `connections` connections), every one to a new key (scripts/bench/wrk-put.lua). */
async function wrkPut(baseUrl: string, bodyFile: string, requests: PutRequests, connections: number, seconds = settings.rpsSeconds): Promise<number> {
  const threads = Math.min(settings.wrkThreads, connections);
  const script = { file: path.join(repoRoot, "scripts/bench/wrk-put.lua"), args: [bodyFile, String(threads), requests.target, ...requests.headers] };
  const outcome = await wrk(`${baseUrl}/`, [], seconds, script, connections);
  const keys = /bench-keys used=(\d+) reused=(\d+)/.exec(outcome.stdout);
  if (!keys) throw new CannotMeasure(`wrk-put.lua printed no key count:\n${outcome.stdout}`);
  if (Number(keys[2]) > 0) throw new CannotMeasure(`4 KiB PUTs to ${baseUrl}: ${keys[2]} requests beyond the pre-signed keys (a run faster than ${PUT_KEYS_HEADROOM}× its warm-up)`);
  return outcome.requestsPerSecond;
}

interface S3Context {
  readonly durable: ArtifactServer;
  readonly noFsync: ArtifactServer;
  /** AUTH_MODE=kubernetes, FSYNC=true: S3 keys of a user whose SubjectAccessReviews the stand-in answers. */
  readonly authenticated: ArtifactServer;
  readonly services: Service[];
  readonly big: string;
  readonly small: string;
  readonly bytes: number;
  /** The 1 GiB artifact the native GET rows read (bucket = its namespace, same key over S3). */
  readonly bigKey: string;
}

async function measureS3(context: S3Context): Promise<S3Row[]> {
  const { durable, noFsync, authenticated, services, big, small, bytes, bigKey } = context;
  const rows: S3Row[] = [];
  const binaries = { minio: path.join(settings.peersDir, "minio"), weed: path.join(settings.peersDir, "weed") };
  for (const binary of Object.values(binaries)) {
    if (!existsSync(binary)) throw new CannotMeasure(`${binary} is missing: scripts/bench/peers.sh builds it (or set BENCH_PEERS_DIR)`);
  }
  await mkdir(work.wrk, { recursive: true });
  process.stderr.write("bench: starting MinIO and SeaweedFS\n");
  const minio: S3Peer = await startMinio(binaries.minio, work.minio, path.join(work.logs, "minio.log"), S3_CREDENTIALS);
  services.push(minio.service);
  const seaweedfs: S3Peer = await startSeaweedfs(binaries.weed, work.seaweedfs, path.join(work.logs, "seaweedfs.log"), S3_CREDENTIALS);
  services.push(seaweedfs.service);
  // CreateBucket (a no-op that succeeds on kfp-artifacts, whose buckets are namespaces). SeaweedFS's S3
  // gateway answers before its filer is ready: retry for a while.
  // (Not on the server with Kubernetes auth: its bucket is its namespace, and its S3 user may only use it.)
  for (const baseUrl of [durable.s3Url, noFsync.s3Url, minio.url, seaweedfs.url]) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await s3Request(baseUrl, "PUT", "", [200, 409]);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
  const bigSha256 = await fileSha256(big);
  const smallSha256 = await fileSha256(small);
  const mib = settings.sizeMiB;
  const newS3Row = (fields: Omit<S3Row, "loadAverage" | "notes">): S3Row => {
    const row = { ...fields, loadAverage: os.loadavg()[0] ?? 0, notes: [] };
    rows.push(row);
    return row;
  };

  if (wantedS3("s3-get")) {
    const nativeUrl = `${durable.url}/v1/namespaces/${NAMESPACE}/artifacts/${bigKey}`;
    for (const peer of [minio, seaweedfs]) await s3Put(peer.url, "get.bin", big, bytes, bigSha256);
    // Every reader starts from the page cache (MinIO writes with O_DIRECT, so its first read is from disk).
    for (const baseUrl of [durable.s3Url, minio.url, seaweedfs.url]) await s3Get(baseUrl, baseUrl === durable.s3Url ? bigKey : "get.bin", bytes);
    await timedGet(nativeUrl, bytes);
    const row = newS3Row({
      id: "s3-get",
      title: `GET ${mib} MiB`,
      unit: "MiB/s",
      s3: side("kfp-artifacts S3", durable.service, async () => mib / (await s3Get(durable.s3Url, bigKey, bytes))),
      native: side("native", durable.service, async () => mib / (await timedGet(nativeUrl, bytes))),
      peers: [side("MinIO", minio.service, async () => mib / (await s3Get(minio.url, "get.bin", bytes))), side("SeaweedFS", seaweedfs.service, async () => mib / (await s3Get(seaweedfs.url, "get.bin", bytes)))],
    });
    row.notes.push("kfp-artifacts: the same file through both APIs (bucket bench = namespace bench)");
    await interleaveSides(row);
  }

  if (wantedS3("s3-put")) {
    const groups = [
      { server: durable, peer: minio, title: `PUT ${mib} MiB, durable (FSYNC=true; MinIO fdatasyncs)` },
      { server: noFsync, peer: seaweedfs, title: `PUT ${mib} MiB, fsync off (FSYNC=false; SeaweedFS does not fsync)` },
    ];
    for (const { server, peer, title } of groups) {
      const row = newS3Row({
        id: "s3-put",
        title,
        unit: "MiB/s",
        s3: side("kfp-artifacts S3", server.service, async () => mib / (await s3Put(server.s3Url, "s3-upload.bin", big, bytes, bigSha256))),
        native: side("native", server.service, async () => mib / (await timedUpload("PUT", `${server.url}/v1/namespaces/${NAMESPACE}/artifacts/upload.bin`, big, bytes, [201]))),
        peers: [side(peer.label, peer.service, async () => mib / (await s3Put(peer.url, "upload.bin", big, bytes, bigSha256)))],
      });
      await interleaveUploads(row, async () => {
        await deleteArtifact(server, "s3-upload.bin");
        await deleteArtifact(server, "upload.bin");
        await s3Request(peer.url, "DELETE", "upload.bin", [204, 404]);
      });
    }
  }

  if (wantedS3("s3-multipart")) {
    const parts = await multipartParts(big, bytes);
    const groups = [
      { server: durable, peer: minio, durability: "durable (FSYNC=true; MinIO fdatasyncs)" },
      { server: noFsync, peer: seaweedfs, durability: "fsync off (FSYNC=false; SeaweedFS does not fsync)" },
    ];
    for (const { server, peer, durability } of groups) {
      const row = newS3Row({
        id: "s3-multipart",
        title: `PUT ${mib} MiB as a multipart upload (${MULTIPART_PART_BYTES / MiB} MiB parts, ${MULTIPART_CONCURRENCY} at a time, as KFP's launcher), ${durability}`,
        unit: "MiB/s",
        s3: side("kfp-artifacts S3", server.service, async () => mib / (await s3MultipartPut(server.s3Url, "multipart.bin", big, parts))),
        native: side("native", server.service, async () => mib / (await timedUpload("PUT", `${server.url}/v1/namespaces/${NAMESPACE}/artifacts/upload.bin`, big, bytes, [201]))),
        peers: [side(peer.label, peer.service, async () => mib / (await s3MultipartPut(peer.url, "multipart.bin", big, parts)))],
      });
      row.notes.push(
        `kfp-artifacts S3 and ${peer.label}: CreateMultipartUpload, ${parts.length} signed UploadParts ${MULTIPART_CONCURRENCY} at a time, CompleteMultipartUpload, timed from the first request to the completion's answer; native: one PUT of the same file (its API has no parts), so S3 ÷ native is what the parts and their assembly cost`,
      );
      await interleaveUploads(row, async () => {
        await deleteArtifact(server, "multipart.bin");
        await deleteArtifact(server, "upload.bin");
        await s3Request(peer.url, "DELETE", "multipart.bin", [204, 404]);
      });
    }
  }

  if (wantedS3("s3-get-rps")) {
    // Two artifacts with the same bytes, one per API: the native GET keeps what it reads in the small-file
    // cache, and S3 reading the same file would be served from that cache instead of its own path. Both
    // on the server with Kubernetes authorization, whose cache the warm-up fills.
    for (const key of ["s3-small.bin", "native-small.bin"]) {
      await timedUpload("PUT", `${authenticated.url}/v1/namespaces/${NAMESPACE}/artifacts/${key}`, small, 4096, [200, 201], [AUTH_HEADER]);
    }
    for (const peer of [minio, seaweedfs]) await s3Put(peer.url, "small.bin", small, 4096, smallSha256);
    const get = (baseUrl: string, key: string) => {
      const encodedPath = S3Signer.path(S3_BUCKET, key);
      return wrk(`${baseUrl}${encodedPath}`, signedHeaderLines(baseUrl, "GET", encodedPath, EMPTY_SHA256), settings.rpsSeconds);
    };
    const nativeUrl = `${authenticated.url}/v1/namespaces/${NAMESPACE}/artifacts/native-small.bin`;
    const targets: Array<[string, string]> = [[authenticated.s3Url, "s3-small.bin"], [minio.url, "small.bin"], [seaweedfs.url, "small.bin"]];
    // Untimed warm-up of each side (JIT, connection set-up paths, caches).
    for (const [baseUrl, key] of targets) {
      const encodedPath = S3Signer.path(S3_BUCKET, key);
      await wrk(`${baseUrl}${encodedPath}`, signedHeaderLines(baseUrl, "GET", encodedPath, EMPTY_SHA256), 1);
    }
    await wrk(nativeUrl, [AUTH_HEADER], 1);
    const row = newS3Row({
      id: "s3-get-rps",
      title: `4 KiB GET, ${settings.connections} connections, Kubernetes auth (warm cache)`,
      unit: "req/s",
      s3: side("kfp-artifacts S3", authenticated.service, async () => (await get(authenticated.s3Url, "s3-small.bin")).requestsPerSecond),
      native: side("native", authenticated.service, async () => (await wrk(nativeUrl, [AUTH_HEADER], settings.rpsSeconds)).requestsPerSecond),
      peers: [
        side("MinIO", minio.service, async () => (await get(minio.url, "small.bin")).requestsPerSecond),
        side("SeaweedFS", seaweedfs.service, async () => (await get(seaweedfs.url, "small.bin")).requestsPerSecond),
      ],
    });
    row.notes.push(
      `wrk -t${settings.wrkThreads} -c${settings.connections} -d${settings.rpsSeconds}s, keep-alive; one signed request replayed (valid for 15 minutes); kfp-artifacts with AUTH_MODE=kubernetes, S3 keys of a user and the native API's bearer token both authorized by SubjectAccessReview (cached after the warm-up); native: another artifact with the same 4 KiB (no cache shared between the two paths)`,
    );
    await interleaveSides(row);
  }

  if (wantedS3("s3-put-rps")) {
    const durableGroup = { server: authenticated, nativeHeaders: [AUTH_HEADER], peer: minio, durability: "durable (FSYNC=true, Kubernetes auth; MinIO)" };
    const noFsyncGroup = { server: noFsync, nativeHeaders: [], peer: seaweedfs, durability: "fsync off (FSYNC=false; SeaweedFS)" };
    const groups = [settings.connections, 1].flatMap((connections) => [durableGroup, noFsyncGroup].map((group) => ({ ...group, connections })));
    for (const { server, nativeHeaders, peer, durability, connections } of groups) {
      const prefix = `rps/c${connections}`;
      const sides = [
        { label: "kfp-artifacts S3", service: server.service, baseUrl: server.s3Url, keys: `${prefix}/s3`, signed: true },
        { label: "native", service: server.service, baseUrl: server.url, keys: `${prefix}/native`, signed: false },
        { label: peer.label, service: peer.service, baseUrl: peer.url, keys: `${prefix}/peer`, signed: true },
      ];
      // Every S3 request of the rounds is signed before the first round. Signed between the runs, they
      // kept one core busy and the other idle just before each S3 side's run and not before the native
      // side's, and a run that follows idle time here starts slow (PUT_BURST_SECONDS). Each timed run
      // follows an untimed burst of the same PUTs to the same side, so that none starts after the sync's
      // idle time.
      // The first side's requests must outlive the later sides' warm-ups and every round.
      const warmUpsSeconds = (sides.length - 1) * (settings.rpsSeconds + PUT_RUN_OVERHEAD_SECONDS);
      const roundsSeconds = sides.length * settings.rounds * (settings.rpsSeconds + PUT_BURST_SECONDS + PUT_RUN_OVERHEAD_SECONDS);
      if (warmUpsSeconds + roundsSeconds > SIGNATURE_LIFETIME_SECONDS) {
        throw new CannotMeasure(`4 KiB PUT rounds: ${settings.rounds} rounds of ${settings.rpsSeconds} s would outlive their signatures (15 minutes); lower BENCH_ROUNDS or BENCH_RPS_SECONDS`);
      }
      const measured: Side[] = [];
      for (const one of sides) {
        const requests = async (run: string, keysPerSecond: number, seconds: number): Promise<PutRequests> =>
          one.signed
            ? signedPuts(one.baseUrl, smallSha256, `${one.keys}/${run}/`, keysPerSecond, seconds, path.join(work.wrk, `${one.keys.replaceAll("/", "-")}-${run}.txt`))
            : nativePuts(`${one.keys}/${run}/`, nativeHeaders);
        // Untimed warm-up; its rate sets how many keys the side's later runs are signed for.
        const warmUpRate = await wrkPut(one.baseUrl, small, await requests("warm", PUT_KEYS_PER_SECOND, settings.rpsSeconds), connections);
        const keysPerSecond = Math.max(PUT_KEYS_PER_SECOND_MIN, Math.ceil(PUT_KEYS_HEADROOM * warmUpRate));
        const bursts: PutRequests[] = [];
        const timed: PutRequests[] = [];
        for (let round = 0; round < settings.rounds; round += 1) {
          bursts.push(await requests(`burst-${round}`, keysPerSecond, PUT_BURST_SECONDS));
          timed.push(await requests(`${round}`, keysPerSecond, settings.rpsSeconds));
        }
        measured.push(
          side(one.label, one.service, async (round) => {
            await wrkPut(one.baseUrl, small, bursts[round]!, connections, PUT_BURST_SECONDS);
            return wrkPut(one.baseUrl, small, timed[round]!, connections);
          }),
        );
      }
      const [s3, native, peerSide] = measured as [Side, Side, Side];
      const row = newS3Row({
        id: "s3-put-rps",
        title: `4 KiB PUT, ${connections === 1 ? "sequential (1 connection)" : `${connections} connections`}, unique keys, ${durability}`,
        unit: "req/s",
        s3,
        native,
        peers: [peerSide],
      });
      row.notes.push(
        `wrk -t1 -c${settings.connections} (and -c1) -d${settings.rpsSeconds}s with scripts/bench/wrk-put.lua, each run after an untimed ${PUT_BURST_SECONDS} s burst of the same: every request a new key; S3 requests pre-signed one by one before the first round`,
      );
      await interleaveSides(row, settleDisk);
      await rm(work.wrk, { recursive: true, force: true });
      await mkdir(work.wrk, { recursive: true });
      const headers: Record<string, string> = server === authenticated ? { Authorization: `Bearer ${TOKEN}` } : {};
      // Tens of thousands of small files, each removal durable on the FSYNC=true server: minutes, not seconds.
      const { status } = await httpRequest(`${server.url}/v1/namespaces/${NAMESPACE}/artifacts/rps?recursive=true`, { method: "DELETE", headers, timeoutMs: 600_000 });
      if (status !== 204) throw new CannotMeasure(`DELETE rps on ${server.label}: status ${status}`);
    }
  }
  return rows;
}

function s3RowJson(row: S3Row): object {
  const { id, title, unit, loadAverage, notes } = row;
  const sides = [row.s3, row.native, ...row.peers].map(({ label, values, peakRssBytes, startRssBytes }) => ({ label, values, peakRssBytes, startRssBytes }));
  return { id, title, unit, loadAverage, notes, sides };
}

function renderS3Table(rows: readonly S3Row[]): string {
  const ratio = (a: Side, b: Side | undefined) => {
    if (b === undefined) return "—";
    const value = median(a.values) / median(b.values);
    const perRound = pairedRatios(a.values, b.values);
    const spread = perRound.length > 1 ? ` (${formatNumber(Math.min(...perRound), 2)}–${formatNumber(Math.max(...perRound), 2)})` : "";
    return `**${formatNumber(value, 2)}×**${b.label === "native" ? (value >= S3_NATIVE_TARGET ? " ✔" : " ✘") : ""}${spread}`;
  };
  const figure = (one: Side | undefined, unit: string) => (one === undefined ? "—" : `${formatNumber(median(one.values))} ${unit}`);
  const header = [
    "Operation",
    "kfp-artifacts S3 (median)",
    "native API, same server",
    `S3 ÷ native (≥ ${S3_NATIVE_TARGET}×)`,
    "MinIO S3",
    "S3 ÷ MinIO",
    "native ÷ MinIO",
    "SeaweedFS S3",
    "S3 ÷ SeaweedFS",
    "native ÷ SeaweedFS",
    "peak RSS: kfp-artifacts S3 / MinIO / SeaweedFS",
    "load avg",
  ];
  const body = rows.map((row) => {
    const minio = row.peers.find((one) => one.label === "MinIO");
    const seaweedfs = row.peers.find((one) => one.label === "SeaweedFS");
    const rss = [row.s3, minio, seaweedfs].map((one) => (one === undefined ? "—" : `${formatNumber(megabytes(one.peakRssBytes))} MB`)).join(" / ");
    return [
      row.title,
      figure(row.s3, row.unit),
      figure(row.native, row.unit),
      ratio(row.s3, row.native),
      figure(minio, row.unit),
      ratio(row.s3, minio),
      ratio(row.native, minio),
      figure(seaweedfs, row.unit),
      ratio(row.s3, seaweedfs),
      ratio(row.native, seaweedfs),
      rss,
      formatNumber(row.loadAverage, 1),
    ];
  });
  const within = rows.map((row) => {
    const value = median(row.s3.values) / median(row.native.values);
    return `${value >= S3_NATIVE_TARGET ? "✔" : "✘"} ${row.title} ${formatNumber(value, 2)}×`;
  });
  return [
    markdownTable(header, body),
    "",
    `- S3 path within 10% of the native one (S3 ÷ native ≥ ${S3_NATIVE_TARGET}×, same server, same operation): ${within.join("; ")}`,
    ...new Set(rows.flatMap((row) => row.notes.map((note) => `- ${row.id}: ${note}`))),
    `- ${settings.rounds} interleaved rounds per row: kfp-artifacts S3, native, then the peer(s) in even rounds, the reverse in odd ones; ratio = median ÷ median, per-round range in brackets.`,
    "- Every S3 request is signed with SigV4 (Authorization header; x-amz-content-sha256 = the body's hex SHA-256, as the AWS SDKs send over plain HTTP), the same way for the three servers, and each verifies it.",
    `- Peak RSS: each process's VmHWM over its own rounds; kfp-artifacts' RSS before its first S3 round: ${rows.map((row) => `${row.id} ${formatNumber(megabytes(row.s3.startRssBytes ?? Number.NaN))} MB`).join(", ")}.`,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Report

async function machineDescription(): Promise<Record<string, string>> {
  const version = async (command: string, args: string[]) => {
    const result = await run(command, args, 10_000).catch(() => undefined);
    return (result ? `${result.stdout}${result.stderr}` : "").trim().split("\n")[0] ?? "";
  };
  const fsType = (await version("stat", ["-f", "-c", "%T", settings.dir])) || "unknown";
  const df = await run("df", ["--output=source", settings.dir], 10_000).catch(() => undefined);
  const device = df?.stdout.trim().split("\n")[1] ?? "unknown";
  return {
    cpu: `${os.cpus()[0]?.model ?? "unknown"} × ${os.cpus().length}`,
    memory: `${formatNumber(os.totalmem() / 2 ** 30, 1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: (await version(settings.node, ["--version"])) || process.version,
    nginx: await version("nginx", ["-v"]),
    wrk: (await version("wrk", ["--version"])).replace(/ Copyright.*/, ""),
    curl: (await version("curl", ["--version"])).split(" ").slice(0, 2).join(" "),
    minio: (await version(path.join(settings.peersDir, "minio"), ["--version"])) || "not installed",
    seaweedfs: (await version(path.join(settings.peersDir, "weed"), ["version"])) || "not installed",
    filesystem: `${fsType} on ${device} (${settings.dir})`,
  };
}

function renderTable(rows: readonly Row[]): string {
  const header = ["Measurement", "kfp-artifacts (median)", "baseline (median)", "ratio (per-round range)", "target", "server peak RSS (before the row)", "load avg"];
  const body = rows.map((row) => {
    const serverMedian = median(row.server);
    const baselineMedian = median(row.baseline);
    const ratio = serverMedian / baselineMedian;
    const perRound = pairedRatios(row.server, row.baseline);
    const spread = perRound.length > 1 ? ` (${formatNumber(Math.min(...perRound), 2)}–${formatNumber(Math.max(...perRound), 2)})` : "";
    const ratioMet = row.ratioTarget === undefined ? "" : ratio >= row.ratioTarget ? " ✔" : " ✘";
    const rssMB = megabytes(row.peakRssBytes);
    const target = [row.ratioTarget === undefined ? undefined : `≥ ${row.ratioTarget}×`, `RSS < ${row.rssTargetMB} MB`].filter(Boolean).join(", ");
    return [
      row.title,
      `${formatNumber(serverMedian)} ${row.unit} (${row.serverLabel})`,
      `${formatNumber(baselineMedian)} ${row.unit} (${row.baselineLabel})`,
      `**${formatNumber(ratio, 2)}×**${ratioMet}${spread}`,
      target,
      `${formatNumber(rssMB)} MB${rssMB < row.rssTargetMB ? " ✔" : " ✘"} (${formatNumber(megabytes(row.startRssBytes ?? Number.NaN))} MB)`,
      formatNumber(row.loadAverage, 1),
    ];
  });
  return markdownTable(header, body);
}

// ---------------------------------------------------------------------------------------------------
// Main

async function makeSourceFile(name: string, mib: number): Promise<string> {
  const file = path.join(work.src, name);
  await runChecked("dd", ["if=/dev/urandom", `of=${file}`, "bs=1M", `count=${mib}`, "status=none"], 300_000);
  return file;
}

async function main(): Promise<number> {
  if (!existsSync(settings.bundle)) throw new CannotMeasure(`${settings.bundle} is missing: run make build`);
  await rm(work.run, { recursive: true, force: true });
  for (const dir of [work.run, work.src, work.logs, work.dd]) await mkdir(dir, { recursive: true });
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const machine = await machineDescription();
  const bytes = settings.sizeMiB * MiB;
  const concurrentBytes = settings.concurrentMiB * MiB;
  const totalConcurrentMiB = settings.concurrency * settings.concurrentMiB;
  process.stderr.write(`bench: ${settings.sizeMiB} MiB transfers, ${settings.rounds} interleaved rounds, load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}\n`);

  const kubeApi = await FakeKubeApi.start({
    tokens: { [TOKEN]: { user: "bench-user", groups: ["bench-team"] } },
    rules: [
      { group: "bench-team", namespace: NAMESPACE, verbs: EDITOR_VERBS },
      // The S3 keys' user (S3_ACCESS_KEY_USER): reviewed as that user alone, without the token's groups.
      { user: "bench-user", namespace: NAMESPACE, verbs: EDITOR_VERBS },
    ],
  });
  const services: Service[] = [];
  const rows: Row[] = [];
  const s3Rows: S3Row[] = [];
  /** Limits of this machine measured in the same run: what no server in Node could exceed here. */
  const ceilings: string[][] = [];
  try {
    const kubeconfig = await kubeApi.writeKubeconfig(work.run);
    const durable = await startArtifactServer("durable", { AUTH_MODE: "none", FSYNC: "true" });
    services.push(durable.service);
    const noFsync = await startArtifactServer("no-fsync", { AUTH_MODE: "none", FSYNC: "false" });
    services.push(noFsync.service);
    const authenticated = await startArtifactServer("kubernetes-auth", {
      AUTH_MODE: "kubernetes",
      FSYNC: "true",
      KUBECONFIG: kubeconfig,
      // Warm cache for the whole row (the default 10 s would expire between a round's warm-up and its end).
      AUTH_CACHE_TTL_SECONDS: "300",
      S3_ACCESS_KEY_USER: "bench-user",
    });
    services.push(authenticated.service);
    const durableFiles = path.join(durable.root, NAMESPACE);
    const nginx = await startNginx(durableFiles);
    services.push(nginx.service);

    process.stderr.write("bench: writing the source files\n");
    const big = await makeSourceFile("big.bin", settings.sizeMiB);
    const medium = await makeSourceFile("medium.bin", settings.concurrentMiB);
    const small = await makeSourceFile("small.bin", 1);
    await runChecked("truncate", ["-s", "4096", small], 10_000);

    // The 1 GiB artifact, written once through the KFP API: the download, :read and raw GET rows all read it.
    const run = "bench-run";
    const kfpKey = `bench-pipeline/${run}/node-1/blob`;
    await timedUpload("POST", `${durable.url}/apis/v2beta1/runs/${run}/nodes/node-1/artifacts/blob:write?namespace=${NAMESPACE}&pipeline=bench-pipeline`, big, bytes, [200]);
    const rawUrl = `${durable.url}/v1/namespaces/${NAMESPACE}/artifacts/${kfpKey}`;
    const readUrl = `${durable.url}/apis/v2beta1/runs/${run}/nodes/node-1/artifacts/blob:read`;
    const readBytes = '{"data":"'.length + 4 * Math.ceil(bytes / 3) + '"}'.length;
    const nginxFileUrl = `${nginx.url}/files/${kfpKey}`;
    // Both readers start from the page cache; a first, untimed pass of each puts them on equal terms.
    await timedGet(rawUrl, bytes);
    await timedGet(nginxFileUrl, bytes);

    if (wanted("get")) {
      const row = newRow({ id: "get", title: `GET ${settings.sizeMiB} MiB`, unit: "MiB/s", serverLabel: "native GET", baselineLabel: "nginx, same file", ratioTarget: 0.9, rssTargetMB: 150 });
      rows.push(row);
      await interleave(row, durable, {
        server: async () => settings.sizeMiB / (await timedGet(rawUrl, bytes)),
        baseline: async () => settings.sizeMiB / (await timedGet(nginxFileUrl, bytes)),
      });
    }

    if (wanted("kfp-read")) {
      await timedGet(readUrl, readBytes);
      const row = newRow({ id: "kfp-read", title: `KFP \`:read\` ${settings.sizeMiB} MiB (base64 JSON)`, unit: "MiB/s", serverLabel: ":read, artifact bytes/s", baselineLabel: "native GET, same server", ratioTarget: 0.5, rssTargetMB: 150 });
      row.notes.push("MiB/s of artifact bytes; the :read body is 4/3 larger");
      rows.push(row);
      await interleave(row, durable, {
        server: async () => settings.sizeMiB / (await timedGet(readUrl, readBytes)),
        baseline: async () => settings.sizeMiB / (await timedGet(rawUrl, bytes)),
      });
    }

    if (wanted("put-durable")) {
      const row = newRow({ id: "put-durable", title: `PUT ${settings.sizeMiB} MiB, durable`, unit: "MiB/s", serverLabel: "FSYNC=true", baselineLabel: "dd conv=fdatasync", ratioTarget: 0.85, rssTargetMB: 150 });
      rows.push(row);
      const ddTarget = path.join(work.dd, "big.bin");
      await interleave(row, durable, {
        prepare: async () => {
          await deleteArtifact(durable, "upload.bin");
          await rm(ddTarget, { force: true });
          await settleDisk();
        },
        server: async () => settings.sizeMiB / (await timedUpload("PUT", `${durable.url}/v1/namespaces/${NAMESPACE}/artifacts/upload.bin`, big, bytes, [201])),
        baseline: async () => settings.sizeMiB / (await timedDd(big, ddTarget)),
      });
      await deleteArtifact(durable, "upload.bin");
      await rm(ddTarget, { force: true });
    }

    if (wanted("put-no-fsync")) {
      const row = newRow({ id: "put-no-fsync", title: `PUT ${settings.sizeMiB} MiB, fsync off`, unit: "MiB/s", serverLabel: "FSYNC=false", baselineLabel: "nginx WebDAV PUT", ratioTarget: 0.9, rssTargetMB: 150 });
      rows.push(row);
      const davFile = path.join(work.nginx, "dav", "big.bin");
      await interleave(row, noFsync, {
        prepare: async () => {
          await deleteArtifact(noFsync, "upload.bin");
          await rm(davFile, { force: true });
          await settleDisk();
        },
        server: async () => settings.sizeMiB / (await timedUpload("PUT", `${noFsync.url}/v1/namespaces/${NAMESPACE}/artifacts/upload.bin`, big, bytes, [201])),
        baseline: async () => settings.sizeMiB / (await timedUpload("PUT", `${nginx.url}/dav/big.bin`, big, bytes, [201])),
      });
      await deleteArtifact(noFsync, "upload.bin");
      await rm(davFile, { force: true });
    }

    if (wanted("rps")) {
      const smallUrl = `${authenticated.url}/v1/namespaces/${NAMESPACE}/artifacts/small.bin`;
      const smallPut = await curl(["-X", "PUT", "-T", small, "-H", "Expect:", "-H", AUTH_HEADER, smallUrl]);
      if (smallPut.status !== 201 && smallPut.status !== 200) throw new CannotMeasure(`PUT ${smallUrl} with a token: status ${smallPut.status}`);
      await timedUpload("PUT", `${durable.url}/v1/namespaces/${NAMESPACE}/artifacts/small.bin`, small, 4096, [200, 201]);
      const nginxSmallUrl = `${nginx.url}/files/small.bin`;
      const row = newRow({
        id: "rps",
        title: `4 KiB GET, ${settings.connections} connections, Kubernetes auth (warm cache)`,
        unit: "req/s",
        serverLabel: "AUTH_MODE=kubernetes",
        baselineLabel: `nginx, ${settings.nginxWorkers} workers`,
        ratioTarget: 0.5,
        rssTargetMB: 150,
      });
      rows.push(row);
      let reviewsDuringRuns = 0;
      // Untimed warm-up of each side (JIT, connection set-up paths, the authorization cache).
      await wrk(smallUrl, [AUTH_HEADER], 1);
      await wrk(nginxSmallUrl, [], 1);
      await interleave(row, authenticated, {
        server: async () => {
          // Untimed request first, so every timed request is a cache hit; count the reviews that still
          // reached the API server (expected: none).
          await timedGet(smallUrl, 4096, [AUTH_HEADER]);
          const before = kubeApi.calls.tokenReviews + kubeApi.calls.subjectAccessReviews;
          const outcome = await wrk(smallUrl, [AUTH_HEADER], settings.rpsSeconds);
          reviewsDuringRuns += kubeApi.calls.tokenReviews + kubeApi.calls.subjectAccessReviews - before;
          return outcome.requestsPerSecond;
        },
        baseline: async () => (await wrk(nginxSmallUrl, [], settings.rpsSeconds)).requestsPerSecond,
      });
      // The ceiling of this process on this machine: Node's HTTP server and the router, with no I/O and no auth.
      const floor = await wrk(`${authenticated.url}/healthz`, [], settings.rpsSeconds);
      row.notes.push(`the same server's /healthz (no file, no authorization): ${formatNumber(floor.requestsPerSecond)} req/s`);
      row.notes.push(`${reviewsDuringRuns} TokenReview/SubjectAccessReview calls reached the API stand-in during the timed runs`);
      row.notes.push(`wrk -t${settings.wrkThreads} -c${settings.connections} -d${settings.rpsSeconds}s, keep-alive`);
    }

    if (wanted("concurrent-no-fsync")) {
      const row = newRow({
        id: "concurrent-no-fsync",
        title: `${settings.concurrency} concurrent ${settings.concurrentMiB} MiB PUTs, fsync off`,
        unit: "MiB/s",
        serverLabel: "FSYNC=false, aggregate",
        baselineLabel: "nginx WebDAV PUT",
        ratioTarget: undefined,
        rssTargetMB: 250,
      });
      rows.push(row);
      const davDir = path.join(work.nginx, "dav", "concurrent");
      await interleave(row, noFsync, {
        prepare: async () => {
          for (let index = 0; index < settings.concurrency; index += 1) await deleteArtifact(noFsync, `concurrent/${index}.bin`);
          await rm(davDir, { recursive: true, force: true });
          await settleDisk();
        },
        server: async () =>
          totalConcurrentMiB /
          (await timedConcurrently(settings.concurrency, (index) =>
            timedUpload("PUT", `${noFsync.url}/v1/namespaces/${NAMESPACE}/artifacts/concurrent/${index}.bin`, medium, concurrentBytes, [201]),
          )),
        baseline: async () =>
          totalConcurrentMiB /
          (await timedConcurrently(settings.concurrency, (index) => timedUpload("PUT", `${nginx.url}/dav/concurrent/${index}.bin`, medium, concurrentBytes, [201]))),
      });
    }

    if (wanted("concurrent-durable")) {
      const row = newRow({
        id: "concurrent-durable",
        title: `${settings.concurrency} concurrent ${settings.concurrentMiB} MiB PUTs, durable`,
        unit: "MiB/s",
        serverLabel: "FSYNC=true, aggregate",
        baselineLabel: `${settings.concurrency} × dd conv=fdatasync`,
        ratioTarget: undefined,
        rssTargetMB: 250,
      });
      rows.push(row);
      const ddDir = path.join(work.dd, "concurrent");
      await interleave(row, durable, {
        prepare: async () => {
          for (let index = 0; index < settings.concurrency; index += 1) await deleteArtifact(durable, `concurrent/${index}.bin`);
          await rm(ddDir, { recursive: true, force: true });
          await mkdir(ddDir, { recursive: true });
          await settleDisk();
        },
        server: async () =>
          totalConcurrentMiB /
          (await timedConcurrently(settings.concurrency, (index) =>
            timedUpload("PUT", `${durable.url}/v1/namespaces/${NAMESPACE}/artifacts/concurrent/${index}.bin`, medium, concurrentBytes, [201]),
          )),
        baseline: async () => totalConcurrentMiB / (await timedConcurrently(settings.concurrency, (index) => timedDd(medium, path.join(ddDir, `${index}.bin`)))),
      });
    }

    if (["s3-get", "s3-put", "s3-multipart", "s3-get-rps", "s3-put-rps"].some(wantedS3)) {
      s3Rows.push(...(await measureS3({ durable, noFsync, authenticated, services, big, small, bytes, bigKey: kfpKey })));
    }

    if (wanted("ceilings")) {
      process.stderr.write("bench: ceilings of this machine\n");
      // Its own name: the rps row's small.bin is an artifact of the durable server, not to be touched.
      await runChecked("cp", [small, path.join(durableFiles, "ceiling-small.bin")], 10_000);
      const nginxSmallUrl = `${nginx.url}/files/ceiling-small.bin`;
      const fixed = await startBareNode("fixed");
      services.push(fixed.service);
      const discard = await startBareNode("discard");
      services.push(discard.service);
      const contract = await startBareNode("contract", { FILE: path.join(durableFiles, "ceiling-small.bin"), TOKEN });
      services.push(contract.service);
      const rounds = Math.max(3, Math.min(settings.rounds, 5));
      const bareRps: number[] = [];
      const contractRps: number[] = [];
      const nginxRps: number[] = [];
      const bareReceive: number[] = [];
      const davPut: number[] = [];
      const hashRates: number[] = [];
      const md5Rates: number[] = [];
      const twoFlushes: number[] = [];
      const oneFlush: number[] = [];
      const ddRates: number[] = [];
      const davFile = path.join(work.nginx, "dav", "ceiling.bin");
      const ddTarget = path.join(work.dd, "ceiling.bin");
      await wrk(`${fixed.url}/`, [], 1);
      await wrk(`${contract.url}/`, [AUTH_HEADER], 1);
      await fixed.service.resetPeakRss();
      for (let round = 0; round < rounds; round += 1) {
        bareRps.push((await wrk(`${fixed.url}/`, [], settings.rpsSeconds)).requestsPerSecond);
        contractRps.push((await wrk(`${contract.url}/`, [AUTH_HEADER], settings.rpsSeconds)).requestsPerSecond);
        nginxRps.push((await wrk(nginxSmallUrl, [], settings.rpsSeconds)).requestsPerSecond);
        bareReceive.push(settings.sizeMiB / (await timedUpload("PUT", `${discard.url}/`, big, bytes, [201])));
        await rm(davFile, { force: true });
        await settleDisk();
        davPut.push(settings.sizeMiB / (await timedUpload("PUT", `${nginx.url}/dav/ceiling.bin`, big, bytes, [201])));
        hashRates.push(settings.sizeMiB / (await timedDigest(big)));
        md5Rates.push(settings.sizeMiB / (await timedDigest(big, "md5")));
        await settleDisk();
        twoFlushes.push(await flushChainRate("two-flushes"));
        await settleDisk();
        oneFlush.push(await flushChainRate("one-flush"));
        await rm(ddTarget, { force: true });
        await settleDisk();
        ddRates.push(settings.sizeMiB / (await timedDd(big, ddTarget)));
      }
      await rm(davFile, { force: true });
      await rm(ddTarget, { force: true });
      const ratio = (a: number[], b: number[]) => `${formatNumber(median(a) / median(b), 2)}×`;
      ceilings.push(
        [
          "Node's HTTP server alone, a fixed 4 KiB answer from memory (no disk, no authorization, no router)",
          `${formatNumber(median(bareRps))} req/s`,
          `${ratio(bareRps, nginxRps)} nginx (${formatNumber(median(nginxRps))} req/s, same wrk settings)`,
          "4 KiB GET: one event loop; nginx runs one worker per core",
        ],
        [
          "Node's HTTP server with only what the contract asks of each 4 KiB GET, each its cheapest way: a cached token decision, one lstat on the event loop, the headers, prom-client's counter and histogram, one JSON log line (bare-node.mjs MODE=contract)",
          `${formatNumber(median(contractRps))} req/s`,
          `${ratio(contractRps, nginxRps)} nginx, ${ratio(contractRps, bareRps)} the fixed answer above`,
          "4 KiB GET against nginx: the most a Node server keeping this contract can reach on one event loop",
        ],
        [
          `Node's HTTP server alone, receiving ${settings.sizeMiB} MiB and dropping it (no hash, no disk)`,
          `${formatNumber(median(bareReceive))} MiB/s`,
          `${ratio(bareReceive, davPut)} nginx WebDAV PUT (${formatNumber(median(davPut))} MiB/s)`,
          "PUT: receiving alone, before anything is written",
        ],
        [
          `SHA-256 of ${settings.sizeMiB} MiB in one thread (Node's OpenSSL; every write computes the digest)`,
          `${formatNumber(median(hashRates))} MiB/s`,
          `${ratio(hashRates, ddRates)} dd conv=fdatasync (${formatNumber(median(ddRates))} MiB/s)`,
          "durable PUT: one upload's digest is one sequential hash",
        ],
        [
          `MD5 of ${settings.sizeMiB} MiB in one thread (the S3 ETag of a PutObject or UploadPart)`,
          `${formatNumber(median(md5Rates))} MiB/s`,
          `${ratio(md5Rates, hashRates)} the SHA-256 above`,
          "S3 PUT: its MD5 beside the SHA-256 every write computes; one digest cannot be split across threads",
        ],
        [
          "Sequential 4 KiB commits, system calls only: temporary file, fsync, rename, directory fsync (FSYNC=true's contract)",
          `${formatNumber(median(twoFlushes))} commits/s`,
          `${ratio(twoFlushes, oneFlush)} one fdatasync per object, no directory fsync (${formatNumber(median(oneFlush))}/s, MinIO's flush of a small object)`,
          "sequential durable 4 KiB PUT: two flushes a commit, which one connection cannot share",
        ],
        [
          "Resident memory of Node's HTTP server alone (the fixed 4 KiB server above, peak over its rounds)",
          `${formatNumber(megabytes(await fixed.service.peakRssBytes()))} MB`,
          "—",
          "RSS: what any server written in Node holds before its own code and data",
        ],
      );
    }

    for (const service of services) {
      if (!service.running) throw new CannotMeasure(`${service.name} exited during the benchmark; see ${service.logFile}`);
    }
  } finally {
    for (const service of services.reverse()) await service.stop();
    await kubeApi.stop();
  }

  const loadAtEnd = os.loadavg();
  const minutes = (Date.now() - started) / 60_000;
  const report = [
    `## kfp-artifacts benchmark, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    "",
    ...(rows.length === 0 ? [] : [renderTable(rows), ""]),
    ...rows.flatMap((row) => row.notes.map((note) => `- ${row.id}: ${note}`)),
    ...(s3Rows.length === 0 ? [] : ["", "Over S3, beside the native API and the S3 servers it replaces (same run):", "", renderS3Table(s3Rows)]),
    ...(ceilings.length === 0
      ? []
      : ["", "Ceilings on this machine, same run (medians of at least 3 rounds):", "", markdownTable(["Measured", "figure", "against the row's baseline", "bounds"], ceilings)]),
    `- ${settings.rounds} interleaved rounds per row in ABBA order (server, baseline, baseline, server, …); ratio = median ÷ median; ✔/✘ = the target (docs/performance.md) met or not.`,
    `- kfp-artifacts' servers: SERVER_PROCESSES=${settings.processes}${settings.processes > 1 ? " (a primary and that many server processes)" : ""}; nginx: worker_processes ${settings.nginxWorkers}.`,
    `- Peak RSS: the server's VmHWM (with several processes, the sum of each one's), reset before each of its rounds; the maximum over the rounds. In brackets: its RSS before the row's first round (one server serves several rows, and the kernel resets the peak to the current RSS, not below).`,
    `- Load average (1, 5, 15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(" ")} at end; ${formatNumber(minutes, 1)} minutes in all.`,
    "",
    "Machine:",
    ...Object.entries(machine).map(([name, value]) => `- ${name}: ${value}`),
    "",
  ].join("\n");
  process.stdout.write(`\n${report}`);
  await writeFile(path.join(settings.dir, "results.md"), report);
  await writeFile(path.join(settings.dir, "results.json"), JSON.stringify({ settings, machine, loadAtStart, loadAtEnd, rows, s3Rows: s3Rows.map(s3RowJson), ceilings }, null, 2));
  if (settings.cpuProfile) process.stderr.write(`bench: CPU profiles in ${work.profiles}\n`);
  // Keep logs and profiles; the multi-GiB files go.
  for (const entry of ["src", "dd", "nginx/dav", "server-durable", "server-no-fsync", "server-kubernetes-auth", "minio", "seaweedfs", "wrk"]) {
    await rm(path.join(work.run, entry), { recursive: true, force: true });
  }
  await stat(settings.dir);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CannotMeasure) {
      process.stderr.write(`bench: could not measure: ${error.message}\n`);
    } else {
      process.stderr.write(`bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  },
);
