// The KFP run index on a volume shared by two servers: a claim races a peer's forget() of the same run.
import fs from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RunIndex } from "../../src/storage/runs.js";
import { TempNames } from "../../src/storage/temp-names.js";
import { tempDir } from "../support/harness.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("RunIndex on a shared volume", () => {
  it("a peer's forget() removes the run's directory between the claim's mkdir and its link: the claim makes it again and lands", async () => {
    const root = await tempDir("runs");
    const [runsDir, tmpDir] = [path.join(root, "runs"), path.join(root, "tmp")];
    await Promise.all([fs.mkdir(runsDir), fs.mkdir(tmpDir)]);
    // Two servers: two starts, each with its own temporary names.
    const mine = new RunIndex(runsDir, new TempNames().in(tmpDir), false);
    const peer = new RunIndex(runsDir, new TempNames().in(tmpDir), false);
    const link = fs.link.bind(fs);
    let raced = false;
    vi.spyOn(fs, "link").mockImplementation(async (existing, created) => {
      if (!raced) {
        raced = true;
        // The peer forgets the run in another namespace: the run's directory is empty, so it goes.
        await peer.forget("run-1", "team-b");
      }
      return link(existing, created);
    });
    const record = { runId: "run-1", namespace: "team-a", pipeline: "p" };
    expect(await mine.claim(record)).toEqual(record);
    expect(raced).toBe(true);
    expect(await peer.get("run-1", "team-a")).toEqual(record);
    expect(await fs.readdir(tmpDir)).toEqual([]);
  });
});
