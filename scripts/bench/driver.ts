// `make bench`: kfp-artifacts side by side with what an operator would compare it with (SPEC §7), on
// this machine, in one run, over loopback. Rounds are interleaved (server, baseline, baseline, server, …) and the
// table shows medians and their ratio, with the spread of the per-round ratios, and the server's peak
// RSS during each measurement (VmHWM, reset before each round through /proc/<pid>/clear_refs).
//
// It reports; it never judges by failing. It exits non-zero only when it could not measure (a tool
// missing, a service that would not start, a transfer that did not complete as expected).
//
// Settings (environment): BENCH_DIR (.bench), BENCH_SIZE_MIB (1024), BENCH_ROUNDS (5),
// BENCH_RPS_SECONDS (5), BENCH_CONNECTIONS (32), BENCH_CONCURRENCY (64), BENCH_CONCURRENT_MIB (16),
// BENCH_WRK_THREADS (1), BENCH_NGINX_WORKERS (auto), BENCH_ONLY (comma-separated row ids),
// BENCH_CPU_PROF (1: run the servers under `node --cpu-prof`, profiles in $BENCH_DIR/profiles/server-<label>/),
// SERVER_BUNDLE (server/dist/server.mjs), BENCH_NODE (the node binary that runs the servers; default:
// the one running this driver).
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { EDITOR_VERBS, FakeKubeApi } from "../../server/test/support/fake-kube-api.js";
import { CannotMeasure, httpRequest, run, runChecked, Service, waitForHttp } from "./procs.js";
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
  nginxWorkers: process.env.BENCH_NGINX_WORKERS || "auto",
  only: (process.env.BENCH_ONLY ?? "").split(",").map((id) => id.trim()).filter(Boolean),
  cpuProfile: process.env.BENCH_CPU_PROF === "1",
  bundle: path.resolve(process.env.SERVER_BUNDLE || path.join(repoRoot, "server/dist/server.mjs")),
  /** The Node that runs the servers (e.g. the image's Node LTS); the driver itself runs on any. */
  node: process.env.BENCH_NODE || process.execPath,
};
if (!/^(auto|\d+)$/.test(settings.nginxWorkers)) {
  process.stderr.write("bench: could not measure: BENCH_NGINX_WORKERS must be auto or a number\n");
  process.exit(1);
}

const NAMESPACE = "bench";
const TOKEN = "bench-token";
const AUTH_HEADER = `Authorization: Bearer ${TOKEN}`;
const MiB = 1 << 20;
/** Upper bound on any one transfer: far above what loopback needs, so only a hang hits it. */
const TRANSFER_TIMEOUT_MS = 300_000;

const work = {
  run: path.join(settings.dir, "run"),
  src: path.join(settings.dir, "run", "src"),
  logs: path.join(settings.dir, "run", "logs"),
  dd: path.join(settings.dir, "run", "dd"),
  nginx: path.join(settings.dir, "run", "nginx"),
  profiles: path.join(settings.dir, "profiles"),
};

// ---------------------------------------------------------------------------------------------------
// Services

interface ArtifactServer {
  readonly service: Service;
  readonly url: string;
  readonly root: string;
  readonly label: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
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
      ...env,
    },
    path.join(work.logs, `server-${label}.log`),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, service, 30_000);
  return { service, url, root, label };
}

/** scripts/bench/bare-node.mjs: Node's HTTP server with nothing of kfp-artifacts, under the same Node. */
async function startBareNode(mode: "fixed" | "discard"): Promise<{ service: Service; url: string }> {
  const port = await freePort();
  const script = path.join(repoRoot, "scripts/bench/bare-node.mjs");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MODE: mode, PORT: String(port) };
  const service = Service.start(`bare node (${mode})`, settings.node, [script], env, path.join(work.logs, `bare-node-${mode}.log`));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, service, 30_000);
  return { service, url };
}

/** Seconds for one thread of `node` to SHA-256 `file` (read from the page cache in 1 MiB pieces). */
async function timedSha256(file: string): Promise<number> {
  const program =
    "const fs=require('node:fs');const h=require('node:crypto').createHash('sha256');const b=Buffer.allocUnsafe(1<<20);" +
    "const fd=fs.openSync(process.argv[1]);const t=process.hrtime.bigint();let n;" +
    "while((n=fs.readSync(fd,b,0,b.length,null))>0)h.update(b.subarray(0,n));h.digest();" +
    "process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e9));";
  const result = await runChecked(settings.node, ["-e", program, file], TRANSFER_TIMEOUT_MS);
  const seconds = Number(result.stdout.trim());
  if (!(seconds > 0)) throw new CannotMeasure(`SHA-256 of ${file}: no time printed`);
  return seconds;
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
async function timedUpload(method: string, url: string, file: string, bytes: number, okStatuses: readonly number[]): Promise<number> {
  const outcome = await curl(["-X", method, "-T", file, "-H", "Expect:", "-H", "Content-Type: application/octet-stream", url]);
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

async function wrk(url: string, headers: readonly string[], seconds: number): Promise<WrkOutcome> {
  const args = ["-t", String(settings.wrkThreads), "-c", String(settings.connections), "-d", `${seconds}s`, ...headers.flatMap((h) => ["-H", h]), url];
  const result = await runChecked("wrk", args, (seconds + 60) * 1000);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout);
  if (!rps?.[1]) throw new CannotMeasure(`wrk printed no Requests/sec:\n${result.stdout}`);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(result.stdout);
  if (bad) throw new CannotMeasure(`wrk ${url}: ${bad[1]} answers were not 2xx/3xx`);
  const socketErrors = /Socket errors: (.*)/.exec(result.stdout);
  if (socketErrors) throw new CannotMeasure(`wrk ${url}: socket errors (${socketErrors[1]})`);
  return { requestsPerSecond: Number(rps[1]) };
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
  /** SPEC §7: the server must reach at least this fraction of the baseline (undefined: no target). */
  readonly ratioTarget: number | undefined;
  /** SPEC §7: the server's peak RSS must stay below this many MB. */
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
    filesystem: `${fsType} on ${device} (${settings.dir})`,
  };
}

function renderTable(rows: readonly Row[]): string {
  const header = ["Measurement", "kfp-artifacts (median)", "baseline (median)", "ratio (per-round range)", "SPEC §7", "server peak RSS (before the row)", "load avg"];
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
    rules: [{ group: "bench-team", namespace: NAMESPACE, verbs: EDITOR_VERBS }],
  });
  const services: Service[] = [];
  const rows: Row[] = [];
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

    if (wanted("ceilings")) {
      process.stderr.write("bench: ceilings of this machine\n");
      // Its own name: the rps row's small.bin is an artifact of the durable server, not to be touched.
      await runChecked("cp", [small, path.join(durableFiles, "ceiling-small.bin")], 10_000);
      const nginxSmallUrl = `${nginx.url}/files/ceiling-small.bin`;
      const fixed = await startBareNode("fixed");
      services.push(fixed.service);
      const discard = await startBareNode("discard");
      services.push(discard.service);
      const rounds = Math.max(3, Math.min(settings.rounds, 5));
      const bareRps: number[] = [];
      const nginxRps: number[] = [];
      const bareReceive: number[] = [];
      const davPut: number[] = [];
      const hashRates: number[] = [];
      const ddRates: number[] = [];
      const davFile = path.join(work.nginx, "dav", "ceiling.bin");
      const ddTarget = path.join(work.dd, "ceiling.bin");
      await wrk(`${fixed.url}/`, [], 1);
      for (let round = 0; round < rounds; round += 1) {
        bareRps.push((await wrk(`${fixed.url}/`, [], settings.rpsSeconds)).requestsPerSecond);
        nginxRps.push((await wrk(nginxSmallUrl, [], settings.rpsSeconds)).requestsPerSecond);
        bareReceive.push(settings.sizeMiB / (await timedUpload("PUT", `${discard.url}/`, big, bytes, [201])));
        await rm(davFile, { force: true });
        await settleDisk();
        davPut.push(settings.sizeMiB / (await timedUpload("PUT", `${nginx.url}/dav/ceiling.bin`, big, bytes, [201])));
        hashRates.push(settings.sizeMiB / (await timedSha256(big)));
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
          `Node's HTTP server alone, receiving ${settings.sizeMiB} MiB and dropping it (no hash, no disk)`,
          `${formatNumber(median(bareReceive))} MiB/s`,
          `${ratio(bareReceive, davPut)} nginx WebDAV PUT (${formatNumber(median(davPut))} MiB/s)`,
          "PUT: receiving alone, before anything is written",
        ],
        [
          `SHA-256 of ${settings.sizeMiB} MiB in one thread (Node's OpenSSL; SPEC §3 requires the digest)`,
          `${formatNumber(median(hashRates))} MiB/s`,
          `${ratio(hashRates, ddRates)} dd conv=fdatasync (${formatNumber(median(ddRates))} MiB/s)`,
          "durable PUT: one upload's digest is one sequential hash",
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
    renderTable(rows),
    "",
    ...rows.flatMap((row) => row.notes.map((note) => `- ${row.id}: ${note}`)),
    ...(ceilings.length === 0
      ? []
      : ["", "Ceilings on this machine, same run (medians of at least 3 rounds):", "", markdownTable(["Measured", "figure", "against the row's baseline", "bounds"], ceilings)]),
    `- ${settings.rounds} interleaved rounds per row in ABBA order (server, baseline, baseline, server, …); ratio = median ÷ median; ✔/✘ = SPEC §7 met or not.`,
    `- Peak RSS: the server process's VmHWM, reset before each of its rounds; the maximum over the rounds. In brackets: its RSS before the row's first round (one process serves several rows, and the kernel resets the peak to the current RSS, not below).`,
    `- Load average (1, 5, 15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(" ")} at end; ${formatNumber(minutes, 1)} minutes in all.`,
    "",
    "Machine:",
    ...Object.entries(machine).map(([name, value]) => `- ${name}: ${value}`),
    "",
  ].join("\n");
  process.stdout.write(`\n${report}`);
  await writeFile(path.join(settings.dir, "results.md"), report);
  await writeFile(path.join(settings.dir, "results.json"), JSON.stringify({ settings, machine, loadAtStart, loadAtEnd, rows, ceilings }, null, 2));
  if (settings.cpuProfile) process.stderr.write(`bench: CPU profiles in ${work.profiles}\n`);
  // Keep logs and profiles; the multi-GiB files go.
  for (const entry of ["src", "dd", "nginx/dav", "server-durable", "server-no-fsync", "server-kubernetes-auth"]) {
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
