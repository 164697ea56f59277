// Writing digest sidecars (meta.ts): atomic replacement through a temporary file, the sidecar directory
// made only when it is missing, and nothing left behind when the write cannot land.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSidecarCache, Sidecars, type ContentMeta } from "../../src/storage/meta.js";
import { TempNames } from "../../src/storage/temp-names.js";

const META: ContentMeta = { sha256: "a".repeat(64), size: 4, ino: "1", mtimeNs: "2" };

describe("Sidecars.write", () => {
  let root: string;
  let tmp: string;
  let sidecars: Sidecars;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "sidecars-"));
    tmp = path.join(root, "tmp");
    await fs.mkdir(tmp);
    sidecars = new Sidecars(new TempNames("host", "start").in(tmp), createSidecarCache());
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await fs.rm(root, { recursive: true, force: true });
  });

  it("makes the sidecar's directory when it is missing", async () => {
    const metaPath = path.join(root, "meta", "ns", "ab", "ab12.json");
    await sidecars.write(metaPath, META);
    expect(JSON.parse(await fs.readFile(metaPath, "utf8"))).toEqual(META);
    expect(await fs.readdir(tmp)).toEqual([]);
  });

  it("makes no directory when the sidecar's exists already, and replaces the sidecar", async () => {
    const metaPath = path.join(root, "meta", "ab12.json");
    await sidecars.write(metaPath, META);
    const mkdir = vi.spyOn(fs, "mkdir");
    await sidecars.write(metaPath, { ...META, sha256: "b".repeat(64) });
    expect(mkdir).not.toHaveBeenCalled();
    expect(await sidecars.read(metaPath)).toMatchObject({ sha256: "b".repeat(64) });
    expect(await fs.readdir(tmp)).toEqual([]);
  });

  it("leaves no temporary file when the sidecar's directory cannot be made", async () => {
    // A file where the sidecar's directory should be: ENOENT is not the answer, ENOTDIR is.
    await fs.writeFile(path.join(root, "meta"), "not a directory");
    const failure: unknown = await sidecars.write(path.join(root, "meta", "ns", "ab12.json"), META).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(["ENOTDIR", "EEXIST"]).toContain((failure as NodeJS.ErrnoException | undefined)?.code);
    expect(await fs.readdir(tmp)).toEqual([]);
  });
});
