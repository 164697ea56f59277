// Child processes for the benchmark: bounded runs of command-line tools, long-lived services (the
// server, nginx) with their peak memory, and waiting for a port to answer.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";

/** Thrown when a measurement cannot be taken: the run exits non-zero ("could not measure"). */
export class CannotMeasure extends Error {
  override name = "CannotMeasure";
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall-clock seconds from spawn to exit. */
  readonly seconds: number;
}

/** Runs a command to completion (killed after `timeoutMs`), capturing its output and wall-clock time. */
export function run(command: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new CannotMeasure(`${command}: ${error.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (signal === "SIGKILL") {
        reject(new CannotMeasure(`${command} ${args.join(" ")}: no result within ${timeoutMs / 1000} s`));
        return;
      }
      resolve({ code: code ?? -1, stdout, stderr, seconds });
    });
  });
}

/** Like run(), but a non-zero exit is a failure to measure. */
export async function runChecked(command: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const result = await run(command, args, timeoutMs, env);
  if (result.code !== 0) {
    throw new CannotMeasure(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim().slice(0, 500)}`);
  }
  return result;
}

/** A long-running process whose output goes to a log file. */
export class Service {
  private exited = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    child.once("exit", () => (this.exited = true));
  }

  static start(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, logFile: string): Service {
    const log = openSync(logFile, "a");
    try {
      const child = spawn(command, args, { stdio: ["ignore", log, log], env });
      return new Service(name, child, logFile);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new CannotMeasure(`${this.name} did not start`);
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Resets the kernel's peak-RSS counter (VmHWM) of each of its processes, so the next reading is the peak of what follows. */
  async resetPeakRss(): Promise<void> {
    for (const pid of await processTree(this.pid)) await writeFile(`/proc/${pid}/clear_refs`, "5");
  }

  /**
   * Peak resident memory in bytes since start or the last resetPeakRss(), summed over the process and
   * its descendants (a server with SERVER_PROCESSES, nginx's workers): the sum of each one's peak, an
   * upper bound of their peak together.
   */
  async peakRssBytes(): Promise<number> {
    return (await sumOverTree(this.pid, "VmHWM")) * 1024;
  }

  /** Resident memory in bytes now, summed over the process and its descendants. */
  async rssBytes(): Promise<number> {
    return (await sumOverTree(this.pid, "VmRSS")) * 1024;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/** `pid` and its descendants, from /proc/<pid>/task/<tid>/children. */
async function processTree(pid: number): Promise<number[]> {
  const tree = [pid];
  for (let next = 0; next < tree.length; next++) {
    const parent = tree[next] ?? pid;
    const tasks = await readdir(`/proc/${parent}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const children = await readFile(`/proc/${parent}/task/${task}/children`, "utf8").catch(() => "");
      tree.push(...children.split(" ").filter(Boolean).map(Number));
    }
  }
  return tree;
}

async function sumOverTree(pid: number, field: string): Promise<number> {
  let total = 0;
  for (const member of await processTree(pid)) {
    // A descendant that exited between the listing and this read adds nothing; the process itself must answer.
    total += member === pid ? await statusKiB(member, field) : await statusKiB(member, field).catch(() => 0);
  }
  return total;
}

async function statusKiB(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match?.[1]) throw new CannotMeasure(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** One HTTP request over loopback; resolves with the status and the body as text. `timeoutMs`: 30 s. */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: options.method ?? "GET", headers: options.headers, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (text: string) => (body += text));
      response.once("end", () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
      response.once("error", reject);
    });
    request.once("timeout", () => request.destroy(new Error(`${url}: no answer within ${timeoutMs / 1000} s`)));
    request.once("error", reject);
    request.end(options.body);
  });
}

/** Polls `url` until it answers 200 (bounded); fails if `service` exits first. */
export async function waitForHttp(url: string, service: Service | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (service !== undefined && !service.running) throw new CannotMeasure(`${service.name} exited during start-up; see ${service.logFile}`);
    try {
      if ((await httpRequest(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new CannotMeasure(`${url} did not answer 200 within ${timeoutMs / 1000} s${service ? `; see ${service.logFile}` : ""}`);
}

/** A port nothing listens on at this instant, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
