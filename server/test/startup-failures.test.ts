// Start-up refusals a first `docker run` meets: a volume the server's user cannot write, a read-only
// file system, AUTH_MODE=kubernetes with no cluster in sight. Each must end the process with exit code 2
// and one fatal JSON line that names the cause and the fix, never a stack trace. The child runs the bundle.
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SERVER_BUNDLE, tempDir } from "./support/harness.js";

const isRoot = process.getuid?.() === 0;
/** As root the child runs as the image's user, so that file modes bind it as they bind the image. */
const CHILD_UID = isRoot ? 65532 : (process.getuid?.() ?? 0);

function start(env: Record<string, string>, wrap?: (nodeArgs: string[]) => string[]): { status: number | null; fatal: string[]; output: string } {
  const nodeArgs = [SERVER_BUNDLE];
  const [command, ...args] = wrap === undefined ? [process.execPath, ...nodeArgs] : wrap(nodeArgs);
  const result = spawnSync(command ?? process.execPath, args, {
    env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", S3_PORT: "0", AUTH_MODE: "none", ...env },
    encoding: "utf8",
    timeout: 15_000,
    ...(isRoot && wrap === undefined ? { uid: CHILD_UID, gid: CHILD_UID } : {}),
  });
  const output = `${result.stdout}${result.stderr}`;
  const lines = output.split("\n").filter(Boolean);
  expect(
    lines.every((line) => line.startsWith("{")),
    output,
  ).toBe(true);
  const fatal = lines
    .map((line) => JSON.parse(line) as { level: string; msg: string })
    .filter((line) => line.level === "fatal")
    .map((line) => line.msg);
  return { status: result.status, fatal, output };
}

/** A directory the child cannot write: root's 0755 (a host directory as `mkdir` leaves it), or 0555. */
async function unwritable(directory: string): Promise<void> {
  await fs.chmod(directory, isRoot ? 0o755 : 0o555);
}

/** A directory the child owns, as a named volume or a chowned host directory is. */
async function writable(directory: string): Promise<void> {
  if (isRoot) await fs.chown(directory, CHILD_UID, CHILD_UID);
  await fs.chmod(directory, 0o755);
}

describe("start-up refusals", () => {
  it("a volume owned by another user: the owner, the mode and the three fixes, exit 2", async () => {
    const root = await tempDir("not-writable");
    await unwritable(root);
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root });
    expect(status, output).toBe(2);
    const { uid, gid } = await fs.stat(root);
    expect(fatal).toEqual([
      `ARTIFACTS_ROOT ${root} is not writable by uid ${CHILD_UID} (owned by ${uid}:${gid}, mode 0${isRoot ? 755 : 555}): ` +
        `chown it to ${CHILD_UID}, use a named volume, or set fsGroup`,
    ]);
  });

  it("a volume written before by another user: names the internal directory that refuses", async () => {
    const root = await tempDir("internal-not-writable");
    await writable(root);
    const tmp = path.join(root, ".kfp-artifacts/tmp");
    await fs.mkdir(tmp, { recursive: true });
    if (isRoot) await fs.chown(path.join(root, ".kfp-artifacts"), CHILD_UID, CHILD_UID);
    await unwritable(tmp);
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root });
    expect(status, output).toBe(2);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(`ARTIFACTS_ROOT ${root} is not writable by uid ${CHILD_UID} (${tmp} owned by `);
    expect(fatal[0]).toMatch(/: chown it recursively to \d+, use a named volume, or set fsGroup$/);
  });

  it("a root that does not exist below a directory the user cannot write: says to create it", async () => {
    const parent = await tempDir("no-root");
    await unwritable(parent);
    const root = path.join(parent, "artifacts");
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root });
    expect(status, output).toBe(2);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(`ARTIFACTS_ROOT ${root} is not writable by uid ${CHILD_UID} (${parent} owned by `);
    expect(fatal[0]).toMatch(/: create it owned by \d+, use a named volume, or set fsGroup$/);
  });

  it("a read-only file system (a read-only root with no volume mounted): says to mount one", async () => {
    const root = await tempDir("read-only");
    // A read-only bind mount of the directory, only inside the child's own mount namespace.
    const mapRoot = isRoot ? [] : ["--map-root-user"];
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root }, (nodeArgs) => [
      "unshare",
      "--mount",
      ...mapRoot,
      "sh",
      "-c",
      'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
      root,
      process.execPath,
      ...nodeArgs,
    ]);
    expect(status, output).toBe(2);
    expect(fatal).toEqual([`ARTIFACTS_ROOT ${root} is not writable by uid 0 (a read-only file system): mount a writable volume there, such as a named volume`]);
  });

  it("AUTH_MODE=kubernetes outside a cluster and without KUBECONFIG: for local use set AUTH_MODE=none", async () => {
    const root = await tempDir("no-cluster");
    await writable(root);
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root, AUTH_MODE: "kubernetes" });
    expect(status, output).toBe(2);
    expect(fatal).toEqual([
      "AUTH_MODE=kubernetes found neither a cluster (KUBERNETES_SERVICE_HOST is not set) nor KUBECONFIG: for local use set AUTH_MODE=none",
    ]);
  });

  it("a KUBECONFIG that cannot be read: names it, exit 2", async () => {
    const root = await tempDir("bad-kubeconfig");
    await writable(root);
    const kubeconfig = path.join(root, "missing-kubeconfig");
    const { status, fatal, output } = start({ ARTIFACTS_ROOT: root, AUTH_MODE: "kubernetes", KUBECONFIG: kubeconfig });
    expect(status, output).toBe(2);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(`AUTH_MODE=kubernetes: KUBECONFIG ${kubeconfig} cannot be loaded (`);
    expect(fatal[0]).toMatch(/; for local use set AUTH_MODE=none$/);
  });
});
