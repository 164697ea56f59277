// A lease on the volume, so that of all the servers sharing it (RWX replicas, a DaemonSet) one at a time
// runs a job such as the retention sweep. The lease is a small file naming its holder and when it
// expires; the holder renews it while it works. Taking a free or expired lease is atomic on a shared
// filesystem: a new lease is created with link(2), which fails if one exists, and an expired one is
// first renamed away, which only one contender can do. A holder that dies simply stops renewing.
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

interface LeaseRecord {
  readonly holder: string;
  readonly expiresAt: number;
}

export class VolumeLease {
  readonly #file: string;

  constructor(
    private readonly dir: string,
    name: string,
    /** This process's identity (unique per start). */
    private readonly holder: string,
    private readonly durationMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#file = path.join(dir, `${name}.lease`);
  }

  async #read(): Promise<LeaseRecord | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.#file, "utf8")) as LeaseRecord;
    } catch {
      return undefined;
    }
  }

  async #writeTemp(): Promise<string> {
    const temp = path.join(this.dir, `.${path.basename(this.#file)}.${randomUUID()}`);
    const record: LeaseRecord = { holder: this.holder, expiresAt: this.now() + this.durationMs };
    await fs.writeFile(temp, JSON.stringify(record), { mode: 0o640 });
    return temp;
  }

  /** Takes the lease if it is free, expired or already ours; resolves whether we hold it now. */
  async acquire(): Promise<boolean> {
    await fs.mkdir(this.dir, { recursive: true });
    const current = await this.#read();
    if (current?.holder === this.holder) return this.renew();
    if (current !== undefined && current.expiresAt > this.now()) return false;
    if (current !== undefined) {
      // Expired: move it aside. If another contender moved it first, this fails and we lose the race.
      const aside = `${this.#file}.expired.${randomUUID()}`;
      try {
        await fs.rename(this.#file, aside);
      } catch {
        return false;
      }
      await fs.rm(aside, { force: true });
    }
    const temp = await this.#writeTemp();
    try {
      await fs.link(temp, this.#file);
      return true;
    } catch {
      return false;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  /** Extends our lease; resolves false (and we must stop) when it is no longer ours. */
  async renew(): Promise<boolean> {
    const current = await this.#read();
    if (current?.holder !== this.holder) return false;
    const temp = await this.#writeTemp();
    await fs.rename(temp, this.#file);
    return true;
  }

  async release(): Promise<void> {
    const current = await this.#read();
    if (current?.holder === this.holder) await fs.rm(this.#file, { force: true });
  }
}
