// Failures that need a separate server process: SIGKILL mid-upload, a full filesystem (ENOSPC on a real
// tmpfs in a private mount namespace), and SIGTERM's exit code. The child runs the bundle.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { artifactUrl, eventually, listFiles, SERVER_BUNDLE, startChildServer, startUpload, tempDir, within, type ChildServer } from "./support/harness.js";

const children: ChildServer[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.child.kill("SIGKILL");
});

async function child(env: Record<string, string>, wrap?: Parameters<typeof startChildServer>[1]): Promise<ChildServer> {
  const started = await startChildServer(env, wrap);
  children.push(started);
  return started;
}

describe("process failures", () => {
  it("SIGKILL mid-upload: the old version survives, the partial upload never appears, and restart sweeps it", async () => {
    const root = await tempDir("sigkill");
    const first = await child({ ARTIFACTS_ROOT: root });
    const url = artifactUrl(first.url, "team-a", "model.bin");
    expect((await fetch(url, { method: "PUT", body: "version 1" })).status).toBe(201);

    const { request, response } = startUpload(url, { "Content-Length": String(8 << 20) });
    response.catch(() => {});
    request.on("error", () => {});
    request.write(randomBytes(4 << 20));
    const tmp = path.join(root, ".kfp-artifacts/tmp");
    await eventually(async () => {
      const files = await listFiles(tmp);
      return files.length === 1 && (await fs.stat(path.join(tmp, files[0] ?? ""))).size > 0;
    }, 10_000, "the partial upload is on disk");
    first.child.kill("SIGKILL");
    expect(await within(5000, first.exited, "SIGKILL")).toBe("SIGKILL");
    request.destroy();

    expect(await listFiles(tmp)).toHaveLength(1); // the crash leftover
    expect(await fs.readFile(path.join(root, "team-a/model.bin"), "utf8")).toBe("version 1");

    const second = await child({ ARTIFACTS_ROOT: root });
    expect(await listFiles(tmp)).toEqual([]);
    expect(second.output()).toMatch(/swept temporary files left by an earlier crash/);
    const get = await fetch(artifactUrl(second.url, "team-a", "model.bin"));
    expect(await get.text()).toBe("version 1");
    expect(await listFiles(path.join(root, "team-a"))).toEqual(["model.bin"]);
  });

  it("a restarted server that is PID 1 again, as in a container, sweeps the partial upload its predecessor left", async () => {
    const root = await tempDir("pid1");
    const tmp = path.join(root, ".kfp-artifacts/tmp");
    // A PID namespace of its own: the server is PID 1 there, as the image runs it.
    const mapRoot = process.getuid?.() === 0 ? [] : ["--map-root-user"];
    const asPid1 = (nodeArgs: string[]) => ({
      command: "unshare",
      args: ["--pid", "--fork", "--mount-proc", "--kill-child", ...mapRoot, "sh", "-c", 'echo "pid in namespace: $$"; exec "$@"', "sh", process.execPath, ...nodeArgs],
    });
    // S3_PORT=0: nothing else on this machine can hold the port either start needs.
    const first = await child({ ARTIFACTS_ROOT: root, S3_PORT: "0" }, asPid1);
    expect(first.output()).toContain("pid in namespace: 1");
    const { request, response } = startUpload(artifactUrl(first.url, "team-a", "big.bin"), { "Content-Length": String(8 << 20) });
    let refused: { status: number; body: string } | undefined;
    response.then((answer) => (refused = answer), () => {});
    request.on("error", () => {});
    request.write(randomBytes(2 << 20));
    await eventually(async () => {
      if (refused !== undefined) throw new Error(`the upload was answered early: ${refused.status} ${refused.body}`);
      const files = await listFiles(tmp);
      return files.length === 1 && (await fs.stat(path.join(tmp, files[0] ?? ""))).size > 0;
    }, 10_000, "the partial upload is on disk");
    // SIGKILL of unshare takes its child, the server, with it (--kill-child): a crash, no clean-up.
    first.child.kill("SIGKILL");
    await within(5000, first.exited, "SIGKILL");
    request.destroy();
    // The kernel delivers the child's SIGKILL as unshare dies: wait until the server no longer answers.
    await eventually(() => fetch(`${first.url}/healthz`).then(() => false, () => true), 5000, "the killed server is gone");
    expect(await listFiles(tmp)).toHaveLength(1);

    const second = await child({ ARTIFACTS_ROOT: root, S3_PORT: "0" }, asPid1);
    expect(second.output()).toContain("pid in namespace: 1");
    expect(await listFiles(tmp)).toEqual([]);
    expect(second.output()).toMatch(/swept temporary files left by an earlier crash/);
  });

  it("ENOSPC on a full volume: 507, nothing partial, earlier artifacts readable, writes work again after a delete", async () => {
    const root = await tempDir("enospc");
    // A real 8 MiB filesystem, mounted only inside the child's own mount namespace.
    const mapRoot = process.getuid?.() === 0 ? [] : ["--map-root-user"];
    const server = await child({ ARTIFACTS_ROOT: root, MIN_FREE_BYTES: "0" }, (nodeArgs) => ({
      command: "unshare",
      args: ["--mount", ...mapRoot, "sh", "-c", 'mount -t tmpfs -o size=8m tmpfs "$0" && exec "$@"', root, process.execPath, ...nodeArgs],
    }));
    // What the child sees at `root` is the tmpfs; /proc/<pid>/root shows its mount namespace.
    const volume = `/proc/${server.child.pid}/root${root}`;
    expect((await fs.statfs(volume)).blocks * (await fs.statfs(volume)).bsize).toBeLessThanOrEqual(8 << 20);

    const keep = randomBytes(3 << 20);
    expect((await fetch(artifactUrl(server.url, "team-a", "keep.bin"), { method: "PUT", body: keep })).status).toBe(201);

    // Streamed without a Content-Length, so only the write itself can discover the disk is full.
    const { request, response } = startUpload(artifactUrl(server.url, "team-a", "fill.bin"), { "Transfer-Encoding": "chunked" });
    request.on("error", () => {});
    for (let i = 0; i < 8; i += 1) request.write(randomBytes(1 << 20));
    request.end();
    const answer = await within(15_000, response, "ENOSPC answer");
    expect(answer.status).toBe(507);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: "InsufficientStorage", message: "not enough free space on the artifact volume" } });
    expect(answer.body).not.toContain(root);

    await eventually(async () => (await listFiles(path.join(volume, ".kfp-artifacts/tmp"))).length === 0, 5000, "no partial upload left");
    expect(await listFiles(path.join(volume, "team-a"))).toEqual(["keep.bin"]);
    const get = await fetch(artifactUrl(server.url, "team-a", "keep.bin"));
    expect(Buffer.from(await get.arrayBuffer()).equals(keep)).toBe(true);

    // A declared size that cannot fit is refused before any byte is written.
    const declared = await fetch(artifactUrl(server.url, "team-a", "huge.bin"), {
      method: "PUT",
      body: Buffer.alloc(6 << 20),
    });
    expect(declared.status).toBe(507);

    expect((await fetch(artifactUrl(server.url, "team-a", "keep.bin"), { method: "DELETE" })).status).toBe(204);
    expect((await fetch(artifactUrl(server.url, "team-a", "after.bin"), { method: "PUT", body: randomBytes(4 << 20) })).status).toBe(201);
  });

  it("volume faults are a clear status, never 500: full (507), read-only (503), gone (503); readiness says which, nothing is left behind", async () => {
    const root = await tempDir("faults");
    const mapRoot = process.getuid?.() === 0 ? [] : ["--map-root-user"];
    const server = await child({ ARTIFACTS_ROOT: root, MIN_FREE_BYTES: "0" }, (nodeArgs) => ({
      command: "unshare",
      args: ["--mount", ...mapRoot, "sh", "-c", 'mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@"', root, process.execPath, ...nodeArgs],
    }));
    const pid = server.child.pid ?? 0;
    const volume = `/proc/${pid}/root${root}`;
    const tmp = path.join(volume, ".kfp-artifacts/tmp");
    const kfpWrite = (run: string) =>
      fetch(`${server.url}/apis/v2beta1/runs/${run}/nodes/n/artifacts/a:write?namespace=team-a&pipeline=p`, { method: "POST", body: "payload" });
    expect((await kfpWrite("warm")).status).toBe(200);

    // Full to the last block: the free-space reserve is 0, so only the writes themselves find out.
    await fs.writeFile(path.join(volume, "filler"), Buffer.alloc(4 << 20)).catch(() => {});
    await fs.appendFile(path.join(volume, "filler"), Buffer.alloc(4096)).catch(() => {});
    expect((await fs.statfs(volume)).bavail).toBe(0);
    for (const answer of [await fetch(artifactUrl(server.url, "team-a", "empty"), { method: "PUT", body: "" }), await kfpWrite("full-run")]) {
      expect(answer.status).toBe(507);
      expect(await answer.text()).toMatch(/not enough free space on the artifact volume/);
    }
    const readyFull = await fetch(`${server.url}/readyz`);
    // Reads and deletes still work on a full volume, so it stays in the Service, and says why writes fail.
    expect(readyFull.status).toBe(200);
    expect(await readyFull.json()).toMatchObject({ checks: { volume: true }, messages: { volume: expect.stringMatching(/full/) as unknown } });
    expect(await listFiles(tmp)).toEqual([]);
    await fs.rm(path.join(volume, "filler"));

    // Read-only underneath a running server (a remount, or a volume gone bad).
    const remount = spawnSync("nsenter", ["-t", String(pid), "-m", ...(mapRoot.length > 0 ? ["-U", "--preserve-credentials"] : []), "mount", "-o", "remount,ro", root], {
      encoding: "utf8",
    });
    expect(remount.status, remount.stderr).toBe(0);
    for (const answer of [await fetch(artifactUrl(server.url, "team-a", "x"), { method: "PUT", body: "x" }), await kfpWrite("ro-run")]) {
      expect(answer.status).toBe(503);
      expect(await answer.text()).toMatch(/read-only/);
    }
    const readyRo = await fetch(`${server.url}/readyz`);
    expect(readyRo.status).toBe(503);
    expect(await readyRo.json()).toMatchObject({ checks: { volume: false }, messages: { volume: expect.stringMatching(/read-only/) as unknown } });
    expect(server.output()).not.toMatch(/"status":500/);
  });

  it("an ARTIFACTS_ROOT removed while running: 503 naming it, /metrics still answers, readiness fails", async () => {
    const root = await tempDir("gone");
    const server = await child({ ARTIFACTS_ROOT: root });
    expect((await fetch(artifactUrl(server.url, "team-a", "k"), { method: "PUT", body: "x" })).status).toBe(201);
    await fs.rm(root, { recursive: true, force: true });
    for (const answer of [
      await fetch(artifactUrl(server.url, "team-a", "k2"), { method: "PUT", body: "x" }),
      await fetch(`${server.url}/apis/v2beta1/runs/r/nodes/n/artifacts/a:write?namespace=team-a&pipeline=p`, { method: "POST", body: "x" }),
    ]) {
      expect(answer.status).toBe(503);
      const text = await answer.text();
      expect(text).toMatch(/ARTIFACTS_ROOT/);
      expect(text).not.toContain(root);
    }
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { volume: false }, messages: { volume: expect.stringMatching(/ARTIFACTS_ROOT/) as unknown } });
    expect(server.output()).not.toMatch(/"status":500/);
  });

  it("SIGTERM: readiness fails at once, new requests are still served during the delay, then the process exits 0", async () => {
    const root = await tempDir("sigterm-delay");
    const server = await child({ ARTIFACTS_ROOT: root, SHUTDOWN_DELAY_SECONDS: "3", SHUTDOWN_GRACE_SECONDS: "5" });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const started = Date.now();
    server.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // What a load balancer that has not yet seen the pod leave sends: it must still be answered.
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    const put = await fetch(artifactUrl(server.url, "team-a", "late.txt"), { method: "PUT", body: "after SIGTERM" });
    expect(put.status).toBe(201);
    expect(await (await fetch(artifactUrl(server.url, "team-a", "late.txt"))).text()).toBe("after SIGTERM");
    expect(await within(8000, server.exited, "exit after the delay")).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(server.output()).toMatch(/"msg":"stopped"/);
  });

  it("SIGTERM: readiness fails, the process exits 0 well within the grace period", async () => {
    const root = await tempDir("sigterm");
    const server = await child({ ARTIFACTS_ROOT: root, SHUTDOWN_DELAY_SECONDS: "0", SHUTDOWN_GRACE_SECONDS: "5" });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const started = Date.now();
    server.child.kill("SIGTERM");
    expect(await within(5000, server.exited, "exit after SIGTERM")).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(server.output()).toMatch(/"msg":"stopped"/);
  });

  it("a server.mjs without its upload-worker.mjs refuses to start, saying which file is missing", async () => {
    const lonely = await tempDir("lonely-bundle");
    await fs.copyFile(SERVER_BUNDLE, path.join(lonely, "server.mjs"));
    const result = spawnSync(process.execPath, [path.join(lonely, "server.mjs")], {
      env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", AUTH_MODE: "none", ARTIFACTS_ROOT: path.join(lonely, "data") },
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(result.status).toBe(1);
    const failure = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}") as { msg?: string; error?: string };
    expect(failure.msg).toBe("could not start");
    expect(failure.error).toMatch(/upload-worker\.mjs is missing beside server\.mjs/);
  });

  it("a port already in use: one fatal JSON line naming it, exit code 2, no stack trace", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = spawnSync(process.execPath, [SERVER_BUNDLE], {
        env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: String(port), S3_PORT: "0", AUTH_MODE: "none", ARTIFACTS_ROOT: await tempDir("port-in-use") },
        encoding: "utf8",
        timeout: 15_000,
      });
      expect(result.status).toBe(2);
      const lines = `${result.stdout}${result.stderr}`.split("\n").filter(Boolean);
      expect(lines.every((line) => line.startsWith("{")), lines.join("\n")).toBe(true);
      const fatal = lines.map((line) => JSON.parse(line) as { level: string; msg: string }).filter((line) => line.level === "fatal");
      expect(fatal).toHaveLength(1);
      expect(fatal[0]?.msg).toMatch(new RegExp(`PORT=${port}: 127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      blocker.close();
    }
  });

  it("start-up logs the version, the root and the limits", async () => {
    const root = await tempDir("startup-line");
    const server = await child({ ARTIFACTS_ROOT: root, MAX_UPLOAD_BYTES: "1Gi", NAMESPACE_QUOTA_BYTES: "5Gi", MIN_FREE_BYTES: "0" });
    const listening = server
      .output()
      .split("\n")
      .filter((line) => line.includes('"msg":"listening"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(listening).toHaveLength(1);
    expect(listening[0]).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown,
      root,
      limits: { maxUploadBytes: 2 ** 30, maxArchiveExpandedBytes: 20 * 2 ** 30, minFreeBytes: 0, namespaceQuotaBytes: 5 * 2 ** 30 },
    });
  });

  it("refuses an invalid configuration with a message naming the variable and exit code 2", async () => {
    const failing = startChildServer({ ARTIFACTS_ROOT: await tempDir("badconfig"), PORT: "not-a-port" });
    await expect(failing).rejects.toThrow(/exited \(2\)[\s\S]*PORT/);
  });
});
