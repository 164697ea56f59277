// The run index of the KFP compatibility API: (run id, namespace) → pipeline, recorded by
// a run's first :write in a namespace and kept on the volume where no artifact key can reach.
//
// Runs are namespaced. Run ids are chosen by whoever writes first, so with one global record per run id
// a tenant who claimed another tenant's next run id in their own namespace locked the owner out of it
// (409 for every write the owner's pipeline made). Now a claim binds the run id only within the
// namespace it was made in, by a caller allowed to write there: the same id in two namespaces is two
// runs, and nobody can claim a run in a namespace they may not write to. A call that does not name the
// namespace uses the one namespace holding the run that the caller may use (routes/kfp.ts).
//
// Layout: runs/<hh>/<sha256(run id)>/<namespace>.json. The first record for a (run, namespace) wins
// atomically (link(2) fails with EEXIST), even between replicas sharing the volume. A volume written
// before runs were namespaced has runs/<hh>/<sha256(run id)>.json, one record per run: still read.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Scratch } from "./temp-names.js";

export interface RunRecord {
  readonly runId: string;
  readonly namespace: string;
  readonly pipeline: string;
}

/** How many times a claim makes the run's directory again after a peer removed it, before it fails. */
const LINK_ATTEMPTS = 8;

export class RunIndex {
  constructor(
    private readonly runsDir: string,
    private readonly scratch: Scratch,
    private readonly fsync: boolean,
  ) {}

  #base(runId: string): string {
    const digest = createHash("sha256").update(runId).digest("hex");
    return path.join(this.runsDir, digest.slice(0, 2), digest);
  }

  #pathFor(runId: string, namespace: string): string {
    return path.join(this.#base(runId), `${namespace}.json`);
  }

  async #read(file: string, runId: string): Promise<RunRecord | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(file, "utf8")) as RunRecord;
      return parsed.runId === runId ? parsed : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** The run as recorded in `namespace`, if it is. */
  async get(runId: string, namespace: string): Promise<RunRecord | undefined> {
    const record = await this.#read(this.#pathFor(runId, namespace), runId);
    if (record !== undefined) return record;
    const legacy = await this.#read(`${this.#base(runId)}.json`, runId);
    return legacy?.namespace === namespace ? legacy : undefined;
  }

  /** Every namespace's record of this run id, sorted by namespace. */
  async find(runId: string): Promise<RunRecord[]> {
    const base = this.#base(runId);
    const names = await fs.readdir(base).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return [];
      throw error;
    });
    const records = new Map<string, RunRecord>();
    for (const name of names.filter((entry) => entry.endsWith(".json")).sort()) {
      const record = await this.#read(path.join(base, name), runId);
      if (record !== undefined && `${record.namespace}.json` === name) records.set(record.namespace, record);
    }
    const legacy = await this.#read(`${base}.json`, runId);
    if (legacy !== undefined && !records.has(legacy.namespace)) records.set(legacy.namespace, legacy);
    return [...records.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
  }

  /** Records `record` unless the run is known in its namespace already; resolves with the record in force there. */
  async claim(record: RunRecord): Promise<RunRecord> {
    const existing = await this.get(record.runId, record.namespace);
    if (existing !== undefined) return existing;
    const target = this.#pathFor(record.runId, record.namespace);
    const temp = this.scratch.path("run");
    const handle = await fs.open(temp, "wx", 0o640);
    try {
      try {
        await handle.writeFile(JSON.stringify(record));
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      // A peer's forget() of the run's last record in another namespace removes the run's directory,
      // possibly between our mkdir and our link: then it is made again.
      for (let attempt = 1; ; attempt += 1) {
        await fs.mkdir(path.dirname(target), { recursive: true });
        try {
          await fs.link(temp, target);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= LINK_ATTEMPTS) throw error;
        }
      }
      return record;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const inForce = await this.get(record.runId, record.namespace);
      if (inForce === undefined) throw error;
      return inForce;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  /** Removes the run's record in `namespace` (and a legacy one-per-run record naming it). */
  async forget(runId: string, namespace: string): Promise<void> {
    await fs.rm(this.#pathFor(runId, namespace), { force: true });
    const legacy = `${this.#base(runId)}.json`;
    if ((await this.#read(legacy, runId))?.namespace === namespace) await fs.rm(legacy, { force: true });
    await fs.rmdir(this.#base(runId)).catch(() => {});
  }
}
