// The README's "Try it on your machine", run as written: its `make run` block starts the server, its
// client block runs against it in an empty directory, and what the README says of the answers holds (the
// upload's JSON, the downloaded bytes, the listing, S3's view of the same artifact; `-OJ` never
// overwriting, `-T` of a missing file storing nothing). The Helm and Kustomize installs run in the e2e
// suite shared-kustomize; their variants for a registry of one's own, which no test can pull from, are
// rendered here and must name the README's image.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeLoopbackPort, readme, strictScript, substitute, type Substitution, testedBlocks, testedCommands, testedFiles } from "./readme.js";
import { at, chartDir, helm, kubectl, parseObjects } from "../../charts/tests/lib/render.js";
import { commands, fencedBlocks, RecipeError } from "./recipe.js";

const REPO_ROOT = path.dirname(path.dirname(path.dirname(new URL(import.meta.url).pathname)));
const README = readme();
const START_TIMEOUT_MS = 90_000;

describe("README blocks marked tested=<name>", () => {
  const sample = ["```sh tested=a", "echo one", "```", "```yaml tested=a file=x.yaml", "k: v", "```", "```sh", "illustration", "```", "```sh tested=a", "echo two", "```"].join("\n");

  it("joins a name's command blocks in order and keeps its file blocks apart", () => {
    expect(testedCommands(sample, "a")).toBe("echo one\necho two");
    expect([...testedFiles(sample, "a")]).toEqual([["x.yaml", "k: v\n"]]);
  });

  it("refuses a name without blocks and a command block that is not sh", () => {
    expect(() => testedCommands(sample, "b")).toThrow(/no block marked tested=b/);
    expect(() => testedCommands("```python tested=c\nprint()\n```", "c")).toThrow(/must be `sh`/);
  });

  it("refuses a substitution whose text the commands no longer contain", () => {
    const substitutions: Substitution[] = [{ from: ":8080", to: ":1", why: "a test" }];
    expect(substitute("curl http://x:8080/", substitutions)).toBe("curl http://x:1/");
    expect(() => substitute("curl http://x:8081/", substitutions)).toThrow(RecipeError);
  });

  it("marks the README's quick start, Helm and Kustomize commands", () => {
    expect(testedCommands(README, "make-run").replace(/#.*$/gm, "").trim()).toBe("make run");
    for (const name of ["try-it", "helm", "kustomize"]) expect(testedCommands(README, name)).not.toBe("");
    expect([...testedFiles(README, "kustomize").keys()]).toEqual(["kustomization.yaml"]);
    expect(testedBlocks(README, "helm")).toHaveLength(2);
  });
});

describe("README: the install variants that need a registry of one's own", () => {
  const REGISTRY_IMAGE = "registry.example.com/ml/kfp-artifacts:0.1.0";

  it("Helm with --set image.*: renders the server with the image the README names", async () => {
    const block = fencedBlocks(README).find((candidate) => candidate.text.includes("--set image.registry="));
    const install = commands(block?.text ?? "").find((words) => words[0] === "helm" && words[1] === "install");
    expect(install, "the README's Helm install with --set image.*").toBeDefined();
    // `helm template` takes `helm install`'s arguments and needs no cluster.
    const args = (install ?? []).slice(2).map((word) => (word === "charts/kfp-artifacts" ? chartDir : word));
    const rendered = await helm(["template", ...args]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const server = parseObjects(rendered.stdout).find((object) => object.kind === "Deployment" && object.metadata.name === "kfp-artifacts");
    const containers = (at(server, "spec", "template", "spec", "containers") ?? []) as { name: string; image: string }[];
    expect(containers.find((container) => container.name === "server")?.image).toBe(REGISTRY_IMAGE);
  });

  it("Kustomize with the newName the README's comment shows: the overlay runs that image", async () => {
    const kustomization = testedFiles(README, "kustomize").get("kustomization.yaml") ?? "";
    const comment = /^(\s*)# an image from your registry: (newName: \S+)$/m.exec(kustomization);
    expect(comment, "the README's kustomization names newName in a comment").not.toBeNull();
    const dir = mkdtempSync(path.join(tmpdir(), "readme-kustomize-"));
    try {
      symlinkSync(REPO_ROOT, path.join(dir, "kfp-artifacts"));
      writeFileSync(path.join(dir, "kustomization.yaml"), kustomization.replace(comment?.[0] ?? "", `${comment?.[1] ?? ""}${comment?.[2] ?? ""}`));
      const built = await kubectl(["kustomize", dir]);
      expect(built.code, built.stderr).toBe(0);
      const images = parseObjects(built.stdout).flatMap((object) => ((at(object, "spec", "template", "spec", "containers") ?? []) as { image: string }[]).map((container) => container.image));
      expect(images.length).toBeGreaterThan(0);
      expect(new Set(images)).toEqual(new Set([REGISTRY_IMAGE]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("README: Try it on your machine, as written", () => {
  let server: ChildProcess | undefined;
  let serverLog = "";
  let dir = "";
  let substitutions: Substitution[] = [];
  const baseUrl = () => substitutions[0]?.to ?? "";

  /** The README's client commands (or one line of them, with the substitutions it needs) in `dir`. */
  function runClient(commands: string, needed = substitutions): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync("bash", ["-c", strictScript(substitute(commands, needed))], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "readme-try-it-"));
    const [port, s3Port] = await Promise.all([freeLoopbackPort(), freeLoopbackPort()]);
    // The README's ports are those of a machine of one's own; this one is shared, so the test takes
    // free ones and the README's data directory becomes its own.
    substitutions = [
      { from: "http://127.0.0.1:8080", to: `http://127.0.0.1:${port}`, why: "port 8080 may be taken on a shared machine" },
      { from: "http://127.0.0.1:9000", to: `http://127.0.0.1:${s3Port}`, why: "port 9000 may be taken on a shared machine" },
    ];
    const environment: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), S3_PORT: String(s3Port), ARTIFACTS_ROOT: path.join(dir, "data") };
    // As from a reader's shell, not as a sub-make of `make test`.
    for (const name of ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"]) delete environment[name];
    // Its own process group, so that stopping it stops make and the server it runs.
    const started = spawn("bash", ["-c", strictScript(testedCommands(README, "make-run"))], { cwd: REPO_ROOT, env: environment, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    server = started;
    started.stdout.on("data", (chunk: Buffer) => (serverLog += chunk.toString()));
    started.stderr.on("data", (chunk: Buffer) => (serverLog += chunk.toString()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`make run exited with ${started.exitCode}:\n${serverLog.slice(-4000)}`);
      const healthy = await fetch(`${baseUrl()}/healthz`).then((answer) => answer.ok, () => false);
      if (healthy) break;
      if (Date.now() > deadline) throw new Error(`make run did not answer /healthz within ${START_TIMEOUT_MS} ms:\n${serverLog.slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    if (server?.pid !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once("exit", resolve));
      process.kill(-server.pid, "SIGTERM");
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const commands = testedCommands(README, "try-it");
  /** One line of the block, run alone. */
  const runLine = (start: string) => {
    const found = commands.split("\n").find((text) => text.startsWith(start));
    if (found === undefined) throw new Error(`the README's try-it block has no line starting with ${start}`);
    return runClient(found, substitutions.filter((substitution) => found.includes(substitution.from)));
  };

  it("stores, downloads and lists the artifact through the native API and S3, answering as the README shows", () => {
    const result = runClient(commands);
    expect(result.status, result.stderr + serverLog.slice(-2000)).toBe(0);
    // The README shows the upload's answer in a comment, the digest elided.
    const shown = /^# (\{"uri".*\})$/m.exec(commands)?.[1] ?? "";
    expect(shown).not.toBe("");
    const pattern = new RegExp(`^${shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace("…", "[0-9a-f]{64}")}`);
    expect(result.stdout).toMatch(pattern);
    expect(readFileSync(path.join(dir, "downloads/model.pkl"), "utf8")).toBe(readFileSync(path.join(dir, "model.pkl"), "utf8"));
    expect(result.stdout).toContain('"items":[{"key":"demo/model.pkl","size":14,');
    expect(result.stdout).toMatch(/\s14 model\.pkl\n$/);
  });

  it("never overwrites the downloaded file (-OJ), and an upload of a missing file stores nothing (-T)", async () => {
    const download = runLine("curl --fail -OJ");
    expect(download.status).not.toBe(0);
    expect(download.stderr).toMatch(/File exists/);
    expect(readFileSync(path.join(dir, "downloads/model.pkl"), "utf8")).toBe("model weights\n");

    unlinkSync(path.join(dir, "model.pkl"));
    const upload = runLine("curl --fail-with-body -T");
    expect(upload.status).not.toBe(0);
    const stored = await fetch(`${baseUrl()}/v1/namespaces/team-a/artifacts/demo/model.pkl`);
    expect(stored.status).toBe(200);
    expect(await stored.text()).toBe("model weights\n");
  });
});
