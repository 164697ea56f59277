// The run index of the KFP compatibility API (SPEC §4.2): run id → (namespace, pipeline), recorded by a
// run's first :write and kept on the volume where no artifact key can reach. The first record for a run
// wins atomically (link(2) fails with EEXIST), even between replicas sharing the volume.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { tempPath } from "./upload.js";

export interface RunRecord {
  readonly runId: string;
  readonly namespace: string;
  readonly pipeline: string;
}

export class RunIndex {
  constructor(
    private readonly runsDir: string,
    private readonly tmpDir: string,
    private readonly fsync: boolean,
  ) {}

  #pathFor(runId: string): string {
    const digest = createHash("sha256").update(runId).digest("hex");
    return path.join(this.runsDir, digest.slice(0, 2), `${digest}.json`);
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.#pathFor(runId), "utf8")) as RunRecord;
      return parsed.runId === runId ? parsed : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** Records `record` unless the run is known already; resolves with the record that is in force. */
  async claim(record: RunRecord): Promise<RunRecord> {
    const target = this.#pathFor(record.runId);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = tempPath(this.tmpDir, "run");
    const handle = await fs.open(temp, "wx", 0o640);
    try {
      await handle.writeFile(JSON.stringify(record));
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.link(temp, target);
      return record;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const existing = await this.get(record.runId);
      if (existing === undefined) throw error;
      return existing;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
}
