// Test harness: a real server on 127.0.0.1:0 over a temporary volume, in-process or as a child process.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { Hono } from "hono";
import { createSurface } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { AppEnv } from "../../src/http/env.js";
import { listen } from "../../src/http/listener.js";
import { createLogger, silentLogger, type Logger } from "../../src/log.js";
import { createMetrics } from "../../src/metrics.js";
import type { FaultHandling } from "../../src/routes/api.js";
import { startServer, type RunningServer } from "../../src/server.js";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
export const SERVER_BUNDLE = path.join(REPO_ROOT, "server/dist/server.mjs");

export async function tempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `kfp-artifacts-${label}-`));
}

export interface TestServer {
  readonly url: string;
  /** The S3 listener (S3_PORT=0 in tests), e.g. http://127.0.0.1:NNNN. */
  readonly s3Url: string;
  readonly root: string;
  readonly config: Config;
  readonly running: RunningServer;
  readonly logs: string[];
  close(): Promise<void>;
}

/** An in-process server with AUTH_MODE=none unless `env` says otherwise. */
export async function startTestServer(env: Record<string, string> = {}, options: { root?: string } = {}): Promise<TestServer> {
  const root = options.root ?? (await tempDir("root"));
  const config = loadConfig({ HOST: "127.0.0.1", PORT: "0", ARTIFACTS_ROOT: root, AUTH_MODE: "none", SHUTDOWN_GRACE_SECONDS: "2", SHUTDOWN_DELAY_SECONDS: "0", S3_PORT: "0", ...env });
  const logs: string[] = [];
  const logger: Logger = env.LOG_LEVEL ? createLogger(config.logLevel, (line) => logs.push(line)) : silentLogger;
  const running = await startServer(config, logger);
  return {
    url: `http://127.0.0.1:${running.port}`,
    s3Url: `http://127.0.0.1:${running.s3Port ?? 0}`,
    root,
    config,
    running,
    logs,
    close: () => running.shutdown(),
  };
}

/** A volume probe that finds nothing wrong: for APIs served without a store. */
export const healthyVolume = () => Promise.resolve({ writable: true, problem: undefined });

/**
 * Serves sub-apps (routes/api.ts) alone on 127.0.0.1:0 behind the access log, as a listener serves them:
 * for an API tested without the whole server. `logs` collects the JSON lines.
 */
export async function serveApis(apis: (faults: FaultHandling) => Hono<AppEnv>[]): Promise<{ url: string; logs: string[]; close(): Promise<void> }> {
  const logs: string[] = [];
  const logger = createLogger("debug", (line) => logs.push(line));
  const faults: FaultHandling = { logger, checkVolume: healthyVolume };
  const metrics = createMetrics({ freeBytes: () => Promise.resolve(0), usedBytesByNamespace: () => [] });
  const server = await listen(createSurface({ logger, metrics, faults }, apis(faults)).fetch, { port: 0, host: "127.0.0.1", logger });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    logs,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ChildServer {
  readonly url: string;
  /** The S3 listener's URL (empty when S3_ENABLED=false). */
  readonly s3Url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

/**
 * Runs the built bundle as a separate process — for SIGKILL, SIGTERM and full-disk tests. `wrap` lets a
 * test run it under another command (e.g. unshare with a tmpfs mount). Resolves once it listens.
 */
export async function startChildServer(
  env: Record<string, string>,
  wrap: (nodeArgs: string[]) => { command: string; args: string[] } = (nodeArgs) => ({ command: process.execPath, args: nodeArgs }),
  timeoutMs = 15_000,
): Promise<ChildServer> {
  const { command, args } = wrap(["--max-semi-space-size=4", SERVER_BUNDLE]);
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: "0", S3_PORT: "0", AUTH_MODE: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  let s3Port: string | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child server did not listen within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = () => {
      // The "listening" line once it is complete (the field order is the logger's business).
      const line = output.split("\n").slice(0, -1).find((text) => text.includes('"msg":"listening"'));
      if (line !== undefined) {
        const listening = JSON.parse(line) as { port: number; s3Port?: number };
        s3Port = listening.s3Port === undefined ? undefined : String(listening.s3Port);
        clearTimeout(timer);
        child.stdout.off("data", onData);
        resolve(listening.port);
      }
    };
    child.stdout.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`child server exited (${code}) before listening:\n${output}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, s3Url: s3Port === undefined ? "" : `http://127.0.0.1:${s3Port}`, child, output: () => output, exited };
}

/** Rejects when `promise` takes longer than `ms`: every wait in these tests is bounded. */
export function within<T>(ms: number, promise: Promise<T>, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Reads the first chunk of `response`, calls `meanwhile` (e.g. to truncate the file being sent), then
 * reads the rest: whether the body ended normally or was cut short, and every byte received.
 */
export async function readAround(response: Response, meanwhile: () => Promise<void>): Promise<{ outcome: "complete" | "cut short"; received: Buffer }> {
  const reader = response.body!.getReader();
  const received: Buffer[] = [];
  const first = await reader.read();
  if (first.value !== undefined) received.push(Buffer.from(first.value));
  await meanwhile();
  const outcome = await (async () => {
    for (;;) {
      const next = await reader.read();
      if (next.done) return "complete" as const;
      received.push(Buffer.from(next.value));
    }
  })().catch(() => "cut short" as const);
  return { outcome, received: Buffer.concat(received) };
}

/** Polls `check` until it returns true, failing after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what}: not true within ${ms} ms`);
}

/** Every file below `dir` (relative paths), for asserting what is and is not on the volume. */
export async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string, relative: string): Promise<void> => {
    for (const entry of await fs.readdir(current, { withFileTypes: true }).catch(() => [])) {
      const rel = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path.join(current, entry.name), rel);
      else found.push(rel);
    }
  };
  await walk(dir, "");
  return found.sort();
}

export function artifactUrl(base: string, namespace: string, key: string): string {
  return `${base}/v1/namespaces/${namespace}/artifacts/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/** PUT with Transfer-Encoding: chunked (no Content-Length), in 64 KiB pieces; fetch cannot be made to do it. */
export function putChunked(url: string, body: Buffer): Promise<{ status: number; body: string }> {
  return within(
    30_000,
    new Promise((resolve, reject) => {
      const request = http.request(url, { method: "PUT", headers: { "Transfer-Encoding": "chunked" } });
      request.on("response", (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on("error", reject);
      for (let offset = 0; offset < body.length; offset += 65536) request.write(body.subarray(offset, offset + 65536));
      request.end();
    }),
    `chunked PUT ${url}`,
  );
}

/**
 * A PUT over http.request that the test drives: write some of the body, then end it, stall, or destroy
 * the connection. `response` settles with the status and body the server sent.
 */
export function startUpload(url: string, headers: Record<string, string> = {}) {
  const request = http.request(url, { method: "PUT", headers: { "Content-Type": "application/octet-stream", ...headers } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request.on("response", (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
  return { request, response };
}
