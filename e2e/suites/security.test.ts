// Security context in practice: in a namespace that enforces the `restricted` Pod Security level, the
// chart's server and helm test pods are admitted, the server runs as 65532 without capabilities on a
// read-only root filesystem, and still writes to its volume because of fsGroup.
//
// The cluster's provisioner (local-path) hands out world-writable (0777) hostPath directories, where
// kubelet applies no fsGroup and none is needed; the other suites write to those. To prove fsGroup
// itself, this suite gives the server a `local` PersistentVolume (a type kubelet does apply fsGroup
// to) on a directory owned by root with mode 0755: only the fsGroup change makes it writable.
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { artifactUrl, serviceUrl } from "../support/clients.js";
import { kubectl } from "../support/commands.js";
import { env, NODE_BINARY } from "../support/env.js";
import { apply, core, listPods, schedulableNodeNames } from "../support/kube.js";
import { fullname, helmInstall, helmTest, helmUninstall, type Release } from "../support/install.js";
import { e2eSuite } from "../support/suite.js";
import { startTenantClients, type Tenant } from "../support/tenants.js";

const suite = e2eSuite("security");
const RESTRICTED = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/warn": "restricted",
  "pod-security.kubernetes.io/audit": "restricted",
};

let release: Release;
let name: string;
let serverPod: string;
let tenant: Tenant;
let hostDir: string;
const CLAIM = "artifacts";

interface ProcessFacts {
  status: Record<string, string>;
  writes: Record<string, string>;
  artifact: { uid: number; gid: number } | { error: string };
  volume: { uid: number; gid: number; mode: number };
}

/** Runs in the server container, next to the server process (PID 1), with the same identity. */
const INSPECT_SCRIPT = `
const fs = require("node:fs");
const status = Object.fromEntries(fs.readFileSync("/proc/1/status", "utf8").split("\\n").filter(Boolean).map((line) => {
  const at = line.indexOf(":"); return [line.slice(0, at), line.slice(at + 1).trim()];
}));
const writes = {};
for (const target of ["/app/e2e-probe", "/tmp/e2e-probe", "/etc/e2e-probe", "/artifacts/.e2e-probe"]) {
  try { fs.writeFileSync(target, "probe"); fs.rmSync(target); writes[target] = "ok"; } catch (error) { writes[target] = error.code; }
}
let artifact;
try { const s = fs.statSync(process.argv[1]); artifact = { uid: s.uid, gid: s.gid }; } catch (error) { artifact = { error: error.code }; }
const v = fs.statSync("/artifacts");
process.stdout.write(JSON.stringify({ status, writes, artifact, volume: { uid: v.uid, gid: v.gid, mode: v.mode } }));
`;

suite.setup(async () => {
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-sec", RESTRICTED) };
  name = fullname(release.name);
  const [node] = await schedulableNodeNames();
  if (node === undefined) throw new Error("no schedulable node");
  const volumeName = suite.name("e2e-sec");
  hostDir = path.join(env.sharedHostDir, volumeName);
  await mkdir(hostDir, { recursive: true });
  await chmod(hostDir, 0o755);
  suite.onCleanup("remove the volume directory", () => rm(hostDir, { recursive: true, force: true }));
  suite.onCleanup("delete the PersistentVolume", async () => {
    await core.deletePersistentVolume({ name: volumeName });
  });
  await apply([
    {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: volumeName, labels: { "kfp-artifacts.e2e/run": "true" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        local: { path: `${env.sharedNodeDir}/${volumeName}` },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] }] } },
        claimRef: { namespace: release.namespace, name: CLAIM },
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: CLAIM, namespace: release.namespace },
      spec: { accessModes: ["ReadWriteOnce"], storageClassName: "", volumeName, resources: { requests: { storage: "1Gi" } } },
    },
  ]);
  suite.onCleanup("helm uninstall", () => helmUninstall(release));
  await helmInstall(release, { persistence: { existingClaim: CLAIM } });
  const pods = await listPods(release.namespace, `app.kubernetes.io/instance=${release.name},app.kubernetes.io/component=server`);
  serverPod = pods[0]?.metadata?.name ?? "";
  const tenantNamespace = await suite.namespace("e2e-sec-team", RESTRICTED);
  [tenant] = (await startTenantClients([tenantNamespace], { editClusterRole: `${name}-edit` })) as [Tenant];
});

async function inspect(artifactPath: string): Promise<ProcessFacts> {
  const { stdout } = await kubectl(["exec", "-n", release.namespace, serverPod, "-c", "server", "--", NODE_BINARY, "-e", INSPECT_SCRIPT, artifactPath], {
    timeoutMs: 60_000,
  });
  return JSON.parse(stdout) as ProcessFacts;
}

describe("security context in practice", () => {
  it("is admitted by the restricted Pod Security level: server and helm test pods", async () => {
    expect(serverPod).not.toBe("");
    const output = await helmTest(release);
    expect(output).toMatch(/Phase:\s+Succeeded/);
  });

  it("runs the server as 65532:65532, without capabilities, no_new_privs, seccomp filtered", async () => {
    const { status } = await inspect("/artifacts");
    expect(status.Uid?.split(/\s+/)).toEqual(["65532", "65532", "65532", "65532"]);
    expect(status.Gid?.split(/\s+/)).toEqual(["65532", "65532", "65532", "65532"]);
    // fsGroup becomes a supplementary group of the process.
    expect(status.Groups?.split(/\s+/)).toContain("65532");
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) expect(status[set], set).toBe("0000000000000000");
    expect(status.NoNewPrivs).toBe("1");
    expect(status.Seccomp).toBe("2");
  });

  it("has a read-only root filesystem and still writes artifacts to its volume, owned by 65532", async () => {
    const key = "security/owned.txt";
    const put = await tenant.client.request({ url: artifactUrl(serviceUrl(name, release.namespace), tenant.namespace, key), method: "PUT", body: { text: "mine" } });
    expect(put.status).toBe(201);
    const facts = await inspect(`/artifacts/${tenant.namespace}/${key}`);
    expect(facts.writes).toEqual({ "/app/e2e-probe": "EROFS", "/tmp/e2e-probe": "EROFS", "/etc/e2e-probe": "EROFS", "/artifacts/.e2e-probe": "ok" });
    expect(facts.artifact).toEqual({ uid: 65532, gid: 65532 });
  });

  it("owes its write access to fsGroup: kubelet gave the root-owned 0755 volume to group 65532", async () => {
    const { volume } = await inspect("/artifacts");
    // Still owned by root (the server could not write as owner), now group 65532, group-writable, setgid.
    expect(volume.uid).toBe(0);
    expect(volume.gid).toBe(65532);
    expect(volume.mode & 0o2070).toBe(0o2070);
    // The same directory seen from the host, where this suite created it as root:root 0755.
    expect((await stat(hostDir)).gid).toBe(65532);
  });
});
