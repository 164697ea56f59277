// SERVER_PROCESSES: several server processes behind the same ports (server/src/processes.ts). Each test
// runs the bundle as a child, as the image does, and looks at its processes through /proc.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import { createRuntime } from "../src/runtime.js";
import { TempNames } from "../src/storage/temp-names.js";
import { artifactUrl, eventually, listFiles, startChildServer, startUpload, tempDir, within, type ChildServer } from "./support/harness.js";
import { testStore } from "./support/store.js";

const children: ChildServer[] = [];
afterEach(() => {
  for (const started of children.splice(0)) {
    for (const pid of serverProcesses(started)) process.kill(pid, "SIGKILL");
    started.child.kill("SIGKILL");
  }
});

async function start(env: Record<string, string>): Promise<ChildServer & { root: string }> {
  const root = await tempDir("processes");
  const started = await startChildServer({ ARTIFACTS_ROOT: root, SERVER_PROCESSES: "2", SHUTDOWN_DELAY_SECONDS: "0", ...env });
  children.push(started);
  // The first "listening" line is the first process's; the second starts once the first listens.
  await eventually(() => started.output().includes('"msg":"server processes listening"'), 15_000, "both processes listen");
  return { ...started, root };
}

/** The primary's children: the server processes. */
function serverProcesses(started: ChildServer): number[] {
  const pid = started.child.pid;
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Established TCP connections to `port` held by process `pid` (its socket descriptors matched in /proc/net/tcp). */
async function connectionsHeld(pid: number, port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.add(match[1]);
  }
  const table = await fs.readFile("/proc/net/tcp", "utf8");
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return table
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "01" && inodes.has(fields[9] ?? ""))
    .length;
}

function metric(text: string, name: string): number | undefined {
  const line = text.split("\n").find((entry) => entry.startsWith(`${name} `) || entry.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("SERVER_PROCESSES=2", () => {
  it("both processes take connections on the one port, and /metrics from either combines both", async () => {
    const server = await start({});
    const pids = serverProcesses(server);
    expect(pids).toHaveLength(2);
    const port = Number(new URL(server.url).port);
    // Connections are handed out in turn: four kept open land two on each process.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        http.get(`${server.url}/healthz`, { agent }, (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        }).on("error", reject);
      });
    expect(await Promise.all([get(), get(), get(), get()])).toEqual([200, 200, 200, 200]);
    const held = await Promise.all(pids.map((pid) => connectionsHeld(pid, port)));
    expect(held.every((count) => count > 0), `connections per process: ${held.join(", ")}`).toBe(true);
    expect(held.reduce((sum, count) => sum + count, 0)).toBe(4);
    agent.destroy();

    // Ten PUTs over new connections each (so both processes take some), then /metrics twice (either
    // process may answer): the counts are the sum of both processes, and both answered the scrape.
    for (let i = 0; i < 10; i++) {
      const response = await fetch(artifactUrl(server.url, "team-a", `f${i}.txt`), { method: "PUT", body: `body ${i}`, headers: { Connection: "close" } });
      expect(response.status).toBe(201);
    }
    for (let scrape = 0; scrape < 2; scrape++) {
      const text = await (await fetch(`${server.url}/metrics`, { headers: { Connection: "close" } })).text();
      expect(metric(text, "kfp_artifacts_server_processes")).toBe(2);
      const puts = text.split("\n").find((line) => line.startsWith("kfp_artifacts_http_requests_total{") && line.includes('method="PUT"') && line.includes('status="201"'));
      expect(puts?.endsWith(" 10"), puts).toBe(true);
      // A gauge of the volume is one figure, not the sum of two processes' equal ones.
      const free = metric(text, "kfp_artifacts_volume_free_bytes") ?? 0;
      const { bavail, bsize } = await fs.statfs(server.root);
      expect(free).toBeGreaterThan(0);
      expect(free).toBeLessThan(bavail * bsize * 1.5);
    }
  });

  it("every line of output is one whole JSON object while both processes log at once", async () => {
    const server = await start({});
    const body = randomBytes(256);
    await Promise.all(
      Array.from({ length: 8 }, async (_, connection) => {
        for (let i = 0; i < 40; i++) {
          const url = artifactUrl(server.url, "team-a", `c${connection}/f${i}.bin`);
          expect((await fetch(url, { method: "PUT", body, headers: { Connection: "close" } })).status).toBe(201);
          expect((await fetch(url, { headers: { Connection: "close" } })).status).toBe(200);
        }
      }),
    );
    await eventually(() => server.output().split("\n").filter((line) => line.includes('"method":"GET"')).length >= 320, 10_000, "the access log lines");
    const lines = server.output().split("\n").filter(Boolean);
    const broken = lines.filter((line) => {
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(broken).toEqual([]);
    expect(lines.length).toBeGreaterThan(640);
  });

  it("SIGTERM to the primary: an upload in flight completes, every process stops, the primary exits 0", async () => {
    const server = await start({ SHUTDOWN_GRACE_SECONDS: "10" });
    const pids = serverProcesses(server);
    const url = artifactUrl(server.url, "team-a", "during-shutdown.bin");
    const { request, response } = startUpload(url, { "Content-Length": String(2 << 20) });
    request.write(randomBytes(1 << 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    request.end(randomBytes(1 << 20));
    expect((await within(10_000, response, "the upload's answer")).status).toBe(201);
    expect(await within(15_000, server.exited, "the primary's exit")).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it("a server process that dies: the primary stops the other and exits 1", async () => {
    const server = await start({});
    const [first, second] = serverProcesses(server);
    expect(second).toBeDefined();
    process.kill(first ?? 0, "SIGKILL");
    expect(await within(15_000, server.exited, "the primary's exit")).toBe(1);
    expect(() => process.kill(second ?? 0, 0)).toThrow();
    expect(server.output()).toMatch(/"msg":"a server process exited: stopping the others"/);
  });

  it("a port already in use: one fatal line naming PORT, and the primary exits 2 without starting a second", async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const failed = startChildServer({ SERVER_PROCESSES: "2", PORT: String(port) }, undefined, 15_000);
      await expect(failed).rejects.toThrow(/exited \(2\) before listening/);
      const output = await failed.then(() => "", (error: Error) => error.message);
      expect(output).toContain(`PORT=${port}`);
      expect(output.match(/"level":"fatal"/g)).toHaveLength(1);
    } finally {
      holder.close();
    }
  });

  it("the namespace quota holds across both processes", async () => {
    const server = await start({ NAMESPACE_QUOTA_BYTES: "100000" });
    const body = randomBytes(10_000);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(artifactUrl(server.url, "team-a", `q${i}.bin`), { method: "PUT", body, headers: { Connection: "close" } }).then(async (response) => {
          await response.arrayBuffer();
          return response.status;
        }),
      ),
    );
    expect(statuses.filter((status) => status === 201)).toHaveLength(10);
    expect(statuses.filter((status) => status === 507)).toHaveLength(10);
  });
});

describe("the start-up sweep of a second server process", () => {
  it("leaves the temporary files of another start on this host, which a single process's start removes", async () => {
    const live = new TempNames("pod-a", "1111111111111111");
    const first = await testStore({ runtime: createRuntime({ logger: silentLogger, tempNames: live }) });
    const { root } = first.options;
    const tmp = first.layout.tmpDir;
    const inFlight = `${live.ownPrefix}upload`;
    await fs.writeFile(path.join(tmp, inFlight), "a live process's upload");

    const second = await testStore({
      root,
      runtime: createRuntime({ logger: silentLogger, tempNames: new TempNames("pod-a", "2222222222222222"), sweepsEarlierStartsOnHost: false }),
    });
    expect(await listFiles(tmp)).toEqual([inFlight]);

    const restarted = await testStore({ root, runtime: createRuntime({ logger: silentLogger, tempNames: new TempNames("pod-a", "3333333333333333") }) });
    expect(await listFiles(tmp)).toEqual([]);
    await Promise.all([first.close(), second.close(), restarted.close()]);
  });
});
